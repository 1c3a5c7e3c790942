// Command kestrel-nats is a NATS server with JetStream, built from the
// nats-server/v2 library. Without -c it is the single-machine broker of a
// Kestrel pipeline (the end-to-end tests and the load generator start it
// with -addr and -store); with -c it reads a standard nats-server
// configuration file, so a cluster node, its accounts, users and TLS are
// configured exactly as nats-server's documentation says.
//
//	kestrel-nats [-addr 127.0.0.1:4222] [-store dir] [-http 127.0.0.1:8222]
//	kestrel-nats -c nats.conf        # flags given beside -c replace the file's values
//	kestrel-nats -healthcheck http://127.0.0.1:8222/healthz
//	kestrel-nats -version
//
// SIGHUP reloads the -c file (nats-server's hot reload). Exit codes: 0
// stopped cleanly, 1 failed, 2 bad flags or configuration.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/natsserver"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/nats-io/nats-server/v2/server"
)

const binary = "kestrel-nats"

var version = "dev"

func main() { os.Exit(runMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

// flags are kestrel-nats' own flags, beside run.ParseFlags' -c,
// -log.level, -version and -healthcheck.
type flags struct {
	addr, store, http string
	maxPayload        int
	set               map[string]bool // the flags given on the command line
}

func (fl *flags) add(fs *flag.FlagSet) {
	fs.StringVar(&fl.addr, "addr", "127.0.0.1:4222", "client listen address host:port (port 0 = random); with -c, replaces the file's listen")
	fs.StringVar(&fl.store, "store", "", "JetStream store directory (default: a kestrel-nats directory under the system temp dir); with -c, replaces the file's store_dir and turns JetStream on")
	fs.IntVar(&fl.maxPayload, "max_payload", 0, "maximum message payload in bytes (0 = server default, 1 MiB; or the -c file's)")
	fs.StringVar(&fl.http, "http", "", "monitoring listen address host:port serving /varz, /jsz, /healthz (empty = none, or the -c file's http)")
	fs.Usage = func() {
		if c := fs.Lookup("c"); c != nil {
			c.Usage = "nats-server configuration file (cluster, jetstream, accounts, tls, http: as nats-server's documentation says); without it the flags configure one server"
		}
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
	}
}

// options are the server options of the command line: the -c file with
// the flags given beside it, or the flags alone.
func (fl *flags) options(confPath string) (*server.Options, error) {
	if fl.maxPayload < 0 || fl.maxPayload > 64<<20 {
		return nil, fmt.Errorf("-max_payload %d: must be between 0 and %d", fl.maxPayload, 64<<20)
	}
	if confPath == "" {
		store := fl.store
		if store == "" {
			store = os.TempDir() + "/kestrel-nats"
		}
		return natsserver.Config{Addr: fl.addr, StoreDir: store, MaxPayload: int32(fl.maxPayload), HTTPAddr: fl.http}.Options()
	}
	var o natsserver.Overrides
	if fl.set["addr"] {
		o.Addr = fl.addr
	}
	o.StoreDir, o.MaxPayload, o.HTTPAddr = fl.store, int32(fl.maxPayload), fl.http
	return natsserver.LoadFile(confPath, o)
}

func runMain(parent context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var fl flags
	fl.add(fs)
	f, code, done := run.ParseFlags(fs, args, "", version, stdout)
	if done {
		return code
	}
	fl.set = map[string]bool{}
	fs.Visit(func(g *flag.Flag) { fl.set[g.Name] = true })

	opts, err := fl.options(f.ConfigPath)
	if err != nil {
		// The library's errors, one per line: file:line:column: what.
		fmt.Fprintf(stderr, "%s: %s\n", binary, strings.TrimSpace(err.Error()))
		return run.ExitUsage
	}
	level := f.LogLevel
	switch {
	case level == "" && (opts.Debug || opts.Trace):
		level = "debug"
	case level == "debug" && f.ConfigPath == "":
		opts.Debug = true // the server's own debug messages too, as before -c existed
	}
	log, err := logging.New(logging.Config{Level: level}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: -log.level: %v\n", binary, err)
		return run.ExitUsage
	}
	if name := natsserver.IgnoredLogging(opts); name != "" {
		log.Warn("the configuration's "+name+" is not used: kestrel-nats logs to stderr", "config", f.ConfigPath)
	}
	if f.ConfigPath != "" && !opts.JetStream {
		log.Warn("jetstream is off: Kestrel's ingest stream needs it (add a jetstream block with store_dir)", "config", f.ConfigPath)
	}
	s, err := natsserver.New(opts, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binary, err)
		return run.ExitUsage
	}

	ctx, stop := run.SignalContext(parent)
	defer stop()
	if f.ConfigPath != "" {
		// Before Start: a SIGHUP must never find the default action (exit).
		run.OnHangup(ctx, func() { reload(s, &fl, f.ConfigPath, log) })
	}
	start := time.Now()
	if err := s.Start(0); err != nil {
		log.Error("cannot start", "err", err)
		return run.ExitFailure
	}
	log.Info("ready", append(describe(s, opts), "version", version, "config", f.ConfigPath, "took", time.Since(start).Round(time.Millisecond))...)

	code = run.ExitOK
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err := <-s.Fatal():
		log.Error("nats server failed", "err", err)
		code = run.ExitFailure
	}
	sd := run.NewShutdown(log, time.Minute)
	_ = sd.Step("stop nats", s.StopContext) // logged
	if sd.Err() != nil {
		code = run.ExitFailure
	}
	return code
}

// describe is what runs where, for the ready line.
func describe(s *natsserver.Server, opts *server.Options) []any {
	kv := []any{"name", s.Name(), "url", s.ClientURL(), "jetstream", s.JetStreamEnabled()}
	if s.JetStreamEnabled() {
		kv = append(kv, "store", opts.StoreDir)
	}
	if a := s.ClusterAddr(); a != nil {
		kv = append(kv, "cluster", opts.Cluster.Name, "routes_listen", a.String(), "routes", len(opts.Routes))
	}
	if a := s.MonitorAddr(); a != nil {
		kv = append(kv, "monitoring", "http://"+a.String())
	}
	return kv
}

// reload re-reads the -c file (with the same flags over it) and applies
// it; a bad file, or a change nats-server cannot make while running,
// keeps the running configuration.
func reload(s *natsserver.Server, fl *flags, path string, log *slog.Logger) {
	if !s.Running() {
		log.Warn("reload ignored: the server is not running", "config", path)
		return
	}
	opts, err := fl.options(path)
	if err == nil {
		err = s.Reload(opts)
	}
	if err != nil {
		log.Error("reload failed, the running configuration stays", "config", path, "err", err)
		return
	}
	log.Info("reloaded", "config", path)
}
