package falconhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingesttest"
)

// encoder stands for the publisher, without the network: it
// batch-encodes the points it is given.
type encoder struct {
	e   proto.Encoder
	out []byte
}

func (p *encoder) Publish(_ context.Context, pts []proto.Point) error {
	p.e.Reset()
	for i := range pts {
		p.e.Add(&pts[i])
	}
	p.out = p.e.AppendTo(p.out[:0])
	return nil
}
func (p *encoder) Accepted(string, int)                          {}
func (p *encoder) Rejected(string, proto.Reason, string, string) {}
func (p *encoder) Refused(string, string, error)                 {}

// BenchmarkPush is POST /api/push without the network: the handler
// reads a body of n points, decodes and validates it, batch-encodes the
// points and writes its reply (httptest's request and recorder are made
// per request, their allocations included).
//
//	go test -run X -bench Push -benchmem ./internal/falconhttp/
func BenchmarkPush(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			now := time.Now().Unix()
			mvs := make([]ingesttest.MetricValue, n)
			for i := range mvs {
				mvs[i] = ingesttest.MetricValue{Endpoint: "web-frontend-042.dc1.example.com", Metric: fmt.Sprintf("net.if.in.bytes.%d", i%10),
					Value: float64(i) * 1.37, Step: 60, Type: "COUNTER", Tags: fmt.Sprintf("iface=eth%d,direction=in", i%4), Timestamp: now}
				if i%3 == 0 {
					mvs[i].Value, mvs[i].Type, mvs[i].Tags = fmt.Sprint(i*1234567), "GAUGE", ""
				}
			}
			body, _ := json.Marshal(mvs)
			h := NewHandler(1<<20, &encoder{})
			rd := bytes.NewReader(body)
			b.SetBytes(int64(len(body)))
			report := ingesttest.PerPoint(b, n)
			for b.Loop() {
				rd.Reset(body)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("POST", "/api/push", rd))
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
			report()
		})
	}
}
