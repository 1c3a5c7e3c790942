// Command kestrel-judge keeps a window of recent points per series, judges
// them against Open-Falcon strategies and expressions, and writes alarm
// events to Redis. See judge/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kestrel-mon/kestrel/judge/internal/app"
	"github.com/kestrel-mon/kestrel/judge/internal/config"
)

var version = "dev"

const binary = "kestrel-judge"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run parses args with its own flag set (no globals, so it can run more
// than once) and returns the exit code: 0 stopped cleanly, 1 failed, 2
// bad flags or config.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "judge.yaml", "config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	level := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", binary, version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, binary+":", err)
		return 2
	}
	if *level != "" {
		cfg.Log.Level = *level
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(stderr, binary+": -log.level:", err)
			return 2
		}
	}
	log := newLogger(cfg.Log, stderr)
	a, err := app.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = a.Reload() // logged and counted; old rules kept on error
			}
		}
	}()
	log.Info("starting", "version", version, "config", *cfgPath)
	if err := a.Run(ctx); err != nil {
		log.Error("judge failed", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
