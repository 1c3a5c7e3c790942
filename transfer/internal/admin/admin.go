// Package admin is the plumbing the operator commands of kestrel-transfer
// share (`ring`, `stream`, `deadletter`): the verb, the flags every one
// takes (-c, -timeout), the config, the NATS connection and JetStream,
// with the same exit codes as the binary (lib/run).
package admin

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Command is one group of verbs, e.g. `ring get|set`.
type Command struct {
	Group   string   // "ring"
	Verbs   []string // "get", "set"
	Usage   string   // printed for -h and bad usage
	Timeout time.Duration
	CfgHelp string // what the command reads from the config
}

// Invocation is a parsed command line: the verb and its flag set, with -c
// and -timeout defined; the command defines its own flags on Flags before
// calling Parse.
type Invocation struct {
	Verb    string
	Flags   *flag.FlagSet
	cfgPath *string
	timeout *time.Duration
	cmd     Command
	stdout  io.Writer
	stderr  io.Writer
	args    []string
}

// Start reads the verb from args. done is true when the command is over
// (help, bad usage) with exit code code.
func (c Command) Start(args []string, stdout, stderr io.Writer) (inv *Invocation, code int, done bool) {
	if len(args) == 0 {
		fmt.Fprint(stderr, c.Usage)
		return nil, run.ExitUsage, true
	}
	verb := args[0]
	switch {
	case slices.Contains(c.Verbs, verb):
	case verb == "-h" || verb == "-help" || verb == "--help" || verb == "help":
		fmt.Fprint(stdout, c.Usage)
		return nil, run.ExitOK, true
	default:
		fmt.Fprintf(stderr, "unknown %s command %q\n%s", c.Group, verb, c.Usage)
		return nil, run.ExitUsage, true
	}
	fs := flag.NewFlagSet("kestrel-transfer "+c.Group+" "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, c.Usage) }
	inv = &Invocation{Verb: verb, Flags: fs, cmd: c, stdout: stdout, stderr: stderr, args: args[1:],
		cfgPath: fs.String("c", "transfer.yaml", "config file ("+c.CfgHelp+")"),
		timeout: fs.Duration("timeout", c.Timeout, "how long to wait for NATS")}
	return inv, 0, false
}

// Parse parses the flags; false (exit code 2) on bad usage, reported.
func (inv *Invocation) Parse() bool {
	if err := inv.Flags.Parse(inv.args); err != nil {
		return false
	}
	if inv.Flags.NArg() > 0 {
		fmt.Fprintf(inv.stderr, "unexpected arguments %v\n%s", inv.Flags.Args(), inv.cmd.Usage)
		return false
	}
	return true
}

// Given reports whether flag name was set on the command line.
func (inv *Invocation) Given(name string) bool {
	found := false
	inv.Flags.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// Session is what a command works with; Close it.
type Session struct {
	Config  config.Config
	CfgPath string
	NC      *nats.Conn
	JS      jetstream.JetStream
	Ctx     context.Context // bounded by -timeout
	cancel  context.CancelFunc
}

// Open loads the config (exit 2 when bad) and connects to NATS within
// -timeout (exit 1 when it cannot); code is 0 on success.
func (inv *Invocation) Open() (s *Session, code int) {
	cfg, err := config.Load(*inv.cfgPath)
	if err != nil {
		fmt.Fprintln(inv.stderr, err)
		return nil, run.ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *inv.timeout)
	log := slog.New(slog.NewTextHandler(inv.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := natsconn.Connect(ctx, cfg.NATS, natsconn.Options{Name: "kestrel-transfer " + inv.cmd.Group, Log: log})
	if err == nil {
		err = natsconn.WaitConnected(ctx, nc)
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		cancel()
		fmt.Fprintf(inv.stderr, "cannot reach NATS at %v: %v\n", cfg.NATS.URLs, err)
		return nil, run.ExitFailure
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		cancel()
		fmt.Fprintln(inv.stderr, err)
		return nil, run.ExitFailure
	}
	return &Session{Config: cfg, CfgPath: *inv.cfgPath, NC: nc, JS: js, Ctx: ctx, cancel: cancel}, run.ExitOK
}

// Close closes the connection.
func (s *Session) Close() {
	s.NC.Close()
	s.cancel()
}
