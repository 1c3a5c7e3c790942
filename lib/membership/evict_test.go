package membership

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func evict(node string, inc int64, by string) proto.MemberMsg {
	return proto.MemberMsg{Node: node, Kind: proto.MemberEvict, Incarnation: inc, By: by, Reason: ChangeSuspect}
}

func sortedEvicts(m *Membership) []proto.MemberMsg {
	out := m.takeEvicts()
	slices.SortFunc(out, func(a, b proto.MemberMsg) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// A judge taken out for a local reason is queued for publication as an
// evict naming the judge, the incarnation known, this observer and the
// reason; a judge that left by a message (leave, evict) is not.
func TestLocalLeaveQueuesEvict(t *testing.T) {
	m, met := newMem(t)
	m.cfg.Self = "transfer-x"
	t0 := time.Unix(1000, 0)
	// Not running: nothing is queued.
	m.Handle(beat("a", 1), t0)
	m.NoResponders("a", t0)
	if got := m.takeEvicts(); len(got) != 0 {
		t.Fatalf("queued %v while not publishing", got)
	}

	m.setPublishing(true)
	for _, n := range []string{"b", "c", "d", "e", "f"} {
		m.Handle(beat(n, 7), t0)
	}
	m.RequestTimeout("d", t0.Add(time.Second))
	m.Handle(beat("b", 7), t0.Add(2*time.Second)) // b alive at +3s, c..f timed out
	m.Handle(beat("d", 7), t0.Add(2*time.Second))
	m.Handle(beat("e", 7), t0.Add(2*time.Second))
	m.Handle(beat("f", 7), t0.Add(2*time.Second))
	m.Expire(t0.Add(3 * time.Second))
	m.NoResponders("b", t0.Add(3*time.Second))
	m.RequestTimeout("d", t0.Add(2*time.Second))
	m.RequestTimeout("d", t0.Add(3*time.Second)) // 3 timeouts over unresponsive_after (2s)
	m.Handle(leave("e", 7), t0.Add(3*time.Second))
	m.Handle(evict("f", 7, "transfer-y"), t0.Add(3*time.Second))
	want := []proto.MemberMsg{
		{Node: "b", Kind: proto.MemberEvict, Incarnation: 7, By: "transfer-x", Reason: ChangeNoResponders},
		{Node: "c", Kind: proto.MemberEvict, Incarnation: 7, By: "transfer-x", Reason: ChangeTimeout},
		{Node: "d", Kind: proto.MemberEvict, Incarnation: 7, By: "transfer-x", Reason: ChangeSuspect},
	}
	if got := sortedEvicts(m); !slices.Equal(got, want) {
		t.Fatalf("evicts\n got %+v\nwant %+v", got, want)
	}
	if m.Ring().Len() != 0 {
		t.Fatalf("ring %v", members(m))
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeEvicted)); v != 1 {
		t.Fatalf("evicted changes = %v, want 1 (f)", v)
	}
	// Taking out a judge already out queues nothing.
	m.NoResponders("b", t0.Add(4*time.Second))
	if got := m.takeEvicts(); len(got) != 0 {
		t.Fatalf("queued %v for a judge already out", got)
	}
}

// A received evict takes the judge out (reason "evicted") when the
// incarnation known is not newer than the message's; the rejoin hold
// applies; an evict about an older incarnation is stale.
func TestHandleEvict(t *testing.T) {
	m, met := newMem(t)
	m.setPublishing(true)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 5), t0)
	m.Handle(beat("b", 5), t0)

	// About a node never heard of: ignored, no entry made.
	m.Handle(evict("ghost", 1, "t2"), t0)
	if m.Known() != 2 {
		t.Fatalf("evict of an unknown node made an entry: known %d", m.Known())
	}
	// Older incarnation: stale.
	stale := met.MemberMsgsDropped.WithLabelValues(DropStaleMsg)
	m.Handle(evict("a", 4, "t2"), t0)
	if !m.Ring().Has("a") || testutil.ToFloat64(stale) != 1 {
		t.Fatalf("stale evict: ring %v, stale %v", members(m), testutil.ToFloat64(stale))
	}
	// Same incarnation: out at once.
	ch := m.Changed()
	m.Handle(evict("a", 5, "t2"), t0.Add(100*time.Millisecond))
	select {
	case <-ch:
	default:
		t.Fatal("evict did not signal a change")
	}
	if m.Ring().Has("a") {
		t.Fatal("evicted judge still in the ring")
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeEvicted)); v != 1 {
		t.Fatalf("evicted changes = %v", v)
	}
	if got := m.takeEvicts(); len(got) != 0 {
		t.Fatalf("a received evict was queued for re-publication: %v", got)
	}
	// The judge keeps heartbeating: re-admitted only after the hold
	// (2s), counted from when this observer took it out.
	m.Handle(beat("a", 5), t0.Add(1*time.Second))
	m.Handle(beat("a", 5), t0.Add(2*time.Second))
	if m.Ring().Has("a") {
		t.Fatal("re-admitted inside the rejoin hold")
	}
	m.Handle(beat("a", 5), t0.Add(2100*time.Millisecond))
	if !m.Ring().Has("a") {
		t.Fatal("not re-admitted after the rejoin hold")
	}
	// A second evict while it is out again does not extend the hold.
	m.Handle(evict("a", 5, "t2"), t0.Add(3*time.Second))
	m.Handle(evict("a", 5, "t3"), t0.Add(4*time.Second))
	m.Handle(beat("a", 5), t0.Add(5*time.Second))
	if !m.Ring().Has("a") {
		t.Fatal("a repeated evict extended the rejoin hold")
	}
	// Newer incarnation than known (the observer saw a restart first):
	// out, and the old incarnation's beats are stale from then on.
	m.Handle(evict("b", 6, "t2"), t0.Add(5*time.Second))
	m.Handle(beat("b", 5), t0.Add(8*time.Second))
	if m.Ring().Has("b") {
		t.Fatal("old incarnation re-admitted after an evict of the new one")
	}
	m.Handle(beat("b", 6), t0.Add(8*time.Second))
	if !m.Ring().Has("b") {
		t.Fatal("new incarnation not admitted after the hold")
	}
}

// An evict neither creates nor refreshes an entry: it is not a message of
// the judge itself, so a departed judge is still forgotten on time.
func TestEvictDoesNotKeepEntry(t *testing.T) {
	m, _ := newMem(t)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 1), t0)
	m.Expire(t0.Add(3 * time.Second))
	for s := 10 * time.Second; s <= 2*time.Minute; s += 10 * time.Second {
		m.Handle(evict("a", 1, "t2"), t0.Add(s))
	}
	m.Expire(t0.Add(2 * time.Minute))
	if m.Known() != 0 {
		t.Fatalf("known %d: evicts kept a departed judge", m.Known())
	}
}

// Two memberships on one NATS server (two transfers): one takes a judge
// out after SuspectAfter consecutive request timeouts, the other drops it
// from its ring within a second although the judge keeps heartbeating,
// and after the rejoin hold both re-admit it.
func TestEvictSharedOverNATS(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, err := proto.NewSubjects("kestrel")
	if err != nil {
		t.Fatal(err)
	}
	const hold = time.Second
	start := func(self string) (*Membership, *Metrics) {
		met := NewMetrics(prometheus.NewRegistry(), "kestrel_transfer")
		m, err := New(Config{Timeout: 3 * time.Second, RejoinHold: hold, SuspectAfter: 3, UnresponsiveAfter: 2 * time.Millisecond, Self: self,
			Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}}, slog.New(slog.NewTextHandler(io.Discard, nil)), met)
		if err != nil {
			t.Fatal(err)
		}
		nc := natstest.Connect(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx, nc, subj.Members()) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		return m, met
	}
	a, metA := start("transfer-a")
	b, metB := start("transfer-b")
	natstest.StartJudge(t, srv, subj, "judge-1", 100*time.Millisecond)
	natstest.StartJudge(t, srv, subj, "judge-2", 100*time.Millisecond)
	waitUntil(t, "both judges in both rings", 10*time.Second, func() bool { return a.Ring().Len() == 2 && b.Ring().Len() == 2 })
	if a.Ring().ID() != b.Ring().ID() {
		t.Fatal("the two rings differ")
	}

	now := time.Now()
	for i := range 3 {
		if left := a.RequestTimeout("judge-1", now.Add(time.Duration(i)*time.Millisecond)); left != (i == 2) {
			t.Fatalf("timeout %d: left %v", i+1, left)
		}
	}
	if a.Ring().Has("judge-1") {
		t.Fatal("suspect judge still in a's ring")
	}
	waitUntil(t, "judge-1 out of b's ring", time.Second, func() bool { return !b.Ring().Has("judge-1") })
	if !b.Ring().Has("judge-2") || a.Ring().ID() != b.Ring().ID() {
		t.Fatalf("rings differ after the evict: a %v b %v", a.Ring().Members(), b.Ring().Members())
	}
	if v := testutil.ToFloat64(metB.MembershipChanges.WithLabelValues(ChangeEvicted)); v != 1 {
		t.Fatalf("b: evicted changes = %v, want 1", v)
	}
	if v := testutil.ToFloat64(metA.EvictsPublished.WithLabelValues(PublishOK)); v != 1 {
		t.Fatalf("a: evicts published = %v, want 1", v)
	}
	// a's own evict comes back to it and changes nothing; b does not
	// re-publish what it received.
	if v := testutil.ToFloat64(metA.MembershipChanges.WithLabelValues(ChangeEvicted)); v != 0 {
		t.Fatalf("a counted its own evict: %v", v)
	}
	if v := testutil.ToFloat64(metB.EvictsPublished.WithLabelValues(PublishOK)); v != 0 {
		t.Fatalf("b published %v evicts, want 0", v)
	}
	// judge-1 heartbeats throughout: both re-admit it after the hold, not
	// before.
	time.Sleep(hold / 2)
	if a.Ring().Has("judge-1") || b.Ring().Has("judge-1") {
		t.Fatal("re-admitted inside the rejoin hold")
	}
	waitUntil(t, "judge-1 back in both rings", 5*time.Second, func() bool { return a.Ring().Has("judge-1") && b.Ring().Has("judge-1") })
	if a.Ring().ID() != b.Ring().ID() {
		t.Fatal("the two rings differ after the rejoin")
	}
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
