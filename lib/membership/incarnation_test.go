package membership

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// beats drives m from `from` to `to` in 50ms steps: every 100ms each node
// in beating (node → incarnation) heartbeats, every 250ms Expire runs, and
// check (when set) is called after each step.
func beats(m *Membership, from, to time.Time, beating map[string]int64, check func(now time.Time)) {
	for now := from; now.Before(to); now = now.Add(50 * time.Millisecond) {
		if now.Sub(from)%(100*time.Millisecond) == 0 {
			for n, inc := range beating {
				m.Handle(beat(n, inc), now)
			}
		}
		if now.Sub(from)%(250*time.Millisecond) == 0 {
			m.Expire(now)
		}
		if check != nil {
			check(now)
		}
	}
}

// A judge restarted under the same node id on a host whose clock is
// behind has a lower incarnation than its previous process. It must rejoin
// whatever the clocks say: killed, it takes the old process's place when
// that times out (without leaving the ring); after a graceful leave, once
// the rejoin hold is over; after the old one timed out, at its first beat.
func TestRestartWithLowerIncarnationRejoins(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const oldInc, newInc = 2_000_000, 1_000_000

	t.Run("killed", func(t *testing.T) {
		m, met := newMem(t)
		beats(m, t0, t0.Add(time.Second), map[string]int64{"a": oldInc, "b": 1}, nil)
		// SIGKILL at +1s; the new process beats from +1.5s.
		beats(m, t0.Add(time.Second), t0.Add(1500*time.Millisecond), map[string]int64{"b": 1}, nil)
		beats(m, t0.Add(1500*time.Millisecond), t0.Add(10*time.Second), map[string]int64{"a": newInc, "b": 1}, func(now time.Time) {
			if !m.Ring().Has("a") {
				t.Fatalf("a out of the ring at +%v: the restarted judge (lower incarnation) does not take the old one's place", now.Sub(t0))
			}
		})
		if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeTimeout)); v != 0 {
			t.Fatalf("timeout changes = %v, want 0", v)
		}
	})

	t.Run("left", func(t *testing.T) {
		m, _ := newMem(t)
		beats(m, t0, t0.Add(time.Second), map[string]int64{"a": oldInc, "b": 1}, nil)
		m.Handle(leave("a", oldInc), t0.Add(time.Second)) // SIGTERM: leave
		// Restarted at once; rejoin hold 2s from the leave.
		beats(m, t0.Add(1100*time.Millisecond), t0.Add(5*time.Second), map[string]int64{"a": newInc, "b": 1}, func(now time.Time) {
			if in, due := m.Ring().Has("a"), now.Sub(t0) >= 3200*time.Millisecond; due && !in {
				t.Fatalf("a not back in the ring at +%v (left at +1s, rejoin hold 2s)", now.Sub(t0))
			}
		})
	})

	t.Run("timed out", func(t *testing.T) {
		m, _ := newMem(t)
		beats(m, t0, t0.Add(time.Second), map[string]int64{"a": oldInc, "b": 1}, nil)
		beats(m, t0.Add(time.Second), t0.Add(6*time.Second), map[string]int64{"b": 1}, nil)
		if m.Ring().Has("a") {
			t.Fatal("silent judge not timed out")
		}
		m.Handle(beat("a", newInc), t0.Add(6*time.Second))
		if !m.Ring().Has("a") {
			t.Fatal("restarted judge (lower incarnation) not admitted at its first beat after the old one timed out")
		}
	})
}

// Two processes heartbeating under one node id at the same time: the one
// known keeps the ring position, the other's beats are counted as
// duplicate_node and logged at Error. When the known one stops, the other
// takes its place; the replaced one is stale from then on, even if it
// comes back (no flapping).
func TestTwoProcessesOneNodeID(t *testing.T) {
	var logs syncbuf.Buffer
	met := NewMetrics(prometheus.NewRegistry(), "kestrel_transfer")
	m, err := New(Config{Timeout: 3 * time.Second, RejoinHold: 2 * time.Second, SuspectAfter: 3,
		Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}}, slog.New(slog.NewTextHandler(&logs, nil)), met)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	const first, second = 5_000, 3_000 // the second has the lower incarnation
	dup := met.MemberMsgsDropped.WithLabelValues(DropDuplicateNode)
	// (z beats throughout: another judge, so the ring is never empty.)
	beats(m, t0, t0.Add(4*time.Second), map[string]int64{"a": first, "z": 1}, nil)
	if inc, _ := m.Incarnation("a"); inc != first || !m.Ring().Has("a") {
		t.Fatalf("a: incarnation %d in ring %v, want %d in the ring", inc, m.Ring().Has("a"), first)
	}
	if v := testutil.ToFloat64(dup); v != 0 {
		t.Fatalf("duplicates %v before a second process", v)
	}
	// The second process starts while the first still beats.
	both := map[string]int64{"z": 1}
	beats(m, t0.Add(4*time.Second), t0.Add(6*time.Second), both, func(now time.Time) {
		if now.Sub(t0)%(100*time.Millisecond) == 0 {
			m.Handle(beat("a", first), now)
			m.Handle(beat("a", second), now.Add(time.Millisecond))
		}
	})
	if inc, _ := m.Incarnation("a"); inc != first || !m.Ring().Has("a") {
		t.Fatalf("a: incarnation %d, want the known one %d kept", inc, first)
	}
	if v := testutil.ToFloat64(dup); v < 15 {
		t.Fatalf("duplicate beats counted %v, want about 20", v)
	}
	if n := strings.Count(logs.String(), `level=ERROR msg="two processes heartbeat under one node id`); n != 1 {
		t.Fatalf("%d error lines, want 1 (rate-limited):\n%s", n, logs.String())
	}
	// The first stops: the second takes the place when it times out,
	// without leaving the ring.
	beats(m, t0.Add(6*time.Second), t0.Add(10*time.Second), map[string]int64{"a": second, "z": 1}, func(time.Time) {
		if !m.Ring().Has("a") {
			t.Fatal("a left the ring while a process of it kept beating")
		}
	})
	if inc, _ := m.Incarnation("a"); inc != second {
		t.Fatalf("a: incarnation %d, want %d after the first stopped", inc, second)
	}
	// The first comes back: stale (replaced), counted as a duplicate.
	before := testutil.ToFloat64(dup)
	beats(m, t0.Add(10*time.Second), t0.Add(12*time.Second), map[string]int64{"a": second, "z": 1}, func(now time.Time) {
		if now.Sub(t0)%(100*time.Millisecond) == 0 {
			m.Handle(beat("a", first), now.Add(time.Millisecond))
		}
	})
	if inc, _ := m.Incarnation("a"); inc != second || !m.Ring().Has("a") {
		t.Fatalf("a: incarnation %d, want %d kept when the replaced process came back", inc, second)
	}
	if testutil.ToFloat64(dup) <= before {
		t.Fatal("the replaced process beating again not counted as a duplicate")
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeJoin)); v != 2 {
		t.Fatalf("join changes = %v, want 2 (a once, z once)", v)
	}
}

// A late message of a process that has stopped, arriving after its
// successor's first beat, is stale, not a duplicate.
func TestLateMessageOfStoppedProcessNotDuplicate(t *testing.T) {
	m, met := newMem(t)
	t0 := time.Unix(1000, 0)
	m.Handle(beat("a", 1), t0)
	m.Handle(beat("a", 2), t0.Add(time.Second))                  // restart
	m.Handle(beat("a", 1), t0.Add(time.Second+time.Millisecond)) // late beat of the old one
	m.Handle(proto.MemberMsg{Node: "a", Kind: proto.MemberBeat, Incarnation: 2}, t0.Add(2*time.Second))
	if v := testutil.ToFloat64(met.MemberMsgsDropped.WithLabelValues(DropDuplicateNode)); v != 0 {
		t.Fatalf("duplicates = %v, want 0", v)
	}
	if v := testutil.ToFloat64(met.MemberMsgsDropped.WithLabelValues(DropStaleMsg)); v != 1 {
		t.Fatalf("stale = %v, want 1", v)
	}
}
