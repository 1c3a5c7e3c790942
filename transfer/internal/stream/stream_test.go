package stream

import (
	"context"
	"fmt"
	"slices"
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

// Several transfers starting at once all end up with the same stream
// (ingest subjects open) and consumer. A later start with other settings
// changes nothing (the existing settings win) and is told how they
// differ; Apply then writes them.
func TestEnsureConcurrentKeepsExistingSettings(t *testing.T) {
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
	streamCfg := func() jetstream.StreamConfig {
		s, err := js.Stream(ctx, "KESTREL_INGEST")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}
	consumerCfg := func() jetstream.ConsumerConfig {
		c, err := js.Consumer(ctx, "KESTREL_INGEST", "transfer")
		if err != nil {
			t.Fatal(err)
		}
		return c.CachedInfo().Config
	}
	sc := streamCfg()
	if sc.MaxBytes != 1<<30 || sc.Retention != jetstream.InterestPolicy || sc.Discard != jetstream.DiscardNew ||
		sc.Storage != jetstream.FileStorage || !slices.Equal(sc.Subjects, []string{"kestrel.ingest.>"}) {
		t.Fatalf("stream config %+v", sc)
	}

	other := cfg
	other.Stream.MaxBytes = 1 << 20
	other.Stream.Replicas = 3 // more than this one-server "cluster" has
	other.Consumer.AckWait = 45 * time.Second
	if _, err := Ensure(ctx, js, subj, other.Stream, other.Consumer); err != nil {
		t.Fatal(err)
	}
	if sc := streamCfg(); sc.MaxBytes != 1<<30 || sc.Replicas != 1 {
		t.Fatalf("a transfer with other settings changed the stream: %+v", sc)
	}
	if ci := consumerCfg(); ci.AckWait != cfg.Consumer.AckWait {
		t.Fatalf("a transfer with other settings changed the consumer: %+v", ci)
	}
	_, sd, cd, err := Current(ctx, js, subj, other.Stream, other.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"replicas 3 (config) != 1 (stream)", "max_bytes 1048576 (config) != 1073741824 (stream)"}; !slices.Equal(sd, want) {
		t.Fatalf("stream differences %q, want %q", sd, want)
	}
	if want := []string{fmt.Sprintf("ack_wait 45s (config) != %v (consumer)", cfg.Consumer.AckWait)}; !slices.Equal(cd, want) {
		t.Fatalf("consumer differences %q, want %q", cd, want)
	}

	// Apply writes them; replicas 3 on one server is refused by NATS and
	// nothing is changed.
	if _, _, err := Apply(ctx, js, subj, other.Stream, other.Consumer); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("apply of replicas 3 on one server: %v", err)
	}
	other.Stream.Replicas = 1
	sd, cd, err = Apply(ctx, js, subj, other.Stream, other.Consumer)
	if err != nil || len(sd) != 1 || len(cd) != 1 {
		t.Fatalf("apply: %q %q %v", sd, cd, err)
	}
	if sc := streamCfg(); sc.MaxBytes != 1<<20 || !slices.Equal(sc.Subjects, []string{"kestrel.ingest.>"}) {
		t.Fatalf("stream after apply %+v", sc)
	}
	if ci := consumerCfg(); ci.AckWait != 45*time.Second || ci.MaxAckPending != 10000 || ci.MaxDeliver != -1 || ci.AckPolicy != jetstream.AckExplicitPolicy {
		t.Fatalf("consumer after apply %+v", ci)
	}
	if sd, cd, err := Apply(ctx, js, subj, other.Stream, other.Consumer); err != nil || len(sd)+len(cd) != 0 {
		t.Fatalf("second apply: %q %q %v", sd, cd, err)
	}
}

// Restarting transfers, with the same or with other settings, never
// change the stream or the consumer: no create or update request at all.
// Apply changes exactly the stream and the consumer, once.
func TestEnsureChangesNothingOnRestart(t *testing.T) {
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
	sd, cd, err := Apply(ctx, js, subj, cfg.Stream, cfg.Consumer)
	if err != nil || len(sd) != 1 || len(cd) != 1 {
		t.Fatalf("apply: %q %q %v", sd, cd, err)
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
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Exactly Apply's stream update and consumer update: none of the four
	// Ensure calls changed anything.
	if len(updates) != 2 || !strings.HasPrefix(updates[0], "$JS.API.STREAM.UPDATE.") || !strings.Contains(updates[1], "CONSUMER") {
		t.Fatalf("changing requests %v, want one stream update and then one consumer update", updates)
	}
}
