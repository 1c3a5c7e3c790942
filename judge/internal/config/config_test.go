package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// The example file documents every default: loading it gives exactly the
// defaults, with the default node id and its rules file resolved.
func TestExampleLoads(t *testing.T) {
	c, err := Load("../../kestrel-judge.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.HTTP.Listen != ":6081" || c.Window.Size != 11 || c.Window.IdleEvict != 24*time.Hour ||
		c.Alarm.MinInterval != 300*time.Second || c.Alarm.EventListFormat != "event:p%d" ||
		c.Alarm.StreamMaxLen != 100000 || c.HeartbeatInterval != time.Second || c.Redis.Addr != d.Redis.Addr ||
		c.Ring != d.Ring || c.Membership != d.Membership || c.Ownership != d.Ownership {
		t.Fatalf("example differs from defaults: %+v", c)
	}
	if err := proto.ValidateNodeID(c.NodeID); err != nil || !strings.HasSuffix(c.NodeID, "-6081") {
		t.Fatalf("default node id %q: %v", c.NodeID, err)
	}
	d.NodeID = DefaultNodeID(d.HTTP.Listen)
	d.RulesFile = filepath.Join("..", "..", "rules.example.yaml")
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("example differs from defaults:\n got %+v\nwant %+v", c, d)
	}
}

func TestDefaultNodeID(t *testing.T) {
	h, _ := os.Hostname()
	want := proto.SubjectToken(h) + "-7000"
	if got := DefaultNodeID("127.0.0.1:7000"); got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestBadConfigs(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"rules_file: r.yaml\nbogus: 1\n", "field bogus not found"},
		{"", "rules_file: required"},
		{"rules_file: r\nnode_id: members\n", "node_id:"},
		{"rules_file: r\nnode_id: a.b\n", "node_id:"},
		{"rules_file: r\nwindow: {size: 0}\n", "window.size"},
		{"rules_file: r\nwindow: {idle_evict: 5}\n", "line 2: window.idle_evict: cannot unmarshal !!int `5` into time.Duration"},
		{"rules_file: r\nwindow:\n  idle_evict: 5 m\n", "line 3: window.idle_evict: cannot unmarshal !!str `5 m` into time.Duration"},
		{"rules_file: r\nalarm: {event_list_format: \"events\"}\n", "alarm.event_list_format"},
		{"rules_file: r\nalarm: {event_list_len: -1}\n", "alarm.event_list_len"},
		{"rules_file: r\nredis: {addr: nope}\n", "redis.addr"},
		{"rules_file: r\nredis: {tls: {cert_file: a}}\n", "redis.tls"},
		{"rules_file: r\nnats: {urls: []}\n", "nats.urls"},
		{"rules_file: r\nnats: {urls: [\"htp:/bad url\"]}\n", `nats.urls[0]: "htp:/bad url" is not a NATS URL`},
		{"rules_file: r\nnats: {urls: [\"nats://a:4222\", \"nats://b:99999\"]}\n", "nats.urls[1]"},
		{"rules_file: r\nnats: {connect_timeout: 0s}\n", "nats.connect_timeout"},
		{"rules_file: r\nnats: {tls: {key_file: k}}\n", "nats.tls: cert_file and key_file go together"},
		{"rules_file: r\nnats: {token: a, user: b}\n", "only one of"},
		{"rules_file: r\nlog: {level: loud}\n", "log.level"},
		{"rules_file: r\nlog: {format: xml}\n", "log.format"},
		{"rules_file: r\nheartbeat_interval: 0s\n", "heartbeat_interval"},
		{"rules_file: r\nring: {partition_count: 0}\n", "ring.partition_count"},
		{"rules_file: r\nring: {load: 1}\n", "ring.load"},
		{"rules_file: r\nring: {hasher: md5}\n", "ring.hasher"},
		{"rules_file: r\nring: {bucket_replicas: 7}\n", "ring.bucket_replicas"},
		{"rules_file: r\nmembership: {timeout: 1s}\n", "membership.timeout: must be longer than heartbeat_interval"},
		{"rules_file: r\nmembership: {rejoin_hold: -1s}\n", "membership.rejoin_hold"},
		{"rules_file: r\nownership: {settle: 3s}\n", "ownership.settle: must be at least heartbeat_interval + redis.op_timeout (4s)"},
	}
	for _, c := range cases {
		_, err := Parse("judge.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "judge.yaml: ") {
			t.Errorf("%q: got %v, want error naming judge.yaml and %q", c.yaml, err, c.want)
		}
	}
}

// Validate reports every bad field at once, each line with the file.
func TestAllErrorsAtOnce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "judge.yaml")
	write(t, p, "rules_file: r\nnats: {urls: [\"htp:/bad url\"]}\nwindow: {size: 0}\nworkers: 0\nlog: {level: loud}\n")
	_, err := Load(p)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"nats.urls[0]:", "window.size:", "workers:", "log.level:"}
	if len(lines) != len(want) {
		t.Fatalf("want %d errors, got %q", len(want), err)
	}
	for i, field := range want {
		if !strings.HasPrefix(lines[i], p+": "+field) {
			t.Errorf("error %d = %q, want it to start with the file and %s", i, lines[i], field)
		}
	}
}

// rules_file is resolved against the config file's directory ("relative to
// this file", as deploy/local/judge.yaml says), not the working directory;
// an absolute path is kept.
func TestRulesFileRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "etc", "kestrel")
	for _, p := range []string{filepath.Join(confDir, "rules.yaml"), filepath.Join(confDir, "rules.d", "main.yaml"), filepath.Join(dir, "abs.yaml")} {
		write(t, p, "strategies: []\n")
	}
	elsewhere := filepath.Join(dir, "elsewhere")
	if err := os.MkdirAll(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(elsewhere) // no rules file here
	f := func(configPath, rulesFile, want string) {
		t.Helper()
		write(t, configPath, "rules_file: "+rulesFile+"\n")
		c, err := Load(configPath)
		if err != nil {
			t.Fatalf("rules_file %s in %s: %v", rulesFile, configPath, err)
		}
		if c.RulesFile != want {
			t.Errorf("rules_file %s in %s = %s, want %s", rulesFile, configPath, c.RulesFile, want)
		}
	}
	f(filepath.Join(confDir, "judge.yaml"), "rules.yaml", filepath.Join(confDir, "rules.yaml"))
	f(filepath.Join(confDir, "judge.yaml"), "./rules.d/main.yaml", filepath.Join(confDir, "rules.d", "main.yaml"))
	f(filepath.Join(confDir, "judge.yaml"), "../kestrel/rules.yaml", filepath.Join(confDir, "rules.yaml"))
	f(filepath.Join(confDir, "judge.yaml"), filepath.Join(dir, "abs.yaml"), filepath.Join(dir, "abs.yaml"))
	// A config path relative to the working directory.
	f(filepath.Join("..", "etc", "kestrel", "judge.yaml"), "rules.yaml", filepath.Join("..", "etc", "kestrel", "rules.yaml"))
}

// A rules file that cannot be read is an error naming the config file,
// the field, what was written and where it was looked for.
func TestRulesFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write(t, filepath.Join(dir, "rules.yaml"), "strategies: []\n") // in the working directory only
	confDir := filepath.Join(dir, "conf")
	path := filepath.Join(confDir, "judge.yaml")
	write(t, path, "rules_file: rules.yaml\n")
	_, err := Load(path)
	if err == nil {
		t.Fatal("no error: the rules file was looked for in the working directory")
	}
	for _, want := range []string{path + ": rules_file:", `"rules.yaml"`, filepath.Join(confDir, "rules.yaml"), "no such file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// A directory is not a rules file either.
	if err := os.Mkdir(filepath.Join(confDir, "rules.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, path, "rules_file: rules.d\n")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path+": rules_file:") {
		t.Errorf("rules_file is a directory: got %v", err)
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
