//go:build e2e

// The end-to-end tests of agent rollouts: the real ops-meta and
// ops-updater binaries (ops-updater built with -race, so the updaters are
// race-checked as processes), real HTTP, real tarballs signed with
// "ops-meta sign", the real agent/package/control script driving a
// stand-in agent (lib/testutil/fakeagent), several updaters rolling out in
// waves, refusals, SIGKILL in the middle of an install, and the agent
// packaging script.

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/lib/proctest"
	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

const (
	agentName  = "kestrel-agent"
	adminToken = "admin-token-0123456789abcdef"
	fleetToken = "fleet-token-0123456789abcdef"
)

// opsMetaBin and opsUpdaterBin are the binaries under test (see TestMain).
func opsMetaBin() string    { return filepath.Join(binDir, "ops-meta") }
func opsUpdaterBin() string { return filepath.Join(binDir, "ops-updater") }

// state adapts a check that reports (done, what it sees) to wait.Until.
func state(check func() (bool, string)) func() error {
	return func() error {
		if ok, s := check(); !ok {
			return errors.New(s)
		}
		return nil
	}
}

// raceFree fails the test when a race-built child reported a data race.
func raceFree(t *testing.T, name string, p *proctest.Proc) {
	t.Helper()
	if out := p.Output.String(); strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("%s reported a data race:\n%s", name, out)
	}
}

// ---- ops-meta ----

type metaOpts struct {
	Version     string            // default version of kestrel-agent
	Cmd         string            // default "start"
	Others      string            // YAML list for "others"
	Waves       string            // e.g. "[25, 50, 100]"
	HealthURL   string            // "" = no health check
	Rollouts    string            // YAML list
	Versions    map[string]string // extra YAML under versions (unused when "")
	Soak        string
	Deadline    string
	FleetToken  string
	TarballBase string // "" = ops-meta's /artifacts
}

type meta struct {
	t         *testing.T
	url       string
	port      int
	dir       string
	artifacts string
	cfgPath   string
	proc      *proctest.Proc
	pub, priv string // key files
}

// opsMeta runs "ops-meta args..." to completion and fails the test unless
// it exits 0.
func opsMeta(t *testing.T, args ...string) {
	t.Helper()
	if code, stdout, stderr := proctest.Run(t, opsMetaBin(), args...); code != 0 {
		t.Fatalf("ops-meta %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
}

func startMeta(t *testing.T, o metaOpts) *meta {
	t.Helper()
	m := &meta{t: t, dir: t.TempDir()}
	m.port = freePort(t)
	m.url = fmt.Sprintf("http://127.0.0.1:%d", m.port)
	m.artifacts = filepath.Join(m.dir, "artifacts")
	os.MkdirAll(m.artifacts, 0o755)
	m.cfgPath = filepath.Join(m.dir, "ops-meta.yaml")
	m.pub, m.priv = filepath.Join(m.dir, "sign.pub"), filepath.Join(m.dir, "sign.key")
	opsMeta(t, "sign", "keygen", "-pub", m.pub, "-priv", m.priv)
	m.writeConfig(o)
	m.proc = proctest.Start(t, opsMetaBin(), "-c", m.cfgPath)
	t.Cleanup(func() { // before proctest's SIGKILL: stop it the way an operator does
		m.proc.Signal(syscall.SIGTERM)
		m.proc.Wait(10 * time.Second)
	})
	wait.Until(t, "ops-meta /health", 20*time.Second, func() error {
		select {
		case <-m.proc.Exited():
			t.Fatalf("ops-meta exited:\n%s", m.proc.Output.String())
		default:
		}
		return spawn.HTTPCheck(m.url + "/health")
	})
	return m
}

func (m *meta) writeConfig(o metaOpts) {
	if o.Cmd == "" {
		o.Cmd = "start"
	}
	if o.Waves == "" {
		o.Waves = "[1, 10, 50, 100]"
	}
	if o.Soak == "" {
		o.Soak = "1s"
	}
	if o.Deadline == "" {
		o.Deadline = "60s"
	}
	if o.Others == "" {
		o.Others = "[]"
	}
	if o.Rollouts == "" {
		o.Rollouts = "[]"
	}
	tarball := o.TarballBase
	if tarball == "" {
		tarball = m.url + "/artifacts"
	}
	health := ""
	if o.HealthURL != "" {
		health = fmt.Sprintf("\n      health: {http: %q, timeout: 20}", o.HealthURL)
	}
	cfg := fmt.Sprintf(`http:
  listen: "127.0.0.1:%d"
log: {level: debug}
admin_token: %q
fleet_token: %q
artifacts_dir: %q
public_url: %q
inventory: {stale_after: 10m}
rollout:
  waves: %s
  soak: %s
  deadline: %s
  evaluate_every: 100ms
agents:
  - default:
      name: kestrel-agent
      version: %q
      tarball: %q
      cmd: %s%s
    others: %s
rollouts: %s
`, m.port, adminToken, o.FleetToken, m.artifacts, m.url, o.Waves, o.Soak, o.Deadline, o.Version, tarball, o.Cmd, health, o.Others, o.Rollouts)
	if err := os.WriteFile(m.cfgPath, []byte(cfg), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

// reload rewrites the config and makes ops-meta load it (POST /api/v1/reload).
func (m *meta) reload(o metaOpts) {
	m.t.Helper()
	m.writeConfig(o)
	req, _ := http.NewRequest(http.MethodPost, m.url+"/api/v1/reload", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		m.t.Fatalf("reload: %s %s", resp.Status, b)
	}
}

func (m *meta) api(method, path string, body any, out any) int {
	m.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, m.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			m.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		m.t.Logf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return resp.StatusCode
}

type hostAgent struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	Pending string `json:"pending"`
}

type hostView struct {
	Hostname string      `json:"hostname"`
	Agents   []hostAgent `json:"agents"`
}

// host returns what ops-meta last heard from hostname about kestrel-agent.
func (m *meta) host(hostname string) (hostAgent, bool) {
	var out struct {
		Hosts []hostView `json:"hosts"`
	}
	m.api(http.MethodGet, "/api/v1/hosts", nil, &out)
	for _, h := range out.Hosts {
		if h.Hostname == hostname {
			for _, a := range h.Agents {
				if a.Name == agentName {
					return a, true
				}
			}
			return hostAgent{}, true
		}
	}
	return hostAgent{}, false
}

type rolloutView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Wave   int    `json:"wave"`
	Reason string `json:"reason"`
	Hosts  []struct {
		Hostname string `json:"hostname"`
		Wave     int    `json:"wave"`
		State    string `json:"state"`
	} `json:"hosts"`
}

func (m *meta) rollout(id string) rolloutView {
	var r rolloutView
	m.api(http.MethodGet, "/api/v1/rollouts/"+id, nil, &r)
	return r
}

// publish writes kestrel-agent-<version>.tar.gz into the artifacts dir and
// signs it with "ops-meta sign sign" (sidecars .sha256, .md5, .sig).
func (m *meta) publish(version string, data []byte) string {
	m.t.Helper()
	p := filepath.Join(m.artifacts, agentName+"-"+version+".tar.gz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		m.t.Fatal(err)
	}
	opsMeta(m.t, "sign", "sign", "-key", m.priv, p)
	return p
}

// publishUnsigned writes the tarball with .sha256 and .md5 only.
func (m *meta) publishUnsigned(version string, data []byte) {
	m.t.Helper()
	a := fakeagent.NewArtifact(agentName, version, data, nil)
	if err := a.WriteFiles(m.artifacts); err != nil {
		m.t.Fatal(err)
	}
}

func agentPkg(version string, broken bool) []byte {
	return fakeagent.Package(fakeagent.Options{Version: version, Broken: broken})
}

// ---- ops-updater ----

type updOpts struct {
	Hostname         string
	Interval         string
	RequireSignature bool
	NoKey            bool
	MaxSize          int
	FleetToken       string
	MetaURLs         []string
}

func updaterConfig(t *testing.T, m *meta, o updOpts, root string) string {
	if o.Interval == "" {
		o.Interval = "300ms"
	}
	if o.MaxSize == 0 {
		o.MaxSize = 4 << 20
	}
	urls := o.MetaURLs
	if len(urls) == 0 {
		urls = []string{m.url}
	}
	keys := fmt.Sprintf("[%q]", m.pub)
	if o.NoKey {
		keys = "[]"
	}
	u, _ := json.Marshal(urls)
	return fmt.Sprintf(`hostname: %q
meta_urls: %s
fleet_token: %q
install_dir: %q
interval: %s
public_key_files: %s
require_signature: %v
download: {timeout: 20s, max_size: %d}
control_timeout: 30s
health_timeout: 20s
http: {listen: "127.0.0.1:0"}
log: {level: debug}
`, o.Hostname, u, o.FleetToken, root, o.Interval, keys, o.RequireSignature, o.MaxSize)
}

// updaterProc is an ops-updater process (race-built by TestMain).
type updaterProc struct {
	t    *testing.T
	proc *proctest.Proc
	root string
	cfg  string
}

func startUpdater(t *testing.T, m *meta, o updOpts, root string) *updaterProc {
	t.Helper()
	if root == "" {
		root = filepath.Join(t.TempDir(), "agents")
	}
	cfg := filepath.Join(t.TempDir(), "ops-updater.yaml")
	if err := os.WriteFile(cfg, []byte(updaterConfig(t, m, o, root)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &updaterProc{t: t, root: root, cfg: cfg}
	p.proc = proctest.Start(t, opsUpdaterBin(), "-c", cfg)
	t.Cleanup(func() { // before proctest's SIGKILL and output dump
		p.stop()
		fakeagent.KillAll(root)
		raceFree(t, "ops-updater "+o.Hostname, p.proc)
	})
	return p
}

// log is everything the updater wrote so far.
func (p *updaterProc) log() string { return p.proc.Output.String() }

// stop sends SIGTERM and waits for the exit (installs under way finish).
func (p *updaterProc) stop() {
	p.proc.Signal(syscall.SIGTERM)
	if exited, _ := p.proc.Wait(60 * time.Second); !exited {
		p.kill()
	}
}

func (p *updaterProc) kill() {
	p.proc.Signal(syscall.SIGKILL)
	<-p.proc.Exited()
}

// onDisk is what a host runs: the .version and the running versions.
func onDisk(root string) (active string, running []string) {
	b, _ := os.ReadFile(filepath.Join(root, agentName, ".version"))
	return strings.TrimSpace(string(b)), fakeagent.Running(root, agentName)
}

// whole reports whether the host runs exactly version v, installed.
func whole(root, v string) (bool, string) {
	a, r := onDisk(root)
	_, mk := os.Stat(filepath.Join(root, agentName, ".pending"))
	s := fmt.Sprintf("active %q running %v marker %v", a, r, mk == nil)
	return a == v && len(r) == 1 && r[0] == v && mk != nil, s
}

func healthServer(t *testing.T) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(hs.Close)
	return hs.URL + "/health"
}
