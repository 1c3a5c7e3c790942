package proto

import (
	"fmt"
	"strings"
	"testing"
)

// The Open-Falcon JSON edge, decode → validate → batch-encode, no network:
//
//	go test -run X -bench 'DecodeEncode' -benchmem ./proto/
//
// Before is the encoding/json path (DecodeMetricValues, ToPoint), after
// is MVDecoder; both on benchBatch (100 points of one agent, a third
// tagged, numeric values) and on agentBody (100 points as falcon-agent
// and scripts send them: values as strings for some, tags out of order,
// counterType COUNTER for some).
func BenchmarkJSONDecodeEncodeBefore(b *testing.B) {
	for name, body := range benchBodies() {
		b.Run(name, func(b *testing.B) {
			benchDecodeEncode(b, body, func(body []byte) []Point {
				items, _, _, err := DecodeMetricValues(body)
				if err != nil {
					b.Fatal(err)
				}
				pts := make([]Point, 0, len(items))
				for i := range items {
					p, r := items[i].ToPoint(benchNow)
					if r != OK {
						b.Fatal(r)
					}
					pts = append(pts, p)
				}
				return pts
			})
		})
	}
}

func BenchmarkJSONDecodeEncodeAfter(b *testing.B) {
	for name, body := range benchBodies() {
		b.Run(name, func(b *testing.B) {
			var d MVDecoder
			benchDecodeEncode(b, body, func(body []byte) []Point {
				res, err := d.Decode(body, benchNow)
				if err != nil || len(res.Rejected) > 0 {
					b.Fatal(err, res.Rejected)
				}
				return res.Points
			})
		})
	}
}

const benchNow = 1731456000

func benchDecodeEncode(b *testing.B, body []byte, decode func([]byte) []Point) {
	var e Encoder
	var out []byte
	n := len(decode(body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	m0 := mallocs()
	for b.Loop() {
		pts := decode(body)
		e.Reset()
		for i := range pts {
			e.Add(&pts[i])
		}
		out = e.AppendTo(out[:0])
	}
	reportPerPoint(b, n, m0)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

func benchBodies() map[string][]byte {
	return map[string][]byte{"batch": jsonBatch(benchBatch()), "agent": agentBody()}
}

// agentBody is 100 points as falcon-agent plugins and scripts push them.
func agentBody() []byte {
	var s strings.Builder
	s.WriteString("[")
	for i := range 100 {
		if i > 0 {
			s.WriteString(",")
		}
		switch i % 4 {
		case 0:
			fmt.Fprintf(&s, `{"endpoint":"db-replica-17.dc2.example.com","metric":"df.bytes.free.percent","value":%d.%d,"step":60,"counterType":"GAUGE","tags":"mount=/data%d,fstype=ext4","timestamp":%d}`, i, i%10, i, benchNow)
		case 1:
			fmt.Fprintf(&s, `{"endpoint":"db-replica-17.dc2.example.com","metric":"net.if.in.bytes","value":"%d","step":60,"counterType":"COUNTER","tags":"iface=eth%d","timestamp":%d}`, 1234567*i, i%4, benchNow)
		case 2:
			fmt.Fprintf(&s, `{"metric":"mysql.qps","endpoint":"db-replica-17.dc2.example.com","timestamp":%d,"step":60,"value":%d,"counterType":"GAUGE","tags":"port=3306, role=replica"}`, benchNow, i*17)
		default:
			fmt.Fprintf(&s, `{"endpoint":"db-replica-17.dc2.example.com","metric":"cpu.idle","value":%d.5,"step":60,"counterType":"GAUGE","tags":"","timestamp":%d}`, i, benchNow)
		}
	}
	s.WriteString("]")
	return []byte(s.String())
}
