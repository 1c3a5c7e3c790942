package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/launch"
)

// Pipeline is a kestrel-nats, redis-server, one transfer and one judge
// started by -spawn, on free ports, with data in Dir.
type Pipeline struct {
	Dir             string
	NATSURL         string
	TransferMetrics string
	JudgeMetrics    string
	children        []*launch.Child
	log             *slog.Logger
}

// SpawnRules is the rules file of a spawned judge: rules on the load
// generator's metric that are evaluated on every point and never fire.
const SpawnRules = `strategies:
  - id: 1
    allEndpoints: true
    metric: ` + Metric + `
    tags: {}
    func: "all(#3)"
    operator: "<"
    rightValue: -1
    maxStep: 3
    priority: 3
    note: loadgen never fires
expressions:
  - id: 1
    metric: ` + Metric + `
    tags: {}
    func: "max(#5)"
    operator: "<"
    rightValue: -1
    maxStep: 1
    priority: 3
    note: loadgen never fires
    actionId: 1
`

// FreePort returns a TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Spawn starts the pipeline from the binaries in binDir.
func Spawn(ctx context.Context, binDir, dir string, log *slog.Logger) (_ *Pipeline, err error) {
	p := &Pipeline{Dir: dir, log: log}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	var ports [4]int
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	natsAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	redisPort := strconv.Itoa(ports[1])
	thttp := "127.0.0.1:" + strconv.Itoa(ports[2])
	jhttp := "127.0.0.1:" + strconv.Itoa(ports[3])
	p.NATSURL = "nats://" + natsAddr
	p.TransferMetrics = "http://" + thttp + "/metrics"
	p.JudgeMetrics = "http://" + jhttp + "/metrics"
	for _, d := range []string{"nats", "redis"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found; install it: sudo apt-get install redis-server")
	}
	files := map[string]string{
		"rules.yaml":    SpawnRules,
		"transfer.yaml": fmt.Sprintf("nats:\n  urls: [%q]\nhttp:\n  listen: %q\nlog:\n  level: warn\n", p.NATSURL, thttp),
		"judge.yaml": fmt.Sprintf("node_id: loadgen-judge\nnats:\n  urls: [%q]\nhttp:\n  listen: %q\nredis:\n  addr: %q\nrules_file: %q\nlog:\n  level: warn\n",
			p.NATSURL, jhttp, "127.0.0.1:"+redisPort, filepath.Join(dir, "rules.yaml")),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	start := func(name, path string, ready func() bool, args ...string) error {
		c := &launch.Child{Name: name, Path: path, Args: args, Dir: dir, LogPath: filepath.Join(dir, name+".log")}
		if err := c.Start(); err != nil {
			return err
		}
		p.children = append(p.children, c)
		deadline := time.Now().Add(30 * time.Second)
		for !ready() {
			select {
			case <-c.Done():
				return fmt.Errorf("%s exited while starting (%s):\n%s", name, c.ExitStatus(), launch.TailFile(c.LogPath, 20))
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after 30s:\n%s", name, launch.TailFile(c.LogPath, 20))
			}
		}
		log.Info("spawned", "name", name, "pid", c.Pid(), "log", c.LogPath)
		return nil
	}
	if err := start("kestrel-nats", filepath.Join(binDir, "kestrel-nats"), tcpUp(natsAddr),
		"-addr", natsAddr, "-store", filepath.Join(dir, "nats"), "-log.level", "warn"); err != nil {
		return nil, err
	}
	if err := start("redis-server", redisBin, tcpUp("127.0.0.1:"+redisPort),
		"--port", redisPort, "--bind", "127.0.0.1", "--appendonly", "yes", "--save", "", "--dir", filepath.Join(dir, "redis")); err != nil {
		return nil, err
	}
	if err := start("kestrel-judge", filepath.Join(binDir, "kestrel-judge"), httpOK("http://"+jhttp+"/health"),
		"-c", filepath.Join(dir, "judge.yaml")); err != nil {
		return nil, err
	}
	// The transfer's /health is 200 once it is connected and sees a judge.
	if err := start("kestrel-transfer", filepath.Join(binDir, "kestrel-transfer"), httpOK("http://"+thttp+"/health"),
		"-c", filepath.Join(dir, "transfer.yaml")); err != nil {
		return nil, err
	}
	return p, nil
}

// Stop stops the children, newest first.
func (p *Pipeline) Stop() {
	for i := len(p.children) - 1; i >= 0; i-- {
		c := p.children[i]
		status, killed := c.Stop(20 * time.Second)
		p.log.Info("stopped", "name", c.Name, "status", status, "killed", killed)
	}
	p.children = nil
}

// Died returns the first child that exited, or nil.
func (p *Pipeline) Died() *launch.Child {
	for _, c := range p.children {
		select {
		case <-c.Done():
			return c
		default:
		}
	}
	return nil
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
