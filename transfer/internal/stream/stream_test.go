package stream

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go"
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

// A transfer that starts against a stream and consumer that already have
// its configuration must not update them (every restart would otherwise
// update the stream); a changed setting is applied.
func TestEnsureUpdatesOnlyWhatDiffers(t *testing.T) {
	srv := natstest.StartServer(t)
	subj, _ := proto.NewSubjects("kestrel")
	cfg := config.Default()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var updates []string
	// Watch the JetStream API requests that change a stream or a consumer
	// (a consumer update is a CONSUMER.CREATE request with action update).
	sub, err := nc.Subscribe("$JS.API.>", func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, "$JS.API.STREAM.UPDATE.") || strings.HasPrefix(m.Subject, "$JS.API.STREAM.CREATE.") ||
			strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.CREATE.") || strings.HasPrefix(m.Subject, "$JS.API.CONSUMER.DURABLE.CREATE.") {
			mu.Lock()
			updates = append(updates, m.Subject)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Stream.MaxBytes = 1 << 20
	cfg.Consumer.MaxAckPending = 500
	if _, err := Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(updates)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	// Exactly the changed stream and the changed consumer: none of the
	// three unchanged Ensure calls changed anything.
	if len(updates) != 2 || !strings.HasPrefix(updates[0], "$JS.API.STREAM.UPDATE.") || !strings.Contains(updates[1], "CONSUMER") {
		t.Fatalf("changing requests %v, want one stream update and then one consumer update", updates)
	}
}
