package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
)

// A judge that heartbeats but answers too late (a long GC, a slow Redis)
// is slowed down — fewer requests in flight, backoff — not taken out of
// the ring: far more than suspect_after of its requests time out, it
// keeps its ring position (no series moves to the other judge, nobody is
// evicted), kestrel_transfer_judge_slow{node} is 1 meanwhile, and once it
// answers again every point is acked and it is no longer slow.
func TestSlowJudgeKeepsRingPosition(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Judge.RequestTimeout = 200 * time.Millisecond
		c.Judge.MaxInflight = 4
	})
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 2 && h.mem.Ready() })
	r := h.mem.Ring()
	now := time.Now().Unix()
	var batches [][]proto.Point
	pub := func(from, to int) {
		for i := from; i < to; i++ {
			pts := series(i, 30, now)
			batches = append(batches, pts)
			h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
		}
	}
	pub(0, 10)
	wait.For(t, "first messages acked", 10*time.Second, func() bool { return val(h.met.MessagesAcked) == 10 })

	j2.Hold()
	pub(10, 20)
	timeouts := h.met.JudgeRetries.WithLabelValues(RetryTimeout)
	wait.For(t, "judge-2's requests timing out", 15*time.Second, func() bool {
		return val(timeouts) >= 4*float64(h.cfg.Judge.SuspectAfter) || !h.mem.Ring().Has("judge-2")
	})
	if !h.mem.Ring().Has("judge-2") || h.mem.Ring().ID() != r.ID() {
		t.Fatalf("the slow judge lost its ring position after %v timeouts: ring %v", val(timeouts), h.mem.Ring().Members())
	}
	slow := h.met.JudgeSlow.WithLabelValues("judge-2")
	if val(slow) != 1 || val(h.met.JudgeSlowdowns) < 1 {
		t.Fatalf("judge_slow{judge-2} = %v, slowdowns = %v, want 1 and >= 1", val(slow), val(h.met.JudgeSlowdowns))
	}
	j2.Release()
	pub(20, 30) // more traffic: the in-flight limit comes back reply by reply
	wait.For(t, "every message acked once the judge answers again", 20*time.Second, func() bool {
		return val(h.met.MessagesAcked) == 30 && h.drained()
	})
	wait.For(t, "judge-2 no longer slow", 10*time.Second, func() bool {
		if val(slow) == 0 {
			return true
		}
		pub(len(batches), len(batches)+1)
		return false
	})
	wait.For(t, "the extra messages acked", 20*time.Second, func() bool {
		return val(h.met.MessagesAcked) == float64(len(batches)) && h.drained()
	})
	for _, reason := range []string{membership.ChangeSuspect, membership.ChangeEvicted, membership.ChangeTimeout, membership.ChangeLeave} {
		if v := val(h.mm.MembershipChanges.WithLabelValues(reason)); v != 0 {
			t.Errorf("membership changes{%s} = %v, want 0", reason, v)
		}
	}
	if v := val(h.mm.EvictsPublished.WithLabelValues(membership.PublishOK)); v != 0 {
		t.Errorf("evicts published %v, want 0", v)
	}
	collect(t, r, j1, j2) // fails on any point sent to the judge that does not own it
	checkAll(t, expected(batches), j1, j2)
}

// A judge that heartbeats but never answers is taken out (suspect, evict
// published) once its requests have kept timing out for
// judge.unresponsive_after — not after suspect_after timeouts — and its
// points go to the other judge.
func TestUnresponsiveJudgeTakenOut(t *testing.T) {
	const after = 1500 * time.Millisecond
	h := newHarness(t, nil, func(c *config.Config) {
		c.Judge.RequestTimeout = 100 * time.Millisecond
		c.Judge.UnresponsiveAfter = after
	})
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 2 && h.mem.Ready() })
	j2.Hold()
	t.Cleanup(j2.Release)
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 10 {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	timeouts := h.met.JudgeRetries.WithLabelValues(RetryTimeout)
	wait.For(t, "first timeout", 10*time.Second, func() bool { return val(timeouts) >= 1 })
	first := time.Now()
	wait.For(t, "judge-2 out of the ring", 10*time.Second, func() bool { return !h.mem.Ring().Has("judge-2") })
	if took := time.Since(first); took < after-150*time.Millisecond {
		t.Fatalf("taken out %v after its first timeout, before unresponsive_after (%v)", took, after)
	}
	if v := val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeSuspect)); v != 1 {
		t.Fatalf("suspect changes = %v, want 1", v)
	}
	wait.For(t, "every message acked by judge-1", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 10 && h.drained() })
	checkAll(t, expected(batches), j1, j2)
}
