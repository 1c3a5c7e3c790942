package rollouttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/config"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/fakeagent"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/updater"
)

const (
	agentName  = "kestrel-agent"
	adminToken = "admin-token-0123456789abcdef"
	fleetToken = "fleet-token-0123456789abcdef"
)

var bins struct {
	dir       string
	opsMeta   string
	opsUpdate string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rollouttest-bin-")
	if err != nil {
		panic(err)
	}
	bins.dir = dir
	bins.opsMeta = filepath.Join(dir, "ops-meta")
	bins.opsUpdate = filepath.Join(dir, "ops-updater")
	for _, b := range []struct{ args []string }{
		{[]string{"build", "-C", "../../../ops-meta", "-o", bins.opsMeta, "./cmd/ops-meta"}},
		{[]string{"build", "-o", bins.opsUpdate, "../../cmd/ops-updater"}},
	} {
		cmd := exec.Command("go", b.args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cannot build %v: %v\n%s", b.args, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	cmd       *exec.Cmd
	log       *syncBuffer
	pub, priv string // key files
}

func startMeta(t *testing.T, o metaOpts) *meta {
	t.Helper()
	m := &meta{t: t, dir: t.TempDir(), log: &syncBuffer{}}
	m.port = freePort(t)
	m.url = fmt.Sprintf("http://127.0.0.1:%d", m.port)
	m.artifacts = filepath.Join(m.dir, "artifacts")
	os.MkdirAll(m.artifacts, 0o755)
	m.cfgPath = filepath.Join(m.dir, "ops-meta.yaml")
	m.pub, m.priv = filepath.Join(m.dir, "sign.pub"), filepath.Join(m.dir, "sign.key")
	if out, err := exec.Command(bins.opsMeta, "sign", "keygen", "-pub", m.pub, "-priv", m.priv).CombinedOutput(); err != nil {
		t.Fatalf("ops-meta sign keygen: %v\n%s", err, out)
	}
	m.writeConfig(o)
	m.cmd = exec.Command(bins.opsMeta, "-c", m.cfgPath)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			m.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ops-meta log:\n%s", m.log.String())
		}
	})
	waitFor(t, 20*time.Second, "ops-meta /health", func() (bool, string) {
		resp, err := http.Get(m.url + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
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
	if out, err := exec.Command(bins.opsMeta, "sign", "sign", "-key", m.priv, p).CombinedOutput(); err != nil {
		m.t.Fatalf("ops-meta sign sign: %v\n%s", err, out)
	}
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

// proc is an ops-updater process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncBuffer
	root string
	cfg  string
	done chan struct{}
}

func startUpdaterProc(t *testing.T, m *meta, o updOpts, root string) *proc {
	t.Helper()
	if root == "" {
		root = filepath.Join(t.TempDir(), "agents")
	}
	cfg := filepath.Join(t.TempDir(), "ops-updater.yaml")
	if err := os.WriteFile(cfg, []byte(updaterConfig(t, m, o, root)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, log: &syncBuffer{}, root: root, cfg: cfg, done: make(chan struct{})}
	p.cmd = exec.Command(bins.opsUpdate, "-c", cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		fakeagent.KillAll(root)
		if t.Failed() {
			t.Logf("ops-updater %s log:\n%s", o.Hostname, p.log.String())
		}
	})
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// inproc is an updater running inside the test process (race-checked).
type inproc struct {
	root   string
	u      *updater.Updater
	cancel context.CancelFunc
	done   chan struct{}
	log    *syncBuffer
}

func startUpdaterInProc(t *testing.T, m *meta, o updOpts) *inproc {
	t.Helper()
	root := filepath.Join(t.TempDir(), "agents")
	cfgPath := filepath.Join(t.TempDir(), "ops-updater.yaml")
	text := updaterConfig(t, m, o, root)
	cfg, err := config.Parse(cfgPath, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ip := &inproc{root: root, done: make(chan struct{}), log: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(ip.log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", o.Hostname)
	release, err := install.Lock(root)
	if err != nil {
		t.Fatal(err)
	}
	ip.u = updater.FromConfig(cfg, log, "test")
	ctx, cancel := context.WithCancel(context.Background())
	ip.cancel = cancel
	go func() {
		defer close(ip.done)
		if err := ip.u.Run(ctx); err != nil {
			log.Error("run", "err", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-ip.done
		release()
		fakeagent.KillAll(root)
		if t.Failed() {
			t.Logf("updater %s log:\n%s", o.Hostname, ip.log.String())
		}
	})
	return ip
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
