package publish

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var subjects, _ = proto.NewSubjects("kestrel")

const host = "host01"

type fixture struct {
	srv *natstest.Server
	nc  *nats.Conn
	pub *Publisher
	m   *Metrics
}

func setup(t *testing.T, srv *natstest.Server, mod func(*Config)) *fixture {
	t.Helper()
	cfg := Config{
		Subject:        subjects.Ingest(host),
		MsgIDPrefix:    NewMsgIDPrefix(host),
		Timeout:        2 * time.Second,
		MaxBatches:     100,
		MaxBytes:       1 << 20,
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var kick atomic.Pointer[Publisher]
	nc, err := natsconn.Connect(t.Context(), natsConfig(srv.URL()), natsconn.Options{Log: log, ReconnectWait: 50 * time.Millisecond,
		OnConnect: func(*nats.Conn) {
			if p := kick.Load(); p != nil {
				p.Kick()
			}
		},
		Extra: NATSOptions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	m := NewMetrics(prometheus.NewRegistry())
	pub, err := New(cfg, nc, m, log)
	if err != nil {
		t.Fatal(err)
	}
	kick.Store(pub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pub.Stop(ctx)
	})
	return &fixture{srv: srv, nc: nc, pub: pub, m: m}
}

func points(n int, metric string, ts int64) []proto.Point {
	out := make([]proto.Point, n)
	for i := range out {
		out[i] = proto.Point{Endpoint: host, Metric: metric, Tags: []proto.Tag{{Key: "i", Value: strconv.Itoa(i)}},
			Value: float64(i) + 0.5, Timestamp: ts, Type: proto.Gauge, Step: 60}
	}
	return out
}

func stream(srv *natstest.Server) {
	srv.CreateStream(subjects.Stream(), subjects.IngestAll())
}

func (f *fixture) empty() bool { n, _ := f.pub.Depth(); return n == 0 }

// decodeAll decodes every stream message and checks headers and subject.
func decodeAll(t *testing.T, srv *natstest.Server) (pts []proto.Point, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range srv.Messages(subjects.Stream()) {
		if m.Subject != subjects.Ingest(host) {
			t.Errorf("subject %q", m.Subject)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if id == "" {
			t.Error("message without Nats-Msg-Id")
		}
		if seen[id] {
			t.Errorf("duplicate message %s in the stream", id)
		}
		seen[id] = true
		ids = append(ids, id)
		b, err := proto.DecodeBatch(m.Data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		pts = append(pts, b...)
	}
	return pts, ids
}

func TestPublishLandsInStream(t *testing.T) {
	srv := natstest.Start(t)
	stream(srv)
	f := setup(t, srv, nil)
	f.pub.Enqueue(points(50, "cpu.idle", 1_700_000_040))
	f.pub.Enqueue(points(3, "mem.memfree", 1_700_000_100))
	wait.For(t, "batches published", 20*time.Second, func() bool { return testutil.ToFloat64(f.m.BatchesPublished) == 2 })
	pts, ids := decodeAll(t, srv)
	if len(ids) != 2 || len(pts) != 53 {
		t.Fatalf("got %d messages with %d points, want 2 and 53", len(ids), len(pts))
	}
	if pts[0].Metric != "cpu.idle" || pts[49].Value != 49.5 || pts[50].Metric != "mem.memfree" || pts[52].Timestamp != 1_700_000_100 {
		t.Fatalf("points not as published: %+v %+v", pts[0], pts[52])
	}
	if got := testutil.ToFloat64(f.m.PointsPublished); got != 53 {
		t.Fatalf("points published = %v", got)
	}
	if !f.empty() || testutil.ToFloat64(f.m.QueueBatches) != 0 {
		t.Fatal("queue not empty")
	}
}

func TestSplitUnderSmallMaxPayload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server int32
		config int
	}{
		{"server max payload", 4096, 0},
		{"configured max payload", 0, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []natstest.Option
			if tc.server > 0 {
				opts = append(opts, natstest.MaxPayload(tc.server))
			}
			srv := natstest.StartWith(t, opts...)
			stream(srv)
			f := setup(t, srv, func(c *Config) { c.MaxPayload = tc.config })
			wait.For(t, "connected", 20*time.Second, f.nc.IsConnected)
			limit := int(f.nc.MaxPayload())
			if tc.config > 0 {
				limit = tc.config
			}
			if f.pub.MaxPayload() != limit-Headroom {
				t.Fatalf("MaxPayload = %d, want %d", f.pub.MaxPayload(), limit-Headroom)
			}
			const n = 2000
			f.pub.Enqueue(points(n, "some.metric", 1_700_000_040))
			wait.For(t, "all points published", 20*time.Second, func() bool { return testutil.ToFloat64(f.m.PointsPublished) == n })
			msgs := srv.Messages(subjects.Stream())
			if len(msgs) < 2 {
				t.Fatalf("got %d messages, want a split", len(msgs))
			}
			for _, m := range msgs {
				if len(m.Data) > limit-Headroom {
					t.Fatalf("message of %d bytes over the limit %d", len(m.Data), limit-Headroom)
				}
			}
			pts, _ := decodeAll(t, srv)
			if len(pts) != n {
				t.Fatalf("decoded %d points", len(pts))
			}
			for i, p := range pts {
				if p.Tags[0].Value != strconv.Itoa(i) {
					t.Fatalf("point %d out of order: %+v", i, p)
				}
			}
		})
	}
}

// assertOrdered checks that the stream holds the given metrics in order.
func assertMetrics(t *testing.T, srv *natstest.Server, want ...string) {
	t.Helper()
	pts, _ := decodeAll(t, srv)
	var got []string
	for _, p := range pts {
		got = append(got, p.Metric)
	}
	if len(got) != len(want) {
		t.Fatalf("stream holds %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("stream holds %v, want %v", got, want)
		}
	}
}

func TestRetryUntilStreamExists(t *testing.T) {
	srv := natstest.Start(t)
	f := setup(t, srv, nil)
	wait.For(t, "connected", 20*time.Second, f.nc.IsConnected)
	for i := range 3 {
		f.pub.Enqueue(points(1, "m"+strconv.Itoa(i), int64(60*(i+1))))
	}
	wait.For(t, "no responders counted", 20*time.Second, func() bool {
		return testutil.ToFloat64(f.m.PublishErrors.WithLabelValues(KindNoResponders)) >= 2
	})
	if n, _ := f.pub.Depth(); n != 3 || testutil.ToFloat64(f.m.QueueBatches) != 3 || testutil.ToFloat64(f.m.QueueBytes) <= 0 {
		t.Fatalf("queue depth %d (gauge %v), want 3", n, testutil.ToFloat64(f.m.QueueBatches))
	}
	// A push while the queue is retrying is queued behind, and returns.
	if err := f.pub.Push(context.Background(), points(1, "pushed", 240)); err != nil {
		t.Fatalf("push while retrying: %v", err)
	}
	stream(srv)
	wait.For(t, "queue drained", 20*time.Second, f.empty)
	assertMetrics(t, srv, "m0", "m1", "m2", "pushed")
	if testutil.ToFloat64(f.m.Retries) == 0 {
		t.Fatal("retries not counted")
	}
}

func TestRetryAfterServerRestart(t *testing.T) {
	srv := natstest.Start(t)
	stream(srv)
	f := setup(t, srv, nil)
	f.pub.Enqueue(points(1, "before", 60))
	wait.For(t, "first batch", 20*time.Second, func() bool { return testutil.ToFloat64(f.m.BatchesPublished) == 1 })
	srv.Shutdown()
	wait.For(t, "disconnect seen", 20*time.Second, func() bool { return !f.nc.IsConnected() })
	for i := range 3 {
		f.pub.Enqueue(points(2, "down"+strconv.Itoa(i), int64(120+60*i)))
	}
	wait.For(t, "disconnected errors", 20*time.Second, func() bool {
		return testutil.ToFloat64(f.m.PublishErrors.WithLabelValues(KindDisconnected)) >= 1
	})
	if n, _ := f.pub.Depth(); n != 3 {
		t.Fatalf("queue depth %d, want 3", n)
	}
	srv.Restart()
	wait.For(t, "queue drained", 20*time.Second, f.empty)
	assertMetrics(t, srv, "before", "down0", "down0", "down1", "down1", "down2", "down2")
}

func TestQueueFullDropsOldest(t *testing.T) {
	srv := natstest.Start(t)
	f := setup(t, srv, func(c *Config) { c.MaxBatches = 3 })
	wait.For(t, "connected", 20*time.Second, f.nc.IsConnected)
	for i := range 5 {
		f.pub.Enqueue(points(2, "m"+strconv.Itoa(i), int64(60*(i+1))))
	}
	if got := testutil.ToFloat64(f.m.DroppedBatches.WithLabelValues(DropQueueFull)); got != 2 {
		t.Fatalf("dropped batches = %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.m.DroppedPoints.WithLabelValues(DropQueueFull)); got != 4 {
		t.Fatalf("dropped points = %v, want 4", got)
	}
	if n, _ := f.pub.Depth(); n != 3 {
		t.Fatalf("depth %d", n)
	}
	// A push must not evict: it is refused.
	err := f.pub.Push(context.Background(), points(1, "pushed", 400))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("push into a full queue: %v", err)
	}
	if got := testutil.ToFloat64(f.m.DroppedBatches.WithLabelValues(DropQueueFull)); got != 2 {
		t.Fatalf("push evicted data: dropped = %v", got)
	}
	stream(srv)
	wait.For(t, "queue drained", 20*time.Second, f.empty)
	pts, _ := decodeAll(t, srv)
	if len(pts) != 6 || pts[5].Metric != "m4" {
		t.Fatalf("delivered %d points, last %v", len(pts), pts)
	}
	for i := 2; i < len(pts); i += 2 {
		if pts[i].Timestamp <= pts[i-2].Timestamp {
			t.Fatalf("out of order: %+v", pts)
		}
	}
}

func TestPushAcked(t *testing.T) {
	srv := natstest.Start(t)
	stream(srv)
	f := setup(t, srv, nil)
	if err := f.pub.Push(context.Background(), points(10, "pushed", 60)); err != nil {
		t.Fatal(err)
	}
	// Push returned after the ack: the message is in the stream already.
	assertMetrics(t, srv, "pushed", "pushed", "pushed", "pushed", "pushed", "pushed", "pushed", "pushed", "pushed", "pushed")
}

func TestStopDropsWhatIsLeft(t *testing.T) {
	srv := natstest.Start(t)
	f := setup(t, srv, nil)
	wait.For(t, "connected", 20*time.Second, f.nc.IsConnected)
	f.pub.Enqueue(points(4, "m", 60))
	f.pub.Enqueue(points(3, "m", 120))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	b, p := f.pub.Stop(ctx)
	if b != 2 || p != 7 {
		t.Fatalf("Stop dropped %d batches %d points, want 2 and 7", b, p)
	}
	if got := testutil.ToFloat64(f.m.DroppedPoints.WithLabelValues(DropShutdown)); got != 7 {
		t.Fatalf("shutdown drops = %v", got)
	}
	if err := f.pub.Push(context.Background(), points(1, "late", 60)); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after stop: %v", err)
	}
}

// A lost ack makes the agent publish the same batch again; the stream's
// duplicate window keeps one copy because the Msg-Id is kept.
func TestRepublishIsDeduplicated(t *testing.T) {
	srv := natstest.Start(t)
	stream(srv)
	f := setup(t, srv, nil)
	f.pub.Enqueue(points(2, "once", 60))
	wait.For(t, "published", 20*time.Second, f.empty)
	_, ids := decodeAll(t, srv)
	b := &batch{id: ids[0], data: srv.Messages(subjects.Stream())[0].Data}
	if err := f.pub.publish(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	assertMetrics(t, srv, "once", "once")
}

func TestErrorKind(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, KindTimeout},
		{nats.ErrTimeout, KindTimeout},
		{jetstream.ErrNoStreamResponse, KindNoResponders},
		{errDisconnected, KindDisconnected},
		{nats.ErrConnectionClosed, KindDisconnected},
		{nats.ErrMaxPayload, KindTooLarge},
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum bytes exceeded"}, KindRejected},
		{errors.New("boom"), KindOther},
	}
	for _, tc := range cases {
		if got := ErrorKind(tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestNextBackoff(t *testing.T) {
	ms := time.Millisecond
	cur := time.Duration(0)
	var got []time.Duration
	for range 6 {
		cur = nextBackoff(cur, 100*ms, 1000*ms)
		got = append(got, cur)
	}
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff sequence %v, want %v", got, want)
		}
	}
}

// A full stream (discard new) refuses the batch; it waits in the queue and
// goes in once there is room.
func TestStreamFullIsRetried(t *testing.T) {
	srv := natstest.Start(t)
	js, err := jetstream.New(srv.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: subjects.Stream(), Subjects: []string{subjects.IngestAll()},
		MaxMsgs: 1, Discard: jetstream.DiscardNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := setup(t, srv, nil)
	f.pub.Enqueue(points(1, "first", 60))
	f.pub.Enqueue(points(1, "second", 120))
	wait.For(t, "rejection counted", 20*time.Second, func() bool {
		return testutil.ToFloat64(f.m.PublishErrors.WithLabelValues(KindRejected)) >= 1
	})
	if n, _ := f.pub.Depth(); n != 1 {
		t.Fatalf("depth %d, want 1", n)
	}
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "queue drained", 20*time.Second, f.empty)
	assertMetrics(t, srv, "second")
}

// natsConfig is the nats block of a client of the test server at url.
func natsConfig(url string) natsconn.Config {
	c := natsconn.Default()
	c.URLs = []string{url}
	c.ConnectTimeout = 2 * time.Second
	return c
}
