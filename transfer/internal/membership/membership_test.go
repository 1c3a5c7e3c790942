package membership

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/metrics"
	"github.com/kestrel-mon/kestrel/transfer/internal/ring"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newMem(t *testing.T) (*Membership, *metrics.Metrics) {
	t.Helper()
	met := metrics.New()
	m, err := New(Config{Timeout: 3 * time.Second, RejoinHold: 2 * time.Second, SuspectAfter: 3,
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
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(metrics.ChangeLeave)); v != 1 {
		t.Fatalf("leave changes = %v", v)
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(metrics.ChangeJoin)); v != 3 {
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
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(metrics.ChangeTimeout)); v != 1 {
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
	m.RequestTimeout("b", t0)
	m.RequestTimeout("b", t0)
	m.RequestOK("b") // resets the count
	m.RequestTimeout("b", t0)
	m.RequestTimeout("b", t0)
	if !m.Ring().Has("b") {
		t.Fatal("suspect before suspect_after consecutive timeouts")
	}
	if !m.RequestTimeout("b", t0) || m.Ring().Len() != 0 {
		t.Fatal("not suspect after 3 consecutive timeouts")
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(metrics.ChangeSuspect)); v != 1 {
		t.Fatalf("suspect changes = %v", v)
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(metrics.ChangeNoResponders)); v != 1 {
		t.Fatalf("no responders changes = %v", v)
	}
	if v := testutil.ToFloat64(met.RingMembers); v != 0 {
		t.Fatalf("ring members gauge = %v", v)
	}
}
