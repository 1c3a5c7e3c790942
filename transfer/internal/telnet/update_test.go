package telnet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/proto"
)

func TestUpdateLine(t *testing.T) {
	const now = 1700000000
	f := func(line string, want string) {
		t.Helper()
		b := Batch{Now: now}
		o, out := UpdateLine(b.Line([]byte(line)), &b, nil)
		got := fmt.Sprint(o.Kind)
		switch o.Kind {
		case Added:
			got = fmt.Sprint(b.Points[len(b.Points)-1])
		case Rejected:
			got = o.Reason.String() + ": " + string(out)
		case Malformed:
			got = "malformed: " + string(out)
		}
		if got != want {
			t.Errorf("%q:\n got %s\nwant %s", line, got, want)
		}
	}
	f("update h m 1699999990 1", "{h m [] 1 1699999990 COUNTER 60}")
	f("update h m -5 1.5 GAUGE", "{h m [] 1.5 1700000000 GAUGE 60}")
	f("  update   h   m   1   2   DERIVE   30  ", "{h m [] 2 1 DERIVE 30}")
	f("update h m 1 2 COUNTER 600:0:U:300", "{h m [] 2 1 COUNTER 300}")
	f("update h m 1 -2e3", "{h m [] -2000 1 COUNTER 60}")
	f("update h m 1 0x10", `bad_value: error: value is not a number or numeric string: "0x10" (metric "m")`+"\n")
	f("", fmt.Sprint(Ignored))
	f(" \t ", fmt.Sprint(Ignored))
	f("quit", fmt.Sprint(Quit))
	f("UPDATE h m 1 2", `malformed: error: unknown command: "UPDATE"`+"\n")
	f("update h m 1 2 GAUGE 2147483648", `bad_step: error: step must be > 0: "2147483648" (metric "m")`+"\n")
	f("update h m 1 2 GAUGE -1", `bad_step: error: step must be > 0 (metric "m")`+"\n")
	f("update h m 1 true", `bad_value: error: value is not a number or numeric string: "true" (metric "m")`+"\n")
	f("update h m 1 -Inf", `value_not_finite: error: value is NaN or infinite (metric "m")`+"\n")
	f("update h\x7fx m 1 2", `endpoint_control_char: error: endpoint contains a control character (metric "m")`+"\n")
	f("update h m 1.5 2", `bad_json: error: invalid timestamp: "1.5"`+"\n")
}

func TestSortTags(t *testing.T) {
	f := func(in string, want string) {
		t.Helper()
		var tags []proto.Tag
		for kv := range strings.SplitSeq(in, ",") {
			k, v, _ := strings.Cut(kv, "=")
			tags = append(tags, proto.Tag{Key: k, Value: v})
		}
		out, dup, ok := SortTags(tags)
		got := proto.FormatTags(out)
		if !ok {
			got = "dup " + dup.Key + "=" + dup.Value
		}
		if got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	f("a=1", "a=1")
	f("c=3,a=1,b=2", "a=1,b=2,c=3")
	f("b=2,a=1,b=2,a=1", "a=1,b=2")
	f("b=2,a=1,b=3", "dup b=3")
	f("z=1,y=2,x=3,w=4,v=5,u=6", "u=6,v=5,w=4,x=3,y=2,z=1")
}

func TestFields(t *testing.T) {
	var b Batch
	f := func(in string, want ...string) {
		t.Helper()
		if got := b.Fields(in); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	f("")
	f("  ")
	f("a", "a")
	f(" a\tb  c ", "a", "b", "c")
}

// A read holds at most max lines, bad ones included: a client sending
// only errors cannot grow a batch's replies without bound.
func TestBatchBoundedByLines(t *testing.T) {
	in := strings.Repeat("nonsense\n", 1000) + "update h m 1 2\n"
	x := Offline{Protocol: Update, MaxLine: 1024, MaxBatch: 10}
	batches, points := 0, 0
	err := x.Run(strings.NewReader(in), 1700000000, func(pts []proto.Point) { batches++; points += len(pts) })
	if err != nil || points != 1 || x.Kinds[Malformed] != 1000 {
		t.Fatalf("%v: %d points, kinds %v", err, points, x.Kinds)
	}
	if batches < 101 {
		t.Fatalf("1001 lines in %d batches of at most 10 lines", batches)
	}
}
