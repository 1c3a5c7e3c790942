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
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kestrel-mon/kestrel/agent/internal/app"
	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
)

var version = "dev"

const binary = "kestrel-agent"

func main() { os.Exit(runAgent(os.Args[1:], os.Stdout, os.Stderr)) }

// runAgent parses args with its own flag set and returns the exit code.
func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "config file (YAML); without it the built-in defaults are used")
	showVersion := fs.Bool("version", false, "print the version and exit")
	level := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(args); err != nil {
		return run.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", binary, fs.Args())
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
		log.Error("agent failed", "err", err)
		return run.ExitFailure
	}
	log.Info("stopped")
	return run.ExitOK
}
