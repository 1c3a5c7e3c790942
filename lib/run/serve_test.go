package run

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
)

type runnerFunc func(ctx context.Context) error

func (f runnerFunc) Run(ctx context.Context) error { return f(ctx) }

func TestServeExitCodesAndLogs(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(ctx context.Context) (Runner, error)
		code  int
		log   string
	}{
		{"runs and stops", func(context.Context) (Runner, error) {
			return runnerFunc(func(context.Context) error { return nil }), nil
		}, ExitOK, "msg=stopped"},
		{"cannot start", func(context.Context) (Runner, error) { return nil, errors.New("port in use") }, ExitFailure, `msg="cannot start" err="port in use"`},
		{"fails running", func(context.Context) (Runner, error) {
			return runnerFunc(func(context.Context) error { return errors.New("boom") }), nil
		}, ExitFailure, `msg="svc failed" err=boom`},
	} {
		var buf syncbuf.Buffer
		if code := Serve(slog.New(slog.NewTextHandler(&buf, nil)), "svc", c.start); code != c.code || !strings.Contains(buf.String(), c.log) {
			t.Errorf("%s: exit %d, log %q; want %d with %q", c.name, code, buf.String(), c.code, c.log)
		}
	}
}

// SIGTERM while the service is still starting (connecting) is a clean stop.
func TestServeSignalWhileStarting(t *testing.T) {
	var buf syncbuf.Buffer
	code := Serve(slog.New(slog.NewTextHandler(&buf, nil)), "svc", func(ctx context.Context) (Runner, error) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		}()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if code != ExitOK || !strings.Contains(buf.String(), "stopped before starting") {
		t.Fatalf("exit %d, log %q", code, buf.String())
	}
}
