// Command kestrel-transfer pulls ingest batches from NATS JetStream,
// validates the points and forwards each series to the judge that owns it.
//
//	kestrel-transfer -c transfer.yaml [-log.level debug]
//	kestrel-transfer ring get|set -c transfer.yaml [...]   (see internal/ringcmd)
//	kestrel-transfer stream get|apply -c transfer.yaml      (see internal/streamcmd)
//	kestrel-transfer deadletter list|replay|purge -c transfer.yaml [-seq N]  (see internal/deadletter)
//
// Exit codes: 0 stopped cleanly, 1 failed, 2 bad flags or config.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/transfer/internal/app"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/deadletter"
	"github.com/kestrel-mon/kestrel/transfer/internal/ringcmd"
	"github.com/kestrel-mon/kestrel/transfer/internal/streamcmd"
)

var version = "dev"

const binary = "kestrel-transfer"

// commands are the operator commands: `kestrel-transfer <name> ...`.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"ring":       ringcmd.Main,
	"stream":     streamcmd.Main,
	"deadletter": deadletter.Main,
}

func main() { os.Exit(runTransfer(os.Args[1:], os.Stdout, os.Stderr)) }

// runTransfer runs an operator command, or the transfer.
func runTransfer(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
	}
	return run.Service[config.Config]{
		Binary: binary, Version: version, DefaultConfig: "transfer.yaml",
		Load: config.Load,
		Log:  func(c *config.Config) logging.Config { return c.Log },
		Start: func(ctx context.Context, cfg config.Config, log *slog.Logger) (run.Runner, error) {
			return app.New(ctx, cfg, log)
		},
	}.Main(args, stdout, stderr)
}
