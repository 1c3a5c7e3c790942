// Package run is the lifecycle every Kestrel binary shares: its exit
// codes, the context that SIGINT/SIGTERM cancels, SIGHUP for reloads, and
// an ordered, bounded shutdown that logs how long each step took.
//
// A binary's main has this shape (the judge is the example):
//
//	func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }
//
//	func runMain(args []string, stdout, stderr io.Writer) int {
//		fs := flag.NewFlagSet(binary, flag.ContinueOnError)
//		fs.SetOutput(stderr)
//		f, code, done := run.ParseFlags(fs, args, binary+".yaml", version, stdout)
//		if done {
//			return code
//		}
//		cfg, err := config.Load(f.ConfigPath)
//		if err != nil {
//			fmt.Fprintln(stderr, binary+":", err)
//			return run.ExitUsage
//		}
//		log, err := logging.New(cfg.Log.WithLevel(f.LogLevel), stderr)
//		if err != nil {
//			fmt.Fprintln(stderr, binary+": -log.level:", err)
//			return run.ExitUsage
//		}
//		a, err := app.New(cfg, log)
//		if err != nil {
//			log.Error("cannot start", "err", err)
//			return run.ExitFailure
//		}
//		ctx, stop := run.SignalContext(context.Background())
//		defer stop()
//		if err := a.Run(ctx); err != nil {
//			log.Error("failed", "err", err)
//			return run.ExitFailure
//		}
//		return run.ExitOK
//	}
//
// and its app's Run ends with the stop steps in order:
//
//	sd := run.NewShutdown(a.log, a.cfg.ShutdownTimeout)
//	sd.Step("stop http", a.httpSrv.Shutdown)
//	sd.Step("close nats", func(ctx context.Context) error { ... })
//	return sd.Err()
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes, the same for every binary.
const (
	ExitOK      = 0 // stopped cleanly (a signal, or the work was done)
	ExitFailure = 1 // failed while starting or running
	ExitUsage   = 2 // bad flags or config: nothing was started
)

// SignalContext returns a context that SIGINT or SIGTERM cancels. Calling
// stop releases the signals (a second SIGINT then kills the process, as
// usual).
func SignalContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// OnHangup calls reload on every SIGHUP until ctx ends, one call at a
// time, from one goroutine. It returns once the signal is registered, so
// a SIGHUP sent after it returns is not lost (nor kills the process).
func OnHangup(ctx context.Context, reload func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload()
			}
		}
	}()
}

// Shutdown runs the steps that stop a binary, in the order its code calls
// Step, all bounded by one deadline, logging each step and how long it
// took. A failed step is logged and the next one runs anyway.
type Shutdown struct {
	log      *slog.Logger
	deadline time.Time
	errs     []error
}

// NewShutdown starts a shutdown that must be over within timeout: every
// step's context ends then (a step that ignores its context still runs to
// the end).
func NewShutdown(log *slog.Logger, timeout time.Duration) *Shutdown {
	return &Shutdown{log: log, deadline: time.Now().Add(timeout)}
}

// Step runs fn now and logs "shutdown step done" (Info) or "shutdown step
// failed" (Warn) with the step's name, how long it took and the error.
// It returns fn's error.
func (s *Shutdown) Step(name string, fn func(ctx context.Context) error) error {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), s.deadline)
	defer cancel()
	err := fn(ctx)
	took := time.Since(start)
	if err != nil {
		s.log.Warn("shutdown step failed", "step", name, "err", err, "took", took)
		s.errs = append(s.errs, fmt.Errorf("shutdown step %s: %w", name, err))
		return err
	}
	s.log.Info("shutdown step done", "step", name, "took", took)
	return nil
}

// Err returns the errors of every failed step (nil if none failed), each
// prefixed with its step's name.
func (s *Shutdown) Err() error { return errors.Join(s.errs...) }
