// Package ringcmd is `kestrel-transfer ring get|set`: it reads and changes
// the ring parameters kept in the shared KV bucket (<PREFIX>_RING).
//
// To change the ring parameters: stop every transfer and judge, run
// `kestrel-transfer ring set -c transfer.yaml -partition-count N ...`,
// change ring.* (and membership.timeout/rejoin_hold) in every transfer's
// and judge's config, start them.
package ringcmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/transfer/internal/admin"
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

var command = admin.Command{Group: "ring", Verbs: []string{"get", "set"}, Usage: usage, Timeout: 10 * time.Second,
	CfgHelp: "nats block, subject prefix, ring.bucket_replicas"}

// Main runs `ring <args>` and returns the exit code: 0 done, 1 failed, 2
// bad usage or config.
func Main(args []string, stdout, stderr io.Writer) int {
	inv, code, done := command.Start(args, stdout, stderr)
	if done {
		return code
	}
	fs := inv.Flags
	var (
		partitions  = fs.Int("partition-count", 0, "set: ring.partition_count")
		replication = fs.Int("replication-factor", 0, "set: ring.replication_factor")
		load        = fs.Float64("load", 0, "set: ring.load")
		memberTO    = fs.Duration("member-timeout", 0, "set: membership.timeout")
		rejoinHold  = fs.Duration("rejoin-hold", 0, "set: membership.rejoin_hold")
	)
	if !inv.Parse() {
		return run.ExitUsage
	}
	cmd := inv.Verb
	if cmd == "get" {
		for _, n := range []string{"partition-count", "replication-factor", "load", "member-timeout", "rejoin-hold"} {
			if inv.Given(n) {
				fmt.Fprintf(stderr, "-%s is a flag of ring set\n", n)
				return run.ExitUsage
			}
		}
	}
	sess, code := inv.Open()
	if sess == nil {
		return code
	}
	defer sess.Close()
	cfg, js, ctx := sess.Config, sess.JS, sess.Ctx
	given := inv.Given
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
	if given("partition-count") {
		next.PartitionCount = *partitions
	}
	if given("replication-factor") {
		next.ReplicationFactor = *replication
	}
	if given("load") {
		next.Load = *load
	}
	if given("member-timeout") {
		next.MemberTimeout = *memberTO
	}
	if given("rejoin-hold") {
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
