package stream

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEnsureLosesNothingWhileStarting: agents publish (and retry) from
// before any transfer starts; four transfers then ensure the stream and
// the consumer at once. Every publish that got a PubAck must reach the
// consumer: with interest retention a message stored while the stream has
// no consumer is acknowledged and discarded at once.
func TestEnsureLosesNothingWhileStarting(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	cfg := config.Default()
	pub := startPublishers(t, srv, subj, 3)
	// The publishers are running and failing: no stream yet.
	deadline := time.Now().Add(10 * time.Second)
	for pub.errors.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatal("publishers did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if pub.n.Load() != 0 {
		t.Fatalf("%d publishes acked before any stream exists", pub.n.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	conss := make([]jetstream.Consumer, 4)
	errs := make([]error, 4)
	for i := range 4 {
		js, err := jetstream.New(natstest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { conss[i], errs[i] = Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
	}
	pub.waitAcked(t, 300)
	pub.halt()

	pub.mu.Lock()
	want := make(map[string]bool, len(pub.acked))
	for id := range pub.acked {
		want[id] = true
	}
	pub.mu.Unlock()
	got := drain(t, conss[0], want)
	var lost []string
	for id := range want {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acked publishes never reached the consumer, e.g. %v", len(lost), len(want), lost[:min(len(lost), 5)])
	}
	t.Logf("%d publishes acked, all delivered; %d failed (no stream or no ingest subjects yet)", len(want), pub.errors.Load())
}
