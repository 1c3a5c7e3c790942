package forward

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/deadletter"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const beatEvery = 100 * time.Millisecond

type harness struct {
	t    *testing.T
	srv  *server.Server
	subj proto.Subjects
	cfg  config.Config
	js   jetstream.JetStream // publisher side
	nc   *nats.Conn          // the transfer's connection (engine and membership)
	cons jetstream.Consumer
	met  *Metrics
	mm   *membership.Metrics
	mem  *membership.Membership
	eng  *Engine
	stop func()
}

func testConfig() config.Config {
	c := config.Default()
	c.Consumer.AckWait = 5 * time.Second
	c.Consumer.InProgressEvery = 200 * time.Millisecond
	c.Consumer.FetchWait = 200 * time.Millisecond
	c.Consumer.FetchBatch = 20
	c.Membership.Timeout = time.Second
	c.Membership.RejoinHold = 300 * time.Millisecond
	c.Judge.RequestTimeout = 3 * time.Second
	c.Judge.BatchPoints = 40
	c.Judge.Linger = 2 * time.Millisecond
	c.Judge.RetryBackoff = 20 * time.Millisecond
	c.Judge.MaxBackoff = 200 * time.Millisecond
	c.ShutdownTimeout = 2 * time.Second
	return c
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newHarness(t *testing.T, srv *server.Server, mod func(*config.Config)) *harness {
	t.Helper()
	if srv == nil {
		srv = natstest.StartServer(t)
	}
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := &harness{t: t, srv: srv, subj: cfg.Subjects(), cfg: cfg, met: NewMetrics(reg), mm: membership.NewMetrics(reg, "kestrel_transfer")}
	log := testLogger()
	var err error
	h.js, err = jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, srv)
	h.nc = nc
	h.mem, err = membership.New(membership.Config{Timeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold,
		SuspectAfter: cfg.Judge.SuspectAfter, UnresponsiveAfter: cfg.Judge.UnresponsiveAfter, Ring: ringConfig(cfg)}, log, h.mm)
	if err != nil {
		t.Fatal(err)
	}
	tjs, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.cons, err = stream.Ensure(ctx, tjs, h.subj, cfg.Stream, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = New(Config{MinStep: int32(cfg.MinStep), BatchPoints: cfg.Judge.BatchPoints, Linger: cfg.Judge.Linger,
		RequestTimeout: cfg.Judge.RequestTimeout, RetryBackoff: cfg.Judge.RetryBackoff, MaxBackoff: cfg.Judge.MaxBackoff,
		MaxInflight: cfg.Judge.MaxInflight, FetchBatch: cfg.Consumer.FetchBatch, FetchWait: cfg.Consumer.FetchWait,
		InProgressEvery: cfg.Consumer.InProgressEvery, NakDelay: cfg.Consumer.NakDelay, ShutdownTimeout: cfg.ShutdownTimeout,
		DeadLetter: deadletter.NewPublisher(tjs, h.subj, cfg.DeadLetter, "transfer-test"), DeadLetterAfter: cfg.DeadLetter.After,
	}, h.subj, nc, h.mem, h.met, log)
	runCtx, stopRun := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h.mem.Run(runCtx, nc, h.subj.Members()); err != nil {
			t.Error(err)
		}
	})
	engCtx, stopEng := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		if err := h.eng.Run(engCtx, h.cons); err != nil {
			t.Error(err)
		}
	}()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			stopEng()
			<-engDone
			stopRun()
			wg.Wait()
		})
	}
	t.Cleanup(h.stop)
	return h
}

func ringConfig(c config.Config) ring.Config {
	return ring.Config{PartitionCount: c.Ring.PartitionCount, ReplicationFactor: c.Ring.ReplicationFactor, Load: c.Ring.Load}
}

func (h *harness) judge(node string) *natstest.Judge {
	return natstest.StartJudge(h.t, h.srv, h.subj, node, beatEvery)
}

func (h *harness) publish(source string, data []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.js.Publish(ctx, h.subj.Ingest(source), data); err != nil {
		h.t.Fatalf("publish: %v", err)
	}
}

func (h *harness) consumerInfo() *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := h.cons.Info(ctx)
	if err != nil {
		h.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// drained reports whether the stream has nothing pending or unacked.
func (h *harness) drained() bool {
	info := h.consumerInfo()
	return info.NumPending == 0 && info.NumAckPending == 0
}

func val(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// series returns n valid points of distinct series for message i.
func series(i, n int, now int64) []proto.Point {
	pts := make([]proto.Point, n)
	for k := range pts {
		pts[k] = proto.Point{
			Endpoint:  fmt.Sprintf("host%02d", (i*n+k)%13),
			Metric:    fmt.Sprintf("m%d.k%d", i, k),
			Tags:      []proto.Tag{{Key: "dc", Value: "eu"}, {Key: "idx", Value: fmt.Sprint(k % 5)}},
			Value:     float64(i*1000 + k),
			Timestamp: now - 200 + int64(k),
			Type:      proto.Gauge,
			Step:      10,
		}
	}
	return pts
}

type seen struct {
	key string
	ts  int64
}

// collect indexes the judges' points by (series key, timestamp), failing
// on points a judge got that it does not own on ring r (when r != nil).
func collect(t *testing.T, r *ring.Ring, judges ...*natstest.Judge) map[seen]int {
	t.Helper()
	out := map[seen]int{}
	for _, j := range judges {
		for _, p := range j.Points() {
			k := p.Key()
			if r != nil {
				if owner, _ := r.Locate([]byte(k)); owner != j.Node {
					t.Errorf("judge %s got %s owned by %s", j.Node, k, owner)
				}
			}
			if p.Step != 30 || p.Timestamp%30 != 0 {
				t.Errorf("point %s not normalised: step %d ts %d", k, p.Step, p.Timestamp)
			}
			out[seen{k, p.Timestamp}]++
		}
	}
	return out
}

func expected(batches [][]proto.Point) map[seen]int {
	out := map[seen]int{}
	for _, b := range batches {
		for _, p := range b {
			out[seen{p.Key(), proto.AlignTimestamp(p.Timestamp, 30)}]++
		}
	}
	return out
}

func TestEndToEndRoutingAndAcks(t *testing.T) {
	h := newHarness(t, nil, nil)
	j1, j2 := h.judge("judge-1"), h.judge("judge-2")
	wait.For(t, "two judges in the ring", 5*time.Second, func() bool { return h.mem.Ring().Len() == 2 })

	now := time.Now().Unix()
	var valid [][]proto.Point
	const msgs, per = 20, 25
	invalid := 0
	for i := range msgs {
		pts := series(i, per, now)
		valid = append(valid, pts)
		all := append([]proto.Point(nil), pts...)
		if i%4 == 0 {
			// Invalid neighbours: each rejected with its reason, the
			// valid points around them still delivered.
			all = append(all,
				proto.Point{Endpoint: "h", Metric: "kernel.hostname", Value: 1, Timestamp: now, Step: 60},
				proto.Point{Endpoint: "h", Metric: "bad.step", Value: 1, Timestamp: now, Step: 0},
				proto.Point{Endpoint: "h", Metric: "nan", Value: math.NaN(), Timestamp: now, Step: 60},
				proto.Point{Endpoint: "h", Metric: "future", Value: 1, Timestamp: now + 3600, Step: 60},
			)
			invalid += 4
		}
		h.publish(fmt.Sprintf("src%d", i), proto.EncodeBatch(all))
	}
	// A message whose points are all invalid is acked at once.
	h.publish("allbad", proto.EncodeBatch([]proto.Point{{Endpoint: "", Metric: "x", Value: 1, Timestamp: now, Step: 60}}))
	invalid++

	total := msgs * per
	wait.For(t, "every valid point forwarded and every message acked", 20*time.Second, func() bool {
		return val(h.met.PointsForwarded) == float64(total) && val(h.met.MessagesAcked) == msgs+1 && h.drained()
	})
	r, err := ring.New([]string{"judge-2", "judge-1"}, ringConfig(h.cfg)) // an independent ring, as another transfer has
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, r, j1, j2)
	want := expected(valid)
	if len(got) != len(want) {
		t.Fatalf("judges got %d distinct points, want %d", len(got), len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("point %v delivered %d times, want %d", k, got[k], n)
		}
	}
	if len(j1.Points()) == 0 || len(j2.Points()) == 0 {
		t.Errorf("one judge got nothing: %d / %d", len(j1.Points()), len(j2.Points()))
	}
	rej := map[proto.Reason]float64{proto.ReasonHostname: msgs / 4, proto.ReasonBadStep: msgs / 4, proto.ReasonNotFinite: msgs / 4,
		proto.ReasonFuture: msgs / 4, proto.ReasonNoEndpoint: 1}
	for reason, want := range rej {
		if got := val(h.met.PointsRejected.WithLabelValues(reason.String())); got != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := val(h.met.PointsReceived); got != float64(total+invalid) {
		t.Errorf("received = %v, want %v", got, total+invalid)
	}
	if v := val(h.met.PendingPoints); v != 0 {
		t.Errorf("pending points gauge = %v", v)
	}
}

func TestMalformedAndNewerVersion(t *testing.T) {
	h := newHarness(t, nil, nil)
	j := h.judge("judge-1")
	wait.For(t, "judge in the ring", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })

	h.publish("garbage", []byte("this is not a kestrel batch"))
	h.publish("truncated", proto.EncodeBatch(series(0, 3, time.Now().Unix()))[:12])
	// A batch from codec version 2: magic, version 2, then bytes this
	// codec cannot read.
	h.publish("v2", []byte{0xCE, 0x57, 2, 1, 2, 3, 4, 5})
	good := series(1, 5, time.Now().Unix())
	h.publish("good", proto.EncodeBatch(good))

	wait.For(t, "bad messages terminated, v2 naked, good one forwarded", 10*time.Second, func() bool {
		return val(h.met.MessagesTerminated.WithLabelValues(TermMalformed)) == 2 &&
			val(h.met.MessagesNaked.WithLabelValues(NakVersion)) >= 1 &&
			val(h.met.PointsForwarded) == 5 && val(h.met.MessagesAcked) == 1
	})
	// The terminated messages are gone; the naked one waits (nak delay).
	info := h.consumerInfo()
	if info.NumAckPending != 1 {
		t.Errorf("ack pending = %d, want 1 (the v2 batch waiting for its nak delay)", info.NumAckPending)
	}
	if got := len(j.Points()); got != 5 {
		t.Errorf("judge got %d points, want 5", got)
	}
}

func TestAckOnlyAfterReplyAndInProgress(t *testing.T) {
	h := newHarness(t, nil, func(c *config.Config) {
		c.Consumer.AckWait = 600 * time.Millisecond
		c.Consumer.InProgressEvery = 100 * time.Millisecond
		c.Judge.RequestTimeout = 30 * time.Second
	})
	j := h.judge("judge-1")
	wait.For(t, "judge in the ring", 5*time.Second, func() bool { return h.mem.Ring().Len() == 1 })
	j.Hold()
	h.publish("slow", proto.EncodeBatch(series(0, 10, time.Now().Unix())))
	wait.For(t, "request at the judge", 5*time.Second, func() bool { return j.Requests() > 0 })
	// Hold well past ack_wait: the message must stay unacked, be marked in
	// progress, and not be redelivered.
	wait.For(t, "in-progress marks past ack_wait", 10*time.Second, func() bool { return val(h.met.ProgressMarks) >= 10 })
	if info := h.consumerInfo(); info.NumAckPending != 1 || info.NumRedelivered != 0 {
		t.Fatalf("while the judge holds: ack pending %d redelivered %d, want 1 and 0", info.NumAckPending, info.NumRedelivered)
	}
	if v := val(h.met.MessagesAcked); v != 0 {
		t.Fatalf("acked %v before the judge replied", v)
	}
	if v := val(h.met.MessagesReceived); v != 1 {
		t.Fatalf("message received %v times", v)
	}
	j.Release()
	wait.For(t, "ack after reply", 5*time.Second, func() bool { return val(h.met.MessagesAcked) == 1 && h.drained() })
	if n := len(j.Points()); n != 10 {
		t.Fatalf("judge got %d points", n)
	}
}
