package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
)

// A transfer starting with messages waiting must not route on the first
// heartbeat it hears: with two judges beating every second, half a second
// apart, every point goes to its owner on the ring of both (the warm-up,
// max(membership.timeout, 2 × the largest announced interval), holds
// routing until both are heard), none to the first judge heard.
func TestWarmUpRoutesOnCompleteRing(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) { c.Membership.Timeout = 3 * time.Second })
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 10 {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	const every = time.Second
	j1 := natstest.StartJudge(t, h.srv, h.subj, "judge-1", every)
	wait.For(t, "judge-1 in the ring", 5*time.Second, func() bool { return h.mem.Ring().Has("judge-1") })
	j2 := natstest.StartJudge(t, h.srv, h.subj, "judge-2", every)
	wait.For(t, "every message acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 10 && h.drained() })
	if v := val(h.met.WarmingUp); v != 0 {
		t.Fatalf("warming up gauge %v after routing", v)
	}
	both, err := ring.New([]string{"judge-1", "judge-2"}, ringConfig(h.cfg))
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, both, j1, j2) // fails on any point at a judge that does not own it
	if len(got) != 300 {
		t.Fatalf("judges got %d distinct points, want 300", len(got))
	}
}

// After a NATS reconnect the transfer warms up again: the gauge is 1, the
// judges stay in the ring (nobody timed out, no evict), and what is
// published meanwhile is routed once the warm-up is over.
func TestWarmUpAfterReconnect(t *testing.T) {
	h := newHarness(t, nil, nil) // membership.timeout 1s
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 2 && val(h.met.WarmingUp) == 0 })
	cid, err := h.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "warming up after the connection was cut", 5*time.Second, func() bool { return val(h.met.WarmingUp) == 1 })
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 10 {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	wait.For(t, "every message acked after the warm-up", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 10 && h.drained() })
	if v := val(h.met.WarmingUp); v != 0 {
		t.Fatalf("warming up gauge %v after routing", v)
	}
	for _, reason := range []string{membership.ChangeTimeout, membership.ChangeEvicted, membership.ChangeSuspect, membership.ChangeNoResponders} {
		if v := val(h.mm.MembershipChanges.WithLabelValues(reason)); v != 0 {
			t.Errorf("membership changes{%s} = %v after a reconnect, want 0", reason, v)
		}
	}
	if v := val(h.mm.EvictsPublished.WithLabelValues(membership.PublishOK)); v != 0 {
		t.Errorf("evicts published %v", v)
	}
	checkAll(t, expected(batches), j1, j2)
}
