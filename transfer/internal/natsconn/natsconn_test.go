package natsconn

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/nats-io/nats.go"
)

// A subscription that falls behind its pending limit makes the client drop
// messages; the drop must reach the caller's counter as "slow_consumer".
func TestSlowConsumerIsCounted(t *testing.T) {
	s := natstest.StartServer(t)
	c := config.Default().NATS
	c.URLs = []string{s.ClientURL()}
	var mu sync.Mutex
	kinds := map[string]int{}
	nc, err := Connect(c, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), func(kind string) {
		mu.Lock()
		kinds[kind]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	release := make(chan struct{})
	sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-release })
	if err != nil {
		t.Fatal(err)
	}
	defer close(release)
	if err := sub.SetPendingLimits(1, 1<<20); err != nil {
		t.Fatal(err)
	}
	// Subscribe returns before the server has the subscription; the
	// messages below (from another connection) would go nowhere. A flush
	// round trip means the server has processed the SUB.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub := natstest.Connect(t, s)
	for range 20 {
		if err := pub.Publish("slow", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := kinds["slow_consumer"]
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("no slow_consumer error counted; kinds = %v", kinds)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if dropped, _ := sub.Dropped(); dropped == 0 {
		t.Fatalf("the subscription dropped nothing, the test did not exercise a slow consumer")
	}
	mu.Lock()
	defer mu.Unlock()
	if kinds["other"] != 0 {
		t.Errorf("unexpected other async errors: %v", kinds)
	}
}

func TestAsyncErrorKind(t *testing.T) {
	if got := AsyncErrorKind(nats.ErrSlowConsumer); got != "slow_consumer" {
		t.Errorf("ErrSlowConsumer → %q", got)
	}
	if got := AsyncErrorKind(nats.ErrConnectionClosed); got != "other" {
		t.Errorf("ErrConnectionClosed → %q", got)
	}
}
