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
	// Without -c the built-in defaults are used.
	fl, code, done := run.ParseFlags(fs, args, "", version, stdout)
	if done {
		return code
	}
	cfg, err := config.Load(fl.ConfigPath)
	if err != nil {
		fmt.Fprintln(stderr, binary+":", err)
		return run.ExitUsage
	}
	log, err := logging.New(cfg.Log.WithLevel(fl.LogLevel), stderr)
	if err != nil {
		fmt.Fprintln(stderr, binary+": -log.level:", err)
		return run.ExitUsage
	}
	log.Info("starting", "version", version, "config", fl.ConfigPath)
	return run.Serve(log, "agent", func(ctx context.Context) (run.Runner, error) { return app.New(ctx, cfg, log) })
}
