package ringcheck_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/forward"
	"github.com/kestrel-mon/kestrel/transfer/internal/httpapi"
	"github.com/kestrel-mon/kestrel/transfer/internal/ringcheck"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testConfig() config.Config {
	c := config.Default()
	c.Consumer.FetchWait = 100 * time.Millisecond
	c.Consumer.AckWait = 5 * time.Second
	c.Consumer.InProgressEvery = time.Second
	c.Membership.Timeout = time.Second
	c.Membership.RejoinHold = 200 * time.Millisecond
	c.Judge.Linger = time.Millisecond
	c.ShutdownTimeout = 2 * time.Second
	return c
}

func TestGuardFollowsTheBucket(t *testing.T) {
	srv := natstest.StartServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	want := cfg.RingParams()
	mismatch := ringcheck.NewMismatchGauge(nil)
	var logs syncbuf.Buffer
	g := ringcheck.New("KESTREL_RING", want, mismatch, slog.New(slog.NewTextHandler(&logs, nil)))
	if why := g.Blocked(); !strings.Contains(why, "not yet read") {
		t.Fatalf("before Run: %q", why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, js, 1, 5*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })

	// First start: it stores its own parameters and routes.
	wait.For(t, "guard open", 20*time.Second, func() bool { return g.Blocked() == "" })
	if stored, err := ringparams.Get(ctx, js, "KESTREL_RING"); err != nil || !stored.Equal(want) {
		t.Fatalf("stored %+v %v", stored, err)
	}
	// The bucket changes under it: blocked, naming the field, gauge 1,
	// one error line.
	changed := want
	changed.PartitionCount = 512
	ch := g.Changed()
	if err := ringparams.Set(ctx, js, "KESTREL_RING", 1, changed); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no change signalled")
	}
	const reason = "config differs from KESTREL_RING: partition_count 271 (config) != 512 (bucket)"
	if why := g.Blocked(); why != reason {
		t.Fatalf("blocked %q, want %q", why, reason)
	}
	if v := testutil.ToFloat64(mismatch); v != 1 {
		t.Fatalf("mismatch gauge %v", v)
	}
	// Deleted: still blocked, another reason.
	kv, _ := js.KeyValue(ctx, "KESTREL_RING")
	if err := kv.Delete(ctx, ringparams.Key); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "delete seen", 20*time.Second, func() bool { return strings.Contains(g.Blocked(), "no ring parameters in KESTREL_RING") })
	// Back to this transfer's parameters: open again, gauge 0.
	if err := ringparams.Set(ctx, js, "KESTREL_RING", 1, want); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "guard open again", 20*time.Second, func() bool { return g.Blocked() == "" })
	if v := testutil.ToFloat64(mismatch); v != 0 {
		t.Fatalf("mismatch gauge %v after the match", v)
	}
	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 2 {
		t.Fatalf("%d error lines, want 2 (one per change: mismatch, delete):\n%s", n, out)
	}
	if !strings.Contains(out, `reason="`+reason+`"`) {
		t.Fatalf("log lacks the reason:\n%s", out)
	}
}

// A transfer whose ring parameters differ from the bucket's does not
// fetch: /health is 503 with the reason, the gauge is 1, the judge gets
// nothing; when the bucket is set to its parameters it resumes.
func TestMismatchStopsRouting(t *testing.T) {
	srv := natstest.StartServer(t)
	cfg := testConfig()
	subj := cfg.Subjects()
	bucket := subj.RingBucket()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Another transfer (or judge) stored other parameters first.
	adminJS, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	other := cfg.RingParams()
	other.PartitionCount = 512
	if err := ringparams.Set(ctx, adminJS, bucket, 1, other); err != nil {
		t.Fatal(err)
	}

	// The transfer, wired as main wires it.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	met, mismatch := forward.NewMetrics(reg), ringcheck.NewMismatchGauge(reg)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := membership.New(membership.Config{Timeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold,
		SuspectAfter: cfg.Judge.SuspectAfter, Ring: cfg.RingParams().Ring(), Self: "transfer-test"}, log, membership.NewMetrics(reg, "kestrel_transfer"))
	if err != nil {
		t.Fatal(err)
	}
	guard := ringcheck.New(bucket, cfg.RingParams(), mismatch, log)
	web := httptest.NewServer(httpapi.Handler(nc, mem, nil, guard, reg))
	defer web.Close()
	cons, err := stream.Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	eng := forward.New(forward.Config{MinStep: int32(cfg.MinStep), BatchPoints: cfg.Judge.BatchPoints, Linger: cfg.Judge.Linger,
		RequestTimeout: cfg.Judge.RequestTimeout, RetryBackoff: cfg.Judge.RetryBackoff, MaxBackoff: cfg.Judge.MaxBackoff,
		MaxInflight: cfg.Judge.MaxInflight, FetchBatch: cfg.Consumer.FetchBatch, FetchWait: cfg.Consumer.FetchWait,
		InProgressEvery: cfg.Consumer.InProgressEvery, NakDelay: cfg.Consumer.NakDelay, ShutdownTimeout: cfg.ShutdownTimeout,
		Gate: guard}, subj, nc, mem, met, log)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = mem.Run(runCtx, nc, subj.Members()) })
	wg.Go(func() { _ = guard.Run(runCtx, js, cfg.Ring.BucketReplicas, 5*time.Second) })
	wg.Go(func() { _ = eng.Run(runCtx, cons) })
	defer func() { stop(); wg.Wait() }()

	judge := natstest.StartJudge(t, srv, subj, "judge-1", 100*time.Millisecond)
	wait.For(t, "judge in the ring", 20*time.Second, func() bool { return mem.Ring().Has("judge-1") })

	health := func() (int, string) {
		resp, err := http.Get(web.URL + "/health")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const reason = "config differs from KESTREL_RING: partition_count 271 (config) != 512 (bucket)"
	wait.For(t, "health 503 with the reason", 20*time.Second, func() bool {
		code, body := health()
		var got map[string]string
		return code == http.StatusServiceUnavailable && json.Unmarshal([]byte(body), &got) == nil && got["ring"] == reason
	})
	if v := testutil.ToFloat64(mismatch); v != 1 {
		t.Fatalf("mismatch gauge %v", v)
	}
	wait.For(t, "fetching paused", 20*time.Second, func() bool { return testutil.ToFloat64(met.FetchPaused) == 1 })

	// Points published meanwhile stay in the stream: no message is ever
	// delivered to the consumer, the judge gets nothing.
	now := time.Now().Unix()
	for i := range 5 {
		pts := []proto.Point{{Endpoint: "host01", Metric: "cpu.idle", Tags: []proto.Tag{{Key: "i", Value: string(rune('a' + i))}},
			Value: 1, Timestamp: now, Type: proto.Gauge, Step: 60}}
		if _, err := adminJS.Publish(ctx, subj.Ingest("host01"), proto.EncodeBatch(pts)); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, "messages pending in the consumer", 20*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 5
	})
	// A negative: give the fetch loop many fetch_wait periods to (wrongly)
	// fetch.
	time.Sleep(10 * cfg.Consumer.FetchWait)
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 0 || info.NumPending != 5 || len(judge.Points()) != 0 || judge.Requests() != 0 {
		t.Fatalf("routed while the ring parameters differ: delivered %d pending %d, judge got %d points",
			info.Delivered.Consumer, info.NumPending, len(judge.Points()))
	}

	// The bucket is set to this transfer's parameters: it resumes.
	if err := ringparams.Set(ctx, adminJS, bucket, 1, cfg.RingParams()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "health 200", 20*time.Second, func() bool { code, _ := health(); return code == http.StatusOK })
	wait.For(t, "points at the judge", 20*time.Second, func() bool { return len(judge.Points()) == 5 })
	wait.For(t, "messages acked", 20*time.Second, func() bool { return testutil.ToFloat64(met.MessagesAcked) == 5 })
	if v := testutil.ToFloat64(mismatch); v != 0 {
		t.Fatalf("mismatch gauge %v after the match", v)
	}
	if v := testutil.ToFloat64(met.FetchPaused); v != 0 {
		t.Fatalf("fetch paused %v after the match", v)
	}
}
