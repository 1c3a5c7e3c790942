package telnet_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/opentsdb"
	. "github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

// updateLines returns n update lines of 100 hosts × 10 metrics, as an
// agent's script sends them.
func updateLines(n int) []byte {
	var buf bytes.Buffer
	ts := time.Now().Unix() - 60
	for i := range n {
		fmt.Fprintf(&buf, "update host%03d.example.com net.if.in.bytes.%d %d %d.5 COUNTER 60\n", i%100, i%10, ts, 1000+i)
	}
	return buf.Bytes()
}

// BenchLines runs n lines (data) through p's parser, validation and the
// batch encoder, batch by batch as a session does (no network): the cost
// per point of a line listener.
func BenchLines(b *testing.B, p Protocol, data []byte, n, batch int) {
	b.Helper()
	src := bytes.NewReader(data)
	var enc proto.Encoder
	var buf []byte
	publish := func(pts []proto.Point) {
		for i := range pts {
			enc.Add(&pts[i])
		}
		buf = enc.AppendTo(buf[:0])
		enc.Reset()
	}
	x := Offline{Protocol: p, MaxLine: 64 << 10, MaxBatch: batch}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(data)
		if err := x.Run(src, time.Now().Unix(), publish); err != nil || x.Kinds[Added] != n {
			b.Fatalf("%d of %d points added: %v (%v)", x.Kinds[Added], n, x.Kinds, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(n)/float64(b.N), "ns/point")
}

// BenchmarkUpdateLines: update line → Point → ValidatePoint → Encoder.
func BenchmarkUpdateLines(b *testing.B) {
	const n = 10000
	BenchLines(b, Update, updateLines(n), n, 1000)
}

// putLines returns n OpenTSDB put lines of 100 hosts × 10 metrics, with
// three tags as tcollector sends them (the endpoint from host).
func putLines(n int, ms bool) []byte {
	var buf bytes.Buffer
	ts := time.Now().Unix() - 60
	for i := range n {
		if ms {
			fmt.Fprintf(&buf, "put proc.net.bytes.%d %d %d.5 host=web%03d.example.com iface=eth%d direction=in\n", i%10, ts*1000+int64(i%1000), 1000+i, i%100, i%4)
		} else {
			fmt.Fprintf(&buf, "put proc.net.bytes.%d %d %d.5 host=web%03d.example.com iface=eth%d direction=in\n", i%10, ts, 1000+i, i%100, i%4)
		}
	}
	return buf.Bytes()
}

// BenchmarkPutLines: put line → Point (endpoint from the host tag, tags
// sorted) → ValidatePoint → Encoder.
func BenchmarkPutLines(b *testing.B) {
	const n = 10000
	BenchLines(b, opentsdb.Protocol([]string{"endpoint", "host"}), putLines(n, false), n, 1000)
}

// BenchmarkPutLinesMillis: the same with millisecond timestamps.
func BenchmarkPutLinesMillis(b *testing.B) {
	const n = 10000
	BenchLines(b, opentsdb.Protocol([]string{"endpoint", "host"}), putLines(n, true), n, 1000)
}
