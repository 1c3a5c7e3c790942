package run

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
)

type svcConfig struct {
	Log  logging.Config
	Name string
}

func testService(start func(ctx context.Context, cfg svcConfig, log *slog.Logger) (Runner, error)) Service[svcConfig] {
	return Service[svcConfig]{
		Binary: "kestrel-test", Version: "1.2.3", DefaultConfig: "test.yaml",
		Load: func(path string) (svcConfig, error) {
			if path == "bad.yaml" {
				return svcConfig{}, errors.New("bad.yaml: line 1: x: field x not found")
			}
			return svcConfig{Log: logging.Config{Level: "info", Format: "json"}, Name: path}, nil
		},
		Log:   func(c *svcConfig) logging.Config { return c.Log },
		Start: start,
	}
}

func TestServiceMain(t *testing.T) {
	var started string
	ok := func(ctx context.Context, cfg svcConfig, log *slog.Logger) (Runner, error) {
		started = cfg.Name
		return runnerFunc(func(context.Context) error { return nil }), nil
	}
	for _, c := range []struct {
		args        []string
		code        int
		out, errs   string
		wantStarted string
	}{
		{[]string{"-version"}, ExitOK, "kestrel-test 1.2.3\n", "", ""},
		{[]string{"-c", "bad.yaml"}, ExitUsage, "", "kestrel-test: bad.yaml: line 1: x: field x not found", ""},
		{[]string{"-log.level", "loud"}, ExitUsage, "", `kestrel-test: -log.level: log.level: must be`, ""},
		{[]string{"extra"}, ExitUsage, "", `unexpected arguments ["extra"]`, ""},
		{nil, ExitOK, "", `"msg":"stopped"`, "test.yaml"},
	} {
		started = ""
		var out, errs syncbuf.Buffer
		code := testService(ok).Main(c.args, &out, &errs)
		if code != c.code || out.String() != c.out || !strings.Contains(errs.String(), c.errs) || started != c.wantStarted {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, started %q", c.args, code, out.String(), errs.String(), started)
		}
	}
}
