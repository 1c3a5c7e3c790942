// Package ringcmd is `kestrel-transfer ring get|set`: it reads and changes
// the ring parameters kept in the shared KV bucket (<PREFIX>_RING).
//
// To change the ring parameters: stop every transfer and judge, run
// `kestrel-transfer ring set -c transfer.yaml -partition-count N ...`,
// change ring.* (and membership.timeout/rejoin_hold) in every transfer's
// and judge's config, start them.
package ringcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/natsconn"
	"github.com/nats-io/nats.go/jetstream"
)

const usage = `usage:
  kestrel-transfer ring get -c transfer.yaml
      print the ring parameters stored in the KV bucket (JSON)
  kestrel-transfer ring set -c transfer.yaml [-partition-count N] [-replication-factor N]
                            [-load F] [-member-timeout D] [-rejoin-hold D]
      change them (flags left out keep the stored value; with nothing
      stored, the config's); prints the old and the new parameters.
      Stop every transfer and judge first; afterwards change ring.* and
      membership.timeout/rejoin_hold in every transfer's and judge's config
      to the new values, then start them.
`

// Main runs `ring <args>` and returns the exit code: 0 done, 1 failed, 2
// bad usage or config.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "get", "set":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown ring command %q\n%s", args[0], usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("kestrel-transfer ring "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfgPath := fs.String("c", "transfer.yaml", "config file (nats block, subject prefix, ring.bucket_replicas)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for NATS")
	var (
		partitions  = fs.Int("partition-count", 0, "set: ring.partition_count")
		replication = fs.Int("replication-factor", 0, "set: ring.replication_factor")
		load        = fs.Float64("load", 0, "set: ring.load")
		memberTO    = fs.Duration("member-timeout", 0, "set: membership.timeout")
		rejoinHold  = fs.Duration("rejoin-hold", 0, "set: membership.rejoin_hold")
	)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments %v\n%s", fs.Args(), usage)
		return 2
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if cmd == "get" {
		for _, n := range []string{"partition-count", "replication-factor", "load", "member-timeout", "rejoin-hold"} {
			if given[n] {
				fmt.Fprintf(stderr, "-%s is a flag of ring set\n", n)
				return 2
			}
		}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := natsconn.Connect(cfg.NATS, "kestrel-transfer ring", log, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	bucket := cfg.Subjects().RingBucket()

	stored, err := ringparams.Get(ctx, js, bucket)
	found := err == nil
	if err != nil && !errors.Is(err, ringparams.ErrNotFound) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cmd == "get" {
		if !found {
			fmt.Fprintf(stderr, "%v (the first transfer or judge to start stores its own; or use ring set)\n", err)
			return 1
		}
		fmt.Fprintln(stdout, indent(stored))
		return 0
	}

	next := stored
	if !found {
		next = cfg.RingParams()
	}
	if given["partition-count"] {
		next.PartitionCount = *partitions
	}
	if given["replication-factor"] {
		next.ReplicationFactor = *replication
	}
	if given["load"] {
		next.Load = *load
	}
	if given["member-timeout"] {
		next.MemberTimeout = *memberTO
	}
	if given["rejoin-hold"] {
		next.RejoinHold = *rejoinHold
	}
	if err := next.Validate(); err != nil {
		fmt.Fprintf(stderr, "invalid ring parameters: %v\n", err)
		return 2
	}
	old := "none"
	if found {
		old = indent(stored)
	}
	if found && stored.Equal(next) {
		fmt.Fprintf(stdout, "unchanged in %s:\n%s\n", bucket, old)
		return 0
	}
	if err := ringparams.Set(ctx, js, bucket, cfg.Ring.BucketReplicas, next); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	got, err := ringparams.Get(ctx, js, bucket)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "old:\n%s\nnew (stored in %s):\n%s\n", old, bucket, indent(got))
	fmt.Fprintln(stderr, "now set ring.* and membership.timeout/rejoin_hold to these values in every transfer's and judge's config, then start them")
	return 0
}

func indent(p ringparams.Params) string {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return p.String()
	}
	return string(b)
}
