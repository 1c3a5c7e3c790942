package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
	"github.com/kestrel-mon/kestrel/proto"
)

const ofConfig = `
agents:
  - default: {name: falcon-agent, version: 0.0.1, tarball: "http://h:8888/falcon", md5: "", cmd: start}
`

// REFERENCE 7: the Open-Falcon request and response, field by field.
func TestOpenFalconWireCompat(t *testing.T) {
	e := newEnv(t, ofConfig, nil)
	code, body := e.do("POST", "/heartbeat", `{"hostname":"h1","realAgents":[{"name":"falcon-agent","version":"1.0.0","status":"started","timestamp":1430000000}]}`)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	if got := keys(top); !reflect.DeepEqual(got, []string{"desiredAgents", "errorMessage"}) {
		t.Fatalf("response keys %v", got)
	}
	if string(top["errorMessage"]) != `""` {
		t.Fatalf("errorMessage %s", top["errorMessage"])
	}
	var das []map[string]json.RawMessage
	json.Unmarshal(top["desiredAgents"], &das)
	if len(das) != 1 {
		t.Fatalf("desiredAgents %s", top["desiredAgents"])
	}
	if got := keys(das[0]); !reflect.DeepEqual(got, []string{"cmd", "md5", "name", "tarball", "version"}) {
		t.Fatalf("desired agent keys %v (Open-Falcon's only when no extras apply)", got)
	}
	want := map[string]string{"name": `"falcon-agent"`, "version": `"0.0.1"`, "tarball": `"http://h:8888/falcon"`, "md5": `""`, "cmd": `"start"`}
	for k, v := range want {
		if string(das[0][k]) != v {
			t.Errorf("%s = %s, want %s", k, das[0][k], v)
		}
	}
	// The request was stored field by field.
	h, ok, _ := e.srv.store.Host(t.Context(), "h1")
	if !ok || len(h.Agents) != 1 || h.Agents[0].Name != "falcon-agent" || h.Agents[0].Version != "1.0.0" ||
		h.Agents[0].Status != "started" || h.Agents[0].Timestamp != 1430000000 {
		t.Fatalf("stored %+v", h)
	}
	// Kestrel extras in the request are stored.
	e.heartbeat("h2", proto.RealAgent{Name: "falcon-agent", Version: "0.0.1", Status: "stoped", Timestamp: 1, Error: "health check failed", Pending: "0.0.2"})
	h, _, _ = e.srv.store.Host(t.Context(), "h2")
	if h.Agents[0].Error != "health check failed" || h.Agents[0].Pending != "0.0.2" || h.Agents[0].Status != "stoped" {
		t.Fatalf("extras %+v", h.Agents[0])
	}

	// No agents configured: desiredAgents is [] not null.
	e2 := newEnv(t, "", nil)
	_, body = e2.do("POST", "/heartbeat", `{"hostname":"h1"}`)
	if strings.TrimSpace(string(body)) != `{"errorMessage":"","desiredAgents":[]}` {
		t.Fatalf("empty: %s", body)
	}
}

func TestHeartbeatRejects(t *testing.T) {
	e := newEnv(t, ofConfig+"http: {max_body_bytes: 2048}\n", nil)
	cases := []struct {
		body string
		code int
		msg  string
	}{
		{"", 400, "body is blank"},
		{"  \n", 400, "body is blank"},
		{"{", 400, "not a heartbeat"},
		{"[1,2]", 400, "not a heartbeat"},
		{`{"hostname":"h"} trailing`, 400, "not a heartbeat"},
		{`{"hostname":""}`, 400, "hostname is blank"},
		{`{}`, 400, "hostname is blank"},
		{`{"realAgents":[]}`, 400, "hostname is blank"},
		{`{"hostname":"a\u0000b"}`, 400, "control"},
		{`{"hostname":"a b"}`, 400, "control character, a space"},
		{`{"hostname":"` + strings.Repeat("h", 256) + `"}`, 400, "limit is 255"},
		{`{"hostname":"h","realAgents":[{"name":"bad name","version":"1.0"}]}`, 400, "realAgents[0].name"},
		{`{"hostname":"h","realAgents":[{"name":"a","version":"x;rm"}]}`, 400, "realAgents[0].version"},
		{`{"hostname":"h","realAgents":[{"name":"a"},{"name":"a"}]}`, 400, "appears twice"},
		{`{"hostname":"h","realAgents":[{"name":"a","pending":"../x"}]}`, 400, "pending"},
		{`{"hostname":"h","realAgents":[{"name":"a","status":"ok\nfake"}]}`, 400, "status"},
		{`{"hostname":"` + strings.Repeat("h", 3000) + `"}`, 413, "over 2048 bytes"},
	}
	for _, c := range cases {
		code, body := e.do("POST", "/heartbeat", c.body)
		if code != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("%.60q: %d %q, want %d %q", c.body, code, body, c.code, c.msg)
		}
	}
	if code, _ := e.do("GET", "/heartbeat", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	hosts, _ := e.srv.store.Hosts(t.Context())
	if len(hosts) != 0 {
		t.Fatalf("rejected heartbeats stored hosts: %+v", hosts)
	}
}

// A garbage heartbeat or an unknown hostname never changes another host.
func TestGarbageNeverTouchesOtherHosts(t *testing.T) {
	e := newEnv(t, ofConfig, nil)
	e.heartbeat("web-01", proto.RealAgent{Name: "falcon-agent", Version: "0.0.1", Status: "started", Timestamp: 5})
	before, _, _ := e.srv.store.Host(t.Context(), "web-01")
	for _, b := range []string{
		`{"hostname":"web-01","realAgents":[{"name":"falcon-agent","version":"bad version"}]}`,
		`{"hostname":"web-01 ","realAgents":[]}`,
		`{"hostname":"web-01\u0000","realAgents":[]}`,
		`{"hostname":"web-01","realAgents":[{"name":"x"},{"name":"x"}]}`,
		`{"hostname":"web-01","realAgents":"nope"}`,
		`{"hostname":["web-01"]}`,
		`garbage`,
	} {
		if code, _ := e.do("POST", "/heartbeat", b); code != 400 {
			t.Fatalf("%q: %d", b, code)
		}
	}
	e.heartbeat("web-0", proto.RealAgent{Name: "falcon-agent", Version: "9.9.9", Status: "stoped"})
	e.heartbeat("unknown-host-xyz")
	after, _, _ := e.srv.store.Host(t.Context(), "web-01")
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("web-01 changed:\n%+v\n%+v", before, after)
	}
}

func TestPrefixOverridesLastMatchWins(t *testing.T) {
	e := newEnv(t, `
agents:
  - default: {name: a, version: 1.0.0, tarball: "http://t/a", cmd: start, health: {http: "http://127.0.0.1:1988/health", timeout: 7}}
    others:
      - {prefix: web, version: 1.1.0}
      - {prefix: web-0, version: 1.2.0, tarball: "http://other/a"}
      - {prefix: db, cmd: stop}
  - default: {name: b, version: 3.0.0, tarball: "http://t/b", cmd: start}
`, nil)
	cases := []struct{ host, version, tarball, cmd string }{
		{"web-01", "1.2.0", "http://other/a", "start"},
		{"web-11", "1.1.0", "http://t/a", "start"},
		{"db-1", "1.0.0", "http://t/a", "stop"},
		{"mail", "1.0.0", "http://t/a", "start"},
	}
	for _, c := range cases {
		d := e.heartbeat(c.host)
		if len(d) != 2 || d[0].Name != "a" || d[1].Name != "b" || d[1].Version != "3.0.0" {
			t.Fatalf("%s: %+v", c.host, d)
		}
		if d[0].Version != c.version || d[0].Tarball != c.tarball || d[0].Cmd != c.cmd {
			t.Errorf("%s: %+v", c.host, d[0])
		}
		if d[0].Health == nil || d[0].Health.HTTP != "http://127.0.0.1:1988/health" || d[0].Health.Timeout != 7 || d[1].Health != nil {
			t.Errorf("%s health: %+v %+v", c.host, d[0].Health, d[1].Health)
		}
	}
}

func TestSidecarsAndArtifacts(t *testing.T) {
	dir := t.TempDir()
	kd := t.TempDir()
	if err := sign.Keygen(filepath.Join(kd, "k.pub"), filepath.Join(kd, "k.key")); err != nil {
		t.Fatal(err)
	}
	priv, _ := sign.LoadPrivateKey(filepath.Join(kd, "k.key"))
	pub, _ := sign.LoadPublicKey(filepath.Join(kd, "k.pub"))
	tb := filepath.Join(dir, "kestrel-agent-1.0.0.tar.gz")
	os.WriteFile(tb, []byte("artifact"), 0o644)
	if err := sign.SignFile(priv, tb); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	e := newEnv(t, fmt.Sprintf(`
artifacts_dir: %q
public_url: "http://meta.example:2000/"
agents:
  - default: {name: kestrel-agent, version: 1.0.0, cmd: start}
    others: [{prefix: old, version: 0.9.0}]
    versions: {"0.9.0": {sha256: %q, signature: "c2ln"}}
`, dir, sha), nil)
	d := e.heartbeat("h1")[0]
	if d.Tarball != "http://meta.example:2000/artifacts" || d.Md5 != "" {
		t.Fatalf("derived tarball %+v", d)
	}
	sc, _ := sign.ReadSidecars(tb)
	if d.Sha256 != sc.Sha256 || d.Signature != sc.Signature {
		t.Fatalf("sidecars %+v", d)
	}
	if err := sign.VerifySignature(pub, d.Name, d.Version, d.Sha256, d.Signature); err != nil {
		t.Fatal(err)
	}
	// Not in artifacts_dir: from the config.
	d = e.heartbeat("old-1")[0]
	if d.Version != "0.9.0" || d.Sha256 != sha || d.Signature != "c2ln" {
		t.Fatalf("config versions %+v", d)
	}
	// The artifacts are served, with their sidecars; nothing else is.
	code, body := e.do("GET", "/artifacts/kestrel-agent-1.0.0.tar.gz", "")
	if code != 200 || string(body) != "artifact" {
		t.Fatalf("artifact %d %q", code, body)
	}
	code, body = e.do("GET", "/artifacts/kestrel-agent-1.0.0.tar.gz.md5", "")
	if code != 200 || !strings.HasSuffix(string(body), "  kestrel-agent-1.0.0.tar.gz\n") {
		t.Fatalf("md5 %d %q", code, body)
	}
	for _, p := range []string{"/artifacts/", "/artifacts/../ops-meta.yaml", "/artifacts/%2e%2e%2fetc", "/artifacts/missing.tar.gz"} {
		if code, _ := e.do("GET", p, ""); code != 404 {
			t.Errorf("%s: %d", p, code)
		}
	}
}

func TestFleetToken(t *testing.T) {
	e := newEnv(t, ofConfig+"fleet_token: fleet-token-0123456789\n", nil)
	body := `{"hostname":"h1"}`
	if code, _ := e.do("POST", "/heartbeat", body); code != 401 {
		t.Fatalf("missing: %d", code)
	}
	if code, _ := e.do("POST", "/heartbeat", body, FleetTokenHeader, "wrong-token-0123456789"); code != 403 {
		t.Fatalf("wrong: %d", code)
	}
	if code, _ := e.do("POST", "/heartbeat", body, FleetTokenHeader, "fleet-token-0123456789"); code != 200 {
		t.Fatalf("header: %d", code)
	}
	if code, _ := e.do("POST", "/heartbeat", body, "Authorization", "Bearer fleet-token-0123456789"); code != 200 {
		t.Fatalf("bearer: %d", code)
	}
	hosts, _ := e.srv.store.Hosts(t.Context())
	if len(hosts) != 1 {
		t.Fatalf("hosts %+v", hosts)
	}
}

func TestStatusEndpoints(t *testing.T) {
	e := newEnv(t, ofConfig, nil)
	e.heartbeat("h2", proto.RealAgent{Name: "falcon-agent", Version: "1.0.0", Status: "started", Timestamp: 1430000000})
	e.heartbeat("h1", proto.RealAgent{Name: "other", Version: "2.0", Status: "stoped", Timestamp: 1})
	var m map[string]*proto.RealAgent
	getJSON(t, e, "/status/json/falcon-agent", &m)
	if len(m) != 2 || m["h1"] != nil || m["h2"] == nil || m["h2"].Version != "1.0.0" || m["h2"].Status != "started" || m["h2"].Timestamp != 1430000000 {
		t.Fatalf("json %+v", m)
	}
	code, body := e.do("GET", "/status/text/falcon-agent", "")
	want := "h1 no such agent\nh2 1.0.0 started 1430000000 2015-04-25 22:13:20\n"
	if code != 200 || string(body) != want {
		t.Fatalf("text %d %q, want %q", code, body, want)
	}
}

func FuzzHeartbeat(f *testing.F) {
	f.Add(`{"hostname":"h1","realAgents":[{"name":"falcon-agent","version":"1.0.0","status":"started","timestamp":1}]}`)
	f.Add(`{"hostname":"","realAgents":null}`)
	f.Add(`{"hostname":"h","realAgents":[{"name":"a","error":"\xff"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var req proto.HeartbeatRequest
		if json.Unmarshal([]byte(body), &req) != nil {
			return
		}
		agents, err := ValidateHeartbeat(&req)
		if err != nil {
			return
		}
		if ValidateHostname(req.Hostname) != nil || len(agents) != len(req.RealAgents) {
			t.Fatal("accepted an invalid heartbeat")
		}
		for _, a := range agents {
			if !sign.ValidName(a.Name) || len(a.Error) > MaxError+len(maxTruncated) {
				t.Fatalf("bad agent %+v", a)
			}
		}
	})
}
