package membership

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newMem(t *testing.T) (*Membership, *Metrics) {
	t.Helper()
	met := NewMetrics(prometheus.NewRegistry(), "kestrel_transfer")
	m, err := New(Config{Timeout: 3 * time.Second, RejoinHold: 2 * time.Second, SuspectAfter: 3, UnresponsiveAfter: 2 * time.Second,
		Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}}, slog.New(slog.NewTextHandler(io.Discard, nil)), met)
	if err != nil {
		t.Fatal(err)
	}
	return m, met
}

func beat(node string, inc int64) proto.MemberMsg {
	return proto.MemberMsg{Node: node, Kind: proto.MemberBeat, Incarnation: inc}
}

func leave(node string, inc int64) proto.MemberMsg {
	return proto.MemberMsg{Node: node, Kind: proto.MemberLeave, Incarnation: inc}
}

func members(m *Membership) []string { return m.Ring().Members() }

func TestLeaveRemovesAtOnceRejoinAfterHold(t *testing.T) {
	m, met := newMem(t)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 1), t0)
	m.Handle(beat("b", 1), t0)
	if got := members(m); len(got) != 2 {
		t.Fatalf("members %v", got)
	}
	ch := m.Changed()
	m.Handle(leave("a", 1), t0.Add(100*time.Millisecond))
	select {
	case <-ch:
	default:
		t.Fatal("leave did not signal a change")
	}
	if got := members(m); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after leave: %v", got)
	}
	// Beats inside the hold are ignored (same or new incarnation).
	m.Handle(beat("a", 1), t0.Add(1*time.Second))
	m.Handle(beat("a", 2), t0.Add(2*time.Second))
	if m.Ring().Has("a") {
		t.Fatal("re-admitted inside the hold")
	}
	m.Handle(beat("a", 2), t0.Add(2100*time.Millisecond))
	if !m.Ring().Has("a") {
		t.Fatal("not re-admitted after the hold")
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeLeave)); v != 1 {
		t.Fatalf("leave changes = %v", v)
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeJoin)); v != 3 {
		t.Fatalf("join changes = %v", v)
	}
	// A stale leave from the old incarnation does nothing.
	m.Handle(leave("a", 1), t0.Add(3*time.Second))
	if !m.Ring().Has("a") {
		t.Fatal("stale leave removed the new incarnation")
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	m, met := newMem(t)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 1), t0)
	m.Handle(beat("b", 1), t0)
	m.Handle(beat("b", 1), t0.Add(2*time.Second))
	m.Expire(t0.Add(2999 * time.Millisecond))
	if m.Ring().Len() != 2 {
		t.Fatal("expired too early")
	}
	m.Expire(t0.Add(3 * time.Second))
	if got := members(m); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after timeout: %v", got)
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeTimeout)); v != 1 {
		t.Fatalf("timeout changes = %v", v)
	}
	// It comes back: first beat after the hold re-admits.
	m.Handle(beat("a", 1), t0.Add(4*time.Second))
	if m.Ring().Has("a") {
		t.Fatal("re-admitted inside the hold")
	}
	m.Handle(beat("a", 1), t0.Add(5*time.Second))
	if !m.Ring().Has("a") {
		t.Fatal("not re-admitted")
	}
}

func TestNoRespondersAndSuspect(t *testing.T) {
	m, met := newMem(t)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 1), t0)
	m.Handle(beat("b", 1), t0)
	m.NoResponders("a", t0)
	if m.Ring().Has("a") {
		t.Fatal("no responders did not remove")
	}
	// Consecutive timeouts take b out only once they have gone on for
	// unresponsive_after (2s) since the first of them.
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	m.RequestTimeout("b", t1)
	m.RequestTimeout("b", t2)
	m.RequestOK("b") // resets the count
	m.RequestTimeout("b", t2)
	m.RequestTimeout("b", t2)
	m.RequestTimeout("b", t2)
	if m.RequestTimeout("b", t0.Add(3999*time.Millisecond)) || !m.Ring().Has("b") {
		t.Fatal("suspect after timeouts spanning less than unresponsive_after")
	}
	if !m.RequestTimeout("b", t0.Add(4*time.Second)) || m.Ring().Len() != 0 {
		t.Fatal("not suspect after consecutive timeouts spanning unresponsive_after")
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeSuspect)); v != 1 {
		t.Fatalf("suspect changes = %v", v)
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeNoResponders)); v != 1 {
		t.Fatalf("no responders changes = %v", v)
	}
	if v := testutil.ToFloat64(met.RingMembers); v != 0 {
		t.Fatalf("ring members gauge = %v", v)
	}
}

func TestDepartedJudgesPruned(t *testing.T) {
	m, _ := newMem(t)
	prune := PruneAfter(3*time.Second, 2*time.Second)
	if prune != time.Minute {
		t.Fatalf("prune after %v, want 1m (the floor)", prune)
	}
	if got := PruneAfter(10*time.Second, 20*time.Second); got != 200*time.Second {
		t.Fatalf("prune after %v, want 10 × rejoin_hold", got)
	}
	t0 := time.Unix(1000, 0)
	// Judges restarting under new node ids, one after the other.
	for i, n := range []string{"judge-a", "judge-b", "judge-c"} {
		m.Handle(beat(n, 1), t0.Add(time.Duration(i)*time.Second))
	}
	m.Handle(leave("judge-a", 1), t0.Add(3*time.Second)) // graceful stop
	m.Expire(t0.Add(4 * time.Second))                    // judge-b silent since t0+1s: timed out
	m.Handle(beat("judge-c", 1), t0.Add(4*time.Second))  // alive
	m.Handle(beat("old", 5), t0.Add(time.Second))        // restarted with incarnation 6 later
	m.Handle(leave("old", 6), t0.Add(5*time.Second))     // new incarnation leaves
	if m.Known() != 4 || m.Ring().Len() != 1 || !m.Ring().Has("judge-c") {
		t.Fatalf("known %d ring %v", m.Known(), members(m))
	}
	// A zombie of the old incarnation keeps sending: dropped as stale, and
	// its messages keep the entry (and so the check) alive.
	for s := 10 * time.Second; s <= 3*time.Minute; s += 10 * time.Second {
		m.Handle(beat("judge-c", 1), t0.Add(s))
		m.Handle(beat("old", 5), t0.Add(s))
		m.Expire(t0.Add(s))
		if m.Ring().Has("old") {
			t.Fatalf("stale incarnation admitted at +%v", s)
		}
	}
	// judge-a left at +3s, judge-b at +4s: long forgotten; judge-c alive and
	// "old" (still hearing from it) kept.
	if m.Known() != 2 {
		t.Fatalf("known %d after prune, want judge-c and old", m.Known())
	}
	m.mu.Lock()
	_, a := m.nodes["judge-a"]
	_, b := m.nodes["judge-b"]
	m.mu.Unlock()
	if a || b {
		t.Fatalf("departed judges not forgotten: a %v b %v", a, b)
	}
	// A forgotten node id that comes back is a new judge: admitted at once.
	m.Handle(beat("judge-a", 1), t0.Add(3*time.Minute))
	if !m.Ring().Has("judge-a") {
		t.Fatal("returning forgotten judge not admitted")
	}
}

func TestNotPrunedWithinPruneAfter(t *testing.T) {
	m, _ := newMem(t)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 1), t0)
	m.Handle(beat("a", 2), t0.Add(100*time.Millisecond)) // restarted: incarnation 1 replaced
	m.Handle(leave("a", 2), t0.Add(time.Second))
	m.Expire(t0.Add(time.Second + time.Minute - time.Millisecond))
	if m.Known() != 1 {
		t.Fatal("forgotten before prune_after")
	}
	// Still known: the replaced incarnation stays stale.
	m.Handle(beat("a", 1), t0.Add(time.Minute))
	if m.Ring().Has("a") {
		t.Fatal("replaced incarnation admitted")
	}
	m.Expire(t0.Add(2*time.Minute + time.Second))
	if m.Known() != 0 {
		t.Fatalf("known %d, want 0", m.Known())
	}
}

func TestRingConfigExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Timeout: time.Second, SuspectAfter: 3, Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(reg, "kestrel_transfer")); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP kestrel_transfer_ring_config 1 for the consistent hash ring parameters in use; they must be identical on every transfer and judge.
# TYPE kestrel_transfer_ring_config gauge
kestrel_transfer_ring_config{load="1.25",partition_count="271",replication_factor="20"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kestrel_transfer_ring_config"); err != nil {
		t.Fatal(err)
	}
}

// The metric names carry the binary's prefix: the transfer's stay what
// they were before membership moved to lib.
func TestMetricNames(t *testing.T) {
	for _, prefix := range []string{"kestrel_transfer", "kestrel_judge"} {
		reg := prometheus.NewRegistry()
		NewMetrics(reg, prefix).setRingConfig(271, 20, 1.25)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mf := range mfs {
			got = append(got, mf.GetName())
		}
		want := []string{prefix + "_member_evicts_published_total", prefix + "_member_messages_dropped_total",
			prefix + "_membership_changes_total", prefix + "_ring_config", prefix + "_ring_members"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("prefix %s: metrics %v, want %v", prefix, got, want)
		}
	}
}

func TestBadMemberMessageCountedAndWarned(t *testing.T) {
	srv := natstest.StartServer(t)
	nc := natstest.Connect(t, srv)
	var logs syncbuf.Buffer
	met := NewMetrics(prometheus.NewRegistry(), "kestrel_transfer")
	m, err := New(Config{Timeout: time.Hour, RejoinHold: time.Second, SuspectAfter: 3,
		Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), met)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := proto.NewSubjects("kestrel")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, nc, subj.Members()) }()
	t.Cleanup(func() { cancel(); <-done })

	bad := met.MemberMsgsDropped.WithLabelValues(DropBadMsg)
	good, _ := json.Marshal(proto.MemberMsg{Node: "judge-1", Kind: proto.MemberBeat, Incarnation: 1})
	deadline := time.Now().Add(10 * time.Second)
	// Publish until the subscription is live (it starts asynchronously).
	for !m.Ring().Has("judge-1") {
		if time.Now().After(deadline) {
			t.Fatal("valid beat never applied")
		}
		if err := nc.Publish(subj.Members(), good); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		time.Sleep(10 * time.Millisecond)
	}
	for _, garbage := range [][]byte{[]byte("not json"), []byte(`{"node":"bad node!","kind":"beat"}`), []byte(`{"node":"j","kind":"dance"}`)} {
		if err := nc.Publish(subj.Members(), garbage); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.Flush()
	for testutil.ToFloat64(bad) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("bad member messages counted %v, want 3", testutil.ToFloat64(bad))
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, `level=WARN msg="bad member message dropped"`); n != 1 {
		t.Fatalf("%d warn lines for 3 bad messages, want 1 (rate-limited):\n%s", n, out)
	}
	if got := m.Ring().Members(); len(got) != 1 {
		t.Fatalf("ring %v", got)
	}
}
