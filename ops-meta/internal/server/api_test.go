package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/rollout"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const rolloutConfig = `
admin_token: "` + adminToken + `"
rollout: {soak: 100ms, deadline: 20s, evaluate_every: 50ms}
agents:
  - default: {name: kestrel-agent, version: 1.0.0, tarball: "http://t/a", cmd: start}
    others:
      - {prefix: canary, version: 0.5.0, tarball: "http://mirror/a", health: {http: "http://127.0.0.1:1988/health", timeout: 9}}
      - {prefix: parked, cmd: stop}
`

// fakeHost plays an updater: it reports whatever it was last told, or an
// error for versions in fail.
type fakeHost struct {
	name    string
	version string
	errMsg  string
	fail    map[string]bool
}

func (h *fakeHost) beat(e *env) proto.DesiredAgent {
	ra := proto.RealAgent{Name: "kestrel-agent", Version: h.version, Status: "started", Timestamp: time.Now().Unix(), Error: h.errMsg}
	d := e.heartbeat(h.name, ra)[0]
	if d.Version != h.version {
		if h.fail[d.Version] {
			h.errMsg = "health check of " + d.Version + " failed"
		} else {
			h.version, h.errMsg = d.Version, ""
		}
	}
	return d
}

func newFleet(n int, fail map[string]bool) []*fakeHost {
	var hs []*fakeHost
	for i := range n {
		hs = append(hs, &fakeHost{name: fmt.Sprintf("host-%02d", i), version: "1.0.0", fail: fail})
	}
	return hs
}

func (e *env) rollout(id string) RolloutView {
	var v RolloutView
	getJSON(e.t, e, "/api/v1/rollouts/"+id, &v)
	return v
}

func TestRolloutOverHTTP(t *testing.T) {
	e := newEnv(t, rolloutConfig, nil)
	hosts := newFleet(12, nil)
	for _, h := range hosts {
		h.beat(e)
	}
	code, body := e.admin("POST", "/api/v1/rollouts", `{"id":"r1","agent":"kestrel-agent","to":"2.0.0","waves":[20,50,100]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := e.admin("POST", "/api/v1/rollouts", `{"id":"r2","agent":"kestrel-agent","to":"3.0.0"}`); code != 409 {
		t.Fatalf("second active rollout: %d %s", code, body)
	}
	// Waves as computed by bucket; desired versions follow.
	ro, _ := e.srv.store.Rollout(t.Context(), "r1")
	for _, h := range hosts {
		d := h.beat(e)
		w := rollout.HostWave(&ro, h.name)
		if d.Wave != w || (w == 1) != (d.Version == "2.0.0") {
			t.Fatalf("%s wave %d: %+v", h.name, w, d)
		}
	}
	// The canary override's version is ignored while the rollout runs, but
	// its tarball mirror and health check still apply.
	if d := e.heartbeat("canary-1")[0]; d.Version == "0.5.0" || d.Tarball != "http://mirror/a" || d.Health == nil || d.Health.Timeout != 9 || d.Cmd != "start" {
		t.Fatalf("rollout must take precedence over prefix overrides for the version only: %+v", d)
	}
	hosts = append(hosts, &fakeHost{name: "canary-1", version: "1.0.0"})
	// parked-1 is kept stopped by its override: it reports the agent
	// stopped at 1.0.0 throughout, is told cmd stop, and is not part of
	// the rollout.
	parked := func() proto.DesiredAgent {
		t.Helper()
		d := e.heartbeat("parked-1", proto.RealAgent{Name: "kestrel-agent", Version: "1.0.0", Status: proto.AgentStoped, Timestamp: time.Now().Unix()})[0]
		if d.Cmd != "stop" || d.Wave != 0 {
			t.Fatalf("parked host during the rollout: %+v", d)
		}
		return d
	}
	parked()
	wait.For(t, "rollout completes", 30*time.Second, func() bool {
		for _, h := range hosts {
			h.beat(e)
		}
		parked()
		if err := e.srv.Evaluate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return e.rollout("r1").Status == store.Completed
	})
	v := e.rollout("r1")
	if v.Wave != 3 || len(v.Progress) != 3 || v.Progress[2].Healthy != v.Progress[2].Hosts {
		t.Fatalf("completed view %+v", v)
	}
	counted := 0
	for _, w := range v.Progress {
		counted += w.Hosts
		if w.Failed != 0 || w.Healthy != w.Hosts {
			t.Fatalf("wave %+v", w)
		}
	}
	if counted != len(hosts) || len(v.Hosts) != len(hosts) {
		t.Fatalf("waves count %d hosts, list %d, want %d (parked-1 left out)", counted, len(v.Hosts), len(hosts))
	}
	for _, h := range v.Hosts {
		if h.Hostname == "parked-1" {
			t.Fatalf("parked-1 in the rollout's hosts: %+v", h)
		}
	}
	for _, h := range hosts {
		if d := h.beat(e); d.Version != "2.0.0" || d.Wave != 0 {
			t.Fatalf("after completion %s: %+v", h.name, d)
		}
	}
	if d := parked(); d.Version != "2.0.0" {
		t.Fatalf("parked host after completion: %+v", d)
	}
	var hv struct{ Hosts []HostView }
	getJSON(t, e, "/api/v1/hosts", &hv)
	if len(hv.Hosts) != len(hosts)+1 {
		t.Fatalf("inventory has %d hosts, want %d (parked-1 included)", len(hv.Hosts), len(hosts)+1)
	}
	if n := testutil.ToFloat64(e.srv.metrics.promotions); n != 2 {
		t.Fatalf("promotions %v", n)
	}
	if n := testutil.ToFloat64(e.srv.metrics.completions); n != 1 {
		t.Fatalf("completions %v", n)
	}
}

func TestRolloutHaltsAndRollsBack(t *testing.T) {
	e := newEnv(t, rolloutConfig, nil)
	hosts := newFleet(10, map[string]bool{"2.0.0": true})
	for _, h := range hosts {
		h.beat(e)
	}
	// Every wave is 100 % so the first wave surely has hosts.
	if code, body := e.admin("POST", "/api/v1/rollouts", `{"id":"bad","agent":"kestrel-agent","to":"2.0.0","waves":[100]}`); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	wait.For(t, "halt", 30*time.Second, func() bool {
		for _, h := range hosts {
			h.beat(e)
		}
		e.srv.Evaluate(t.Context())
		return e.rollout("bad").Status == store.Halted
	})
	v := e.rollout("bad")
	if !strings.Contains(v.Reason, "failed") {
		t.Fatalf("reason %q", v.Reason)
	}
	for _, h := range hosts {
		if d := h.beat(e); d.Version != "1.0.0" {
			t.Fatalf("halted: %s desired %s", h.name, d.Version)
		}
	}
	if code, _ := e.admin("POST", "/api/v1/rollouts/bad/resume", ""); code != 409 {
		t.Fatal("halted is final")
	}
	// A new rollout may start after a halt.
	if code, body := e.admin("POST", "/api/v1/rollouts", `{"agent":"kestrel-agent","to":"2.0.1"}`); code != 201 {
		t.Fatalf("new rollout after halt: %d %s", code, body)
	}
	if n := testutil.ToFloat64(e.srv.metrics.halts); n != 1 {
		t.Fatalf("halts %v", n)
	}
}

func TestPauseResumeAbortAPI(t *testing.T) {
	e := newEnv(t, rolloutConfig+`
rollouts:
  - {id: file-r, agent: kestrel-agent, to: 2.0.0, waves: [100], soak: 1h}
`, nil)
	hosts := newFleet(3, nil)
	for _, h := range hosts {
		h.beat(e)
		h.beat(e)
	}
	if v := e.rollout("file-r"); v.Status != store.Running || v.Source != "file" {
		t.Fatalf("file rollout %+v", v)
	}
	for _, step := range []struct {
		action string
		code   int
		status string
	}{{"pause", 200, store.Paused}, {"pause", 409, store.Paused}, {"resume", 200, store.Running}, {"jump", 409, store.Running}, {"abort", 200, store.Aborted}, {"resume", 409, store.Aborted}} {
		code, body := e.admin("POST", "/api/v1/rollouts/file-r/"+step.action, "")
		if code != step.code {
			t.Fatalf("%s: %d %s", step.action, code, body)
		}
		if v := e.rollout("file-r"); v.Status != step.status {
			t.Fatalf("%s: status %s", step.action, v.Status)
		}
	}
	for _, h := range hosts {
		if d := h.beat(e); d.Version != "1.0.0" {
			t.Fatalf("aborted: %s at %s", h.name, d.Version)
		}
	}
	if code, _ := e.admin("POST", "/api/v1/rollouts/nope/pause", ""); code != 404 {
		t.Fatal("unknown rollout")
	}
	// A reload does not restart a finished file rollout.
	if err := e.srv.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := e.rollout("file-r"); v.Status != store.Aborted {
		t.Fatalf("after reload %s", v.Status)
	}
	var list struct{ Rollouts []RolloutView }
	getJSON(t, e, "/api/v1/rollouts", &list)
	if len(list.Rollouts) != 1 || list.Rollouts[0].ID != "file-r" {
		t.Fatalf("list %+v", list)
	}
}

func TestCreateRolloutValidation(t *testing.T) {
	e := newEnv(t, rolloutConfig, nil)
	for _, c := range []struct{ body, want string }{
		{`{`, "not a rollout"},
		{`{"agent":"kestrel-agent","to":"2.0.0","bogus":1}`, "unknown field"},
		{`{"agent":"nope","to":"2.0.0"}`, "not configured"},
		{`{"agent":"kestrel-agent","to":"1.0.0"}`, "equals from"},
		{`{"agent":"kestrel-agent","to":"x y"}`, "to:"},
		{`{"agent":"kestrel-agent","to":"2.0.0","waves":[50]}`, "last wave must be 100"},
		{`{"agent":"kestrel-agent","to":"2.0.0","soak":"forever"}`, "not a rollout"},
		{`{"agent":"kestrel-agent","to":"2.0.0","failure_threshold":"x"}`, "failure_threshold"},
		{`{"id":"a/b","agent":"kestrel-agent","to":"2.0.0"}`, "id:"},
	} {
		code, body := e.admin("POST", "/api/v1/rollouts", c.body)
		if code != 400 || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s, want %q", c.body, code, body, c.want)
		}
	}
}

func TestAdminAuth(t *testing.T) {
	e := newEnv(t, rolloutConfig, nil)
	paths := []string{"/api/v1/rollouts", "/api/v1/rollouts/x/pause", "/api/v1/rollouts/x/resume", "/api/v1/rollouts/x/abort", "/api/v1/reload"}
	for _, p := range paths {
		if code, _ := e.do("POST", p, `{}`); code != 401 {
			t.Errorf("%s without token: %d", p, code)
		}
		if code, _ := e.do("POST", p, `{}`, "Authorization", "Bearer wrong-token-0123456789"); code != 403 {
			t.Errorf("%s wrong token: %d", p, code)
		}
		if code, _ := e.do("POST", p, `{}`, "Authorization", "Basic "+adminToken); code != 403 {
			t.Errorf("%s basic: %d", p, code)
		}
	}
	// No admin token configured: disabled.
	e2 := newEnv(t, ofConfig, nil)
	if code, _ := e2.do("POST", "/api/v1/reload", "", "Authorization", "Bearer "); code != 403 {
		t.Errorf("disabled: %d", code)
	}
	rs, _ := e.srv.store.Rollouts(t.Context())
	if len(rs) != 0 {
		t.Fatal("rejected requests created rollouts")
	}
}

func TestReload(t *testing.T) {
	e := newEnv(t, rolloutConfig, nil)
	if d := e.heartbeat("h")[0]; d.Version != "1.0.0" {
		t.Fatal(d)
	}
	os.WriteFile(e.path, []byte(strings.Replace(rolloutConfig, "version: 1.0.0", "version: 1.1.0", 1)), 0o644)
	if code, body := e.admin("POST", "/api/v1/reload", ""); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if d := e.heartbeat("h")[0]; d.Version != "1.1.0" {
		t.Fatal(d)
	}
	os.WriteFile(e.path, []byte(rolloutConfig+"bogus: 1\n"), 0o644)
	code, body := e.admin("POST", "/api/v1/reload", "")
	if code != 422 || !strings.Contains(string(body), "bogus") || !strings.Contains(string(body), e.path) {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	if d := e.heartbeat("h")[0]; d.Version != "1.1.0" {
		t.Fatal("a bad file must keep the old config")
	}
}

func TestPageAndAPI(t *testing.T) {
	e := newEnv(t, rolloutConfig, nil)
	hostile := `<b>evil&"host'`
	e.heartbeat(hostile, proto.RealAgent{Name: "kestrel-agent", Version: "1.0.0", Status: "stoped", Error: "<script>alert(1)</script>"})
	e.heartbeat("web-01", proto.RealAgent{Name: "kestrel-agent", Version: "1.0.0", Status: "started"})
	if code, body := e.admin("POST", "/api/v1/rollouts", `{"id":"page-r","agent":"kestrel-agent","to":"2.0.0"}`); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	code, body := e.do("GET", "/", "")
	page := string(body)
	if code != 200 {
		t.Fatal(code)
	}
	for _, want := range []string{"web-01", "1.0.0", "&lt;b&gt;evil&amp;&#34;host&#39;", "&lt;script&gt;alert(1)&lt;/script&gt;",
		"page-r", "kestrel-agent 1.0.0 → 2.0.0", `class="waves"`, "<td>1%</td>", "<td>10%</td>", "<td>50%</td>", "<td>100%</td>", "stoped"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>evil") || strings.Contains(page, "<script>") {
		t.Fatal("page is not escaped")
	}
	var hv struct{ Hosts []HostView }
	getJSON(t, e, "/api/v1/hosts", &hv)
	if len(hv.Hosts) != 2 || hv.Hosts[0].Name != hostile || hv.Hosts[0].Agents[0].Error == "" || hv.Hosts[1].Stale {
		t.Fatalf("hosts %+v", hv)
	}
	if code, _ := e.do("GET", "/api/v1/rollouts/none", ""); code != 404 {
		t.Fatal("missing rollout")
	}
	if code, body := e.do("GET", "/health", ""); code != 200 || string(body) != "ok\n" {
		t.Fatal("health")
	}
	e.srv.Evaluate(t.Context())
	code, body = e.do("GET", "/metrics", "")
	for _, m := range []string{"kestrel_ops_meta_heartbeats_received_total", `kestrel_ops_meta_heartbeats_rejected_total{reason="bad_json"}`,
		`kestrel_ops_meta_hosts{state="fresh"} 2`, `kestrel_ops_meta_rollout_wave{rollout="page-r"} 1`, "kestrel_ops_meta_rollout_promotions_total",
		"kestrel_ops_meta_rollout_halts_total", "process_cpu_seconds_total"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// Two ops-meta instances share one MariaDB: both see the same inventory and
// rollout state, and each promotion is taken exactly once.
func TestTwoInstancesShareMariaDB(t *testing.T) {
	dsn := maria.Get(t).NewDatabase(t)
	open := func() store.Store {
		m, err := store.OpenMySQL(context.Background(), dsn, 5)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	a := newEnv(t, rolloutConfig, open())
	b := newEnv(t, rolloutConfig, open())
	hosts := newFleet(8, nil)
	for i, h := range hosts {
		h.beat([]*env{a, b}[i%2])
	}
	if code, body := a.admin("POST", "/api/v1/rollouts", `{"id":"shared","agent":"kestrel-agent","to":"2.0.0","waves":[25,50,75,100]}`); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	if code, _ := b.admin("POST", "/api/v1/rollouts", `{"id":"shared","agent":"kestrel-agent","to":"2.0.0"}`); code != 409 {
		t.Fatal("the other instance must see the rollout")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, e := range []*env{a, b} {
		wg.Go(func() {
			for ctx.Err() == nil {
				e.srv.Evaluate(ctx)
			}
		})
	}
	round := 0
	wait.For(t, "shared rollout completes", 30*time.Second, func() bool {
		round++
		for i, h := range hosts {
			h.beat([]*env{a, b}[(i+round)%2])
		}
		return a.rollout("shared").Status == store.Completed
	})
	cancel()
	wg.Wait()
	va, vb := a.rollout("shared"), b.rollout("shared")
	if vb.Status != store.Completed || va.Revision != vb.Revision || va.Wave != 4 || vb.Wave != 4 {
		t.Fatalf("views differ: %+v %+v", va, vb)
	}
	promotions := testutil.ToFloat64(a.srv.metrics.promotions) + testutil.ToFloat64(b.srv.metrics.promotions)
	completions := testutil.ToFloat64(a.srv.metrics.completions) + testutil.ToFloat64(b.srv.metrics.completions)
	if promotions != 3 || completions != 1 {
		t.Fatalf("promotions %v completions %v: a decision was taken twice", promotions, completions)
	}
	var ha, hb struct{ Hosts []HostView }
	getJSON(t, a, "/api/v1/hosts", &ha)
	getJSON(t, b, "/api/v1/hosts", &hb)
	ja, _ := json.Marshal(ha)
	jb, _ := json.Marshal(hb)
	if len(ha.Hosts) != 8 || string(ja) != string(jb) {
		t.Fatalf("inventories differ")
	}
}
