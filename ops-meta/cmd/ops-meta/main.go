// Command ops-meta is Kestrel's agent rollout server (Open-Falcon
// compatible): `ops-meta -c ops-meta.yaml` serves; `ops-meta sign
// keygen|sign|verify` manages artifact signatures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/server"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
)

var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sign" {
		return runSign(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("ops-meta", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "ops-meta.yaml", "config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "ops-meta %s\n", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "ops-meta: %v\n", err)
		return 1
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ops-meta: %v\n", err)
		return 1
	}
	return serve(cfg, *cfgPath, log)
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	o := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return slog.New(slog.NewTextHandler(w, o)), nil
}

func serve(cfg *config.Config, cfgPath string, log *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var st store.Store
	if cfg.MySQL.DSN != "" {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m, err := store.OpenMySQL(octx, cfg.MySQL.DSN, cfg.MySQL.MaxOpenConns)
		cancel()
		if err != nil {
			log.Error("cannot open the mysql store", "err", err)
			return 1
		}
		st = m
		log.Info("inventory in mysql", "schema_version", store.SchemaVersion())
	} else {
		st = store.NewMemory()
		log.Info("inventory in memory (set mysql.dsn to keep it)")
	}
	instance, _ := os.Hostname()
	srv := server.New(server.Options{Config: cfg, ConfigPath: cfgPath, Store: st, Logger: log, Instance: instance})
	if err := srv.SyncFileRollouts(ctx); err != nil {
		log.Error("cannot start the file's rollouts", "err", err)
	}
	if cfg.AdminToken == "" {
		log.Warn("admin_token is empty: rollout and reload endpoints are disabled")
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.HTTP.Listen, "err", err)
		st.Close()
		return 1
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: cfg.HTTP.ReadTimeout.D(), WriteTimeout: cfg.HTTP.WriteTimeout.D(), IdleTimeout: 2 * time.Minute}
	log.Info("ops-meta listening", "addr", ln.Addr().String(), "version", version)

	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	})
	evalCtx, stopEval := context.WithCancel(context.Background())
	wg.Go(func() { srv.Run(evalCtx) })

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case err := <-errc:
			log.Error("http server failed", "err", err)
			code = 1
			break loop
		case <-hup:
			log.Info("sighup: reloading config", "file", cfgPath)
			if err := srv.Reload(context.Background()); err != nil {
				log.Error("reload failed", "err", err)
			}
		}
	}
	t := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	cancel()
	log.Info("http stopped", "took", time.Since(t))
	t = time.Now()
	stopEval()
	wg.Wait()
	log.Info("rollout evaluation stopped", "took", time.Since(t))
	t = time.Now()
	if err := st.Close(); err != nil {
		log.Warn("store close", "err", err)
	}
	log.Info("store closed", "took", time.Since(t))
	return code
}

const signUsage = `usage:
  ops-meta sign keygen -pub <file> -priv <file>     create an ed25519 key pair
  ops-meta sign sign -key <private key> <name>-<version>.tar.gz ...
                                                   write .sha256, .md5 and .sig sidecars
  ops-meta sign verify -pub <public key> <name>-<version>.tar.gz ...
                                                   check sidecars and signature (exit 1 on failure)
The version is what follows the last '-' that precedes a digit:
kestrel-agent-1.2.0-rc1.tar.gz is agent "kestrel-agent", version "1.2.0-rc1".
`

func runSign(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, signUsage)
		return 2
	}
	fs := flag.NewFlagSet("ops-meta sign "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, signUsage) }
	switch args[0] {
	case "keygen":
		pub := fs.String("pub", "", "public key file to create")
		priv := fs.String("priv", "", "private key file to create (mode 0600)")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *pub == "" || *priv == "" || fs.NArg() != 0 {
			fmt.Fprint(stderr, signUsage)
			return 2
		}
		if err := sign.Keygen(*pub, *priv); err != nil {
			fmt.Fprintf(stderr, "ops-meta sign keygen: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s and %s\n", *pub, *priv)
		return 0
	case "sign":
		keyPath := fs.String("key", "", "private key file")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *keyPath == "" || fs.NArg() == 0 {
			fmt.Fprint(stderr, signUsage)
			return 2
		}
		key, err := sign.LoadPrivateKey(*keyPath)
		if err != nil {
			fmt.Fprintf(stderr, "ops-meta sign sign: %v\n", err)
			return 1
		}
		for _, f := range fs.Args() {
			if err := sign.SignFile(key, f); err != nil {
				fmt.Fprintf(stderr, "ops-meta sign sign: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "signed %s\n", f)
		}
		return 0
	case "verify":
		pubPath := fs.String("pub", "", "public key file")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *pubPath == "" || fs.NArg() == 0 {
			fmt.Fprint(stderr, signUsage)
			return 2
		}
		pub, err := sign.LoadPublicKey(*pubPath)
		if err != nil {
			fmt.Fprintf(stderr, "ops-meta sign verify: %v\n", err)
			return 1
		}
		code := 0
		for _, f := range fs.Args() {
			if err := sign.VerifyFile(pub, f); err != nil {
				fmt.Fprintf(stderr, "FAIL %s: %v\n", f, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "OK %s\n", f)
		}
		return code
	default:
		fmt.Fprintf(stderr, "ops-meta sign: unknown command %q\n%s", args[0], signUsage)
		return 2
	}
}
