package forward

import (
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/proto"
)

// memMsg is an in-memory stand-in for a JetStream message, used only where
// no broker is involved: the benchmark, the fuzz test of the routing path
// and the message-operation failure test. With fail set, every operation
// is counted and returns fail.
type memMsg struct {
	data                          []byte
	acks, naks, terms, inProgress int
	fail                          error
}

func (m *memMsg) Data() []byte                     { return m.data }
func (m *memMsg) Ack() error                       { m.acks++; return m.fail }
func (m *memMsg) Nak() error                       { m.naks++; return m.fail }
func (m *memMsg) NakWithDelay(time.Duration) error { m.naks++; return m.fail }
func (m *memMsg) InProgress() error                { m.inProgress++; return m.fail }
func (m *memMsg) Term() error                      { m.terms++; return m.fail }

// localEngine returns an engine over a ring of judges that never sends:
// replyAll plays the judges' +OK replies in the loop goroutine.
func localEngine(tb testing.TB, judges int) *Engine {
	tb.Helper()
	cfg := testConfig()
	met := NewMetrics(nil)
	mem, err := membership.New(membership.Config{Timeout: time.Hour, RejoinHold: time.Second, SuspectAfter: 3, Ring: ringConfig(cfg)}, testLogger(), membership.NewMetrics(nil, "kestrel_transfer"))
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	mem.StartWarmUp(now.Add(-2 * time.Hour))
	for i := range judges {
		mem.Handle(proto.MemberMsg{Node: fmt.Sprintf("judge-%d", i), Kind: proto.MemberBeat}, now)
	}
	mem.Expire(now) // warm-up long over: ready
	e := New(Config{MinStep: 30, BatchPoints: 1000, Linger: time.Hour, RetryBackoff: time.Millisecond, MaxBackoff: time.Second,
		MaxInflight: 4, FetchBatch: 100, InProgressEvery: time.Hour, NakDelay: time.Second, ShutdownTimeout: time.Second},
		cfg.Subjects(), nil, mem, met, testLogger())
	e.syncRing(now)
	return e
}

// replyAll seals every judge's batch, encodes it as send does, and
// completes it as if the judge had answered +OK.
func (e *Engine) replyAll(now time.Time) {
	for _, js := range e.judges {
		if js.cur != nil {
			js.ready = append(js.ready, js.cur)
			js.cur = nil
		}
		for _, b := range js.ready {
			b.data = b.enc.AppendTo(b.data[:0])
			js.inflight++
			e.inflight++
			e.complete(b, now)
		}
		clear(js.ready)
		js.ready = js.ready[:0]
	}
}

func benchBatch(n int) []byte {
	now := time.Now().Unix()
	pts := make([]proto.Point, n)
	for i := range pts {
		pts[i] = proto.Point{
			Endpoint: fmt.Sprintf("host%03d", i%50), Metric: fmt.Sprintf("disk.io.m%d", i%10),
			Tags:  []proto.Tag{{Key: "dc", Value: "eu1"}, {Key: "device", Value: fmt.Sprintf("sd%c", 'a'+i%4)}},
			Value: float64(i) * 1.5, Timestamp: now - 60, Type: proto.Gauge, Step: 60,
		}
	}
	return proto.EncodeBatch(pts)
}

const benchPoints = 100

// BenchmarkRoutePoint measures the per-point routing path: decode,
// validate, normalise, series key, ring lookup, encode into the owner's
// batch, and the ack bookkeeping when the judge answers.
func BenchmarkRoutePoint(b *testing.B) {
	e := localEngine(b, 3)
	msg := &memMsg{data: benchBatch(benchPoints)}
	now := time.Now()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		e.handle(msg, now)
		e.replyAll(now)
		n++
	}
	if msg.acks != n {
		b.Fatalf("acked %d of %d", msg.acks, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*benchPoints), "ns/point")
}

// TestRoutePointAllocs checks the steady state allocates nothing per
// point: per 100-point message, only per-batch costs remain.
func TestRoutePointAllocs(t *testing.T) {
	e := localEngine(t, 3)
	msg := &memMsg{data: benchBatch(benchPoints)}
	now := time.Now()
	for range 10 { // warm up pools, interning, encoders
		e.handle(msg, now)
		e.replyAll(now)
	}
	allocs := testing.AllocsPerRun(200, func() {
		e.handle(msg, now)
		e.replyAll(now)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per %d-point message, want 0", allocs, benchPoints)
	}
	t.Logf("%.1f allocations per %d-point message", allocs, benchPoints)
	if msg.acks != 211 || e.pending != 0 || e.held != 0 {
		t.Fatalf("acks %d pending %d held %d", msg.acks, e.pending, e.held)
	}
}

// FuzzHandle feeds arbitrary ingest bytes through the routing path: it
// must never panic, and every message must end acked, terminated or naked
// with no point left pending.
func FuzzHandle(f *testing.F) {
	f.Add(benchBatch(3))
	f.Add([]byte{0xCE, 0x57, 2, 0})
	f.Add([]byte{0xCE, 0x57, 1, 1})
	f.Add([]byte("garbage"))
	f.Add(proto.EncodeBatch([]proto.Point{{Endpoint: "h", Metric: "kernel.hostname", Step: 60, Timestamp: 1}}))
	e := localEngine(f, 2)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := &memMsg{data: data}
		now := time.Now()
		e.handle(msg, now)
		e.replyAll(now)
		if msg.acks+msg.naks+msg.terms != 1 {
			t.Fatalf("message settled %d times (ack %d nak %d term %d)", msg.acks+msg.naks+msg.terms, msg.acks, msg.naks, msg.terms)
		}
		if e.pending != 0 || e.held != 0 {
			t.Fatalf("pending %d held %d", e.pending, e.held)
		}
	})
}
