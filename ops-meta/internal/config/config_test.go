package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func exampleCfgPath() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..", "ops-meta.example.yaml")
}

func TestExampleConfig(t *testing.T) {
	c, err := Load(exampleCfgPath())
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != ":2000" || c.MySQL.DSN != "" || c.AdminToken != "" {
		t.Fatalf("listen %q dsn %q", c.HTTP.Listen, c.MySQL.DSN)
	}
	a := c.Agent("kestrel-agent")
	if a == nil || a.Default.Cmd != "start" || a.Default.Health == nil || a.Default.Health.Timeout != 30 {
		t.Fatalf("agent %+v", a)
	}
	if c.Rollout.Soak.D() != 10*time.Minute || c.Rollout.Deadline.D() != 15*time.Minute || len(c.Rollout.Waves) != 4 {
		t.Fatalf("rollout defaults %+v", c.Rollout)
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	c, err := Parse([]byte(`
agents:
  - default: {name: a, version: 1.0.0, tarball: "http://x/a", cmd: start}
    others:
      - {prefix: web, version: 1.1.0}
rollouts:
  - {id: r1, agent: a, to: 2.0.0, soak: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rollouts[0]
	if r.From != "1.0.0" || r.Soak.D() != time.Second || r.Deadline.D() != DefaultDeadline || len(r.Waves) != 4 {
		t.Fatalf("rollout %+v", r)
	}
	if c.HTTP.Listen != ":2000" || c.HTTP.MaxBodyBytes != 1<<20 {
		t.Fatal("http defaults")
	}
}

func TestBadConfigs(t *testing.T) {
	good := "agents:\n  - default: {name: a, version: 1.0.0, tarball: \"http://x/a\", cmd: start}\n"
	cases := []struct{ yaml, want string }{
		{"bogus: 1\n", "field bogus not found"},
		{"http: {listen: ':1', max_body_bytes: 10}\n", "http.max_body_bytes"},
		{"log: {level: loud}\n", "log.level"},
		{"admin_token: short\n", "admin_token: too short"},
		{"fleet_token: short\n", "fleet_token: too short"},
		{"artifacts_dir: /nonexistent/dir\n", "artifacts_dir"},
		{"rollout: {soak: 10}\n", "time: missing unit"},
		{"rollout: {waves: [10, 5, 100]}\n", "waves[1]"},
		{"rollout: {waves: [10, 50]}\n", "last wave must be 100"},
		{"rollout: {failure_threshold: lots}\n", "failure_threshold"},
		{"agents:\n  - default: {name: 'a b', version: 1.0.0, tarball: 'http://x', cmd: start}\n", "agents[0].default.name"},
		{"agents:\n  - default: {name: a, version: v1, tarball: 'http://x', cmd: start}\n", "agents[0].default.version"},
		{"agents:\n  - default: {name: a, version: 1.0.0, cmd: start}\n", "agents[0].default.tarball: required"},
		{"agents:\n  - default: {name: a, version: 1.0.0, tarball: 'ftp://x', cmd: start}\n", "agents[0].default.tarball"},
		{"agents:\n  - default: {name: a, version: 1.0.0, tarball: 'http://x', cmd: restart}\n", "agents[0].default.cmd"},
		{"agents:\n  - default: {name: a, version: 1.0.0, tarball: 'http://x', cmd: start, health: {http: 'nope'}}\n", "health.http"},
		{"agents:\n  - default: {name: a, version: 1.0.0, tarball: 'http://x', cmd: start}\n    others: [{version: 1.1.0}]\n", "others[0].prefix: required"},
		{"agents:\n  - default: {name: a, version: 1.0.0, tarball: 'http://x', cmd: start}\n    versions: {'1.0.0': {sha256: abc}}\n", "sha256"},
		{good + good[len("agents:\n"):], "appears twice"},
		{good + "rollouts: [{id: r, agent: b, to: 2.0.0}]\n", "agent: \"b\" is not configured"},
		{good + "rollouts: [{id: r, agent: a, to: 1.0.0}]\n", "equals from"},
		{good + "rollouts: [{id: 'r/1', agent: a, to: 2.0.0}]\n", "id"},
		{good + "rollouts: [{id: r, agent: a, to: 2.0.0}, {id: r, agent: a, to: 3.0.0}]\n", "appears twice"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
		}
	}
	p := filepath.Join(t.TempDir(), "x.yaml")
	os.WriteFile(p, []byte("bogus: 1\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error must name the file: %v", err)
	}
}

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

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile(exampleCfgPath())
	f.Add(b)
	f.Add([]byte("agents: [{default: {name: a}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && c.Validate() != nil {
			t.Fatal("parsed config does not validate")
		}
	})
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
