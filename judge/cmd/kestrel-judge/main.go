// Command kestrel-judge keeps a window of recent points per series, judges
// them against Open-Falcon strategies and expressions, and writes alarm
// events to Redis. See judge/README.md.
//
//	kestrel-judge -c judge.yaml [-log.level debug]
//	kestrel-judge -version
//
// Exit codes: 0 stopped cleanly, 1 failed, 2 bad flags or config.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/kestrel-mon/kestrel/judge/internal/app"
	"github.com/kestrel-mon/kestrel/judge/internal/config"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
)

var version = "dev"

func main() { os.Exit(service().Main(os.Args[1:], os.Stdout, os.Stderr)) }

// service is the judge binary: flags, config, logger, then internal/app
// (SIGHUP reloads the rules).
func service() run.Service[config.Config] {
	return run.Service[config.Config]{
		Binary: "kestrel-judge", Version: version, DefaultConfig: "judge.yaml",
		Load: config.Load,
		Log:  func(c *config.Config) logging.Config { return c.Log },
		Start: func(ctx context.Context, cfg config.Config, log *slog.Logger) (run.Runner, error) {
			a, err := app.New(ctx, cfg, log)
			if err != nil {
				return nil, err
			}
			run.OnHangup(ctx, func() { _ = a.Reload() }) // logged and counted; a bad file keeps the old rules
			return a, nil
		},
	}
}
