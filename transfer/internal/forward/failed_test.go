package forward

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/deadletter"
)

func isPoison(p proto.Point) bool { return strings.HasPrefix(p.Endpoint, "poison") }

// withPoison returns the points of message i with two poison series.
func withPoison(i int, now int64) []proto.Point {
	pts := series(i, 30, now)
	pts[4].Endpoint = "poison-a"
	pts[17].Endpoint = "poison-b"
	return pts
}

// A point the judge fails every time (a permanent failure) while other
// series keep flowing: with dead-lettering off it is retried for ever,
// alone — its message stays held — while every other message, and the
// other points of its own message, are judged and acknowledged; the
// judge is never backed off as failing.
func TestPoisonPointDoesNotStallOthers(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.DeadLetter.After = 0 // never: retried for ever
		c.Judge.RetryBackoff = 50 * time.Millisecond
	})
	j := h.judge("judge-1")
	j.Poison(isPoison)
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	now := time.Now().Unix()
	h.publish("src", proto.EncodeBatch(withPoison(0, now)))
	var all [][]proto.Point
	for i := 1; i <= 20; i++ {
		pts := series(i, 30, now)
		all = append(all, pts)
		h.publish("src", proto.EncodeBatch(pts))
	}
	wait.For(t, "the 20 clean messages acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 20 })
	good := withPoison(0, now)
	good = append(good[:17], good[18:]...)
	good = append(good[:4], good[5:]...)
	all = append(all, good)
	wait.For(t, "the poison message's other points judged", 10*time.Second, func() bool { return len(j.Points()) >= 20*30+28 })
	checkAll(t, expected(all), j)
	attempts := j.Failed()
	wait.For(t, "the poison points retried", 10*time.Second, func() bool { return j.Failed() >= attempts+6 })
	if info := h.consumerInfo(); info.NumAckPending != 1 {
		t.Fatalf("%d messages held, want only the poison one", info.NumAckPending)
	}
	if v := val(h.met.JudgeRetries.WithLabelValues(RetryErrorReply)); v != 0 {
		t.Fatalf("%v error-reply retries: a permanent point failure must not fail the request", v)
	}
	if v := val(h.met.FailedPermanent); v < 6 {
		t.Fatalf("permanent failures counted %v", v)
	}
	if v := val(h.met.DeadLettered); v != 0 {
		t.Fatalf("dead-lettered %v with dead_letter.after 0", v)
	}
}

// After dead_letter.after failed attempts the poison points — and only
// they — go to the dead-letter stream as one batch saying why, and their
// message is acknowledged; `deadletter replay` puts them back.
func TestPoisonPointDeadLettered(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.DeadLetter.After = 3 })
	j := h.judge("judge-1")
	j.Poison(isPoison)
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	now := time.Now().Unix()
	h.publish("src", proto.EncodeBatch(withPoison(0, now)))
	wait.For(t, "the poison message acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
	if n := j.Failed(); n != 2*3 {
		t.Fatalf("poison points failed %d times, want 3 each", n)
	}
	if v := val(h.met.DeadLettered); v != 2 {
		t.Fatalf("dead-lettered %v points, want 2", v)
	}
	if v := val(h.met.PointsForwarded); v != 28 {
		t.Fatalf("forwarded %v, want the 28 good points", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.js.Stream(ctx, h.subj.DeadLetterStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("dead-letter stream: %v %+v", err, info)
	}
	m, err := st.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := proto.DecodeBatch(m.Data)
	if err != nil || len(pts) != 2 || !isPoison(pts[0]) || !isPoison(pts[1]) {
		t.Fatalf("dead letter holds %v (%v), want the 2 poison points", pts, err)
	}
	if m.Header.Get(deadletter.HeaderJudge) != "judge-1" || m.Header.Get(deadletter.HeaderAttempts) != strconv.Itoa(3) ||
		!strings.Contains(m.Header.Get(deadletter.HeaderReason), "WRONGTYPE") {
		t.Fatalf("dead letter headers %v", m.Header)
	}
}

// Transient failures (Redis unreachable at the judge) are retried with
// the judge's backoff and never count towards dead-lettering.
func TestTransientFailuresNeverDeadLettered(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.DeadLetter.After = 1 })
	j := h.judge("judge-1")
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	j.RetryNext(4)
	pts := series(0, 30, time.Now().Unix())
	h.publish("src", proto.EncodeBatch(pts))
	wait.For(t, "acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
	checkAll(t, expected([][]proto.Point{pts}), j)
	if v := val(h.met.DeadLettered); v != 0 {
		t.Fatalf("dead-lettered %v points for transient failures", v)
	}
	if v := val(h.met.FailedTransient); v < 4*30 {
		t.Fatalf("transient failures counted %v, want >= 120", v)
	}
	if v := val(h.met.JudgeRetries.WithLabelValues(RetryPartial)); v < 4 {
		t.Fatalf("partial retries %v", v)
	}
}
