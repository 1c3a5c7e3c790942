package forward

import (
	"errors"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// TestMsgOpErrorsCounted makes every message operation fail and checks
// each failure is counted by op, and that the success counters are not.
func TestMsgOpErrorsCounted(t *testing.T) {
	errBroken := errors.New("nats: connection closed")
	opErr := func(e *Engine, op string) float64 { return val(e.met.MsgOpError[op]) }
	now := time.Now()

	t.Run("ack", func(t *testing.T) {
		e := localEngine(t, 2)
		msg := &memMsg{data: benchBatch(10), fail: errBroken}
		e.handle(msg, now)
		e.replyAll(now)
		if msg.acks != 1 {
			t.Fatalf("acks %d", msg.acks)
		}
		if v := opErr(e, OpAck); v != 1 {
			t.Fatalf("ack errors = %v, want 1", v)
		}
		if v := val(e.met.MessagesAcked); v != 0 {
			t.Fatalf("messages acked = %v after a failed ack", v)
		}
		// A message whose points are all invalid is acked at once.
		bad := &memMsg{data: proto.EncodeBatch([]proto.Point{{Endpoint: "", Metric: "m", Step: 60, Timestamp: now.Unix()}}), fail: errBroken}
		e.handle(bad, now)
		if bad.acks != 1 || opErr(e, OpAck) != 2 {
			t.Fatalf("acks %d, ack errors %v", bad.acks, opErr(e, OpAck))
		}
	})

	t.Run("term", func(t *testing.T) {
		e := localEngine(t, 2)
		msg := &memMsg{data: []byte("garbage"), fail: errBroken}
		e.handle(msg, now)
		if msg.terms != 1 || opErr(e, OpTerm) != 1 {
			t.Fatalf("terms %d, term errors %v", msg.terms, opErr(e, OpTerm))
		}
		if v := val(e.met.MessagesTerminated.WithLabelValues(TermMalformed)); v != 0 {
			t.Fatalf("terminated = %v after a failed term", v)
		}
	})

	t.Run("nak_newer_version", func(t *testing.T) {
		e := localEngine(t, 2)
		msg := &memMsg{data: []byte{0xCE, 0x57, 0xFF, 0}, fail: errBroken}
		e.handle(msg, now)
		if msg.naks != 1 || opErr(e, OpNak) != 1 {
			t.Fatalf("naks %d, nak errors %v", msg.naks, opErr(e, OpNak))
		}
		if v := val(e.met.MessagesNaked.WithLabelValues(NakVersion)); v != 0 {
			t.Fatalf("naked = %v after a failed nak", v)
		}
	})

	t.Run("in_progress_and_shutdown_nak", func(t *testing.T) {
		e := localEngine(t, 0) // no judge: the points are parked, the message held
		msg := &memMsg{data: benchBatch(10), fail: errBroken}
		e.handle(msg, now)
		if e.held != 1 || len(e.parked) != 10 {
			t.Fatalf("held %d parked %d", e.held, len(e.parked))
		}
		e.markProgress(now.Add(2 * e.cfg.InProgressEvery))
		if msg.inProgress != 1 || opErr(e, OpInProgress) != 1 {
			t.Fatalf("in progress %d, errors %v", msg.inProgress, opErr(e, OpInProgress))
		}
		if v := val(e.met.ProgressMarks); v != 0 {
			t.Fatalf("progress marks = %v after a failed mark", v)
		}
		e.shutdown()
		if msg.naks != 1 || opErr(e, OpNak) != 1 {
			t.Fatalf("naks %d, nak errors %v", msg.naks, opErr(e, OpNak))
		}
		if v := val(e.met.MessagesNaked.WithLabelValues(NakShutdown)); v != 0 {
			t.Fatalf("naked = %v after a failed nak", v)
		}
	})
}
