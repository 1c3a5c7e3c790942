package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/admin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const usage = `usage:
  kestrel-transfer deadletter list   -c transfer.yaml [-seq N]
      print each dead letter: its sequence, time, judge, attempts and
      reason, then its points as Open-Falcon JSON, one per line
  kestrel-transfer deadletter replay -c transfer.yaml [-seq N]
      publish each dead letter (or only #N) back to the ingest stream,
      then delete it; its points are judged again, and dead-lettered
      again if they still fail
  kestrel-transfer deadletter purge  -c transfer.yaml [-seq N]
      delete every dead letter (or only #N) without replaying it
`

var command = admin.Command{Group: "deadletter", Verbs: []string{"list", "replay", "purge"}, Usage: usage,
	Timeout: 30 * time.Second, CfgHelp: "nats block"}

// Main runs `deadletter <args>` and returns the exit code: 0 done, 1
// failed, 2 bad usage or config.
func Main(args []string, stdout, stderr io.Writer) int {
	inv, code, done := command.Start(args, stdout, stderr)
	if done {
		return code
	}
	seq := inv.Flags.Uint64("seq", 0, "only the dead letter with this sequence (0: all)")
	if !inv.Parse() {
		return run.ExitUsage
	}
	sess, code := inv.Open()
	if sess == nil {
		return code
	}
	defer sess.Close()
	cmd, cfg, js, ctx := inv.Verb, sess.Config, sess.JS, sess.Ctx
	subj := cfg.Subjects()
	st, err := js.Stream(ctx, subj.DeadLetterStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		fmt.Fprintf(stdout, "no dead letters (stream %s does not exist)\n", subj.DeadLetterStream())
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	n, points, err := walk(ctx, st, *seq, func(m *jetstream.RawStreamMsg, pts []proto.Point) error {
		switch cmd {
		case "list":
			return list(stdout, m, pts)
		case "replay":
			return replay(ctx, js, st, subj, m)
		default:
			return st.DeleteMsg(ctx, m.Sequence)
		}
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	verb := map[string]string{"list": "listed", "replay": "replayed", "purge": "purged"}[cmd]
	fmt.Fprintf(stdout, "%s %d dead letters (%d points) of stream %s\n", verb, n, points, subj.DeadLetterStream())
	return 0
}

// walk calls f for every dead letter (only seq when not 0), oldest first.
func walk(ctx context.Context, st jetstream.Stream, seq uint64, f func(*jetstream.RawStreamMsg, []proto.Point) error) (int, int, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if seq != 0 {
		first, last = seq, seq
	}
	var dec proto.Decoder
	n, points := 0, 0
	for s := first; s <= last && s != 0; s++ {
		m, err := st.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if seq != 0 {
				return 0, 0, fmt.Errorf("no dead letter #%d", seq)
			}
			continue // deleted
		}
		if err != nil {
			return n, points, fmt.Errorf("dead letter #%d: %w", s, err)
		}
		pts, err := dec.Decode(m.Data)
		if err != nil {
			return n, points, fmt.Errorf("dead letter #%d: %w", s, err)
		}
		if err := f(m, pts); err != nil {
			return n, points, fmt.Errorf("dead letter #%d: %w", s, err)
		}
		n++
		points += len(pts)
	}
	return n, points, nil
}

func list(w io.Writer, m *jetstream.RawStreamMsg, pts []proto.Point) error {
	h := m.Header
	fmt.Fprintf(w, "#%d %s judge=%s attempts=%s transfer=%s reason=%q\n", m.Sequence, m.Time.UTC().Format(time.RFC3339),
		h.Get(HeaderJudge), h.Get(HeaderAttempts), h.Get(HeaderTransfer), h.Get(HeaderReason))
	for i := range pts {
		b, err := json.Marshal(proto.FromPoint(&pts[i]))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s\n", b)
	}
	return nil
}

// replay publishes m's batch to the ingest stream (deduplicated by its
// dead-letter sequence within the stream's duplicate window, so a replay
// interrupted between publishing and deleting does not send it twice),
// then deletes it.
func replay(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, subj proto.Subjects, m *jetstream.RawStreamMsg) error {
	msg := &nats.Msg{Subject: subj.Ingest("deadletter-replay"), Data: m.Data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("deadletter-%s-%d", subj.DeadLetterStream(), m.Sequence))
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(subj.Stream())); err != nil {
		return fmt.Errorf("publish to %s: %w", subj.Stream(), err)
	}
	return st.DeleteMsg(ctx, m.Sequence)
}
