package opentsdb

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// apiPutBody returns a /api/put body of n data points of 100 hosts × 10
// metrics with three tags, as scollector sends them.
func apiPutBody(n int) []byte {
	var buf bytes.Buffer
	ts := time.Now().Unix() - 60
	buf.WriteByte('[')
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"metric":"proc.net.bytes.%d","timestamp":%d,"value":%d.5,"tags":{"host":"web%03d.example.com","iface":"eth%d","direction":"in"}}`,
			i%10, ts, 1000+i, i%100, i%4)
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// BenchmarkAPIPut: a /api/put body → points (decode, validate) → Encoder
// (no network).
func BenchmarkAPIPut(b *testing.B) {
	const n = 1000
	body := apiPutBody(n)
	c := newCodec([]string{"endpoint", "host"}, "v1")
	var enc proto.Encoder
	var out []byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := c.decode(body, time.Now().Unix(), false)
		if err != nil || len(d.points) != n {
			b.Fatalf("%d points, %v %v", len(d.points), err, d.failed)
		}
		for i := range d.points {
			enc.Add(&d.points[i])
		}
		out = enc.AppendTo(out[:0])
		enc.Reset()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(n)/float64(b.N), "ns/point")
}
