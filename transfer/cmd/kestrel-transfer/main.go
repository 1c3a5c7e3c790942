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
	"flag"
	"fmt"
	"io"
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

// runTransfer parses args with its own flag set and returns the exit code.
func runTransfer(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "transfer.yaml", "config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	level := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(args); err != nil {
		return run.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (commands: ring, stream, deadletter)\n", binary, fs.Args())
		return run.ExitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", binary, version)
		return run.ExitOK
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, binary+":", err)
		return run.ExitUsage
	}
	if *level != "" {
		cfg.Log.Level = *level
	}
	log, err := logging.New(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, binary+": -log.level:", err)
		return run.ExitUsage
	}
	log.Info("starting", "version", version, "config", *cfgPath)
	ctx, stop := run.SignalContext(context.Background())
	defer stop()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil { // SIGTERM while connecting to NATS
			log.Info("stopped before starting", "err", err)
			return run.ExitOK
		}
		log.Error("cannot start", "err", err)
		return run.ExitFailure
	}
	if err := a.Run(ctx); err != nil {
		log.Error("transfer failed", "err", err)
		return run.ExitFailure
	}
	log.Info("stopped")
	return run.ExitOK
}
