package launch

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"go.yaml.in/yaml/v3"
)

func TestCheckPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	err = CheckPort(PortUse{Addr: addr, What: "NATS", Hint: "run kestrel-run with -nats 127.0.0.1:<other port>"})
	var busy *PortBusyError
	if !errors.As(err, &busy) {
		t.Fatalf("CheckPort on a busy port = %v, want *PortBusyError", err)
	}
	want := "port " + port + " (NATS, " + addr + ") is in use by another process; stop it or run kestrel-run with -nats"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("message %q\nwant prefix %q", err.Error(), want)
	}
}

func TestCheckPortFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := CheckPort(PortUse{Addr: addr, What: "x"}); err != nil {
		t.Fatalf("CheckPort on a free port: %v", err)
	}
}

func TestCheckPortBadAddress(t *testing.T) {
	for _, addr := range []string{"nonsense", "127.0.0.1:99999", "127.0.0.1:x", ""} {
		err := CheckPort(PortUse{Addr: addr, What: "x"})
		var busy *PortBusyError
		if err == nil || errors.As(err, &busy) {
			t.Errorf("CheckPort(%q) = %v, want an address error", addr, err)
		}
	}
}

func TestCheckPortsJoinsAll(t *testing.T) {
	a, _ := net.Listen("tcp", "127.0.0.1:0")
	b, _ := net.Listen("tcp", "127.0.0.1:0")
	defer a.Close()
	defer b.Close()
	err := CheckPorts([]PortUse{{Addr: a.Addr().String(), What: "a"}, {Addr: b.Addr().String(), What: "b"}})
	if err == nil || !strings.Contains(err.Error(), "(a,") || !strings.Contains(err.Error(), "(b,") {
		t.Fatalf("CheckPorts = %v, want both ports reported", err)
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		":6060":          "127.0.0.1:6060",
		"0.0.0.0:6081":   "127.0.0.1:6081",
		"127.0.0.1:1988": "127.0.0.1:1988",
		"[::]:1":         "127.0.0.1:1",
		"10.1.2.3:80":    "10.1.2.3:80",
	} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChildConfigRewrite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "judge.yaml")
	os.WriteFile(src, []byte("node_id: n1\nhttp:\n  listen: \":6081\"\nrpc_listen: \":8433\"\nrules_file: rules.yaml\nnats:\n  urls: [\"nats://x:1\"]\n  subject_prefix: kestrel\n"), 0o644)
	c, err := LoadChildConfig("kestrel-judge", src)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listens()
	if len(l) != 2 || l[0].Addr != ":6081" || l[0].What != "kestrel-judge http.listen" || l[1].Addr != ":8433" {
		t.Fatalf("Listens = %+v", l)
	}
	if !strings.Contains(l[0].Hint, src) {
		t.Fatalf("hint %q does not name the file", l[0].Hint)
	}
	c.Set("nats.urls", []any{"nats://127.0.0.1:4222"})
	c.Set("redis.addr", "127.0.0.1:6379")
	c.ResolvePath("rules_file")
	out := filepath.Join(dir, "out.yaml")
	if err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["rules_file"] != filepath.Join(dir, "rules.yaml") {
		t.Errorf("rules_file = %v", got["rules_file"])
	}
	if got["redis"].(map[string]any)["addr"] != "127.0.0.1:6379" {
		t.Errorf("redis = %v", got["redis"])
	}
	n := got["nats"].(map[string]any)
	if n["urls"].([]any)[0] != "nats://127.0.0.1:4222" || n["subject_prefix"] != "kestrel" {
		t.Errorf("nats = %v", n)
	}
	if got["node_id"] != "n1" {
		t.Errorf("node_id = %v", got["node_id"])
	}
}

func TestLoadChildConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadChildConfig("kestrel-agent", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file: no error")
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("http: [\n"), 0o644)
	if _, err := LoadChildConfig("kestrel-agent", bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad yaml: %v", err)
	}
}

// The shipped configs point at the default ports.
func TestLocalConfigs(t *testing.T) {
	want := map[string]string{"transfer.yaml": "127.0.0.1:6060", "judge.yaml": "127.0.0.1:6081", "agent.yaml": "127.0.0.1:1988"}
	for file, listen := range want {
		c, err := LoadChildConfig(file, filepath.Join("..", "..", "local", file))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.HTTPListen(""); got != listen {
			t.Errorf("%s http.listen = %q, want %q", file, got, listen)
		}
		urls, _ := c.Get("nats.urls").([]any)
		if len(urls) != 1 || urls[0] != "nats://127.0.0.1:4222" {
			t.Errorf("%s nats.urls = %v", file, urls)
		}
	}
	c, _ := LoadChildConfig("judge", filepath.Join("..", "..", "local", "judge.yaml"))
	if c.Get("redis.addr") != "127.0.0.1:6379" || c.Get("rules_file") != "rules.yaml" {
		t.Errorf("judge redis/rules: %v %v", c.Get("redis.addr"), c.Get("rules_file"))
	}
}

// The sample rules carry the demo expression exactly as documented, and
// no rule needs more points than the judge's window.
func TestLocalRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "local", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Strategies []struct {
			ID           int               `yaml:"id"`
			Endpoints    []string          `yaml:"endpoints"`
			AllEndpoints bool              `yaml:"allEndpoints"`
			Metric       string            `yaml:"metric"`
			Tags         map[string]string `yaml:"tags"`
			Func         string            `yaml:"func"`
			Operator     string            `yaml:"operator"`
			RightValue   float64           `yaml:"rightValue"`
			MaxStep      int               `yaml:"maxStep"`
			Priority     int               `yaml:"priority"`
			Note         string            `yaml:"note"`
			Tpl          map[string]any    `yaml:"tpl"`
		} `yaml:"strategies"`
		Expressions []struct {
			ID         int               `yaml:"id"`
			Metric     string            `yaml:"metric"`
			Tags       map[string]string `yaml:"tags"`
			Func       string            `yaml:"func"`
			Operator   string            `yaml:"operator"`
			RightValue float64           `yaml:"rightValue"`
			MaxStep    int               `yaml:"maxStep"`
			Priority   int               `yaml:"priority"`
			Note       string            `yaml:"note"`
			ActionID   int               `yaml:"actionId"`
		} `yaml:"expressions"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, x := range rules.Expressions {
		if x.ID == 1 {
			found = true
			if x.Metric != "demo.load" || len(x.Tags) != 0 || x.Func != "all(#3)" || x.Operator != ">" ||
				x.RightValue != 90 || x.MaxStep != 3 || x.Priority != 0 || x.Note != "demo load too high" || x.ActionID != 1 {
				t.Errorf("demo expression = %+v", x)
			}
		}
	}
	if !found {
		t.Error("no expression with id 1")
	}
	if len(rules.Strategies) < 2 {
		t.Errorf("want at least two host strategies, have %d", len(rules.Strategies))
	}
	for _, s := range rules.Strategies {
		if !s.AllEndpoints || s.Tpl == nil || s.MaxStep < 1 {
			t.Errorf("strategy %d: %+v", s.ID, s)
		}
		if !strings.Contains(s.Func, "#3") {
			t.Errorf("strategy %d func %q needs more points than expected", s.ID, s.Func)
		}
	}
}

func TestFormatEvent(t *testing.T) {
	e := &proto.Event{
		ID:         "e_1_abc",
		Expression: &proto.EventExpression{ID: 1, Metric: "demo.load", Priority: 0, MaxStep: 3, Note: "demo load too high"},
		Status:     proto.StatusProblem, Endpoint: "demo-host", LeftValue: 95.5, CurrentStep: 1, EventTime: 1431349740,
	}
	got := FormatEvent(e, time.UTC)
	want := `2015-05-11 13:09:00  PROBLEM  p0  demo-host  demo.load  95.5  (e_1_abc, step 1/3)  "demo load too high"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	s := &proto.Event{
		ID:       "s_15_d2a3",
		Strategy: &proto.EventStrategy{ID: 15, Metric: "cpu.idle", Priority: 2, MaxStep: 3},
		Status:   proto.StatusOK, Endpoint: "host01", LeftValue: 40, CurrentStep: 1, EventTime: 1431349800,
	}
	got = FormatEvent(s, time.UTC)
	want = `2015-05-11 13:10:00  OK       p2  host01  cpu.idle  40  (s_15_d2a3, step 1/3)`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestFormatStreamMessage(t *testing.T) {
	e := &proto.Event{ID: "e_1_x", Expression: &proto.EventExpression{ID: 1, Metric: "demo.load", MaxStep: 3},
		Status: "PROBLEM", Endpoint: "h", LeftValue: 91, CurrentStep: 1, EventTime: 60}
	b, err := proto.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	line, err := FormatStreamMessage(map[string]any{"id": "e_1_x", "event": string(b)}, time.UTC)
	if err != nil || !strings.Contains(line, "PROBLEM  p0  h  demo.load  91") {
		t.Fatalf("line %q err %v", line, err)
	}
	if _, err := FormatStreamMessage(map[string]any{"id": "x"}, time.UTC); err == nil {
		t.Error("no event field: no error")
	}
	if _, err := FormatStreamMessage(map[string]any{"event": "{"}, time.UTC); err == nil {
		t.Error("bad json: no error")
	}
}

func TestFindRedisServerMissing(t *testing.T) {
	_, err := findRedisServer("/nonexistent/redis-server", "127.0.0.1:6379")
	var m *MissingRedisError
	if !errors.As(err, &m) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(m.Hint(), "sudo apt-get install redis-server") || !strings.Contains(m.Hint(), "127.0.0.1:6379") {
		t.Errorf("hint %q", m.Hint())
	}
}

func TestCurlExample(t *testing.T) {
	s := CurlExample("127.0.0.1:1988")
	for _, want := range []string{"http://127.0.0.1:1988/v1/push", `\"metric\":\"demo.load\"`, `\"value\":95`} {
		if !strings.Contains(s, want) {
			t.Errorf("curl example lacks %q:\n%s", want, s)
		}
	}
}
