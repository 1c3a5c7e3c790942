// Command kestrel-nats is a small standalone NATS server with JetStream,
// built from the nats-server/v2 library: the single-machine broker of a
// Kestrel pipeline (the end-to-end tests and the load generator use it).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/natsserver"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("kestrel-nats", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4222", "client listen address host:port (port 0 = random)")
	store := fs.String("store", "", "JetStream store directory (default: a kestrel-nats directory under the system temp dir)")
	maxPayload := fs.Int("max_payload", 0, "maximum message payload in bytes (0 = server default, 1 MiB)")
	logLevel := fs.String("log.level", "info", "log level: debug|info|warn|error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("kestrel-nats %s\n", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-nats: -log.level %q: %v\n", *logLevel, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *store == "" {
		*store = os.TempDir() + "/kestrel-nats"
	}
	if *maxPayload < 0 || *maxPayload > 64<<20 {
		log.Error("bad -max_payload", "value", *maxPayload, "max", 64<<20)
		return 2
	}
	start := time.Now()
	s, err := natsserver.Start(natsserver.Config{
		Addr:       *addr,
		StoreDir:   *store,
		MaxPayload: int32(*maxPayload),
		Logger:     log,
		Debug:      level <= slog.LevelDebug,
	})
	if err != nil {
		log.Error("cannot start nats server", "err", err)
		return 1
	}
	log.Info("ready", "version", version, "url", s.ClientURL(), "store", *store, "jetstream", s.JetStreamEnabled(), "took", time.Since(start).Round(time.Millisecond))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	got := <-sig
	log.Info("stopping", "signal", got.String())
	t := time.Now()
	s.Shutdown()
	s.WaitForShutdown()
	log.Info("stopped", "took", time.Since(t).Round(time.Millisecond))
	return 0
}
