// Command kestrel-run runs a whole Kestrel pipeline on this machine (the
// `make run` launcher): embedded NATS with JetStream, Redis, and the
// transfer, judge and agent binaries as supervised child processes. It
// prints alarm events as they arrive and stops everything in order on
// Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/launch"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("kestrel-run", flag.ContinueOnError)
	var o launch.Options
	fs.StringVar(&o.BinDir, "bin", "bin", "directory holding kestrel-transfer, kestrel-judge and kestrel-agent")
	fs.StringVar(&o.ConfigDir, "config", "deploy/local", "directory holding transfer.yaml, judge.yaml, agent.yaml and rules.yaml")
	fs.StringVar(&o.VarDir, "var", "var", "directory for NATS and Redis data, generated configs and logs")
	fs.StringVar(&o.NATSAddr, "nats", "127.0.0.1:4222", "client address of the embedded NATS server")
	fs.StringVar(&o.RedisAddr, "redis", "127.0.0.1:6379", "Redis address: used if it answers PING, else a redis-server is started there")
	fs.StringVar(&o.RedisServer, "redis-server", "redis-server", "redis-server binary to start when no Redis answers")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 10*time.Second, "how long each child gets to stop after SIGTERM before SIGKILL")
	fs.DurationVar(&o.ReadyWait, "ready-timeout", 30*time.Second, "how long each child gets to start listening")
	logLevel := fs.String("log.level", "info", "log level: debug|info|warn|error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("kestrel-run %s\n", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-run: -log.level %q: %v\n", *logLevel, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := launch.Run(ctx, o, os.Stdout, log)
	if err == nil {
		return 0
	}
	var missing *launch.MissingRedisError
	if errors.As(err, &missing) {
		fmt.Fprintln(os.Stderr, missing.Hint())
		return 1
	}
	fmt.Fprintf(os.Stderr, "kestrel-run: %v\n", err)
	return 1
}
