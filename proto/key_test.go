package proto

import (
	"reflect"
	"testing"
)

func TestSeriesKeyReferenceVectors(t *testing.T) {
	f := func(endpoint, metric, tags, wantPK, wantMD5 string) {
		t.Helper()
		pk := SeriesKey(endpoint, metric, ParseTags(tags))
		if pk != wantPK {
			t.Errorf("SeriesKey(%q,%q,%q) = %q, want %q", endpoint, metric, tags, pk, wantPK)
		}
		if wantMD5 != "" {
			if got := Checksum(pk); got != wantMD5 {
				t.Errorf("Checksum(%q) = %q, want %q", pk, got, wantMD5)
			}
		}
	}
	f("host01", "cpu.idle", "", "host01/cpu.idle", "d2a3cf076e6613a23a3a010c6e6d647a")
	f("host01", "df.bytes.free.percent", "mount=/,fstype=ext4", "host01/df.bytes.free.percent/fstype=ext4,mount=/", "")
	f("h", "m", "b=2, a=1", "h/m/a=1,b=2", "")
	f("h", "m", "novalue", "h/m", "")
}

func TestEventIDs(t *testing.T) {
	if got, want := StrategyEventID(15, "host01/cpu.idle"), "s_15_d2a3cf076e6613a23a3a010c6e6d647a"; got != want {
		t.Errorf("StrategyEventID = %q, want %q", got, want)
	}
	if got, want := ExpressionEventID(7, "host01/cpu.idle"), "e_7_d2a3cf076e6613a23a3a010c6e6d647a"; got != want {
		t.Errorf("ExpressionEventID = %q, want %q", got, want)
	}
}

func TestSortedTagsFromMap(t *testing.T) {
	tags := TagsFromMap(map[string]string{"mount": "/", "fstype": "ext4"})
	if got := FormatTags(tags); got != "fstype=ext4,mount=/" {
		t.Errorf("FormatTags = %q", got)
	}
	if got := CounterString("df.bytes.free", tags); got != "df.bytes.free/fstype=ext4,mount=/" {
		t.Errorf("CounterString = %q", got)
	}
	if got := CounterString("cpu.idle", nil); got != "cpu.idle" {
		t.Errorf("CounterString no tags = %q", got)
	}
}

func TestParseTags(t *testing.T) {
	f := func(in string, want []Tag) {
		t.Helper()
		got := ParseTags(in)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseTags(%q) = %#v, want %#v", in, got, want)
		}
	}
	f("", nil)
	f("   ", nil)
	f("a=1", []Tag{{"a", "1"}})
	f("b=2,a=1", []Tag{{"a", "1"}, {"b", "2"}})
	f(" a = 1 , b=2 ", []Tag{{"a", "1"}, {"b", "2"}})       // every space removed
	f("a=1,noeq,b=2", []Tag{{"a", "1"}, {"b", "2"}})        // part without '=' dropped
	f("a=1,a=2", []Tag{{"a", "2"}})                         // last wins
	f("a=2,b=1,a=3", []Tag{{"a", "3"}, {"b", "1"}})         // last wins, sorted
	f("url=http://x/?q=1", []Tag{{"url", "http://x/?q=1"}}) // split at the first '='
	f("a=", []Tag{{"a", ""}})                               // empty value kept
	f("=v", []Tag{{"", "v"}})                               // empty key kept (as Open-Falcon); validation rejects it
	f("novalue,=x", []Tag{{"", "x"}})                       // ToPoint: ReasonTagEmptyKey
	f(",,", nil)                                            // only separators
	f("a=1,,b=2,", []Tag{{"a", "1"}, {"b", "2"}})           // empty parts
	f("z=1,y=2,x=3,w=4", []Tag{{"w", "4"}, {"x", "3"}, {"y", "2"}, {"z", "1"}})
}

func TestFormatTagsRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a=1", "a=1,b=2", "fstype=ext4,mount=/"} {
		if got := FormatTags(ParseTags(s)); got != s {
			t.Errorf("FormatTags(ParseTags(%q)) = %q", s, got)
		}
	}
}

func TestAlignTimestamp(t *testing.T) {
	f := func(ts int64, step int32, want int64) {
		t.Helper()
		if got := AlignTimestamp(ts, step); got != want {
			t.Errorf("AlignTimestamp(%d,%d) = %d, want %d", ts, step, got, want)
		}
	}
	f(1431349779, 60, 1431349740)
	f(1431349740, 60, 1431349740)
	f(100, 30, 90)
	f(100, 0, 100)
}

func FuzzParseTags(f *testing.F) {
	for _, s := range []string{"", "a=1,b=2", " a = 1 ", "a=1,a=2", "x", "==,=", "k=v=w,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tags := ParseTags(s)
		for i := 1; i < len(tags); i++ {
			if tags[i-1].Key >= tags[i].Key {
				t.Fatalf("ParseTags(%q): keys not sorted and unique: %#v", s, tags)
			}
		}
		for _, tg := range tags {
			for _, c := range tg.Key + tg.Value {
				if c == ' ' {
					t.Fatalf("ParseTags(%q): space kept: %#v", s, tags)
				}
			}
		}
		// Canonical form is a fixed point.
		canon := FormatTags(tags)
		again := ParseTags(canon)
		if FormatTags(again) != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, FormatTags(again))
		}
		if TagsLen(tags) != len(canon) {
			t.Fatalf("TagsLen = %d, len(FormatTags) = %d", TagsLen(tags), len(canon))
		}
	})
}
