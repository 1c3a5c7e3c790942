package collect

import "errors"

var errNoCPU = errors.New("no cpu times reported")
