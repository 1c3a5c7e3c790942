// Command ops-updater keeps the agents of one host at the versions ops-meta
// desires: it heartbeats, downloads, verifies, switches, health-checks and
// rolls back. It never updates itself. See ops-updater/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/app"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/config"
)

var version = "dev"

const binary = "ops-updater"

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain parses args with its own flag set and returns the exit code: 0
// stopped cleanly, 1 failed, 2 bad flags or config.
func runMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f, code, done := run.ParseFlags(fs, args, "ops-updater.yaml", version, stdout)
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
	log.Info("starting", "version", version, "config", f.ConfigPath, "hostname", cfg.Hostname, "install_dir", cfg.InstallDir)
	a, err := app.New(cfg, log, version)
	if err != nil {
		log.Error("cannot start", "err", err)
		return run.ExitFailure
	}
	ctx, stop := run.SignalContext(context.Background())
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("ops-updater failed", "err", err)
		return run.ExitFailure
	}
	log.Info("stopped")
	return run.ExitOK
}
