package proto

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// refDecode is the encoding/json path MVDecoder must match:
// DecodeMetricValues, then ToPoint on each good item.
func refDecode(body []byte, now int64) (MVResult, error) {
	items, idx, bad, err := DecodeMetricValues(body)
	if err != nil {
		return MVResult{}, err
	}
	var res MVResult
	for _, e := range bad {
		res.Rejected = append(res.Rejected, MVReject{Index: e.Index, Reason: e.Reason})
	}
	for i := range items {
		p, r := items[i].ToPoint(now)
		if r != OK {
			res.Rejected = append(res.Rejected, MVReject{Index: idx[i], Reason: r, Endpoint: items[i].Endpoint, Metric: items[i].Metric})
			continue
		}
		res.Points = append(res.Points, p)
	}
	slices.SortFunc(res.Rejected, func(a, b MVReject) int { return cmp.Compare(a.Index, b.Index) })
	res.Total = len(items) + len(bad)
	return res, nil
}

// diff returns how got differs from the encoding/json path's result for
// body, or "".
func diff(d *MVDecoder, body []byte, now int64) string {
	want, werr := refDecode(body, now)
	got, gerr := d.Decode(body, now)
	switch {
	case (werr == nil) != (gerr == nil):
		return fmt.Sprintf("error %v, encoding/json path: %v", gerr, werr)
	case werr != nil:
		if errors.Is(werr, ErrNotArray) != errors.Is(gerr, ErrNotArray) || (werr.Error() == ErrEmptyBody.Error()) != (gerr == ErrEmptyBody) {
			return fmt.Sprintf("error %v, encoding/json path: %v", gerr, werr)
		}
		return ""
	case got.Total != want.Total:
		return fmt.Sprintf("total %d, want %d", got.Total, want.Total)
	case len(got.Points) != len(want.Points):
		return fmt.Sprintf("%d points, want %d (rejected %+v, want %+v)", len(got.Points), len(want.Points), got.Rejected, want.Rejected)
	case len(got.Rejected) != len(want.Rejected):
		return fmt.Sprintf("rejected %+v, want %+v", got.Rejected, want.Rejected)
	}
	for i := range got.Rejected {
		g, w := got.Rejected[i], want.Rejected[i]
		if g.Index != w.Index || g.Reason != w.Reason {
			return fmt.Sprintf("rejected %+v, want %+v", got.Rejected, want.Rejected)
		}
		if w.Reason != ReasonBadJSON && w.Reason != ReasonNil && (g.Endpoint != w.Endpoint || g.Metric != w.Metric) {
			return fmt.Sprintf("rejected item %d names %q %q, want %q %q", g.Index, g.Endpoint, g.Metric, w.Endpoint, w.Metric)
		}
	}
	for i := range got.Points {
		g, w := got.Points[i], want.Points[i]
		if g.Endpoint != w.Endpoint || g.Metric != w.Metric || g.Value != w.Value || g.Timestamp != w.Timestamp ||
			g.Type != w.Type || g.Step != w.Step || !slices.Equal(g.Tags, w.Tags) {
			return fmt.Sprintf("point %d: %+v, want %+v", i, g, w)
		}
	}
	return ""
}

func TestMVDecoderMatchesEncodingJSON(t *testing.T) {
	var d MVDecoder
	f := func(body string) {
		t.Helper()
		if msg := diff(&d, []byte(body), now); msg != "" {
			t.Errorf("%s\n  body %q", msg, body)
		}
	}
	const ok = `"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE"`
	// Body errors.
	for _, b := range []string{"", " \n", "\v\u00a0", "{}", "nope", "[1,", "[1,]", "[", "]", "[}", "[1]x", "[1] [2]", "[1 2]",
		"[\v1]", `["\x"]`, `["\u12"]`, "[\"a\x01\"]", "[01]", "[-]", "[1.]", "[1e]", "[.5]", "[+1]", "[tru]", "[nul]",
		`[{"a"}]`, `[{"a":}]`, `[{"a":1,}]`, `[{,}]`, `[{"a":1 "b":2}]`, `[{1:2}]`, `[{"a":[1,]}]`, `[{"a":[1}]`, `[{"a":{]}]`,
		"[\"\xff", `[{"value":"1`} {
		f(b)
	}
	// Shapes of items and of the array.
	for _, b := range []string{"[]", " [ ] ", "\u00a0[]\v", "[null]", "[ null , 1 ]", `[true,false,"x",1.5,[],{}]`, `[[{"metric":"m"}]]`,
		`[{}]`, "[{" + ok + "}]", "[\n{" + ok + "}\n,\t{" + ok + ",\"tags\":\"a=1\"}\r]",
		`[{"endpoint":"h","metric":"m","value":1,"step":"60","counterType":"GAUGE"}]`,
		`[{` + ok + `,"step":60.0}]`, `[{` + ok + `,"step":6e1}]`, `[{` + ok + `,"step":-0}]`,
		`[{` + ok + `,"step":9223372036854775807}]`, `[{` + ok + `,"step":9223372036854775808}]`,
		`[{` + ok + `,"timestamp":-9223372036854775808}]`, `[{` + ok + `,"timestamp":-9223372036854775809}]`,
		`[{` + ok + `,"timestamp":99999999999999999999999}]`, `[{` + ok + `,"timestamp":1e3}]`,
		`[{` + ok + `,"timestamp":true}]`, `[{` + ok + `,"timestamp":null}]`, `[{` + ok + `,"timestamp":{}}]`,
		`[{` + ok + `,"endpoint":null}]`, `[{` + ok + `,"endpoint":1}]`, `[{` + ok + `,"endpoint":["h"]}]`, `[{` + ok + `,"tags":{"a":"b"}}]`,
		`[{` + ok + `,"extra":{"deep":[1,{"x":null}]},"more":"\u0000"}]`,
	} {
		f(b)
	}
	// Values: numbers, numeric strings, everything else; the last of a
	// repeated key wins; null is a value (not numeric).
	for _, v := range []string{`1`, `-1.5e3`, `0`, `-0`, `1e999`, `-1e999`, `1E-400`, `"1"`, `" 2 "`, `"\u0031"`, `""`, `" "`, `"\u0020"`,
		`"\t"`, `"\u00a0"`, `"abc"`, `"NaN"`, `"inf"`, `"-Infinity"`, `"0x10"`, `"0x1p-2"`, `"1_0"`, `"1e999"`, `true`, `false`, `null`,
		`{}`, `[1]`, `"1,5"`, `" 1\n"`, `"\ud800"`} {
		f(`[{"endpoint":"h","metric":"m","value":` + v + `,"step":60,"counterType":"GAUGE"}]`)
	}
	f(`[{"endpoint":"h","metric":"m","step":60,"counterType":"GAUGE"}]`)
	f(`[{"value":1,` + ok[:len(ok)-len(`,"counterType":"GAUGE"`)] + `,"value":"x","counterType":"GAUGE"}]`)
	f(`[{` + ok + `,"value":null}]`)
	f(`[{` + ok + `,"metric":"m2","metric":null}]`)
	// Keys: encoding/json matches them without case, with Unicode folding
	// (ſ is s, K is k), after decoding escapes.
	for _, k := range []string{`"METRIC"`, `"Metric"`, `"meTric"`, `"\u006detric"`, `"counterTYPE"`, `"COUNTERTYPE"`, `"ſtep"`, `"tagſ"`,
		`"timeſtamp"`, `"ſtEp"`, `"metrıc"`, `"met\u0072ic"`, `"metric "`, `"metri"`, `"metrics"`, `"valuE"`, `"vaLue"`, "\"\\u017ftep\"",
		"\"\u212aey\"", `"endpoınt"`} {
		f(`[{"endpoint":"h","value":1,"step":60,"counterType":"GAUGE","metric":"m",` + k + `:"k1","` + `tags":"a=1"}]`)
		f(`[{"endpoint":"h","value":1,"step":60,"counterType":"GAUGE","metric":"m",` + k + `:7}]`)
	}
	// Strings: escapes, invalid UTF-8, surrogates, control characters.
	for _, s := range []string{`h\n`, `h\u0000`, `h\u0085`, "h\u0085", `\ud83d\ude00`, `\ud83d`, `\ud83dx`, `\ude00\ud83d`, `\ud83d\u0041`,
		`\ud83d\ud83d\ude00`, "h\xff", "h\xc2", "\xc2\x85", "\xe2\x82", `\/\"\\\b\f\r\t`, "hôte", `h\u00e9`, strings.Repeat("e", 255),
		strings.Repeat("e", 256), strings.Repeat(`\u0065`, 256)} {
		f(`[{"endpoint":"` + s + `","metric":"m","value":1,"step":60,"counterType":"GAUGE"}]`)
		f(`[{"endpoint":"h","metric":"m` + s + `","value":1,"step":60,"counterType":"GAUGE"}]`)
		f(`[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"a=` + s + `"}]`)
	}
	// Tags: spaces removed, parts without "=" dropped, sorted, last wins,
	// the limits.
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("k%02d=v", i)
	}
	for _, tg := range []string{"", "a=1", "b=1,a=2", " b = 1 , a=2 ", "a=1,a=2", "b=1,a=2,b=3,a=4", "novalue,a=1", "a=1,", ",", "=",
		"a=1,=x", "=x,a=1", "a==b", "a=1,b", "a=\x01", "junk\x01,a=1", strings.Join(many, ","), strings.Join(many[:32], ","),
		strings.Join(many[:33], ","), strings.Join(many[:32], ",") + ",k00=again", "z=1,y=2,x=3,w=4,v=5,u=6,t=7,s=8,r=9,q=0",
		strings.Repeat("x", 509), strings.Repeat("x", 510), strings.Repeat(" ", 600) + "a=1"} {
		f(`[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"` + tg + `"}]`)
	}
	// Every rule, and their order.
	for _, m := range []string{
		`"metric":"kernel.hostname","endpoint":"","value":"","step":0,"counterType":"x"`,
		`"metric":"","endpoint":"h\u0000","value":1,"step":60,"counterType":"GAUGE"`,
		`"metric":"m","endpoint":"","value":"","step":0,"counterType":"x"`,
		`"metric":"m","endpoint":"h","value":"","step":0,"counterType":"x"`,
		`"metric":"m","endpoint":"h","value":"","step":0,"counterType":"GAUGE"`,
		`"metric":"m","endpoint":"h","value":" ","step":0,"counterType":"GAUGE"`,
		`"metric":"m","endpoint":"h","step":0,"counterType":"COUNTER"`,
		`"metric":"m","endpoint":"h","value":"x","step":2147483648,"counterType":"DERIVE","tags":"=1"`,
		`"metric":"m","endpoint":"h","value":"x","step":2147483647,"counterType":"DERIVE","tags":"=1"`,
		`"metric":"` + strings.Repeat("m", 511) + `","endpoint":"h","value":"x","step":60,"counterType":"GAUGE"`,
		`"metric":"` + strings.Repeat("m", 500) + `","endpoint":"h","value":"x","step":60,"counterType":"GAUGE","tags":"a=1234567890"`,
		`"metric":"m","endpoint":"` + strings.Repeat("e", 300) + `","value":"x","step":60,"counterType":"GAUGE","tags":"a=\u0001"`,
		`"metric":"m","endpoint":"` + strings.Repeat("e", 300) + `","value":"x","step":60,"counterType":"GAUGE","timestamp":9999999999`,
		`"metric":"m","endpoint":"h","value":"x","step":60,"counterType":"GAUGE","timestamp":9999999999`,
		`"metric":"m","endpoint":"h","value":" ","step":60,"counterType":"GAUGE","timestamp":1700000600`,
		`"metric":"m","endpoint":"h","value":"1e999","step":60,"counterType":"GAUGE","timestamp":1700000601`,
		`"metric":"m","endpoint":"h","value":"NaN","step":60,"counterType":"GAUGE","timestamp":-5`,
		`"metric":"m","endpoint":"h","value":7,"step":60,"counterType":"GAUGE","timestamp":0`,
	} {
		f(`[{` + m + `}]`)
	}
	// Nesting: encoding/json refuses more than 10000 levels.
	for _, n := range []int{9997, 9998, 9999, 10000} {
		f(`[{"metric":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}]`)
		f(`[` + strings.Repeat("[", n) + strings.Repeat("]", n) + `]`)
		f(`[{"x":` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + `}]`)
	}
	// Many items, the decoder reused: nothing of one body leaks into the
	// next.
	var big strings.Builder
	big.WriteString("[")
	for i := range 1000 {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"endpoint":"host%d","metric":"m.%d","value":%d,"step":60,"counterType":"GAUGE","tags":"i=%d, j = %d","timestamp":%d}`,
			i%7, i%13, i, i, i%3, now-int64(i))
		if i%10 == 0 {
			big.WriteString(`,null,{"value":"x"}`)
		}
	}
	big.WriteString("]")
	f(big.String())
	f(`[{"endpoint":"other","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"i=1"}]`)
}

// A rejected item names its endpoint and metric, for the log; the
// result of a body that fails is empty.
func TestMVDecoderRejectsAndFails(t *testing.T) {
	var d MVDecoder
	res, err := d.Decode([]byte(`[{"endpoint":"h1","metric":"m1","value":"x","step":60,"counterType":"GAUGE"},{"metric":"kernel.hostname"}]`), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 2 || res.Rejected[0].Endpoint != "h1" || res.Rejected[0].Metric != "m1" || res.Rejected[0].Reason != ReasonBadValue ||
		res.Rejected[1].Reason != ReasonHostname || res.Rejected[1].Index != 1 {
		t.Fatalf("rejected %+v", res.Rejected)
	}
	res, err = d.Decode([]byte(`[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE"}, nope]`), now)
	var je *JSONError
	if !errors.As(err, &je) || je.Offset != 75 || len(res.Points) != 0 || res.Total != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}
	if _, err := d.Decode(nil, now); err != ErrEmptyBody {
		t.Fatalf("empty body: %v", err)
	}
	if _, err := d.Decode([]byte(` {"a":1}`), now); err != ErrNotArray {
		t.Fatalf("object: %v", err)
	}
}

// Points stay valid after body is overwritten: the decoder copies what
// it keeps.
func TestMVDecoderOwnsStrings(t *testing.T) {
	var d MVDecoder
	body := []byte(`[{"endpoint":"host","metric":"cpu","value":1,"step":60,"counterType":"GAUGE","tags":"b=2, a=1"}]`)
	res, err := d.Decode(body, now)
	if err != nil || len(res.Points) != 1 {
		t.Fatal(res, err)
	}
	for i := range body {
		body[i] = 'X'
	}
	if p := res.Points[0]; p.Key() != "host/cpu/a=1,b=2" {
		t.Fatalf("point changed with the body: %s", p.Key())
	}
}

// Steady state: decoding a body of the kind already seen allocates
// nothing, tags out of order included.
func TestMVDecoderZeroAllocs(t *testing.T) {
	body := jsonBatch(benchBatch())
	unsorted := []byte(`[{"endpoint":"h","metric":"df.bytes.free","value":"12.5","step":60,"counterType":"GAUGE","tags":"mount=/, fstype=ext4","timestamp":1700000000}]`)
	var d MVDecoder
	const at = 1731456000 // benchBatch's time
	for _, b := range [][]byte{body, unsorted} {
		if res, err := d.Decode(b, at); err != nil || len(res.Rejected) != 0 {
			t.Fatal(res.Rejected, err)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = d.Decode(b, at) }); n != 0 {
			t.Errorf("%v allocations per body of %d bytes", n, len(b))
		}
	}
}

func FuzzMVDecoder(f *testing.F) {
	for _, s := range []string{
		`[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"a=1","timestamp":1}]`,
		`[null, 1, "x", {"value":"1e999"}]`,
		`[{"value":{"x":[1]}}]`,
		`[{"endpoint":"h\u0000","metric":"m\u0085","value":1,"step":60,"counterType":"GAUGE","tags":"novalue,=x,a=\t"}]`,
		`[{"Endpoint":"h","METRIC":"m","vAlue":" 2 ","ſtep":60,"counterType":"DERIVE","tagſ":" b=1 , a=2,b=3","timestamp":1700000000}]`,
		`[{"endpoint":"\ud83d\ude00","metric":"m\xff","value":"\u0031","step":1,"counterType":"COUNTER","timestamp":-1}]`,
		`[{"endpoint":"h","metric":"m","value":1,"step":60.5,"counterType":"GAUGE"},{"step":null,"value":null}]`,
		`[[[[]]], {"a":{"b":[true,false,null]}}]`,
		"\v [ ] \u00a0",
	} {
		f.Add([]byte(s))
	}
	var d MVDecoder
	f.Fuzz(func(t *testing.T, body []byte) {
		if msg := diff(&d, body, now); msg != "" {
			t.Fatalf("%s\n  body %q", msg, body)
		}
	})
}
