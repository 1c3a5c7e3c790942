package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fixture struct {
	srv  *server.Server
	js   jetstream.JetStream
	subj proto.Subjects
	pub  *Publisher
	met  *Metrics
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	srv := natstest.StartServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	subj := cfg.Subjects()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stream.Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	pc := Config{Subject: subj.Ingest("transfer-test"), Stream: subj.Stream(), MsgIDPrefix: "test", BatchPoints: 100,
		Linger: 5 * time.Millisecond, PublishTimeout: 2 * time.Second, Workers: 2, MaxPendingPoints: 10000, MaxWait: time.Second}
	if mod != nil {
		mod(&pc)
	}
	met := NewMetrics(nil)
	f := &fixture{srv: srv, js: js, subj: subj, met: met,
		pub: NewPublisher(pc, js, met, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	t.Cleanup(func() { _ = f.pub.Stop(context.Background()) })
	return f
}

func points(req, n int) []proto.Point {
	pts := make([]proto.Point, n)
	for i := range pts {
		pts[i] = proto.Point{Endpoint: fmt.Sprintf("host%d", req), Metric: "m", Tags: []proto.Tag{{Key: "i", Value: fmt.Sprint(i)}},
			Value: float64(i), Timestamp: 1700000000, Type: proto.Gauge, Step: 60}
	}
	return pts
}

// stored returns every point in the stream and how many messages hold them.
func (f *fixture) stored(t *testing.T) (map[string]int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := f.js.Stream(ctx, f.subj.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		pts, err := proto.DecodeBatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pts {
			got[p.Endpoint+"/"+p.Tags[0].Value]++
		}
	}
	return got, int(info.State.Msgs)
}

// Many small concurrent requests: each returns only once its points are
// stored, all of them are, once each, in far fewer messages than requests.
func TestManyRequestsCoalesced(t *testing.T) {
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for r := range 300 {
		wg.Go(func() {
			if err := f.pub.Publish(context.Background(), points(r, 7)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, msgs := f.stored(t)
	if len(got) != 300*7 {
		t.Fatalf("%d distinct points stored, want %d", len(got), 300*7)
	}
	for k, n := range got {
		if n != 1 {
			t.Fatalf("point %s stored %d times", k, n)
		}
	}
	if msgs >= 300 {
		t.Fatalf("%d messages for 300 requests: not coalesced", msgs)
	}
	if v := testutil.ToFloat64(f.met.PointsStored); v != 2100 {
		t.Fatalf("stored metric %v", v)
	}
	if v := testutil.ToFloat64(f.met.PendingPoints); v != 0 {
		t.Fatalf("pending %v after every request returned", v)
	}
}

// A request larger than a batch spans several batches and larger than the
// whole budget still passes (alone).
func TestLargeRequest(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPendingPoints = 500 })
	if err := f.pub.Publish(context.Background(), points(1, 1234)); err != nil {
		t.Fatal(err)
	}
	got, msgs := f.stored(t)
	if len(got) != 1234 || msgs < 13 {
		t.Fatalf("%d points in %d messages", len(got), msgs)
	}
	if err := f.pub.Publish(context.Background(), points(2, 10)); err != nil {
		t.Fatalf("after a large request: %v", err)
	}
}

// The stream cannot store (deleted, then NATS gone): the clients get a
// retryable error, never success; points are counted unstored.
func TestUnavailableIsNeverSuccess(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.PublishTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	if err := f.js.DeleteStream(ctx, f.subj.Stream()); err != nil {
		t.Fatal(err)
	}
	err := f.pub.Publish(ctx, points(1, 10))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stream deleted: %v, want ErrUnavailable", err)
	}
	f.srv.Shutdown()
	err = f.pub.Publish(ctx, points(2, 10))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("nats gone: %v, want ErrUnavailable", err)
	}
	if v := testutil.ToFloat64(f.met.PointsUnstored); v != 20 {
		t.Fatalf("unstored %v, want 20", v)
	}
	if RefusalOf(err) != RefusedUnavailable {
		t.Fatalf("refusal %q", RefusalOf(err))
	}
}

// While the stream does not answer and the budget is taken, another
// request gets ErrBusy after max_wait instead of piling up.
func TestBusy(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.MaxPendingPoints, c.BatchPoints, c.MaxWait, c.PublishTimeout = 100, 100, 100*time.Millisecond, 3*time.Second
	})
	f.srv.Shutdown() // publishes now wait PublishTimeout
	first := make(chan error, 1)
	go func() { first <- f.pub.Publish(context.Background(), points(1, 100)) }()
	time.Sleep(100 * time.Millisecond) // let it take the budget
	if err := f.pub.Publish(context.Background(), points(2, 10)); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request: %v, want ErrBusy", err)
	}
	if err := <-first; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("first request: %v", err)
	}
}

// Stop publishes what is batched, then refuses.
func TestStop(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Linger = time.Hour })
	done := make(chan error, 1)
	go func() { done <- f.pub.Publish(context.Background(), points(1, 5)) }()
	time.Sleep(50 * time.Millisecond)
	if err := f.pub.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("request batched before Stop: %v", err)
	}
	if got, _ := f.stored(t); len(got) != 5 {
		t.Fatalf("%d points stored", len(got))
	}
	if err := f.pub.Publish(context.Background(), points(2, 5)); !errors.Is(err, ErrStopping) {
		t.Fatalf("after Stop: %v", err)
	}
}
