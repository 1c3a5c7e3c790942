package rules

import (
	"bytes"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Whatever the rules file holds, Parse does not panic, and a file it
// accepts says the same when written back as YAML: the set parsed again
// from that has the same rules, and writes back identically.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../../rules.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, uint16(11))
	for _, s := range []string{
		"strategies:\n  - {id: 1, endpoints: [h1], metric: m, tags: {a: \"1\"}, func: \"all(#1)\", operator: \">\", rightValue: 0, maxStep: 1, priority: 0}\n" +
			"  - {id: 2, allEndpoints: true, metric: m, func: \"all(#1)\", operator: \">\", rightValue: 0, maxStep: 1, priority: 0}\n" +
			"expressions:\n  - {id: 3, metric: m, tags: {endpoint: h2, b: \"2\"}, func: \"all(#1)\", operator: \">\", rightValue: 0, maxStep: 1, priority: 0}\n" +
			"  - {id: 4, metric: m, func: \"all(#1)\", operator: \">\", rightValue: 0, maxStep: 1, priority: 0}\n",
		"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"lookup(#2,4)\", operator: \"!=\", rightValue: -1.5e300, maxStep: 0, priority: 6}\n",
		"strategies:\n  - {id: 1, allEndpoints: true, metric: m, func: \"kpdiff(#3,2)\", operator: \"<=\", rightValue: .nan, maxStep: 1}\n",
		"expressions:\n  - {id: 9, metric: \"m\\t\", tags: {\"\": x}, func: \"stddev(#3)\", operator: \"\", rightValue: .inf, maxStep: 1}\n",
		"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1, bogus: 1}",
		"strategies:\n  - id: 1\n    metric: cpu.idle\n   func: \"all(#3)\"\n",
		"strategies:\n  - id: 1\n    maxStep: [1]\n",
		"strategies: [&a {id: 1, allEndpoints: true, metric: m, func: \"all(#1)\", operator: \">\", maxStep: 1}, *a]\n",
		"", "---\n", "null", "strategies: null\nexpressions: ~\n", "- 1\n",
	} {
		f.Add([]byte(s), uint16(11))
	}
	f.Fuzz(func(t *testing.T, b []byte, window uint16) {
		ws := int(window%2048) + 1
		s, err := Parse(b, ws)
		if err != nil {
			if s != nil {
				t.Fatalf("error %v with a set", err)
			}
			return
		}
		out := marshal(t, s.File)
		again, err := Parse(out, ws)
		if err != nil {
			t.Fatalf("%q parsed, but not written back:\n%s\n%v", b, out, err)
		}
		if again.Len() != s.Len() || len(again.byMetric) != len(s.byMetric) {
			t.Fatalf("%q: %d rules for %d metrics, written back %d for %d", b, s.Len(), len(s.byMetric), again.Len(), len(again.byMetric))
		}
		for metric, rules := range s.byMetric {
			if len(again.ForMetric(metric)) != len(rules) {
				t.Fatalf("%q: metric %q has %d rules, written back %d", b, metric, len(rules), len(again.ForMetric(metric)))
			}
		}
		if out2 := marshal(t, again.File); !bytes.Equal(out, out2) {
			t.Fatalf("%q: written back twice differs:\n%s\n---\n%s", b, out, out2)
		}
		for _, rules := range s.byMetric {
			for _, r := range rules {
				vals := make([]float64, r.Fn.Need())
				for i := range vals {
					vals[i] = float64(i%3) - 1 // -1, 0, 1: divisions by zero too
				}
				if _, ok := r.Fn.Eval(vals); !ok {
					t.Fatalf("%s: not evaluated with the %d points it needs", r.Name(), len(vals))
				}
			}
		}
	})
}

func marshal(t *testing.T, f File) []byte {
	t.Helper()
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
