package collect

import "errors"

var (
	errNoCPU       = errors.New("no cpu times reported")
	errCPUInterval = errors.New("cpu counters went backwards or did not advance: cpu rates of this step skipped")
)
