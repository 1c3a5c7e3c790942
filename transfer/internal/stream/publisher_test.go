package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher publishes numbered messages on the ingest subjects in a loop,
// like agents retrying, and records which ones got a PubAck.
type publisher struct {
	mu     sync.Mutex
	acked  map[string]time.Time // msg id -> when its PubAck arrived
	order  []pubResult          // every attempt, in order
	n      atomic.Int64
	errors atomic.Int64
	stop   chan struct{}
	done   sync.WaitGroup
}

type pubResult struct {
	id           string
	ok           bool
	noResponders bool      // failed because no stream listens on the subject
	start, end   time.Time // publish sent, answer received
}

// startPublishers starts n goroutines publishing as fast as they can.
func startPublishers(t *testing.T, srv *server.Server, subj proto.Subjects, n int) *publisher {
	t.Helper()
	p := &publisher{acked: make(map[string]time.Time), stop: make(chan struct{})}
	for g := range n {
		js, err := jetstream.New(natstest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		p.done.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-p.stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%d", g, i)
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := js.Publish(ctx, subj.Ingest(fmt.Sprintf("host%d", g)), []byte(id), jetstream.WithMsgID(id), jetstream.WithRetryAttempts(0))
				cancel()
				now := time.Now()
				p.mu.Lock()
				p.order = append(p.order, pubResult{id: id, ok: err == nil, start: start, end: now,
					noResponders: errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)})
				if err == nil {
					p.acked[id] = now
				}
				p.mu.Unlock()
				if err == nil {
					p.n.Add(1)
				} else {
					p.errors.Add(1)
				}
			}
		})
	}
	t.Cleanup(p.halt)
	return p
}

func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}

// waitAcked waits until n more publishes than now have been acked.
func (p *publisher) waitAcked(t *testing.T, n int64) {
	t.Helper()
	want := p.n.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for p.n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d publishes acked (%d errors)", p.n.Load(), want, p.errors.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain fetches (and acks) from cons until every id in want arrived or
// nothing more comes for a while; it returns the ids delivered.
func drain(t *testing.T, cons jetstream.Consumer, want map[string]bool) map[string]bool {
	t.Helper()
	got := make(map[string]bool)
	missing := func() int {
		n := 0
		for id := range want {
			if !got[id] {
				n++
			}
		}
		return n
	}
	idle := 0
	for missing() > 0 && idle < 3 {
		b, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range b.Messages() {
			got[string(m.Data())] = true
			_ = m.Ack()
			n++
		}
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return got
}
