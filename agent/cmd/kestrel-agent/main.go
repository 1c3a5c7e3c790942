// Command kestrel-agent collects host metrics and takes Open-Falcon pushes,
// and publishes them to the Kestrel ingest stream on NATS JetStream.
//
//	kestrel-agent -c agent.yaml    # without -c the built-in defaults are used
//	kestrel-agent -version
//
// Exit codes: 0 stopped cleanly, 1 failed, 2 bad flags or config.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/kestrel-mon/kestrel/agent/internal/app"
	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
)

var version = "dev"

func main() { os.Exit(service().Main(os.Args[1:], os.Stdout, os.Stderr)) }

// service is the agent binary: flags, config (without -c the built-in
// defaults), logger, then internal/app.
func service() run.Service[config.Config] {
	return run.Service[config.Config]{
		Binary: "kestrel-agent", Version: version,
		Load: config.Load,
		Log:  func(c *config.Config) logging.Config { return c.Log },
		Start: func(ctx context.Context, cfg config.Config, log *slog.Logger) (run.Runner, error) {
			return app.New(ctx, cfg, log)
		},
	}
}
