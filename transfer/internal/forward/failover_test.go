package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
)

// checkAll fails unless every expected point reached one of the judges at
// least once.
func checkAll(t *testing.T, want map[seen]int, judges ...*natstest.Judge) {
	t.Helper()
	got := collect(t, nil, judges...)
	missing := 0
	for k := range want {
		if got[k] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d points never reached a judge", missing, len(want))
	}
}

func TestFailoverKilledJudge(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Judge.RequestTimeout = 500 * time.Millisecond
	})
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges", 5*time.Second, func() bool { return h.mem.Ring().Len() == 2 })

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
	// j2 swallows requests without answering, then dies mid-stream with
	// points in flight: they time out, j2 answers "no responders" or
	// misses heartbeats, and its points go to j1.
	j2.Hold()
	pub(10, 20)
	wait.For(t, "requests held at judge-2", 10*time.Second, func() bool { return j2.Requests() > 0 })
	j2.Kill()
	pub(20, 30)
	wait.For(t, "every message acked after failover", 30*time.Second, func() bool {
		return val(h.met.MessagesAcked) == 30 && h.drained()
	})
	if h.mem.Ring().Has("judge-2") {
		t.Fatal("dead judge still in the ring")
	}
	checkAll(t, expected(batches), j1, j2)
	retries := val(h.met.JudgeRetries.WithLabelValues(RetryTimeout)) + val(h.met.JudgeRetries.WithLabelValues(RetryNoResponders))
	if retries == 0 {
		t.Error("no retry counted for the dead judge")
	}
	left := val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeNoResponders)) +
		val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeTimeout)) +
		val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeSuspect))
	if left != 1 {
		t.Errorf("membership changes for the dead judge = %v, want 1", left)
	}
}

func TestNoRespondersRemovesAtOnce(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		// Only "no responders" can remove it in the ~second the test
		// takes after the kill (the warm-up, max(timeout, ...), comes first).
		c.Membership.Timeout = 5 * time.Second
	})
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 2 && h.mem.Ready() })
	j2.Kill()
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 10 {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	wait.For(t, "every message acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 10 && h.drained() })
	if v := val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeNoResponders)); v != 1 {
		t.Fatalf("no_responders changes = %v, want 1", v)
	}
	if len(j2.Points()) != 0 {
		t.Fatal("killed judge got points")
	}
	checkAll(t, expected(batches), j1)
}

func TestErrorReplyRetried(t *testing.T) {
	h := newHarness(t, nil, nil)
	j := h.judge("judge-1")
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	j.FailNext(3)
	pts := series(0, 30, time.Now().Unix())
	h.publish("src", proto.EncodeBatch(pts))
	wait.For(t, "acked after retries", 10*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
	if v := val(h.met.JudgeRetries.WithLabelValues(RetryErrorReply)); v != 3 {
		t.Fatalf("error_reply retries = %v, want 3", v)
	}
	if v := val(h.met.PointsForwarded); v != 30 {
		t.Fatalf("forwarded %v", v)
	}
	checkAll(t, expected([][]proto.Point{pts}), j)
	if !h.mem.Ring().Has("judge-1") {
		t.Fatal("an error reply must not take the judge out")
	}
}

func TestNoJudgePausesFetching(t *testing.T) {
	h := newHarness(t, nil, nil)
	wait.For(t, "fetch paused", 5*time.Second, func() bool { return val(h.met.FetchPaused) == 1 })
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 5 {
		pts := series(i, 10, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	// The consumer's pending count can trail the publish acks on a loaded
	// machine: wait for all 5 to be counted. Fetching would take them out
	// of NumPending for good (into NumAckPending), so 5 is only reached
	// when nothing was fetched.
	wait.For(t, "5 messages pending on the consumer", 5*time.Second, func() bool { return h.consumerInfo().NumPending == 5 })
	if info := h.consumerInfo(); info.NumPending != 5 || info.NumAckPending != 0 {
		t.Fatalf("with no judge: pending %d ack pending %d, want 5 and 0 (nothing fetched)", info.NumPending, info.NumAckPending)
	}
	if v := val(h.met.MessagesReceived); v != 0 {
		t.Fatalf("fetched %v messages with no judge", v)
	}
	j := h.judge("judge-1")
	wait.For(t, "resumed and acked", 10*time.Second, func() bool { return val(h.met.MessagesAcked) == 5 && h.drained() })
	if v := val(h.met.FetchPaused); v != 0 {
		t.Fatalf("fetch paused = %v after a judge appeared", v)
	}
	checkAll(t, expected(batches), j)
}

// Points already fetched when the last judge dies are parked, their
// messages kept in progress, and delivered when a judge comes back.
func TestParkedWhileNoJudge(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Judge.RequestTimeout = 300 * time.Millisecond
		c.Consumer.AckWait = time.Second
		c.Consumer.InProgressEvery = 100 * time.Millisecond
	})
	j1 := h.judge("judge-1")
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	j1.Hold()
	pts := series(0, 20, time.Now().Unix())
	h.publish("src", proto.EncodeBatch(pts))
	wait.For(t, "request held", 5*time.Second, func() bool { return j1.Requests() > 0 })
	j1.Kill()
	wait.For(t, "ring empty and points parked", 10*time.Second, func() bool {
		return h.mem.Ring().Len() == 0 && val(h.met.ParkedPoints) == 20
	})
	marks := val(h.met.ProgressMarks)
	wait.For(t, "parked message kept in progress", 5*time.Second, func() bool { return val(h.met.ProgressMarks) >= marks+10 })
	if info := h.consumerInfo(); info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Fatalf("parked message: redelivered %d ack pending %d", info.NumRedelivered, info.NumAckPending)
	}
	j2 := h.judge("judge-2")
	wait.For(t, "delivered to the new judge", 10*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
	checkAll(t, expected([][]proto.Point{pts}), j2)
}

func TestMembershipOverNATS(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Membership.Timeout = time.Minute // a leave, not a timeout, must remove it
		c.Membership.RejoinHold = 500 * time.Millisecond
	})
	j1, _ := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges", 5*time.Second, func() bool { return h.mem.Ring().Len() == 2 })
	j1.Leave()
	wait.For(t, "leave removes", 5*time.Second, func() bool { return !h.mem.Ring().Has("judge-1") })
	if v := val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeLeave)); v != 1 {
		t.Fatalf("leave changes = %v", v)
	}
	j1.Restart(beatEvery)
	wait.For(t, "rejoin", 5*time.Second, func() bool { return h.mem.Ring().Has("judge-1") })
	// (That the hold is respected is checked with explicit clocks in the
	// membership package's tests.)
	if v := val(h.mm.MembershipChanges.WithLabelValues(membership.ChangeJoin)); v != 3 {
		t.Fatalf("join changes = %v, want 3", v)
	}
}

// Stopping with a request in flight hands the message back (Nak); a new
// transfer then delivers it.
func TestShutdownHandsBackUnacked(t *testing.T) {
	srv := natstest.StartServer(t)
	h := newHarness(t, srv, func(c *config.Config) {
		c.ShutdownTimeout = 200 * time.Millisecond
		c.Judge.RequestTimeout = 30 * time.Second
	})
	j := h.judge("judge-1")
	wait.For(t, "judge", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	j.Hold()
	pts := series(0, 10, time.Now().Unix())
	h.publish("src", proto.EncodeBatch(pts))
	wait.For(t, "request held", 5*time.Second, func() bool { return j.Requests() > 0 })
	h.stop()
	if v := val(h.met.MessagesNaked.WithLabelValues(NakShutdown)); v != 1 {
		t.Fatalf("naked at shutdown = %v, want 1", v)
	}
	if v := val(h.met.MessagesAcked); v != 0 {
		t.Fatalf("acked %v", v)
	}
	j.Release()
	h2 := newHarness(t, srv, nil)
	wait.For(t, "redelivered and acked by the next transfer", 10*time.Second, func() bool {
		return val(h2.met.MessagesAcked) == 1 && h2.drained()
	})
	checkAll(t, expected([][]proto.Point{pts}), j)
}

// A judge restarted under the same node id on a host whose clock is
// behind (a lower incarnation than its previous process) rejoins the ring
// and gets its series again.
func TestJudgeRestartedWithLowerIncarnationRejoins(t *testing.T) {
	h := newHarness(t, nil, nil) // membership.timeout 1s, rejoin_hold 300ms
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 2 && h.mem.Ready() })
	// SIGKILL and restart: heartbeats stop; the new process beats with an
	// incarnation a minute lower.
	j2.StopBeats()
	inc := j2.Incarnation() - int64(time.Minute)
	j2.RestartWithIncarnation(beatEvery, inc)
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 10 {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	wait.For(t, "every message acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 10 && h.drained() })
	// The new process replaces the old one at the latest once the old one
	// timed out and the rejoin hold is over.
	wait.For(t, "the restarted judge (lower incarnation) in the ring", h.cfg.Membership.Timeout+h.cfg.Membership.RejoinHold+2*time.Second, func() bool {
		got, _ := h.mem.Incarnation("judge-2")
		return got == inc && h.mem.Ring().Has("judge-2")
	})
	before := len(j2.Points())
	for i := 10; i < 20; i++ {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	wait.For(t, "every message acked", 20*time.Second, func() bool { return val(h.met.MessagesAcked) == 20 && h.drained() })
	if len(j2.Points()) == before {
		t.Fatal("the restarted judge got none of its series")
	}
	checkAll(t, expected(batches), j1, j2)
}
