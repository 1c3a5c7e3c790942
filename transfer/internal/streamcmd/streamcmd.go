// Package streamcmd is `kestrel-transfer stream get|apply`: it shows the
// ingest stream's and the consumer's settings against transfer.yaml's,
// and writes transfer.yaml's over them.
//
// The stream and the consumer keep the settings of the transfer that
// created them; a transfer started later with other stream.* or
// consumer.* values uses the existing ones (and warns). `stream apply` is
// the only way to change them.
package streamcmd

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/admin"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
)

const usage = `usage:
  kestrel-transfer stream get -c transfer.yaml
      print the ingest stream's and the consumer's settings and how
      transfer.yaml's stream.* and consumer.* differ from them
  kestrel-transfer stream apply -c transfer.yaml
      write transfer.yaml's stream.replicas, max_bytes, max_age,
      duplicate_window and consumer.ack_wait, max_ack_pending over the
      existing ones (creating the stream and consumer when missing);
      prints what changed. Running transfers keep working (the consumer
      is updated in place); change the other transfers' configs too, or
      they warn that theirs differ.
`

var command = admin.Command{Group: "stream", Verbs: []string{"get", "apply"}, Usage: usage, Timeout: 30 * time.Second,
	CfgHelp: "nats block, stream.*, consumer.*"}

// Main runs `stream <args>` and returns the exit code: 0 done, 1 failed, 2
// bad usage or config.
func Main(args []string, stdout, stderr io.Writer) int {
	inv, code, done := command.Start(args, stdout, stderr)
	if done {
		return code
	}
	if !inv.Parse() {
		return run.ExitUsage
	}
	sess, code := inv.Open()
	if sess == nil {
		return code
	}
	defer sess.Close()
	cmd, cfg, js, ctx, cfgPath := inv.Verb, sess.Config, sess.JS, sess.Ctx, &sess.CfgPath
	subj := cfg.Subjects()

	if cmd == "apply" {
		sd, cd, err := stream.Apply(ctx, js, subj, cfg.Stream, cfg.Consumer)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if len(sd)+len(cd) == 0 {
			fmt.Fprintf(stdout, "unchanged: stream %s and consumer %s already have the settings of %s\n", subj.Stream(), proto.ConsumerTransfer, *cfgPath)
		}
		if len(sd) > 0 {
			fmt.Fprintf(stdout, "stream %s changed: %s\n", subj.Stream(), strings.Join(sd, ", "))
		}
		if len(cd) > 0 {
			fmt.Fprintf(stdout, "consumer %s changed: %s\n", proto.ConsumerTransfer, strings.Join(cd, ", "))
		}
	}
	st, sd, cd, err := stream.Current(ctx, js, subj, cfg.Stream, cfg.Consumer)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sc, cc := st.StreamConfig, st.ConsumerConfig
	fmt.Fprintf(stdout, "stream %s: subjects %v, replicas %d, max_bytes %d, max_age %s, duplicate_window %s\n",
		sc.Name, sc.Subjects, sc.Replicas, sc.MaxBytes, sc.MaxAge, sc.Duplicates)
	fmt.Fprintf(stdout, "consumer %s: ack_wait %s, max_ack_pending %d\n", cc.Durable, cc.AckWait, cc.MaxAckPending)
	if len(sd)+len(cd) == 0 {
		fmt.Fprintf(stdout, "%s: same settings\n", *cfgPath)
		return 0
	}
	fmt.Fprintf(stdout, "%s differs (transfers use the existing settings; stream apply writes these): %s\n", *cfgPath, strings.Join(append(sd, cd...), ", "))
	return 0
}
