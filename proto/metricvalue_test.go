package proto

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode"
)

const now = 1700000000

func mv(endpoint, metric, value string, step int64, ct, tags string, ts int64) MetricValue {
	m := MetricValue{Endpoint: endpoint, Metric: metric, Step: step, CounterType: ct, Tags: tags, Timestamp: ts}
	if value != "" {
		m.Value = json.RawMessage(value)
	}
	return m
}

func TestToPointReasons(t *testing.T) {
	long := strings.Repeat("m", 500)
	manyTags := make([]string, 33)
	for i := range manyTags {
		manyTags[i] = string(rune('a'+i%26)) + string(rune('a'+i/26)) + "=1"
	}
	f := func(m MetricValue, want Reason) {
		t.Helper()
		_, got := m.ToPoint(now)
		if got != want {
			t.Errorf("ToPoint(%#v) = %v, want %v", m, got, want)
		}
	}
	f(mv("h", "cpu.idle", "1", 60, "GAUGE", "", now), OK)
	f(mv("h", "cpu.idle", `"1.5"`, 60, "COUNTER", "a=1", now), OK)
	f(mv("h", "cpu.idle", `" 2 "`, 60, "DERIVE", "", now), OK)
	f(mv("h", "kernel.hostname", "1", 60, "GAUGE", "", now), ReasonHostname)
	f(mv("h", "", "1", 60, "GAUGE", "", now), ReasonNoMetric)
	f(mv("", "m", "1", 60, "GAUGE", "", now), ReasonNoEndpoint)
	f(mv("h", "m", "1", 60, "gauge", "", now), ReasonCounterType)
	f(mv("h", "m", "1", 60, "", "", now), ReasonCounterType)
	f(mv("h", "m", "", 60, "GAUGE", "", now), ReasonNoValue)
	f(mv("h", "m", `""`, 60, "GAUGE", "", now), ReasonNoValue)
	f(mv("h", "m", "1", 0, "GAUGE", "", now), ReasonBadStep)
	f(mv("h", "m", "1", -60, "GAUGE", "", now), ReasonBadStep)
	f(mv("h", "m", "1", 1<<40, "GAUGE", "", now), ReasonBadStep)
	f(mv("h", long, "1", 60, "GAUGE", strings.Repeat("t", 11), now), ReasonTooLong)
	f(mv("h", "m", "1", 60, "GAUGE", strings.Join(manyTags, ","), now), ReasonTooManyTags)
	f(mv(strings.Repeat("e", 256), "m", "1", 60, "GAUGE", "", now), ReasonEndpointLong)
	f(mv(strings.Repeat("e", 255), "m", "1", 60, "GAUGE", "", now), OK)
	f(mv("h", "m", "1", 60, "GAUGE", "", now+601), ReasonFuture)
	f(mv("h", "m", "1", 60, "GAUGE", "", now+600), OK)
	f(mv("h", "m", "true", 60, "GAUGE", "", now), ReasonBadValue)
	f(mv("h", "m", "null", 60, "GAUGE", "", now), ReasonBadValue)
	f(mv("h", "m", `{"a":1}`, 60, "GAUGE", "", now), ReasonBadValue)
	f(mv("h", "m", `"abc"`, 60, "GAUGE", "", now), ReasonBadValue)
	f(mv("h", "m", `"NaN"`, 60, "GAUGE", "", now), ReasonNotFinite)
	f(mv("h", "m", `"Inf"`, 60, "GAUGE", "", now), ReasonNotFinite)
	f(mv("h", "m", `"-inf"`, 60, "GAUGE", "", now), ReasonNotFinite)
	f(mv("h", "m", `"1e999"`, 60, "GAUGE", "", now), ReasonNotFinite)
	f(mv("h", "m", `1e999`, 60, "GAUGE", "", now), ReasonNotFinite)
	// Control characters (C0, DEL, C1) in the endpoint, the metric or a
	// tag, and a tag with an empty key, are rejected.
	for _, c := range []string{"\x00", "\t", "\n", "\r", "\x1f", "\x7f", "\u0080", "\u009f"} {
		f(mv("h", "cpu"+c+"idle", "1", 60, "GAUGE", "", now), ReasonMetricControl)
		f(mv("h"+c, "m", "1", 60, "GAUGE", "", now), ReasonEndpointControl)
		f(mv("h", "m", "1", 60, "GAUGE", "a=1,b=x"+c, now), ReasonTagControl)
		f(mv("h", "m", "1", 60, "GAUGE", "k"+c+"=1", now), ReasonTagControl)
	}
	f(mv("h", "m", "1", 60, "GAUGE", "a=1,junk\x00", now), ReasonTagControl) // even in a part that is dropped
	f(mv("h", "m", "1", 60, "GAUGE", "novalue,=x", now), ReasonTagEmptyKey)
	f(mv("h", "m", "1", 60, "GAUGE", "a=1,=", now), ReasonTagEmptyKey)
	f(mv("h", "m", "1", 60, "GAUGE", " = x", now), ReasonTagEmptyKey)
	// Printable non-ASCII is fine; so is a part without "=" (dropped, as
	// Open-Falcon does) and an empty value.
	f(mv("hôte-ü", "mém.\u00a0libre", "1", 60, "GAUGE", "chemin=/é,a=", now), OK)
	f(mv("h", "m", "1", 60, "GAUGE", "novalue,a=1", now), OK)
	// Order: the first failing rule is reported (Open-Falcon's order, the
	// stricter checks next to the rule they tighten).
	f(mv("", "", "x", 0, "bad", "", now), ReasonNoMetric)
	f(mv("h", "m", "", 0, "bad", "", now), ReasonCounterType)
	f(mv("h", "m", "", 0, "GAUGE", "", now), ReasonNoValue)
	f(mv("\x00", "m\x00", "1", 60, "GAUGE", "=\x00", now), ReasonMetricControl)
	f(mv("", "m\x00", "1", 60, "GAUGE", "", now), ReasonMetricControl)
	f(mv("h\x00", "m", "1", 60, "bad", "=\x00", now), ReasonEndpointControl)
	f(mv("h", "m", "1", 60, "bad", "=\x00", now), ReasonCounterType)
	f(mv("h", "m", "1", 60, "GAUGE", "=\x00", now), ReasonTagEmptyKey)
	f(mv(strings.Repeat("e", 256), "m", "1", 60, "GAUGE", "a=\x00", now), ReasonTagControl)
	f(mv("h", "m", "1", 60, "GAUGE", "a=\x00", now+601), ReasonTagControl)
}

func TestToPointConverts(t *testing.T) {
	m := mv("host01", "df.bytes.free", `"12.5"`, 60, "GAUGE", "mount=/, fstype=ext4", 0)
	p, r := m.ToPoint(now)
	if r != OK {
		t.Fatalf("reason %v", r)
	}
	if p.Timestamp != now {
		t.Errorf("timestamp <= 0 must become now, got %d", p.Timestamp)
	}
	if p.Value != 12.5 || p.Step != 60 || p.Type != Gauge {
		t.Errorf("got %+v", p)
	}
	if p.Key() != "host01/df.bytes.free/fstype=ext4,mount=/" {
		t.Errorf("key %q", p.Key())
	}
	back := FromPoint(&p)
	if back.Tags != "fstype=ext4,mount=/" || string(back.Value) != "12.5" || back.CounterType != "GAUGE" {
		t.Errorf("FromPoint = %+v", back)
	}
}

func TestDecodeMetricValues(t *testing.T) {
	body := `[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"","timestamp":1},
	          null,
	          {"endpoint":"h","metric":"m","value":1,"step":"sixty","counterType":"GAUGE"},
	          {"endpoint":"h","metric":"m2","value":"2","step":60,"counterType":"GAUGE","tags":"a=1","timestamp":2},
	          7]`
	items, idx, bad, err := DecodeMetricValues([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || idx[0] != 0 || idx[1] != 3 {
		t.Fatalf("items %d idx %v", len(items), idx)
	}
	if len(bad) != 3 || bad[0].Index != 1 || bad[0].Reason != ReasonNil || bad[1].Index != 2 || bad[1].Reason != ReasonBadJSON || bad[2].Index != 4 {
		t.Fatalf("bad = %+v", bad)
	}
	if !strings.Contains(bad[1].Error(), "item 2") {
		t.Errorf("error text %q does not name the item", bad[1].Error())
	}
	for _, b := range []string{"", "  ", "{}", "nope", "[1,", `{"endpoint":"h"}`} {
		if _, _, _, err := DecodeMetricValues([]byte(b)); err == nil {
			t.Errorf("body %q: no error", b)
		}
	}
	if items, _, _, err := DecodeMetricValues([]byte("[]")); err != nil || len(items) != 0 {
		t.Errorf("empty array: %v %d", err, len(items))
	}
}

func TestParseValue(t *testing.T) {
	f := func(raw string, want float64, wantR Reason) {
		t.Helper()
		v, r := ParseValue(json.RawMessage(raw))
		if r != wantR || (r == OK && v != want) {
			t.Errorf("ParseValue(%s) = %v, %v; want %v, %v", raw, v, r, want, wantR)
		}
	}
	f("1", 1, OK)
	f("-1.5e3", -1500, OK)
	f(`"3.25"`, 3.25, OK)
	f(`"0x10"`, 0, ReasonBadValue) // hex without a p exponent is not a float (strconv, as Open-Falcon)
	f(`"1,5"`, 0, ReasonBadValue)
	f(`[1]`, 0, ReasonBadValue)
	f(``, 0, ReasonNoValue)
	f(`"  "`, 0, ReasonNoValue)
}

func TestValidatePoint(t *testing.T) {
	base := Point{Endpoint: "h", Metric: "m", Value: 1, Timestamp: now, Step: 60}
	f := func(mod func(*Point), want Reason) {
		t.Helper()
		p := base
		mod(&p)
		if got := ValidatePoint(&p, now); got != want {
			t.Errorf("ValidatePoint(%#v) = %v, want %v", p, got, want)
		}
	}
	f(func(p *Point) {}, OK)
	f(func(p *Point) { p.Metric = "kernel.hostname" }, ReasonHostname)
	f(func(p *Point) { p.Metric = "" }, ReasonNoMetric)
	f(func(p *Point) { p.Endpoint = "" }, ReasonNoEndpoint)
	f(func(p *Point) { p.Type = 3 }, ReasonCounterType)
	f(func(p *Point) { p.Step = 0 }, ReasonBadStep)
	f(func(p *Point) { p.Metric = strings.Repeat("x", 511) }, ReasonTooLong)
	f(func(p *Point) {
		p.Tags = make([]Tag, 33)
		for i := range p.Tags {
			p.Tags[i].Key = string(rune('A' + i))
		}
	}, ReasonTooManyTags)
	f(func(p *Point) { p.Tags = []Tag{{"b", "1"}, {"a", "2"}} }, ReasonTagsUnsorted)
	f(func(p *Point) { p.Tags = []Tag{{"a", "1"}, {"a", "2"}} }, ReasonTagsUnsorted)
	f(func(p *Point) { p.Endpoint = strings.Repeat("e", 256) }, ReasonEndpointLong)
	f(func(p *Point) { p.Timestamp = now + 601 }, ReasonFuture)
	f(func(p *Point) { p.Value = math.NaN() }, ReasonNotFinite)
	f(func(p *Point) { p.Value = math.Inf(-1) }, ReasonNotFinite)
	for _, c := range []string{"\x00", "\t", "\x1f", "\x7f", "\u0085"} {
		f(func(p *Point) { p.Metric = "m" + c }, ReasonMetricControl)
		f(func(p *Point) { p.Endpoint = c + "h" }, ReasonEndpointControl)
		f(func(p *Point) { p.Tags = []Tag{{"a", "1"}, {"b" + c, "2"}} }, ReasonTagControl)
		f(func(p *Point) { p.Tags = []Tag{{"a", c}} }, ReasonTagControl)
	}
	f(func(p *Point) { p.Tags = []Tag{{"", "x"}} }, ReasonTagEmptyKey)
	f(func(p *Point) { p.Tags = []Tag{{"", "x"}, {"a", "1"}} }, ReasonTagEmptyKey)
	f(func(p *Point) { p.Endpoint, p.Metric, p.Tags = "hôte", "mém", []Tag{{"é", "ü"}} }, OK)
	// Order: the same as ToPoint's.
	f(func(p *Point) { p.Endpoint, p.Metric = "h\x00", "m\x00" }, ReasonMetricControl)
	f(func(p *Point) { p.Endpoint, p.Type = "h\x00", 3 }, ReasonEndpointControl)
	f(func(p *Point) { p.Tags = []Tag{{"b", "\x00"}, {"a", "1"}} }, ReasonTagsUnsorted)
	f(func(p *Point) { p.Tags = []Tag{{"", "\x00"}} }, ReasonTagEmptyKey)
	f(func(p *Point) { p.Tags, p.Endpoint = []Tag{{"a", "\x00"}}, strings.Repeat("e", 256) }, ReasonTagControl)
	f(func(p *Point) { p.Tags, p.Timestamp = []Tag{{"a", "\x00"}}, now+601 }, ReasonTagControl)
	p := base
	p.Timestamp = 0
	if ValidatePoint(&p, now) != OK || p.Timestamp != now {
		t.Errorf("timestamp 0 must become now, got %d", p.Timestamp)
	}
}

func TestReasonsClosedSet(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		s := r.String()
		if s == "unknown" || s == "ok" || seen[s] {
			t.Errorf("reason %d has label %q", r, s)
		}
		seen[s] = true
		if r.Text() == "unknown reason" || r.Text() == "" {
			t.Errorf("reason %s has no text", s)
		}
	}
	if len(seen) != int(numReasons)-1 {
		t.Errorf("Reasons() lists %d, want %d", len(seen), numReasons-1)
	}
}

func FuzzDecodeMetricValues(f *testing.F) {
	f.Add([]byte(`[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"a=1","timestamp":1}]`))
	f.Add([]byte(`[null, 1, "x", {"value":"1e999"}]`))
	f.Add([]byte(`[{"value":{"x":[1]}}]`))
	f.Add([]byte(`[{"endpoint":"h\u0000","metric":"m\u0085","value":1,"step":60,"counterType":"GAUGE","tags":"novalue,=x,a=\t"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, idx, bad, err := DecodeMetricValues(b)
		if err != nil {
			return
		}
		if len(items) != len(idx) {
			t.Fatalf("%d items, %d indexes", len(items), len(idx))
		}
		for _, e := range bad {
			if e.Reason != ReasonNil && e.Reason != ReasonBadJSON {
				t.Fatalf("unexpected reason %v", e.Reason)
			}
		}
		for i := range items {
			p, r := items[i].ToPoint(now)
			if r != OK {
				continue
			}
			if p.Endpoint == "" || p.Metric == "" || p.Step <= 0 || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				t.Fatalf("accepted invalid point %+v", p)
			}
			for _, s := range append([]string{p.Endpoint, p.Metric}, tagStrings(p.Tags)...) {
				if strings.ContainsFunc(s, unicode.IsControl) {
					t.Fatalf("accepted a control character: %+v", p)
				}
			}
			for _, tg := range p.Tags {
				if tg.Key == "" {
					t.Fatalf("accepted an empty tag key: %+v", p)
				}
			}
			q := p
			if ValidatePoint(&q, now) != OK {
				t.Fatalf("ToPoint accepted %+v but ValidatePoint rejects it: %v", p, ValidatePoint(&q, now))
			}
			got, err := DecodeBatch(EncodeBatch([]Point{p}))
			if err != nil || got[0].Key() != p.Key() {
				t.Fatalf("binary round trip of %+v: %v", p, err)
			}
		}
	})
}

func tagStrings(tags []Tag) []string {
	var out []string
	for _, t := range tags {
		out = append(out, t.Key, t.Value)
	}
	return out
}
