// Package ingesttest is what the tests of the client listeners share: a
// real embedded JetStream with the ingest stream, an ingest.Publisher on
// it, ways to read back what was stored and what was counted, Open-Falcon's
// client types, and the per-point figures of the listener benchmarks.
package ingesttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Fixture is a NATS server with JetStream, the ingest stream and a
// publisher; all stopped on cleanup.
type Fixture struct {
	Srv  *server.Server
	JS   jetstream.JetStream
	Subj proto.Subjects
	Pub  *ingest.Publisher
	Met  *ingest.Metrics
	Log  *slog.Logger
}

// New starts a fixture; mod may change the publisher's configuration.
func New(t testing.TB, mod func(*ingest.Config)) *Fixture {
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
	pc := ingest.Config{Subject: subj.Ingest("transfer-test"), Stream: subj.Stream(), MsgIDPrefix: "test", BatchPoints: 500,
		Linger: 5 * time.Millisecond, PublishTimeout: 2 * time.Second, Workers: 2, MaxPendingPoints: 100000, MaxWait: time.Second}
	if mod != nil {
		mod(&pc)
	}
	f := &Fixture{Srv: srv, JS: js, Subj: subj, Met: ingest.NewMetrics(nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Pub = ingest.NewPublisher(pc, js, f.Met, f.Log)
	t.Cleanup(func() { _ = f.Pub.Stop(context.Background()) })
	return f
}

// Stored returns every point in the ingest stream, in stream order.
func (f *Fixture) Stored(t testing.TB) []proto.Point {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := f.JS.Stream(ctx, f.Subj.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pts []proto.Point
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := proto.DecodeBatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		pts = append(pts, batch...)
	}
	return pts
}

// Refused returns the refusals counted for listener and reason.
func (f *Fixture) Refused(listener, reason string) float64 {
	return testutil.ToFloat64(f.Met.Refused.WithLabelValues(listener, reason))
}

// Rejected returns the invalid points counted for listener and reason.
func (f *Fixture) Rejected(listener string, r proto.Reason) float64 {
	return testutil.ToFloat64(f.Met.Rejected.WithLabelValues(listener, r.String()))
}

// Accepted returns the valid points counted for listener.
func (f *Fixture) Accepted(listener string) float64 {
	return testutil.ToFloat64(f.Met.PointsAccepted.WithLabelValues(listener))
}

// WantRefused fails t unless listener counted want refusals for reason.
func (f *Fixture) WantRefused(t testing.TB, listener, reason string, want float64) {
	t.Helper()
	if v := f.Refused(listener, reason); v != want {
		t.Fatalf("%s refusals of %s counted %v, want %v", reason, listener, v, want)
	}
}

// WantStored fails t unless the stream holds want points.
func (f *Fixture) WantStored(t testing.TB, want int) {
	t.Helper()
	if n := len(f.Stored(t)); n != want {
		t.Fatalf("%d points stored, want %d", n, want)
	}
}

// MetricValue and TransferResponse are Open-Falcon's (common/model), as
// falcon-agent and scripts send and read them.
type MetricValue struct {
	Endpoint  string      `json:"endpoint"`
	Metric    string      `json:"metric"`
	Value     interface{} `json:"value"`
	Step      int64       `json:"step"`
	Type      string      `json:"counterType"`
	Tags      string      `json:"tags"`
	Timestamp int64       `json:"timestamp"`
}

type TransferResponse struct {
	Message string
	Total   int
	Invalid int
	Latency int64
}

// Items returns n valid points of host, one series each (tag i=<n>),
// values numbers and numeric strings in turn.
func Items(host string, n int) []*MetricValue {
	now := time.Now().Unix()
	mvs := make([]*MetricValue, n)
	for i := range mvs {
		mvs[i] = &MetricValue{Endpoint: host, Metric: "cpu.idle", Value: float64(i) + 0.5, Step: 60, Type: "GAUGE",
			Tags: fmt.Sprintf("i=%d", i), Timestamp: now}
		if i%2 == 1 {
			mvs[i].Value = fmt.Sprint(i)
		}
	}
	return mvs
}

// PerPoint reports, when the returned func is called after b's loop,
// ns/point, points/s and allocs/point for n points per iteration.
func PerPoint(b *testing.B, n int) func() {
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m0 := ms.Mallocs
	return func() {
		runtime.ReadMemStats(&ms)
		perPoint := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
		b.ReportMetric(perPoint, "ns/point")
		b.ReportMetric(1e9/perPoint, "points/s")
		b.ReportMetric(float64(ms.Mallocs-m0)/float64(b.N)/float64(n), "allocs/point")
	}
}
