package service

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// gated is a Submitter that holds every request until the gate opens.
type gated struct {
	gate chan struct{}
	mu   sync.Mutex
	got  int
}

func (g *gated) Submit(_ []byte, done func(error)) {
	<-g.gate
	g.mu.Lock()
	g.got++
	g.mu.Unlock()
	done(nil)
}

func (g *gated) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.got
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, s := range mf.GetMetric() {
			switch {
			case s.Counter != nil:
				v += s.Counter.GetValue()
			case s.Gauge != nil:
				v += s.Gauge.GetValue()
			}
		}
		return v
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// connect connects to url as the judge does (natsconn, its metrics on
// reg); closed on cleanup.
func connect(t *testing.T, url string, reg *prometheus.Registry, log *slog.Logger) *nats.Conn {
	t.Helper()
	cfg := natsconn.Default()
	cfg.URLs = []string{url}
	nc, err := natsconn.Connect(t.Context(), cfg, natsconn.Options{Name: "judge-test", Log: log, Metrics: natsconn.NewMetrics(reg, "kestrel_judge")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsconn.WaitConnected(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	return nc
}

// When the judge falls behind and its request subscription reaches its
// pending limit, the NATS client drops requests without a word to the
// transfer. Every drop must be counted (requests dropped, slow consumer
// events), the queue depth exported, and a dropped request must get no
// reply, so the transfer's request times out and it sends the points
// again, which the judge then accepts.
func TestSlowConsumerDropsAreCountedAndRetriedRequestsAnswered(t *testing.T) {
	srv := natstest.StartServer(t)
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc := connect(t, srv.ClientURL(), reg, log)
	subj, _ := proto.NewSubjects("kestrel")
	g := &gated{gate: make(chan struct{})}
	svc := New(nc, subj, "j1", g, time.Hour, NewMetrics(reg), log)
	svc.PendingMsgs, svc.PendingBytes = 2, 1<<20
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Leave(t.Context()) })

	transfer, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(transfer.Close)
	const sent = 10
	body := proto.EncodeBatch([]proto.Point{{Endpoint: "h", Metric: "m", Value: 1, Timestamp: 60, Step: 60}})
	type result struct {
		i   int
		err error
	}
	results := make(chan result, sent)
	for i := range sent {
		go func() {
			_, err := transfer.Request(svc.Subject(), body, 2*time.Second)
			results <- result{i, err}
		}()
	}
	// The first request blocks the handler, two wait in the pending queue,
	// the rest are dropped.
	wait.For(t, "slow consumer drops", 10*time.Second, func() bool { return metricValue(t, reg, "kestrel_judge_requests_dropped_total") >= sent-3 })
	wait.For(t, "slow consumer event", 10*time.Second, func() bool { return metricValue(t, reg, "kestrel_judge_nats_async_errors_total") >= 1 }) // kind slow_consumer (other is 0)
	if d := metricValue(t, reg, "kestrel_judge_request_queue_depth"); d < 1 || d > 2 {
		t.Errorf("request queue depth %v, want 1 or 2 (the pending limit)", d)
	}
	close(g.gate)

	var ok, timedOut int
	for range sent {
		r := <-results
		switch {
		case r.err == nil:
			ok++
		case r.err == nats.ErrTimeout:
			timedOut++
		default:
			t.Errorf("request %d: %v", r.i, r.err)
		}
	}
	dropped := int(metricValue(t, reg, "kestrel_judge_requests_dropped_total"))
	if ok != g.count() || ok+dropped != sent || timedOut != dropped {
		t.Fatalf("answered %d, timed out %d, handled %d, dropped (metric) %d: want every request answered or counted as dropped and timed out",
			ok, timedOut, g.count(), dropped)
	}
	// What the transfer does after its timeout: send the points again.
	for i := range timedOut {
		reply, err := transfer.Request(svc.Subject(), body, 5*time.Second)
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if err := proto.DecodeJudgeReply(reply.Data); err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
	}
	if got := g.count(); got != sent {
		t.Fatalf("engine got %d requests after the retries, want %d", got, sent)
	}
	if d := metricValue(t, reg, "kestrel_judge_requests_dropped_total"); int(d) != dropped {
		t.Fatalf("dropped counter moved to %v during the retries", d)
	}
}
