package stream

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// Several transfers starting at once all end up with the same stream and
// consumer; a later start with a new max_bytes updates the stream.
func TestEnsureConcurrentAndUpdate(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	cfg := config.Default()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		js, err := jetstream.New(natstest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, err := Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent ensure: %v", err)
		}
	}
	js, _ := jetstream.New(natstest.Connect(t, srv))
	cfg.Stream.MaxBytes = 1 << 20
	cfg.Consumer.AckWait = 45 * time.Second
	cons, err := Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "KESTREL_INGEST")
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	if sc.MaxBytes != 1<<20 || sc.Retention != jetstream.InterestPolicy || sc.Discard != jetstream.DiscardNew ||
		sc.Storage != jetstream.FileStorage || len(sc.Subjects) != 1 || sc.Subjects[0] != "kestrel.ingest.>" {
		t.Fatalf("stream config %+v", sc)
	}
	ci := cons.CachedInfo().Config
	if ci.Durable != "transfer" || ci.AckPolicy != jetstream.AckExplicitPolicy || ci.MaxDeliver != -1 || ci.AckWait != 45*time.Second || ci.MaxAckPending != 10000 {
		t.Fatalf("consumer config %+v", ci)
	}
}
