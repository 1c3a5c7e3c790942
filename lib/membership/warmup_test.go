package membership

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func beatEvery(node string, inc int64, every time.Duration) proto.MemberMsg {
	return proto.MemberMsg{Node: node, Kind: proto.MemberBeat, Incarnation: inc, IntervalMS: every.Milliseconds()}
}

// Ready is false until max(timeout, 2 × the largest announced interval,
// an interval counting at most timeout) has passed since listening
// started; a lost connection makes it false, times nobody out, and the
// reconnect starts a new warm-up with timeouts counted from it.
func TestWarmUp(t *testing.T) {
	m, met := newMem(t) // timeout 3s
	t0 := time.Unix(1000, 0)
	if m.Ready() {
		t.Fatal("ready before listening")
	}
	m.StartWarmUp(t0)
	if m.Ready() || m.WarmUp() != 3*time.Second {
		t.Fatalf("ready %v warm-up %v, want false and 3s", m.Ready(), m.WarmUp())
	}
	m.Handle(beatEvery("a", 1, 2500*time.Millisecond), t0.Add(100*time.Millisecond))
	if m.WarmUp() != 5*time.Second {
		t.Fatalf("warm-up %v, want 5s (2 × a's 2.5s interval)", m.WarmUp())
	}
	m.Expire(t0.Add(3 * time.Second))
	if m.Ready() {
		t.Fatal("ready at +3s although a judge beats every 2.5s")
	}
	m.Handle(beatEvery("a", 1, 2500*time.Millisecond), t0.Add(2600*time.Millisecond))
	ch := m.Changed()
	m.Expire(t0.Add(5 * time.Second))
	if !m.Ready() {
		t.Fatal("not ready after the warm-up")
	}
	select {
	case <-ch:
	default:
		t.Fatal("end of the warm-up not signalled on Changed")
	}
	m.Handle(beatEvery("b", 1, time.Hour), t0.Add(5*time.Second))
	if m.WarmUp() != 6*time.Second {
		t.Fatalf("warm-up %v, want 6s (an interval counts at most timeout)", m.WarmUp())
	}

	// Connection lost at +5.1s for a minute: nobody is timed out.
	ch = m.Changed()
	m.deafen()
	if m.Ready() {
		t.Fatal("ready while the connection is down")
	}
	select {
	case <-ch:
	default:
		t.Fatal("lost connection not signalled on Changed")
	}
	m.Expire(t0.Add(65 * time.Second))
	if m.Ring().Len() != 2 {
		t.Fatalf("ring %v: judges timed out while this process heard nobody", members(m))
	}
	// Reconnected at +65s: b beats, a does not. a is timed out 3s after
	// the reconnect, not at once; ready after the warm-up (6s).
	m.StartWarmUp(t0.Add(65 * time.Second))
	for s := 65 * time.Second; s <= 71*time.Second; s += 250 * time.Millisecond {
		now := t0.Add(s)
		m.Handle(beatEvery("b", 1, time.Hour), now)
		m.Expire(now)
		if in := m.Ring().Has("a"); in != (s < 68*time.Second) {
			t.Fatalf("+%v: a in the ring %v", s, in)
		}
		if m.Ready() != (s >= 71*time.Second) {
			t.Fatalf("+%v: ready %v", s, m.Ready())
		}
	}
	if v := testutil.ToFloat64(met.MembershipChanges.WithLabelValues(ChangeTimeout)); v != 1 {
		t.Fatalf("timeouts = %v, want 1", v)
	}
}

// Over NATS: Ready after the warm-up; WaitReady returns then; a connection
// cut by the server makes it false until the reconnect's warm-up is over,
// and the judges stay in the ring with no evict published.
func TestWarmUpOverNATS(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, err := proto.NewSubjects("kestrel")
	if err != nil {
		t.Fatal(err)
	}
	met := NewMetrics(prometheus.NewRegistry(), "kestrel_transfer")
	m, err := New(Config{Timeout: time.Second, RejoinHold: time.Second, SuspectAfter: 3, Self: "transfer-a",
		Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}}, slog.New(slog.NewTextHandler(io.Discard, nil)), met)
	if err != nil {
		t.Fatal(err)
	}
	natstest.StartJudge(t, srv, subj, "judge-1", 100*time.Millisecond)
	natstest.StartJudge(t, srv, subj, "judge-2", 100*time.Millisecond)
	nc := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- m.Run(ctx, nc, subj.Members()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitUntil(t, "a judge heard", 5*time.Second, func() bool { return m.Ring().Len() > 0 })
	if m.Ready() {
		t.Fatal("ready at the first beat")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := m.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("ready after %v, before the warm-up (1s)", took)
	}
	if m.Ring().Len() != 2 {
		t.Fatalf("ready with ring %v", members(m))
	}

	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "not ready after the connection was cut", 5*time.Second, func() bool { return !m.Ready() })
	waitUntil(t, "reconnected", 10*time.Second, func() bool { return nc.IsConnected() })
	reconnected := time.Now()
	waitUntil(t, "ready again", 10*time.Second, m.Ready)
	if took := time.Since(reconnected); took < 900*time.Millisecond {
		t.Fatalf("ready %v after the reconnect, before the warm-up", took)
	}
	if m.Ring().Len() != 2 || testutil.ToFloat64(met.EvictsPublished.WithLabelValues(PublishOK)) != 0 {
		t.Fatalf("after the reconnect: ring %v, evicts published %v", members(m), testutil.ToFloat64(met.EvictsPublished.WithLabelValues(PublishOK)))
	}
}

// Member messages the client drops (a slow consumer) may include an evict
// or a leave: they are counted and the membership warms up again, so
// neither a transfer routes nor a judge owns from a ring that may be
// wrong.
func TestLostMemberMessagesWarmUpAgain(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	met := NewMetrics(prometheus.NewRegistry(), "kestrel_judge")
	m, err := New(Config{Timeout: 500 * time.Millisecond, RejoinHold: time.Second, SuspectAfter: 3, Self: "judge-x", PendingMsgs: 4,
		Ring: ring.Config{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}}, slog.New(slog.NewTextHandler(io.Discard, nil)), met)
	if err != nil {
		t.Fatal(err)
	}
	natstest.StartJudge(t, srv, subj, "judge-1", 100*time.Millisecond)
	nc := natstest.Connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, nc, subj.Members()) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "ready", 5*time.Second, m.Ready)

	// Block the handler (it takes m.mu) while a burst arrives: the
	// client's queue of 4 overflows.
	pub := natstest.Connect(t, srv)
	m.mu.Lock()
	for i := range 50 {
		msg := beatEvery("judge-burst", int64(i+1), 100*time.Millisecond)
		_ = pub.Publish(subj.Members(), msg.Encode())
	}
	_ = pub.Flush()
	time.Sleep(200 * time.Millisecond) // let the burst reach the client
	m.mu.Unlock()
	waitUntil(t, "lost messages counted", 5*time.Second, func() bool {
		return testutil.ToFloat64(met.MemberMsgsDropped.WithLabelValues(DropSlowConsumer)) > 0
	})
	if m.Ready() {
		t.Fatal("still ready after losing member messages")
	}
	waitUntil(t, "ready after the new warm-up", 5*time.Second, m.Ready)
}
