// Command kestrel-judge keeps a window of recent points per series, judges
// them against Open-Falcon strategies and expressions, and writes alarm
// events to Redis. See judge/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kestrel-mon/kestrel/judge/internal/app"
	"github.com/kestrel-mon/kestrel/judge/internal/config"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	cfgPath := flag.String("c", "judge.yaml", "config file")
	showVersion := flag.Bool("version", false, "print the version and exit")
	level := flag.String("log.level", "", "override log.level (debug|info|warn|error)")
	flag.Parse()
	if *showVersion {
		fmt.Printf("kestrel-judge %s\n", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kestrel-judge:", err)
		return 2
	}
	if *level != "" {
		cfg.Log.Level = *level
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "kestrel-judge: -log.level:", err)
			return 2
		}
	}
	log := newLogger(cfg.Log)
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

func newLogger(c config.Log) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
