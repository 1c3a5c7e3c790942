package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/proto"
)

func benchBatch(n int, metric string) []proto.Point {
	pts := make([]proto.Point, n)
	for i := range pts {
		pts[i] = gauge(fmt.Sprintf("host%03d", i), metric, 0, 50, proto.Tag{Key: "app", Value: "web"})
	}
	return pts
}

func runBench(b *testing.B, metric string) {
	r := redistest.Start(b)
	f := newEngine(b, r.Addr, cpuRules)
	pts := benchBatch(1000, metric)
	ctx := context.Background()
	ts := int64(0)
	step := func() {
		ts += 60
		for i := range pts {
			pts[i].Timestamp = ts
		}
		if err := f.e.Process(ctx, pts); err != nil {
			b.Fatal(err)
		}
	}
	for range 12 { // fill windows and load alarm states
		step()
	}
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
}

// BenchmarkBatchNoRules: 1000 points of a metric without rules.
func BenchmarkBatchNoRules(b *testing.B) { runBench(b, "no.rules") }

// BenchmarkBatchOneRuleNoTransition: 1000 points, one matching expression
// (all(#3) > 90 on value 50: evaluated, never triggered).
func BenchmarkBatchOneRuleNoTransition(b *testing.B) { runBench(b, "demo.load") }

// BenchmarkSubmit: the request path (decode, split by shard, workers,
// reply) for a 1000-point batch with one matching rule.
func BenchmarkSubmit(b *testing.B) {
	r := redistest.Start(b)
	f := newEngine(b, r.Addr, cpuRules)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.e.Start(ctx)
	defer f.e.Stop()
	pts := benchBatch(1000, "demo.load")
	var enc proto.Encoder
	var buf []byte
	done := make(chan error, 1)
	cb := func(err error) { done <- err }
	ts := int64(0)
	step := func() {
		ts += 60
		enc.Reset()
		for i := range pts {
			pts[i].Timestamp = ts
			enc.Add(&pts[i])
		}
		buf = enc.AppendTo(buf[:0])
		f.e.Submit(buf, cb)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	for range 12 {
		step()
	}
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
}
