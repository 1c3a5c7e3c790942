package proto

import (
	"encoding/json"
	"runtime"
	"strconv"
	"testing"
)

// benchBatch is a typical agent batch: one endpoint, 100 points of a
// collection step, a third of them tagged.
func benchBatch() []Point {
	pts := make([]Point, 100)
	metrics := []string{"cpu.idle", "cpu.user", "mem.memfree.percent", "load.1min", "net.if.in.bytes", "df.bytes.free.percent", "disk.io.util"}
	for i := range pts {
		p := Point{Endpoint: "web-frontend-042.dc1.example.com", Metric: metrics[i%len(metrics)], Timestamp: 1731456000, Step: 60, Value: float64(i) * 1.37}
		if i%3 == 0 {
			p.Tags = []Tag{{"iface", "eth" + strconv.Itoa(i%4)}}
			p.Type = Counter
			p.Value = float64(int64(i) * 1234567)
		}
		pts[i] = p
	}
	return pts
}

func jsonBatch(pts []Point) []byte {
	mvs := make([]MetricValue, len(pts))
	for i := range pts {
		mvs[i] = FromPoint(&pts[i])
	}
	b, _ := json.Marshal(mvs)
	return b
}

// BenchmarkEncode reports ns/point and allocs/point of the binary codec,
// and bytes/point of the batch against the Open-Falcon JSON array.
func BenchmarkEncode(b *testing.B) {
	pts := benchBatch()
	var e Encoder
	var out []byte
	b.ReportAllocs()
	m0 := mallocs()
	for b.Loop() {
		e.Reset()
		for i := range pts {
			e.Add(&pts[i])
		}
		out = e.AppendTo(out[:0])
	}
	reportPerPoint(b, len(pts), m0)
	b.ReportMetric(float64(len(out))/float64(len(pts)), "bin-bytes/point")
	b.ReportMetric(float64(len(jsonBatch(pts)))/float64(len(pts)), "json-bytes/point")
}

func BenchmarkDecode(b *testing.B) {
	pts := benchBatch()
	buf := EncodeBatch(pts)
	var d Decoder
	b.ReportAllocs()
	m0 := mallocs()
	for b.Loop() {
		if _, err := d.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	reportPerPoint(b, len(pts), m0)
}

// BenchmarkJSONDecode is the Open-Falcon JSON path for the same batch,
// for comparison.
func BenchmarkJSONDecode(b *testing.B) {
	pts := benchBatch()
	body := jsonBatch(pts)
	b.ReportAllocs()
	m0 := mallocs()
	for b.Loop() {
		items, _, _, err := DecodeMetricValues(body)
		if err != nil {
			b.Fatal(err)
		}
		for i := range items {
			if _, r := items[i].ToPoint(1731456000); r != OK {
				b.Fatal(r)
			}
		}
	}
	reportPerPoint(b, len(pts), m0)
}

func BenchmarkSeriesKey(b *testing.B) {
	p := benchBatch()[0]
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSeriesKey(buf[:0], p.Endpoint, p.Metric, p.Tags)
	}
}

// reportPerPoint adds ns/point and allocs/point (heap allocations since
// m0, over b.N batches of n points).
func reportPerPoint(b *testing.B, n int, m0 uint64) {
	allocs := mallocs() - m0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/point")
	b.ReportMetric(float64(allocs)/float64(b.N)/float64(n), "allocs/point")
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}
