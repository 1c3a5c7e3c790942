package run

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kestrel-mon/kestrel/lib/logging"
)

// Service describes a service binary to Main: its name and version, how
// to load its config and find its log block, and how to start it.
type Service[C any] struct {
	Binary        string // e.g. "kestrel-judge"
	Version       string
	DefaultConfig string // -c when not given ("" = the built-in defaults)
	Load          func(path string) (C, error)
	Log           func(cfg *C) logging.Config
	Start         func(ctx context.Context, cfg C, log *slog.Logger) (Runner, error)
}

// Main is a service binary's whole main: the flags every binary has (-c,
// -log.level, -version), the config (a bad one exits ExitUsage with its
// errors), the logger, then Serve. It returns the exit code.
func (s Service[C]) Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(s.Binary, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fl, code, done := ParseFlags(fs, args, s.DefaultConfig, s.Version, stdout)
	if done {
		return code
	}
	cfg, err := s.Load(fl.ConfigPath)
	if err != nil {
		fmt.Fprintln(stderr, s.Binary+":", err)
		return ExitUsage
	}
	log, err := logging.New(s.Log(&cfg).WithLevel(fl.LogLevel), stderr)
	if err != nil {
		fmt.Fprintln(stderr, s.Binary+": -log.level:", err)
		return ExitUsage
	}
	log.Info("starting", "version", s.Version, "config", fl.ConfigPath)
	return Serve(log, strings.TrimPrefix(s.Binary, "kestrel-"), func(ctx context.Context) (Runner, error) {
		return s.Start(ctx, cfg, log)
	})
}
