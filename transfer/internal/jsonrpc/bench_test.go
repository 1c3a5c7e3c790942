package jsonrpc

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingesttest"
)

// BenchmarkUpdate is the JSON-RPC edge without the network: a
// Transfer.Update request of 100 points as falcon-agent sends it is
// framed, parsed, decoded and validated, its points batch-encoded and
// its reply written.
//
//	go test -run X -bench Update -benchmem ./internal/jsonrpc/
func BenchmarkUpdate(b *testing.B) {
	now := time.Now()
	mvs := make([]ingesttest.MetricValue, 100)
	for i := range mvs {
		mvs[i] = ingesttest.MetricValue{Endpoint: "web-frontend-042.dc1.example.com", Metric: fmt.Sprintf("net.if.in.bytes.%d", i%10),
			Value: float64(i) * 1.37, Step: 60, Type: "COUNTER", Tags: fmt.Sprintf("iface=eth%d,direction=in", i%4), Timestamp: now.Unix()}
		if i%3 == 0 {
			mvs[i].Value, mvs[i].Type, mvs[i].Tags = fmt.Sprint(i*1234567), "GAUGE", ""
		}
	}
	params, _ := json.Marshal([]any{mvs})
	req := []byte(`{"method":"Transfer.Update","params":` + string(params) + `,"id":12345}` + "\n")
	pub := ingest.NewPublisher(ingest.Config{}, nil, ingest.NewMetrics(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { _ = pub.Stop(b.Context()) })
	s := New(Config{MaxRequestBytes: 1 << 20}, pub, nil)
	c := s.calls.Get().(*call)
	var e proto.Encoder
	var out []byte
	b.SetBytes(int64(len(req)))
	report := ingesttest.PerPoint(b, 100)
	for b.Loop() {
		if _, ok, whole := s.prepare(c, req, now); !ok || !whole || c.kind != kindUpdate || len(c.points) != 100 {
			b.Fatal("request not taken", c.errMsg)
		}
		e.Reset()
		for i := range c.points {
			e.Add(&c.points[i])
		}
		out = e.AppendTo(out[:0])
		c.out = c.reply(c.out[:0])
	}
	report()
}
