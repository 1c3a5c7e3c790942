//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

var listenRe = regexp.MustCompile(`msg="http listening" addr=(\S+)`)

func (p *updaterProc) statusURL(t *testing.T) string {
	var addr string
	wait.Until(t, "updater http address in its log", 10*time.Second, state(func() (bool, string) {
		m := listenRe.FindStringSubmatch(p.log())
		if m == nil {
			return false, ""
		}
		addr = m[1]
		return true, ""
	}))
	return "http://" + addr
}

// TestUpdaterLifecycle: fresh install, upgrade, rollback by changing the desired
// version, stop, start — one ops-updater process against a real ops-meta.
func TestUpdaterLifecycle(t *testing.T) {
	hurl := healthServer(t)
	m := startMeta(t, metaOpts{Version: "1.0.0", HealthURL: hurl, FleetToken: fleetToken})
	m.publish("1.0.0", agentPkg("1.0.0", false))
	m.publish("1.1.0", agentPkg("1.1.0", false))
	p := startUpdater(t, m, updOpts{Hostname: "life-1", RequireSignature: true, FleetToken: fleetToken}, "")

	step := func(what, v string) {
		t.Helper()
		wait.Until(t, what, 60*time.Second, state(func() (bool, string) {
			ok, s := whole(p.root, v)
			if !ok {
				return false, s
			}
			a, _ := m.host("life-1")
			return a.Version == v && a.Status == "started" && a.Error == "" && a.Pending == "", s + " ops-meta sees " + a.Version + " " + a.Status
		}))
	}
	step("fresh install of 1.0.0", "1.0.0")
	pid1 := fakeagent.Pid(filepath.Join(p.root, agentName, "1.0.0"))

	m.reload(metaOpts{Version: "1.1.0", HealthURL: hurl, FleetToken: fleetToken})
	step("upgrade to 1.1.0", "1.1.0")
	if fakeagent.Pid(filepath.Join(p.root, agentName, "1.0.0")) != 0 {
		t.Fatal("1.0.0 still running")
	}

	m.reload(metaOpts{Version: "1.0.0", HealthURL: hurl, FleetToken: fleetToken})
	step("rollback to 1.0.0", "1.0.0")
	if pid := fakeagent.Pid(filepath.Join(p.root, agentName, "1.0.0")); pid == pid1 || pid == 0 {
		t.Fatalf("1.0.0 not restarted: pid %d (was %d)", pid, pid1)
	}
	if !strings.Contains(p.log(), "reusing installed version") {
		t.Fatal("rollback downloaded the kept version again")
	}

	// /status and /health of the updater.
	base := p.statusURL(t)
	resp, err := http.Get(base + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v %v", resp, err)
	}
	resp.Body.Close()
	var st struct { // ops-updater's /status, the fields checked here
		Hostname      string `json:"hostname"`
		LastHeartbeat struct {
			OK bool `json:"ok"`
		} `json:"last_heartbeat"`
		Agents []struct {
			Version   string            `json:"version"`
			Status    string            `json:"status"`
			Previous  string            `json:"previous"`
			Installed []json.RawMessage `json:"installed"`
		} `json:"agents"`
	}
	resp, err = http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Hostname != "life-1" || !st.LastHeartbeat.OK || len(st.Agents) != 1 || st.Agents[0].Version != "1.0.0" ||
		st.Agents[0].Status != "started" || len(st.Agents[0].Installed) != 2 || st.Agents[0].Previous != "1.1.0" {
		t.Fatalf("/status: %+v", st)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var mb strings.Builder
	b := make([]byte, 1<<16)
	n, _ := resp.Body.Read(b)
	mb.Write(b[:n])
	resp.Body.Close()
	if !strings.Contains(mb.String(), `kestrel_updater_applies_total{result="installed"} 3`) {
		t.Fatalf("/metrics:\n%s", mb.String())
	}

	// cmd stop, then start again.
	m.reload(metaOpts{Version: "1.0.0", Cmd: "stop", HealthURL: hurl, FleetToken: fleetToken})
	wait.Until(t, "agent stopped", 30*time.Second, state(func() (bool, string) {
		a, running := onDisk(p.root)
		h, _ := m.host("life-1")
		return a == "1.0.0" && len(running) == 0 && h.Status == "stopped", h.Status
	}))
	m.reload(metaOpts{Version: "1.0.0", HealthURL: hurl, FleetToken: fleetToken})
	step("started again", "1.0.0")

	// A clean shutdown leaves the agent running.
	p.stop()
	if ok, s := whole(p.root, "1.0.0"); !ok {
		t.Fatalf("after updater shutdown: %s", s)
	}
	if _, err := os.Stat(filepath.Join(p.root, agentName, "1.0.0", "var", "app.log")); err != nil {
		t.Fatalf("agent log: %v", err)
	}
}

// TestUpdaterFleetTokenRequired: a wrong fleet token is refused by ops-meta and
// the updater reports the failed heartbeat, changing nothing.
func TestUpdaterFleetTokenRequired(t *testing.T) {
	m := startMeta(t, metaOpts{Version: "1.0.0", FleetToken: fleetToken})
	m.publish("1.0.0", agentPkg("1.0.0", false))
	p := startUpdater(t, m, updOpts{Hostname: "tok-1", FleetToken: "wrong-token-0123456789"}, "")
	wait.Until(t, "heartbeat failure in the log", 20*time.Second, state(func() (bool, string) {
		return strings.Contains(p.log(), "403"), ""
	}))
	if a, _ := onDisk(p.root); a != "" {
		t.Fatalf("installed %q without a valid token", a)
	}
}
