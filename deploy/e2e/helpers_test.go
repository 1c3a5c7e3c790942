//go:build e2e

// Package e2e runs the real Kestrel binaries as processes, the way a user
// does: kestrel-nats, redis-server, transfers, judges, an agent and the
// kestrel-run launcher, each on random free ports with configs written by
// the test. Run: cd deploy && go test -tags e2e -race -count=1 -timeout 20m ./e2e/
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"bytes"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/redis/go-redis/v9"
)

// binDir holds the binaries under test: $KESTREL_BIN, or built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if d := os.Getenv("KESTREL_BIN"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kestrel-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	builds := []struct {
		module, name string
		flags        []string
	}{
		{"agent", "kestrel-agent", nil}, {"transfer", "kestrel-transfer", nil}, {"judge", "kestrel-judge", nil},
		{"deploy", "kestrel-nats", nil}, {"deploy", "kestrel-run", nil},
		// The rollout tests run many updaters as processes: race-check them.
		{"ops-meta", "ops-meta", nil}, {"ops-updater", "ops-updater", []string{"-race"}},
	}
	for _, b := range builds {
		args := append([]string{"build", "-C", filepath.Join("..", "..", b.module)}, b.flags...)
		cmd := exec.Command("go", append(args, "-o", filepath.Join(dir, b.name), "./cmd/"+b.name)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "cannot build %s: %v\n", b.name, err)
			return 1
		}
	}
	binDir = dir
	return m.Run()
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

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(freePort(t)) }

// proc is a child process with its output in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
	stdout  *syncbuf.Buffer // when captured
}

// startProc starts path with args; stdout and stderr go to <tmp>/<name>.log
// (with captureStdout, stdout goes to a buffer instead). It is killed in
// t.Cleanup and its log tail printed when the test failed.
func startProc(t *testing.T, dir, name, path string, captureStdout bool, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Dir = dir
	p.cmd.Stderr = f
	p.cmd.Stdout = f
	if captureStdout {
		p.stdout = &syncbuf.Buffer{}
		p.cmd.Stdout = p.stdout
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- last lines of %s (%s) ----\n%s", name, p.logPath, tail(p.logPath, 40))
			if p.stdout != nil {
				t.Logf("---- stdout of %s ----\n%s", name, p.stdout.String())
			}
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process group and waits.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitRunning is wait.For that also fails the test at once when one of procs
// exits meanwhile.
func waitRunning(t *testing.T, what string, timeout time.Duration, cond func() bool, procs ...*proc) {
	t.Helper()
	wait.For(t, what, timeout, func() bool {
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("%s exited (%v) while waiting for %s", p.name, p.err, what)
			}
		}
		return cond()
	})
}

func httpOK(url string) func() bool {
	return func() bool {
		cl := http.Client{Timeout: time.Second}
		resp, err := cl.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

func tcpUp(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cluster is a pipeline of real processes.
type cluster struct {
	t         *testing.T
	dir       string
	natsURL   string
	redisAddr string
	rdb       *redis.Client
	nats      *proc
	redis     *proc
	transfers []*proc
	listens   map[*proc]string // HTTP listen address of each process
	judges    []*proc
	agent     *proc
	agentAddr string
}

type clusterSpec struct {
	transfers int
	judges    int
	rules     string
}

func startCluster(t *testing.T, spec clusterSpec) *cluster {
	t.Helper()
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("install redis-server: apt-get install redis-server")
	}
	c := &cluster{t: t, dir: t.TempDir(), listens: map[*proc]string{}}
	natsAddr := freeAddr(t)
	c.natsURL = "nats://" + natsAddr
	c.nats = startProc(t, c.dir, "kestrel-nats", filepath.Join(binDir, "kestrel-nats"), false,
		"-addr", natsAddr, "-store", filepath.Join(c.dir, "nats"))
	redisPort := freePort(t)
	c.redisAddr = "127.0.0.1:" + strconv.Itoa(redisPort)
	os.MkdirAll(filepath.Join(c.dir, "redis"), 0o755)
	c.redis = startProc(t, c.dir, "redis-server", redisBin, false,
		"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", filepath.Join(c.dir, "redis"))
	waitRunning(t, "nats", 30*time.Second, tcpUp(natsAddr), c.nats)
	c.rdb = redis.NewClient(&redis.Options{Addr: c.redisAddr})
	t.Cleanup(func() { c.rdb.Close() })
	waitRunning(t, "redis", 30*time.Second, func() bool { return c.rdb.Ping(context.Background()).Err() == nil }, c.redis)

	rules := writeFile(t, filepath.Join(c.dir, "rules.yaml"), spec.rules)
	for i := range spec.judges {
		c.startJudge(i, rules)
	}
	for i := range spec.transfers {
		name := fmt.Sprintf("kestrel-transfer-%d", i)
		listen := freeAddr(t)
		conf := writeFile(t, filepath.Join(c.dir, name+".yaml"), fmt.Sprintf(`nats:
  urls: [%q]
http:
  listen: %q
membership:
  timeout: 2s
  rejoin_hold: 1s
judge:
  request_timeout: 2s
  retry_backoff: 100ms
  max_backoff: 1s
log:
  level: debug
`, c.natsURL, listen))
		p := startProc(t, c.dir, name, filepath.Join(binDir, "kestrel-transfer"), false, "-c", conf)
		// 200 once connected with at least one judge in its ring.
		waitRunning(t, name+" /health", 60*time.Second, httpOK("http://"+listen+"/health"), p)
		c.transfers = append(c.transfers, p)
		c.listens[p] = listen
	}
	c.agentAddr = freeAddr(t)
	conf := writeFile(t, filepath.Join(c.dir, "agent.yaml"), fmt.Sprintf(`hostname: e2e-agent
nats:
  urls: [%q]
http:
  listen: %q
log:
  level: debug
`, c.natsURL, c.agentAddr))
	c.agent = startProc(t, c.dir, "kestrel-agent", filepath.Join(binDir, "kestrel-agent"), false, "-c", conf)
	waitRunning(t, "agent /health", 60*time.Second, httpOK("http://"+c.agentAddr+"/health"), c.agent)
	return c
}

func (c *cluster) startJudge(i int, rules string) {
	t := c.t
	name := fmt.Sprintf("kestrel-judge-%d", i)
	listen := freeAddr(t)
	conf := writeFile(t, filepath.Join(c.dir, name+".yaml"), fmt.Sprintf(`node_id: e2e-judge-%d
nats:
  urls: [%q]
http:
  listen: %q
redis:
  addr: %q
  op_timeout: 1s
rules_file: %q
heartbeat_interval: 500ms
membership:
  timeout: 2s
  rejoin_hold: 1s
ownership:
  settle: 1500ms
log:
  level: debug
`, i, c.natsURL, listen, c.redisAddr, rules))
	p := startProc(t, c.dir, name, filepath.Join(binDir, "kestrel-judge"), false, "-c", conf)
	waitRunning(t, name+" /health", 60*time.Second, httpOK("http://"+listen+"/health"), p)
	c.judges = append(c.judges, p)
	c.listens[p] = listen
}

// restartJudge starts judge i again (same node id, config and port) after
// it exited.
func (c *cluster) restartJudge(i int) {
	t := c.t
	old := c.judges[i]
	<-old.done
	listen := c.listens[old]
	name := fmt.Sprintf("kestrel-judge-%d", i)
	conf := filepath.Join(c.dir, name+".yaml")
	p := startProc(t, c.dir, fmt.Sprintf("%s-run%d", name, len(c.listens)), filepath.Join(binDir, "kestrel-judge"), false, "-c", conf)
	waitRunning(t, name+" /health after restart", 60*time.Second, httpOK("http://"+listen+"/health"), p)
	c.judges[i] = p
	c.listens[p] = listen
}

// push posts Open-Falcon MetricValue JSON to the agent's /v1/push.
func (c *cluster) push(body string) {
	c.t.Helper()
	resp, err := http.Post("http://"+c.agentAddr+"/v1/push", "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("push: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("push: %s: %s", resp.Status, b.String())
	}
}

func mv(endpoint, metric, tags string, value float64, ts int64) string {
	return fmt.Sprintf(`{"endpoint":%q,"metric":%q,"value":%s,"step":60,"counterType":"GAUGE","tags":%q,"timestamp":%d}`,
		endpoint, metric, strconv.FormatFloat(value, 'g', -1, 64), tags, ts)
}

func listenOf(t *testing.T, c *cluster, p *proc) string {
	t.Helper()
	l, ok := c.listens[p]
	if !ok {
		t.Fatalf("no listen address for %s", p.name)
	}
	return l
}

// waitJudgesInRings waits until every transfer has every judge of the
// cluster in its ring, so that the owner of a series does not change
// while a test pushes.
func (c *cluster) waitJudgesInRings(t *testing.T) {
	t.Helper()
	want := fmt.Sprintf("%d judges", len(c.judges))
	for _, tr := range c.transfers {
		url := "http://" + listenOf(t, c, tr) + "/health"
		waitRunning(t, tr.name+" sees "+want, 30*time.Second, func() bool {
			return strings.Contains(get(url), want)
		}, tr)
	}
}
