package run

import (
	"context"
	"log/slog"
)

// Runner is a built service (an internal/app.App): Run works until ctx is
// done or a part fails, then stops in order.
type Runner interface {
	Run(ctx context.Context) error
}

// Serve is the end of every service's main, once flags, config and logger
// are ready: it builds the service with start under a context that
// SIGINT/SIGTERM cancel, runs it, logs the outcome and returns the exit
// code. A start that fails because the signal came first (still
// connecting to NATS) is a clean stop.
func Serve(log *slog.Logger, name string, start func(ctx context.Context) (Runner, error)) int {
	ctx, stop := SignalContext(context.Background())
	defer stop()
	r, err := start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped before starting", "err", err)
			return ExitOK
		}
		log.Error("cannot start", "err", err)
		return ExitFailure
	}
	if err := r.Run(ctx); err != nil {
		log.Error(name+" failed", "err", err)
		return ExitFailure
	}
	log.Info("stopped")
	return ExitOK
}
