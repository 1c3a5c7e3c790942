package rules

import (
	"math"
	"strings"
	"testing"
)

func TestOperators(t *testing.T) {
	cases := []struct {
		op   string
		l, r float64
		want bool
	}{
		{"==", 1, 1, true}, {"==", 1.00005, 1, true}, {"==", 1.0002, 1, false},
		{"=", 2, 2, true}, {"=", 2, 3, false},
		{"!=", 1, 1, false}, {"!=", 1.00005, 1, false}, {"!=", 1.0002, 1, true},
		{"<", 1, 2, true}, {"<", 2, 2, false},
		{"<=", 2, 2, true}, {"<=", 3, 2, false},
		{">", 3, 2, true}, {">", 2, 2, false},
		{">=", 2, 2, true}, {">=", 1, 2, false},
	}
	for _, c := range cases {
		o, err := ParseOp(c.op)
		if err != nil {
			t.Fatalf("ParseOp(%q): %v", c.op, err)
		}
		if got := o.Check(c.l, c.r); got != c.want {
			t.Errorf("%v %s %v = %v, want %v", c.l, c.op, c.r, got, c.want)
		}
	}
	for _, bad := range []string{"", "=>", "<>", "eq", "==="} {
		if _, err := ParseOp(bad); err == nil {
			t.Errorf("ParseOp(%q) accepted", bad)
		}
	}
}

// vals are newest first.
func TestFuncEval(t *testing.T) {
	cases := []struct {
		fn, op  string
		right   float64
		vals    []float64
		ok      bool // enough points
		trig    bool
		left    float64
		used    int
		comment string
	}{
		{"all(#3)", "<", 5, []float64{1, 2, 3}, true, true, 1, 3, "all below"},
		{"all(#3)", "<", 5, []float64{1, 6, 3, 9}, true, false, 1, 3, "one above"},
		{"all(#3)", "<", 5, []float64{1, 2}, false, false, 0, 0, "too few"},
		{"all(#1)", "==", 0, []float64{0}, true, true, 0, 1, "eq"},
		{"max(#3)", ">", 5, []float64{1, 7, 3, 100}, true, true, 7, 3, "max ignores older"},
		{"max(#3)", ">", 7, []float64{1, 7, 3}, true, false, 7, 3, "not above"},
		{"min(#2)", "<", 2, []float64{3, 1}, true, true, 1, 2, ""},
		{"min(#2)", "<", 1, []float64{3, 1}, true, false, 1, 2, ""},
		{"sum(#3)", ">=", 6, []float64{1, 2, 3}, true, true, 6, 3, ""},
		{"avg(#4)", "==", 2.5, []float64{1, 2, 3, 4}, true, true, 2.5, 4, ""},
		{"avg(#4)", ">", 3, []float64{1, 2, 3}, false, false, 0, 0, "too few"},
		// diff: v[0]-v[i] for i in 1..N, stop at first trigger, needs N+1.
		{"diff(#2)", ">", 5, []float64{10, 8, 2}, true, true, 8, 3, "second difference triggers"},
		{"diff(#2)", ">", 5, []float64{10, 3, 8}, true, true, 7, 3, "first triggers, stops"},
		{"diff(#2)", ">", 50, []float64{10, 8, 2}, true, false, 8, 3, "left is the last difference"},
		{"diff(#2)", ">", 5, []float64{10, 8}, false, false, 0, 0, "needs N+1"},
		{"diff(#1)", "<", 0, []float64{1, 2}, true, true, -1, 2, "negative"},
		// pdiff: (v0-vi)/vi*100, skipping vi == 0.
		{"pdiff(#2)", ">", 50, []float64{30, 20, 10}, true, true, 200, 3, "50% then 200%"},
		{"pdiff(#2)", ">", 40, []float64{30, 20, 10}, true, true, 50, 3, "first triggers"},
		{"pdiff(#2)", ">", 500, []float64{30, 20, 10}, true, false, 200, 3, ""},
		{"pdiff(#2)", ">", 10, []float64{30, 0, 10}, true, true, 200, 3, "zero skipped"},
		{"pdiff(#2)", ">", 10, []float64{30, 0, 0}, true, false, 0, 3, "all zero: nothing computed"},
		{"pdiff(#2)", ">", 10, []float64{30, 0}, false, false, 0, 0, "needs N+1"},
		// lookup(#M,N): at least M of the newest N.
		{"lookup(#2,3)", ">", 5, []float64{6, 1, 7}, true, true, 6, 3, ""},
		{"lookup(#2,3)", ">", 5, []float64{6, 1, 1, 7}, true, false, 6, 3, "fourth not looked at"},
		{"lookup(#1,1)", ">", 5, []float64{6}, true, true, 6, 1, ""},
		{"lookup(#2,3)", ">", 5, []float64{6, 7}, false, false, 0, 0, "needs N"},
		// stddev: newest outside mean ± k·σ of the N points.
		{"stddev(#4)", "=", 1, []float64{10, 1, 1, 1}, true, true, 10, 4, "outlier"},
		{"stddev(#4)", "=", 3, []float64{10, 1, 1, 1}, true, false, 10, 4, "within 3σ"},
		// kdiff(#M,N): every newest-N minus every one of the M before.
		{"kdiff(#2,2)", ">", 5, []float64{20, 30, 10, 12}, true, true, 18, 4, ""},
		{"kdiff(#2,2)", ">", 15, []float64{20, 30, 10, 12}, true, false, 10, 4, "20-10 fails first"},
		{"kpdiff(#1,1)", ">", 50, []float64{20, 10}, true, true, 100, 2, ""},
		{"kpdiff(#1,1)", ">", 50, []float64{20, 0}, true, false, 0, 2, "zero base"},
	}
	for _, c := range cases {
		f, err := ParseFunc(c.fn, c.op, c.right)
		if err != nil {
			t.Fatalf("%s: %v", c.fn, err)
		}
		res, ok := f.Eval(c.vals)
		name := c.fn + " " + c.op + " " + c.comment
		if ok != c.ok {
			t.Errorf("%s %v: ok=%v want %v", name, c.vals, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if res.Triggered != c.trig || math.Abs(res.Left-c.left) > 1e-9 || res.Used != c.used {
			t.Errorf("%s %v: got trig=%v left=%v used=%d, want %v %v %d", name, c.vals, res.Triggered, res.Left, res.Used, c.trig, c.left, c.used)
		}
	}
}

func TestParseFuncErrors(t *testing.T) {
	cases := map[string]string{
		"all(3)":        "want name(#N)",
		"all(#0)":       "must be > 0",
		"all(#-1)":      "must be > 0",
		"all(#x)":       "not an integer",
		"foo(#3)":       "unknown function",
		"lookup(#3)":    "takes (#M,N)",
		"lookup(#4,3)":  "M <= N",
		"all(#3,4)":     "takes (#N)",
		"all#3":         "want name(#N)",
		"kdiff(#0,1)":   "must be > 0",
		"all(#3":        "want name(#N)",
		"diff(#2)extra": "want name(#N)",
	}
	for fn, want := range cases {
		_, err := ParseFunc(fn, "<", 1)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFunc(%q) = %v, want error containing %q", fn, err, want)
		}
	}
	if f, err := ParseFunc(" all( #3 ) ", ">", 1); err != nil || f.N != 3 {
		t.Errorf("spaces: %v %v", f, err)
	}
	if f, _ := ParseFunc("diff(#3)", ">", 1); f.Need() != 4 {
		t.Errorf("diff need %d", f.Need())
	}
}

func BenchmarkEvalAll(b *testing.B) {
	f, _ := ParseFunc("all(#3)", "<", 5)
	vals := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}
	b.ReportAllocs()
	for b.Loop() {
		f.Eval(vals)
	}
}

func FuzzParseFunc(f *testing.F) {
	for _, s := range []string{"all(#3)", "lookup(#2,5)", "diff(#1)", "kpdiff(#2,3)", "x(", "all(#)", "lookup(#,)"} {
		f.Add(s, "<")
	}
	f.Fuzz(func(t *testing.T, fn, op string) {
		fu, err := ParseFunc(fn, op, 1)
		if err != nil {
			return
		}
		if fu.N <= 0 || fu.Need() < fu.N {
			t.Fatalf("%q parsed to %+v", fn, fu)
		}
		vals := make([]float64, min(fu.Need(), 64))
		fu.Eval(vals) // must not panic
	})
}
