package desired

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	for _, c := range []struct {
		in  string
		n   int
		pct float64
		ok  bool
	}{{"", 0, 0, true}, {"3", 3, 0, true}, {"10%", 0, 10, true}, {"0", 0, 0, false}, {"-1", 0, 0, false}, {"150%", 0, 0, false}, {"x", 0, 0, false}} {
		n, p, err := ParseThreshold(c.in)
		if (err == nil) != c.ok || n != c.n || p != c.pct {
			t.Errorf("%q: %d %v %v", c.in, n, p, err)
		}
	}
}

func TestSpecFor(t *testing.T) {
	h := &Health{HTTP: "http://127.0.0.1:1988/health", Timeout: 5}
	a := &Agent{
		Default: AgentSpec{Name: "a", Version: "1.0.0", Tarball: "http://t/a", Cmd: CmdStart},
		Others: []Override{
			{Prefix: "db", AgentSpec: AgentSpec{Cmd: CmdStop}},
			{Prefix: "db-mirror", AgentSpec: AgentSpec{Tarball: "http://mirror/a", Health: h}},
		},
	}
	for _, c := range []struct {
		host, version, tarball, cmd string
		health                      bool
	}{
		{"web-1", "1.0.0", "http://t/a", CmdStart, false},
		{"db-1", "1.0.0", "http://t/a", CmdStop, false},
		// last match wins, its empty fields inherit the default (not the
		// earlier match): db-mirror is started.
		{"db-mirror-1", "1.0.0", "http://mirror/a", CmdStart, true},
	} {
		s := a.SpecFor(c.host)
		if s.Version != c.version || s.Tarball != c.tarball || s.Cmd != c.cmd || (s.Health != nil) != c.health {
			t.Errorf("%s: %+v", c.host, s)
		}
		if a.Stopped(c.host) != (c.cmd == CmdStop) {
			t.Errorf("%s: Stopped %v", c.host, a.Stopped(c.host))
		}
	}
}

// Compile fills the defaults in a copy: the File it was given is not
// changed.
func TestCompileDefaultsLeaveTheFileAlone(t *testing.T) {
	f := File{
		Agents: []Agent{{
			Default: AgentSpec{Name: "a", Version: "1.0.0", Tarball: "http://t/a", Health: &Health{HTTP: "http://h/health"}},
			Others:  []Override{{Prefix: "web", AgentSpec: AgentSpec{Health: &Health{HTTP: "http://w/health"}}}},
		}},
		Rollouts: []RolloutSpec{{ID: "r1", Agent: "a", To: "2.0.0"}},
	}
	s, err := Compile(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := s.Agent("a")
	if a == nil || a.Default.Cmd != CmdStart || a.Default.Health.Timeout != DefaultHealthTimeout || a.Others[0].Health.Timeout != DefaultHealthTimeout {
		t.Fatalf("agent %+v", a)
	}
	if f.Agents[0].Default.Cmd != "" || f.Agents[0].Default.Health.Timeout != 0 || f.Agents[0].Others[0].Health.Timeout != 0 || f.Rollouts[0].From != "" {
		t.Fatalf("Compile changed its File: %+v", f)
	}
	r := s.Rollouts()[0]
	if r.From != "1.0.0" || r.Soak != DefaultSoak || r.Deadline != DefaultDeadline || len(r.Waves) != len(DefaultWaves) {
		t.Fatalf("rollout %+v", r)
	}
	if d := s.Defaults(); d.EvaluateEvery != DefaultEvaluateEvery || d.Soak != DefaultSoak {
		t.Fatalf("defaults %+v", d)
	}
	if s.Agent("b") != nil {
		t.Fatal("unknown agent found")
	}
}

// The tarball may be omitted only when ops-meta serves the artifacts.
func TestCompileTarballNeedsArtifacts(t *testing.T) {
	f := File{Agents: []Agent{{Default: AgentSpec{Name: "a", Version: "1.0.0"}}}}
	if _, err := Compile(f, Options{}); err == nil || !strings.Contains(err.Error(), "agents[0].default.tarball: required") {
		t.Fatalf("without artifacts: %v", err)
	}
	if _, err := Compile(f, Options{ServesArtifacts: true}); err != nil {
		t.Fatalf("with artifacts: %v", err)
	}
}

// On the API a rollout's durations are strings; unknown fields are
// errors.
func TestRolloutSpecJSON(t *testing.T) {
	var r RolloutSpec
	if err := json.Unmarshal([]byte(`{"id":"r","agent":"a","to":"2.0.0","waves":[50,100],"soak":"90s","deadline":"1h"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != "r" || r.Soak != 90*time.Second || r.Deadline != time.Hour || len(r.Waves) != 2 {
		t.Fatalf("%+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"soak":"1m30s"`) || !strings.Contains(string(b), `"deadline":"1h0m0s"`) {
		t.Fatalf("marshalled %s", b)
	}
	var back RolloutSpec
	if err := json.Unmarshal(b, &back); err != nil || back.Soak != r.Soak || back.Deadline != r.Deadline || back.To != r.To {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	var absent RolloutSpec
	if err := json.Unmarshal([]byte(`{"agent":"a","to":"2.0.0"}`), &absent); err != nil || absent.Soak != 0 {
		t.Fatalf("absent durations: %v %+v", err, absent)
	}
	for body, want := range map[string]string{
		`{"soak":600}`:      `soak: duration must be a string like "10m"`,
		`{"deadline":"1y"}`: `deadline: time: unknown unit`,
		`{"color":"red"}`:   `unknown field "color"`,
		`{"waves":"a lot"}`: `cannot unmarshal string`,
	} {
		if err := json.Unmarshal([]byte(body), &r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
