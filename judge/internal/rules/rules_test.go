package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/proto"
)

func TestExampleLoads(t *testing.T) {
	s, err := LoadFile("../../rules.example.yaml", 11)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 5 {
		t.Fatalf("got %d rules", s.Len())
	}
	rl := s.ForMetric("cpu.idle")
	if len(rl) != 1 || rl[0].Kind != Strategy || rl[0].ID != 15 || rl[0].Strategy.Tpl.ActionID != 2 {
		t.Fatalf("cpu.idle rules %+v", rl)
	}
	if s.ForMetric("nothing") != nil {
		t.Fatal("rules for an unknown metric")
	}
}

func TestMatches(t *testing.T) {
	s, err := Parse([]byte(`
strategies:
  - {id: 1, endpoints: [h1], metric: m, tags: {a: "1"}, func: "all(#1)", operator: ">", rightValue: 0, maxStep: 1, priority: 0}
  - {id: 2, allEndpoints: true, metric: m, func: "all(#1)", operator: ">", rightValue: 0, maxStep: 1, priority: 0}
expressions:
  - {id: 3, metric: m, tags: {endpoint: h2, b: "2"}, func: "all(#1)", operator: ">", rightValue: 0, maxStep: 1, priority: 0}
  - {id: 4, metric: m, func: "all(#1)", operator: ">", rightValue: 0, maxStep: 1, priority: 0}
`), 11)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Rule{}
	for _, r := range s.ForMetric("m") {
		byID[r.Name()] = r
	}
	cases := []struct {
		rule, endpoint, tags string
		want                 bool
	}{
		{"strategy 1", "h1", "a=1", true},
		{"strategy 1", "h1", "a=1,z=9", true},
		{"strategy 1", "h1", "a=2", false},
		{"strategy 1", "h1", "", false},
		{"strategy 1", "h2", "a=1", false},
		{"strategy 2", "anything", "", true},
		{"expression 3", "h2", "b=2,c=3", true},
		{"expression 3", "h1", "b=2", false},
		{"expression 3", "h2", "", false},
		{"expression 4", "hx", "q=1", true},
	}
	for _, c := range cases {
		if got := byID[c.rule].Matches(c.endpoint, proto.ParseTags(c.tags)); got != c.want {
			t.Errorf("%s on %s/%s = %v want %v", c.rule, c.endpoint, c.tags, got, c.want)
		}
	}
}

func TestBadRules(t *testing.T) {
	base := `{id: 1, endpoints: [h], metric: m, func: "all(#3)", operator: "<", rightValue: 1, maxStep: 1, priority: 0}`
	cases := []struct{ yaml, want string }{
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(3)\", operator: \"<\", maxStep: 1}", "strategies[0] (id 1): func \"all(3)\""},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"=>\", maxStep: 1}", "unknown operator"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#0)\", operator: \"<\", maxStep: 1}", "must be > 0"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"lookup(#4,2)\", operator: \"<\", maxStep: 1}", "M <= N"},
		{"strategies:\n  - " + base + "\n  - " + base, "strategies[1] (id 1): duplicate strategy id 1"},
		{"strategies:\n  - {id: 1, endpoints: [h], func: \"all(#3)\", operator: \"<\", maxStep: 1}", "metric is required"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1, priority: 7}", "priority must be 0..6"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1, priority: -1}", "priority must be 0..6"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"<\", maxStep: -1}", "maxStep must be >= 0"},
		{"strategies:\n  - {id: 1, metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1}", "endpoints (or allEndpoints: true) is required"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#12)\", operator: \"<\", maxStep: 1}", "needs 12 points but window.size is 11"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"diff(#11)\", operator: \"<\", maxStep: 1}", "needs 12 points"},
		{"strategies:\n  - {id: 0, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1}", "id must be > 0"},
		{"expressions:\n  - {id: 2, metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1}\n  - {id: 2, metric: n, func: \"all(#3)\", operator: \"<\", maxStep: 1}", "expressions[1] (id 2): duplicate expression id 2"},
		{"strategies:\n  - {id: 1, endpoints: [h], metric: m, func: \"all(#3)\", operator: \"<\", maxStep: 1, bogus: 1}", "field bogus not found"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), 11)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n got %v\n want error containing %q", c.yaml, err, c.want)
		}
	}
}

func TestReloadKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("strategies:\n  - {id: 1, allEndpoints: true, metric: m, func: \"all(#1)\", operator: \">\", rightValue: 1, maxStep: 1}\n")
	h, err := NewHolder(path, 11)
	if err != nil {
		t.Fatal(err)
	}
	old := h.Get()
	write("strategies:\n  - {id: 1, allEndpoints: true, metric: m, func: \"nope(#1)\", operator: \">\", maxStep: 1}\n")
	if _, err := h.Reload(); err == nil || !strings.Contains(err.Error(), "rules.yaml") || !strings.Contains(err.Error(), "unknown function") {
		t.Fatalf("bad reload error: %v", err)
	}
	if h.Get() != old {
		t.Fatal("a failed reload replaced the rules")
	}
	write("strategies:\n  - {id: 1, allEndpoints: true, metric: m2, func: \"all(#1)\", operator: \">\", maxStep: 1}\n")
	if _, err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if h.Get().ForMetric("m2") == nil || h.Get().ForMetric("m") != nil {
		t.Fatal("reload did not take the new rules")
	}
}
