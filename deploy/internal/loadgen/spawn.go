package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/launch"
)

// Pipeline is a kestrel-nats, redis-server, one transfer and one judge
// started by -spawn, on free ports (each checked to be answered by its
// child, see Spawn), with data in Dir.
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

// FreePort returns a TCP port that was free a moment ago. Another process
// can take it before a child binds it: Spawn checks that what answers on
// the port is its child, and moves to another port when it is not.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Spawn starts the pipeline from the binaries in binDir. Each child gets a
// port that was free a moment ago and is ready only when the server
// answering on it is that child: redis-server's INFO process_id is the
// child's pid; for the others the socket listening on 127.0.0.1:port is
// one of the child's (/proc on Linux, lsof elsewhere). A child that exits
// because another process took its port is started again on another one.
func Spawn(ctx context.Context, binDir, dir string, log *slog.Logger) (_ *Pipeline, err error) {
	s := newSpawner(dir, log)
	p := &Pipeline{Dir: dir, log: log}
	defer func() {
		p.children = s.children
		if err != nil {
			p.Stop()
		}
	}()
	for _, d := range []string{"nats", "redis"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found; install it: sudo apt-get install redis-server")
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(SpawnRules), 0o644); err != nil {
		return nil, err
	}
	natsPort, err := s.start(ctx, natsChild(filepath.Join(binDir, "kestrel-nats"), filepath.Join(dir, "nats")))
	if err != nil {
		return nil, err
	}
	p.NATSURL = "nats://" + localAddr(natsPort)
	redisPort, err := s.start(ctx, redisChild(redisBin, filepath.Join(dir, "redis")))
	if err != nil {
		return nil, err
	}
	judgePort, err := s.start(ctx, childSpec{
		name: "kestrel-judge", path: filepath.Join(binDir, "kestrel-judge"),
		args: func(port int) ([]string, error) {
			path := filepath.Join(dir, "judge.yaml")
			body := fmt.Sprintf("node_id: loadgen-judge\nnats:\n  urls: [%q]\nhttp:\n  listen: %q\nredis:\n  addr: %q\nrules_file: %q\nlog:\n  level: warn\n",
				p.NATSURL, localAddr(port), localAddr(redisPort), filepath.Join(dir, "rules.yaml"))
			return []string{"-c", path}, os.WriteFile(path, []byte(body), 0o644)
		},
		ready: s.listening(func(port int) bool { return httpOK("http://" + localAddr(port) + "/health")() }),
	})
	if err != nil {
		return nil, err
	}
	p.JudgeMetrics = "http://" + localAddr(judgePort) + "/metrics"
	// The transfer's /health is 200 once it is connected and sees a judge.
	transferPort, err := s.start(ctx, childSpec{
		name: "kestrel-transfer", path: filepath.Join(binDir, "kestrel-transfer"),
		args: func(port int) ([]string, error) {
			path := filepath.Join(dir, "transfer.yaml")
			body := fmt.Sprintf("nats:\n  urls: [%q]\nhttp:\n  listen: %q\nlog:\n  level: warn\n", p.NATSURL, localAddr(port))
			return []string{"-c", path}, os.WriteFile(path, []byte(body), 0o644)
		},
		ready: s.listening(func(port int) bool { return httpOK("http://" + localAddr(port) + "/health")() }),
	})
	if err != nil {
		return nil, err
	}
	p.TransferMetrics = "http://" + localAddr(transferPort) + "/metrics"
	return p, nil
}

func localAddr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func natsChild(path, store string) childSpec {
	return childSpec{
		name: "kestrel-nats", path: path,
		args: func(port int) ([]string, error) {
			return []string{"-addr", localAddr(port), "-store", store, "-log.level", "warn"}, nil
		},
	}
}

func redisChild(path, dataDir string) childSpec {
	return childSpec{
		name: "redis-server", path: path,
		args: func(port int) ([]string, error) {
			return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--save", "", "--dir", dataDir}, nil
		},
		ready: redisIsChild,
	}
}

// childSpec says how to start one child on a port and when it is ready.
type childSpec struct {
	name, path string
	args       func(port int) ([]string, error) // may write a config file
	// ready reports whether the child (pid) serves on port; other is set
	// when another process answers there. nil: the spawner's listening
	// check with a TCP connect.
	ready func(port, pid int) (ok bool, other error)
}

// spawner starts children on free ports.
type spawner struct {
	dir      string
	log      *slog.Logger
	freePort func() (int, error)
	// holds reports whether process pid holds the socket listening on
	// 127.0.0.1:port.
	holds    func(pid, port int) (bool, error)
	attempts int           // ports tried per child
	wait     time.Duration // per attempt, start to ready
	children []*launch.Child
}

func newSpawner(dir string, log *slog.Logger) *spawner {
	return &spawner{dir: dir, log: log, freePort: FreePort, holds: holdsListener, attempts: 3, wait: 30 * time.Second}
}

// errPortTaken marks a start that failed because another process holds
// the child's port.
var errPortTaken = errors.New("port taken by another process")

// start starts c on a free port and returns the port once c is ready. When
// the child exits because another process took the port first, it tries
// another port (s.attempts in all).
func (s *spawner) start(ctx context.Context, c childSpec) (int, error) {
	if c.ready == nil {
		c.ready = s.listening(func(port int) bool { return tcpUp(localAddr(port))() })
	}
	var err error
	for range s.attempts {
		var port int
		if port, err = s.freePort(); err != nil {
			return 0, err
		}
		if err = s.startOn(ctx, c, port); err == nil {
			return port, nil
		}
		if !errors.Is(err, errPortTaken) {
			return 0, err
		}
		s.log.Warn("another process took the port before the child could listen; trying another port", "name", c.name, "port", port, "err", err)
	}
	return 0, fmt.Errorf("%s: %d ports in a row were taken by other processes: %w", c.name, s.attempts, err)
}

// startOn starts c on port and waits until it is ready.
func (s *spawner) startOn(ctx context.Context, c childSpec, port int) error {
	args, err := c.args(port)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	ch := &launch.Child{Name: c.name, Path: c.path, Args: args, Dir: s.dir, LogPath: filepath.Join(s.dir, c.name+".log")}
	if err := ch.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(s.wait)
	var other error // another process answered on the port
	for {
		ok, o := c.ready(port, ch.Pid())
		if ok {
			s.children = append(s.children, ch)
			s.log.Info("spawned", "name", c.name, "pid", ch.Pid(), "addr", localAddr(port), "log", ch.LogPath)
			return nil
		}
		if o != nil {
			other = o
		}
		select {
		case <-ch.Done():
			err := fmt.Errorf("%s exited while starting on port %d (%s):\n%s", c.name, port, ch.ExitStatus(), launch.TailFile(ch.LogPath, 20))
			if other != nil || portBusy(port) {
				// Another process took the port between FreePort and
				// the child's bind.
				return fmt.Errorf("%w (%v): %w", errPortTaken, other, err)
			}
			return err
		case <-ctx.Done():
			ch.Stop(5 * time.Second)
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ch.Stop(5 * time.Second)
			why := ""
			if other != nil {
				why = " (" + other.Error() + ")"
			}
			return fmt.Errorf("%s not ready on port %d after %s%s:\n%s", c.name, port, s.wait, why, launch.TailFile(ch.LogPath, 20))
		}
	}
}

// listening returns a readiness check: up answers, and the socket
// listening on 127.0.0.1:port is the child's.
func (s *spawner) listening(up func(port int) bool) func(port, pid int) (bool, error) {
	return func(port, pid int) (bool, error) {
		if !up(port) {
			return false, nil
		}
		held, err := s.holds(pid, port)
		if err != nil {
			return false, fmt.Errorf("cannot tell which process listens on port %d: %w", port, err)
		}
		if !held {
			return false, fmt.Errorf("127.0.0.1:%d answers, but the child (pid %d) does not listen there", port, pid)
		}
		return true, nil
	}
}

// portBusy reports whether another process holds 127.0.0.1:port.
func portBusy(port int) bool {
	var busy *launch.PortBusyError
	return errors.As(launch.CheckPort(launch.PortUse{Addr: localAddr(port), What: "spawned child"}), &busy)
}

// redisIsChild asks the Redis on 127.0.0.1:port for INFO server: ready when
// its process_id is pid, another process when it is not.
func redisIsChild(port, pid int) (bool, error) {
	id, err := redisProcessID(localAddr(port))
	if err != nil {
		return false, nil // not up (yet), or not answering like a Redis
	}
	if id != pid {
		return false, fmt.Errorf("the Redis answering on port %d is process %d, not the child (pid %d)", port, id, pid)
	}
	return true, nil
}

// redisProcessID sends INFO server (plain RESP: nothing is logged when
// nothing listens) and returns the process_id line of the reply.
func redisProcessID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("INFO reply %q is not a bulk string", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// holdsListener reports whether process pid holds a socket listening on
// 127.0.0.1:port (or on the wildcard address, when nothing listens on
// 127.0.0.1 itself): the socket a connection to 127.0.0.1:port reaches.
func holdsListener(pid, port int) (bool, error) {
	if runtime.GOOS == "linux" {
		return holdsListenerProc("/proc", pid, port)
	}
	return holdsListenerLsof(pid, port)
}

// holdsListenerProc reads the listening sockets of port from
// <proc>/net/tcp and tcp6 and looks for one of their inodes among the
// process's file descriptors.
func holdsListenerProc(proc string, pid, port int) (bool, error) {
	local, wildcard := map[string]bool{}, map[string]bool{}
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "net", name))
		if errors.Is(err, fs.ErrNotExist) && name == "tcp6" {
			continue // no IPv6
		}
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			ip, portHex, ok := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(portHex, 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			switch ip {
			case "0100007F", "0000000000000000FFFF00000100007F": // 127.0.0.1, ::ffff:127.0.0.1
				local[f[9]] = true
			case "00000000", "00000000000000000000000000000000": // 0.0.0.0, ::
				wildcard[f[9]] = true
			}
		}
	}
	want := local
	if len(want) == 0 {
		want = wildcard
	}
	if len(want) == 0 {
		return false, nil
	}
	fdDir := filepath.Join(proc, strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(l, "socket:["); ok && want[strings.TrimSuffix(inode, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// holdsListenerLsof asks lsof (macOS, the BSDs) for the process's
// listening TCP sockets on port.
func holdsListenerLsof(pid, port int) (bool, error) {
	out, err := exec.Command("lsof", "-nP", "-a", "-p", strconv.Itoa(pid), "-iTCP:"+strconv.Itoa(port), "-sTCP:LISTEN", "-Fn").Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && len(out) == 0 {
		return false, nil // lsof found nothing
	}
	if err != nil {
		return false, fmt.Errorf("lsof: %w", err)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		name, ok := strings.CutPrefix(line, "n")
		if !ok {
			continue
		}
		host, _, err := net.SplitHostPort(name)
		if err == nil && (host == "127.0.0.1" || host == "*" || host == "::ffff:127.0.0.1") {
			return true, nil
		}
	}
	return false, nil
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
