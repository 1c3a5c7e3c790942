package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/desired"
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
	a := c.Desired.Agent("kestrel-agent")
	if a == nil || a.Default.Cmd != "start" || a.Default.Health == nil || a.Default.Health.Timeout != 30 {
		t.Fatalf("agent %+v", a)
	}
	if d := c.Desired.Defaults(); d.Soak != 10*time.Minute || d.Deadline != 15*time.Minute || len(d.Waves) != 4 {
		t.Fatalf("rollout defaults %+v", d)
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	c, err := Parse("x.yaml", []byte(`
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
	r := c.Desired.Rollouts()[0]
	if r.From != "1.0.0" || r.Soak != time.Second || r.Deadline != desired.DefaultDeadline || len(r.Waves) != 4 {
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
		{"rollout: {soak: 10}\n", "line 1: rollout.soak: cannot unmarshal !!int `10` into time.Duration"},
		{"rollout: {soak: soon}\n", "line 1: rollout.soak: cannot unmarshal !!str `soon` into time.Duration"},
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
		_, err := Parse("x.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "x.yaml: ") {
				t.Errorf("%q: error line %q does not name the file", c.yaml, line)
			}
		}
	}
	p := filepath.Join(t.TempDir(), "x.yaml")
	os.WriteFile(p, []byte("bogus: 1\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error must name the file: %v", err)
	}
}

// Every bad field is reported at once: the service's and the desired
// state's.
func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Parse("x.yaml", []byte("admin_token: short\nlog: {level: loud}\nrollout: {waves: [10, 50]}\nagents:\n  - default: {name: a, version: v1, cmd: restart}\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"x.yaml: admin_token: too short",
		"x.yaml: log.level: must be debug, info, warn or error",
		"x.yaml: rollout.waves: the last wave must be 100",
		"x.yaml: agents[0].default.version: \"v1\" is not a valid version",
		"x.yaml: agents[0].default.tarball: required",
		"x.yaml: agents[0].default.cmd: \"restart\" is not start|stop",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 6 {
		t.Errorf("%d errors, want 6:\n%v", n, err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.HTTP.Listen != DefaultListen || c.HTTP.ReadTimeout != 30*time.Second || c.Inventory.StaleAfter != DefaultStaleAfter ||
		c.Log != logging.Default() || c.Desired == nil || len(c.Desired.Agents()) != 0 || c.Desired.Defaults().EvaluateEvery != desired.DefaultEvaluateEvery {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile(exampleCfgPath())
	f.Add(b)
	f.Add([]byte("agents: [{default: {name: a}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yaml", b)
		if err == nil && (c.Validate() != nil || c.Desired == nil) {
			t.Fatal("parsed config does not validate")
		}
	})
}
