// Command ops-meta is Kestrel's agent rollout server (Open-Falcon
// compatible): `ops-meta -c ops-meta.yaml` serves; `ops-meta sign
// keygen|sign|verify` manages artifact signatures. See ops-meta/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/app"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
)

var version = "dev"

const binary = "ops-meta"

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain parses args with its own flag set and returns the exit code: 0
// stopped cleanly, 1 failed, 2 bad flags or config.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sign" {
		return runSign(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f, code, done := run.ParseFlags(fs, args, "ops-meta.yaml", version, stdout)
	if done {
		return code
	}
	cfg, err := config.Load(f.ConfigPath)
	if err != nil {
		fmt.Fprintln(stderr, binary+":", err)
		return run.ExitUsage
	}
	log, err := logging.New(cfg.Log.WithLevel(f.LogLevel), stderr)
	if err != nil {
		fmt.Fprintln(stderr, binary+": -log.level:", err)
		return run.ExitUsage
	}
	log.Info("starting", "version", version, "config", f.ConfigPath)
	a, err := app.New(cfg, log, version)
	if err != nil {
		log.Error("cannot start", "err", err)
		return run.ExitFailure
	}
	ctx, stop := run.SignalContext(context.Background())
	defer stop()
	run.OnHangup(ctx, func() { _ = a.Reload(ctx) }) // logged and counted; a bad file keeps the old config
	if err := a.Run(ctx); err != nil {
		log.Error("ops-meta failed", "err", err)
		return run.ExitFailure
	}
	log.Info("stopped")
	return run.ExitOK
}
