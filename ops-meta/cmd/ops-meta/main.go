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
	cfgPath := fs.String("c", "ops-meta.yaml", "config file")
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
	log.Info("starting", "version", version, "config", *cfgPath)
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
