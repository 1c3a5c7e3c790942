package proto

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func samplePoints() []Point {
	return []Point{
		{Endpoint: "host01", Metric: "cpu.idle", Value: 97.5, Timestamp: 1431349740, Type: Gauge, Step: 60},
		{Endpoint: "host01", Metric: "df.bytes.free.percent", Tags: []Tag{{"fstype", "ext4"}, {"mount", "/"}}, Value: 42, Timestamp: 1431349740, Type: Gauge, Step: 60},
		{Endpoint: "host01", Metric: "net.if.in.bytes", Tags: []Tag{{"iface", "eth0"}}, Value: 1234567890123, Timestamp: 1431349741, Type: Counter, Step: 60},
		{Endpoint: "host02", Metric: "x", Value: -0.0001, Timestamp: 1, Type: Derive, Step: 1},
		{Endpoint: "host02", Metric: "neg", Value: -5, Timestamp: 0, Type: Gauge, Step: 30},
		{Endpoint: "host02", Metric: "big", Value: math.MaxFloat64, Timestamp: 1 << 40, Type: Gauge, Step: math.MaxInt32},
		{Endpoint: "host02", Metric: "negzero", Value: math.Copysign(0, -1), Timestamp: 5, Type: Gauge, Step: 10},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	pts := samplePoints()
	b := EncodeBatch(pts)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if len(got) != len(pts) {
		t.Fatalf("decoded %d points, want %d", len(got), len(pts))
	}
	for i := range pts {
		if !reflect.DeepEqual(got[i], pts[i]) {
			t.Errorf("point %d: got %#v, want %#v", i, got[i], pts[i])
		}
		if math.Signbit(got[i].Value) != math.Signbit(pts[i].Value) {
			t.Errorf("point %d: sign of value lost", i)
		}
	}
}

func TestBatchLen(t *testing.T) {
	for _, n := range []int{0, 1, 7, 300} {
		pts := make([]Point, n)
		for i := range pts {
			pts[i] = Point{Endpoint: "h", Metric: "m", Step: 60, Timestamp: int64(i)}
		}
		if got, err := BatchLen(EncodeBatch(pts)); err != nil || got != n {
			t.Errorf("BatchLen of %d points = %d, %v", n, got, err)
		}
	}
	if _, err := BatchLen([]byte{0xCE, 0x57, CodecVersion + 1, 1}); !IsVersionError(err) {
		t.Errorf("newer batch: %v", err)
	}
	for _, b := range [][]byte{nil, []byte("nope"), {0xCE, 0x57, 1}, {0xCE, 0x57, 1, 0xFF, 0xFF, 0x03}} {
		if _, err := BatchLen(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("BatchLen(%x) = %v, want ErrMalformed", b, err)
		}
	}
}

func TestEmptyBatch(t *testing.T) {
	got, err := DecodeBatch(EncodeBatch(nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty batch: %v, %d points", err, len(got))
	}
}

func TestDecoderReuse(t *testing.T) {
	var d Decoder
	a := EncodeBatch(samplePoints())
	b := EncodeBatch(samplePoints()[:2])
	for range 3 {
		pts, err := d.Decode(a)
		if err != nil || len(pts) != 7 {
			t.Fatalf("decode a: %v %d", err, len(pts))
		}
		pts, err = d.Decode(b)
		if err != nil || len(pts) != 2 {
			t.Fatalf("decode b: %v %d", err, len(pts))
		}
		if !reflect.DeepEqual(pts[1], samplePoints()[1]) {
			t.Fatalf("reused decoder: got %#v", pts[1])
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := EncodeBatch(samplePoints())
	newer := append([]byte{}, good...)
	newer[2] = CodecVersion + 1
	_, err := DecodeBatch(newer)
	if !IsVersionError(err) || errors.Is(err, ErrMalformed) {
		t.Fatalf("newer version: got %v, want a *VersionError", err)
	}
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Version != CodecVersion+1 {
		t.Fatalf("VersionError.Version: %v", err)
	}
	if v, err := PeekVersion(newer); err != nil || v != CodecVersion+1 {
		t.Fatalf("PeekVersion = %d, %v", v, err)
	}
	older := append([]byte{}, good...)
	older[2] = 0
	bad := [][]byte{
		nil,
		{},
		{0xCE},
		[]byte(`[{"endpoint":"x"}]`),
		older,
		good[:len(good)-1],
		append(append([]byte{}, good...), 0),
		{0xCE, 0x57, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F},                                // absurd count
		{0xCE, 0x57, 1, 1, 3, 0},                                                     // reference to a string not in the table
		{0xCE, 0x57, 1, 1, 2, 'a', 2, 'b', 0xF0, 1, 0, 0, 0},                         // bad flags
		{0xCE, 0x57, 1, 1, 2, 'a', 2, 'b', 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0}, // step too large
	}
	for i, b := range bad {
		_, err := DecodeBatch(b)
		if err == nil {
			t.Errorf("case %d: no error for %x", i, b)
			continue
		}
		if !errors.Is(err, ErrMalformed) || IsVersionError(err) {
			t.Errorf("case %d: got %v, want ErrMalformed", i, err)
		}
	}
}

func TestStringTableSharesRepeats(t *testing.T) {
	pts := make([]Point, 100)
	for i := range pts {
		pts[i] = Point{Endpoint: "a-rather-long-endpoint-name.example.com", Metric: "cpu.idle", Value: float64(i), Timestamp: 1700000000, Step: 60}
	}
	b := EncodeBatch(pts)
	// The endpoint and metric are written once; each further point costs
	// a handful of bytes.
	if len(b) > 100*12 {
		t.Fatalf("batch of 100 repeated points is %d bytes, want the endpoint shared", len(b))
	}
}

func TestSplitBatches(t *testing.T) {
	pts := make([]Point, 500)
	for i := range pts {
		pts[i] = Point{Endpoint: "host", Metric: "m", Tags: []Tag{{"seq", string(rune('a' + i%26))}}, Value: float64(i) + 0.5, Timestamp: int64(1700000000 + i), Step: 60}
	}
	const max = 512
	batches, err := SplitBatches(pts, max)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) < 2 {
		t.Fatalf("expected several batches, got %d", len(batches))
	}
	var all []Point
	for i, b := range batches {
		if len(b) > max {
			t.Errorf("batch %d is %d bytes > %d", i, len(b), max)
		}
		got, err := DecodeBatch(b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		all = append(all, got...)
	}
	if !reflect.DeepEqual(all, pts) {
		t.Fatalf("split batches do not reassemble the input")
	}
	huge := []Point{{Endpoint: string(make([]byte, 1000)), Metric: "m", Step: 1}}
	if _, err := SplitBatches(huge, max); err == nil {
		t.Fatalf("a point larger than the limit must be an error")
	}
}

func TestEncoderLenMatchesBytes(t *testing.T) {
	var e Encoder
	for _, p := range samplePoints() {
		e.Add(&p)
		if got := len(e.Bytes()); got != e.Len() {
			t.Fatalf("Len() = %d, len(Bytes()) = %d", e.Len(), got)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(samplePoints()))
	f.Add(EncodeBatch(nil))
	f.Add([]byte{0xCE, 0x57, 2})
	f.Add([]byte{0xCE, 0x57, 1, 1, 3})
	f.Add(EncodeBatch([]Point{{Endpoint: "h\x00", Metric: "m\u0085", Tags: []Tag{{"", "x"}, {"a", "\t"}}, Timestamp: 1, Step: 60}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Decoder
		pts, err := d.Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !IsVersionError(err) {
				t.Fatalf("error %v is neither ErrMalformed nor a version error", err)
			}
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := DecodeBatch(EncodeBatch(pts))
		if err != nil {
			t.Fatalf("re-encode of decoded batch fails: %v", err)
		}
		if len(again) != len(pts) {
			t.Fatalf("re-encode: %d points, want %d", len(again), len(pts))
		}
		for i := range pts {
			a, b := again[i], pts[i]
			same := a.Endpoint == b.Endpoint && a.Metric == b.Metric && a.Timestamp == b.Timestamp &&
				a.Type == b.Type && a.Step == b.Step && len(a.Tags) == len(b.Tags) &&
				math.Float64bits(a.Value) == math.Float64bits(b.Value)
			if !same {
				t.Fatalf("point %d: %#v != %#v", i, a, b)
			}
			// What validation accepts is clean.
			if ValidatePoint(&b, 1_700_000_000) == OK {
				for _, s := range append([]string{b.Endpoint, b.Metric}, tagStrings(b.Tags)...) {
					if strings.ContainsFunc(s, unicode.IsControl) {
						t.Fatalf("point %d: ValidatePoint accepted a control character: %#v", i, b)
					}
				}
				for _, tg := range b.Tags {
					if tg.Key == "" {
						t.Fatalf("point %d: ValidatePoint accepted an empty tag key: %#v", i, b)
					}
				}
			}
		}
	})
}
