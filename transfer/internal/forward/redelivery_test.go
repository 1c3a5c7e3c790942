package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
)

// With the default consumer.ack_wait and in_progress_every: a live
// transfer holding messages (its judge slow) keeps them past ack_wait, never
// redelivered; when that transfer dies (its NATS connection closed
// abruptly: no ack, no nak) right after marking them in progress, a
// surviving transfer gets and acks every one of them within 10 s.
func TestKilledTransferMessagesRedelivered(t *testing.T) {
	def := config.Default().Consumer
	defaults := func(c *config.Config) {
		c.Consumer.AckWait = def.AckWait
		c.Consumer.InProgressEvery = def.InProgressEvery
		c.Judge.RequestTimeout = time.Minute // the held requests stay in flight
	}
	srv := natstest.StartServer(t)
	a := newHarness(t, srv, defaults)
	j := a.judge("judge-1")
	wait.For(t, "judge in the ring, warm-up over", 10*time.Second, func() bool { return a.mem.Ring().Len() == 1 && a.mem.Ready() })
	j.Hold()
	now := time.Now().Unix()
	var batches [][]proto.Point
	for i := range 10 {
		pts := series(i, 30, now)
		batches = append(batches, pts)
		a.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(pts))
	}
	wait.For(t, "10 messages held by transfer a", 10*time.Second, func() bool { return val(a.met.MessagesHeld) == 10 && j.Requests() > 0 })
	// Held past ack_wait: three rounds of marks (≥ 3 × in_progress_every).
	wait.For(t, "three rounds of in-progress marks", 3*def.AckWait+10*time.Second, func() bool { return val(a.met.ProgressMarks) >= 30 })
	if info := a.consumerInfo(); info.NumRedelivered != 0 || info.NumAckPending != 10 {
		t.Fatalf("held by a live transfer past ack_wait (%v): redelivered %d ack pending %d, want 0 and 10", def.AckWait, info.NumRedelivered, info.NumAckPending)
	}
	// Die right after a round of marks: the worst case.
	marks := val(a.met.ProgressMarks)
	wait.For(t, "the next round of marks", 2*def.AckWait, func() bool { return val(a.met.ProgressMarks) >= marks+10 })
	a.nc.Close()
	died := time.Now()
	a.stop() // its shutdown can no longer nak: the connection is gone
	j.Release()

	b := newHarness(t, srv, defaults)
	wait.For(t, "transfer b acks a's messages", 10*time.Second-time.Since(died), func() bool {
		return val(b.met.MessagesAcked) == 10 && b.drained()
	})
	t.Logf("a's messages judged and acked %v after it died (ack_wait %v)", time.Since(died).Round(time.Millisecond), def.AckWait)
	if v := val(a.met.MessagesAcked); v != 0 {
		t.Fatalf("dead transfer acked %v", v)
	}
	checkAll(t, expected(batches), j)
}

// The consumer's settings win over the config (an existing consumer keeps
// its ack_wait until `kestrel-transfer stream apply`): a transfer whose
// in_progress_every is too long for the consumer's ack_wait marks held
// messages every ack_wait/3 instead, so they are not redelivered while it
// holds them.
func TestMarksFollowConsumerAckWait(t *testing.T) {
	srv := natstest.StartServer(t)
	first := newHarness(t, srv, func(c *config.Config) {
		c.Consumer.AckWait = 900 * time.Millisecond
		c.Consumer.InProgressEvery = 300 * time.Millisecond
	})
	first.stop()
	h := newHarness(t, srv, func(c *config.Config) {
		c.Consumer.AckWait = 6 * time.Second
		c.Consumer.InProgressEvery = 2 * time.Second
		c.Judge.RequestTimeout = time.Minute
	})
	if got := h.consumerInfo().Config.AckWait; got != 900*time.Millisecond {
		t.Skipf("the existing consumer's ack_wait was changed to %v: nothing to follow", got)
	}
	j := h.judge("judge-1")
	wait.For(t, "judge in the ring, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 1 && h.mem.Ready() })
	j.Hold()
	h.publish("src", proto.EncodeBatch(series(0, 10, time.Now().Unix())))
	wait.For(t, "request held", 5*time.Second, func() bool { return j.Requests() > 0 })
	wait.For(t, "marks over three ack_waits", 10*time.Second, func() bool { return val(h.met.ProgressMarks) >= 9 })
	if info := h.consumerInfo(); info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Fatalf("held past the consumer's ack_wait: redelivered %d ack pending %d, want 0 and 1", info.NumRedelivered, info.NumAckPending)
	}
	j.Release()
	wait.For(t, "acked", 10*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
}

// While the shutdown waits (up to shutdown_timeout, here longer than
// ack_wait) for in-flight requests, held messages are still marked in
// progress: not redelivered to another transfer while this one may still
// get their replies.
func TestShutdownKeepsMarking(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Consumer.AckWait = 600 * time.Millisecond
		c.Consumer.InProgressEvery = 100 * time.Millisecond
		c.Judge.RequestTimeout = time.Minute
		c.ShutdownTimeout = 5 * time.Second
	})
	j := h.judge("judge-1")
	wait.For(t, "judge in the ring, warm-up over", 10*time.Second, func() bool { return h.mem.Ring().Len() == 1 && h.mem.Ready() })
	j.Hold()
	h.publish("src", proto.EncodeBatch(series(0, 10, time.Now().Unix())))
	wait.For(t, "request held", 5*time.Second, func() bool { return j.Requests() > 0 })
	marks := val(h.met.ProgressMarks)
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	wait.For(t, "marks while the shutdown waits, over two ack_waits", 5*time.Second, func() bool { return val(h.met.ProgressMarks) >= marks+12 })
	if info := h.consumerInfo(); info.NumRedelivered != 0 {
		t.Fatalf("redelivered %d while the stopping transfer still waits for its replies", info.NumRedelivered)
	}
	j.Release()
	<-stopped
	if v := val(h.met.MessagesAcked); v != 1 {
		t.Fatalf("acked %v, want 1 (the reply came within shutdown_timeout)", v)
	}
}
