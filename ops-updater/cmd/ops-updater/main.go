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
	cfgPath := fs.String("c", "ops-updater.yaml", "config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	level := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(args); err != nil {
		return run.ExitUsage
	}
	if fs.NArg() != 0 {
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
	log.Info("starting", "version", version, "config", *cfgPath, "hostname", cfg.Hostname, "install_dir", cfg.InstallDir)
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
