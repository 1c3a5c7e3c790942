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
	fl, code, done := run.ParseFlags(fs, args, "judge.yaml", version, stdout)
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
	return run.Serve(log, "judge", func(ctx context.Context) (run.Runner, error) {
		a, err := app.New(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		run.OnHangup(ctx, func() { _ = a.Reload() }) // logged and counted; a bad file keeps the old rules
		return a, nil
	})
}
