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
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kestrel-mon/kestrel/judge/internal/app"
	"github.com/kestrel-mon/kestrel/judge/internal/config"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
)

var version = "dev"

const binary = "kestrel-judge"

func main() { os.Exit(runJudge(os.Args[1:], os.Stdout, os.Stderr)) }

// runJudge parses args with its own flag set (no globals, so it can run
// more than once) and returns the exit code.
func runJudge(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "judge.yaml", "config file")
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
	a, err := app.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return run.ExitFailure
	}
	ctx, stop := run.SignalContext(context.Background())
	defer stop()
	run.OnHangup(ctx, func() { _ = a.Reload() }) // logged and counted; a bad file keeps the old rules
	if err := a.Run(ctx); err != nil {
		log.Error("judge failed", "err", err)
		return run.ExitFailure
	}
	log.Info("stopped")
	return run.ExitOK
}
