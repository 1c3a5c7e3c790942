package launch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/natsserver"
	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/redis/go-redis/v9"
)

// Options configure the launcher (kestrel-run flags).
type Options struct {
	BinDir      string        // where kestrel-transfer, kestrel-judge, kestrel-agent are
	ConfigDir   string        // transfer.yaml, judge.yaml, agent.yaml, rules.yaml
	VarDir      string        // var/nats, var/redis, var/log, var/conf
	NATSAddr    string        // embedded NATS client address (default 127.0.0.1:4222)
	RedisAddr   string        // Redis to use, or to start (default 127.0.0.1:6379)
	RedisServer string        // redis-server binary (default: found in PATH)
	StopTimeout time.Duration // per child, SIGTERM to SIGKILL (default 10s)
	ReadyWait   time.Duration // per child, start to listening (default 30s)
	EventStream string        // Redis stream of events (default kestrel:events)
}

func (o *Options) defaults() {
	if o.NATSAddr == "" {
		o.NATSAddr = "127.0.0.1:4222"
	}
	if o.RedisAddr == "" {
		o.RedisAddr = "127.0.0.1:6379"
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.ReadyWait <= 0 {
		o.ReadyWait = 30 * time.Second
	}
	if o.EventStream == "" {
		o.EventStream = "kestrel:events"
	}
}

// The children, in start order, with their default HTTP ports.
var childSpecs = []struct{ name, file, defListen string }{
	{"kestrel-transfer", "transfer.yaml", ":6060"},
	{"kestrel-judge", "judge.yaml", ":6081"},
	{"kestrel-agent", "agent.yaml", "127.0.0.1:1988"},
}

// ErrChildDied is returned by Run when a child exits on its own.
var ErrChildDied = spawn.ErrDied

type running struct {
	cfg   *ChildConfig
	child *spawn.Child
}

// Run runs the pipeline until ctx ends (a signal) or a child dies. out
// gets the human-readable start summary and the alarm event lines; log
// gets the launcher's own log.
func Run(ctx context.Context, o Options, out io.Writer, log *slog.Logger) (err error) {
	o.defaults()
	for _, d := range []*string{&o.BinDir, &o.ConfigDir, &o.VarDir} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return err
		}
		*d = abs
	}

	// Configs and binaries first: nothing starts if one is missing.
	var kids []*running
	for _, s := range childSpecs {
		cfg, err := LoadChildConfig(s.name, filepath.Join(o.ConfigDir, s.file))
		if err != nil {
			return err
		}
		bin := filepath.Join(o.BinDir, s.name)
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s not found (%v); build it first: make build", bin, err)
		}
		kids = append(kids, &running{cfg: cfg})
	}
	if _, err := os.Stat(filepath.Join(o.ConfigDir, "rules.yaml")); err != nil {
		return fmt.Errorf("rules file: %w", err)
	}

	// Redis: use a running one, else the port must be free to start ours.
	useRedis := spawn.RedisPing(ctx, o.RedisAddr)
	redisBin := ""
	if !useRedis {
		redisBin, err = findRedisServer(o.RedisServer, o.RedisAddr)
		if err != nil {
			return err
		}
	}

	ports := []PortUse{{Addr: o.NATSAddr, What: "NATS", Hint: "run kestrel-run with -nats 127.0.0.1:<other port>"}}
	for _, k := range kids {
		l := k.cfg.Listens()
		if len(l) == 0 {
			l = []PortUse{{Addr: k.cfg.HTTPListen(""), What: k.cfg.Name + " http.listen", Hint: "set http.listen in " + k.cfg.Src}}
		}
		ports = append(ports, l...)
	}
	if !useRedis {
		ports = append(ports, PortUse{Addr: o.RedisAddr, What: "Redis", Hint: "run kestrel-run with -redis 127.0.0.1:<other port>"})
	}
	if err := CheckPorts(ports); err != nil {
		return err
	}

	for _, d := range []string{"log", "nats", "redis", "conf"} {
		if err := os.MkdirAll(filepath.Join(o.VarDir, d), 0o755); err != nil {
			return err
		}
	}
	logDir := filepath.Join(o.VarDir, "log")
	fmt.Fprintf(out, "kestrel-run: child output goes to %s/<name>.log\n", logDir)

	// Everything started is stopped in reverse dependency order.
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		log.Info("everything stopped")
	}()

	// NATS, in process.
	t0 := time.Now()
	natsLogF, err := os.OpenFile(filepath.Join(logDir, "nats.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	ns, err := natsserver.Start(natsserver.Config{
		Addr:     o.NATSAddr,
		StoreDir: filepath.Join(o.VarDir, "nats"),
		Logger:   slog.New(slog.NewTextHandler(natsLogF, nil)),
	})
	if err != nil {
		natsLogF.Close()
		return err
	}
	natsURL := ns.ClientURL()
	log.Info("nats ready", "url", natsURL, "store", filepath.Join(o.VarDir, "nats"), "took", since(t0))
	stops = append(stops, func() {
		t := time.Now()
		ns.Shutdown()
		ns.WaitForShutdown()
		natsLogF.Close()
		log.Info("nats stopped", "took", since(t))
	})

	// Redis.
	var redisChild *spawn.Child
	if useRedis {
		log.Info("using the redis that answers on", "addr", o.RedisAddr)
	} else {
		host, port, _ := net.SplitHostPort(o.RedisAddr)
		if host == "" {
			host = "127.0.0.1"
		}
		redisChild = &spawn.Child{
			Name: "redis-server", Path: redisBin, Dir: filepath.Join(o.VarDir, "redis"),
			LogPath: filepath.Join(logDir, "redis.log"),
			Args: []string{"--port", port, "--bind", host, "--appendonly", "yes",
				"--dir", filepath.Join(o.VarDir, "redis"), "--daemonize", "no", "--logfile", ""},
		}
		t := time.Now()
		if err := redisChild.Start(); err != nil {
			return err
		}
		// Redis stops last, after NATS: put it first in the list.
		stops = append([]func(){func() { stopChild(redisChild, o.StopTimeout, log) }}, stops...)
		if err := spawn.WaitReady(ctx, redisChild, o.ReadyWait, func() bool { return spawn.RedisPing(ctx, o.RedisAddr) }); err != nil {
			return err
		}
		log.Info("redis-server ready", "addr", o.RedisAddr, "pid", redisChild.Pid(), "dir", filepath.Join(o.VarDir, "redis"), "appendonly", "yes", "took", since(t))
	}

	// transfer, judge, agent.
	for _, k := range kids {
		c := k.cfg
		c.Set("nats.urls", []any{natsURL})
		if c.Name == "kestrel-judge" {
			c.Set("redis.addr", o.RedisAddr)
			c.ResolvePath("rules_file")
		}
		confPath := filepath.Join(o.VarDir, "conf", strings.TrimPrefix(c.Name, "kestrel-")+".yaml")
		if err := c.Write(confPath); err != nil {
			return err
		}
		k.child = &spawn.Child{
			Name: c.Name, Path: filepath.Join(o.BinDir, c.Name), Args: []string{"-c", confPath},
			Dir: o.VarDir, LogPath: filepath.Join(logDir, c.Name+".log"),
		}
		t := time.Now()
		if err := k.child.Start(); err != nil {
			return err
		}
		ch := k.child
		stops = append(stops, func() { stopChild(ch, o.StopTimeout, log) })
		addr := dialAddr(c.HTTPListen(""))
		if err := spawn.WaitReady(ctx, ch, o.ReadyWait, func() bool { return spawn.HTTPAnswers("http://" + addr + "/health") }); err != nil {
			return err
		}
		log.Info(c.Name+" ready", "pid", ch.Pid(), "http", addr, "config", confPath, "log", ch.LogPath, "took", since(t))
	}
	// Stop order is agent, transfer, judge, then NATS, then Redis: the
	// children were appended transfer, judge, agent, so reorder the tail.
	n := len(stops)
	transferStop, judgeStop, agentStop := stops[n-3], stops[n-2], stops[n-1]
	stops[n-3], stops[n-2], stops[n-1] = judgeStop, transferStop, agentStop

	printSummary(out, o, natsURL, useRedis, kids)

	// Alarm events.
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	wctx, wcancel := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		WatchEvents(wctx, rdb, o.EventStream, out, log)
	}()
	stops = append(stops, func() { wcancel(); <-watchDone; rdb.Close() })

	// Supervise.
	died := make(chan *spawn.Child, 4)
	all := []*spawn.Child{}
	for _, k := range kids {
		all = append(all, k.child)
	}
	if redisChild != nil {
		all = append(all, redisChild)
	}
	for _, c := range all {
		go func() {
			select {
			case <-c.Done():
				died <- c
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		log.Info("stopping on signal")
		return nil
	case c := <-died:
		log.Error(c.Name+" died; stopping everything", "status", c.ExitStatus(), "log", c.LogPath)
		fmt.Fprintf(out, "---- last lines of %s ----\n%s\n----\n", c.LogPath, spawn.TailFile(c.LogPath, 30))
		return fmt.Errorf("%w: %s (%s)", ErrChildDied, c.Name, c.ExitStatus())
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func stopChild(c *spawn.Child, timeout time.Duration, log *slog.Logger) {
	if c.Exited() {
		log.Info(c.Name+" had already exited", "status", c.ExitStatus())
		return
	}
	t := time.Now()
	log.Info("stopping "+c.Name, "pid", c.Pid())
	status, killed := c.Stop(timeout)
	if killed {
		log.Warn(c.Name+" did not stop in time; killed", "timeout", timeout, "status", status, "took", since(t))
		return
	}
	log.Info(c.Name+" stopped", "status", status, "took", since(t))
}

// RedisInstallHint is printed when no Redis answers and redis-server is
// not installed.
const RedisInstallHint = `redis-server is not installed (not found in PATH) and no Redis answers on %s.
Install it, then run again:
    sudo apt-get install redis-server     # Debian, Ubuntu
    sudo dnf install redis                # Fedora, RHEL
    brew install redis                    # macOS
or start a Redis yourself on %s (kestrel-run uses it when it answers PING),
or point kestrel-run at another one with -redis host:port.`

func findRedisServer(path, addr string) (string, error) {
	if path == "" {
		path = "redis-server"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", &MissingRedisError{Path: path, Addr: addr}
	}
	return p, nil
}

// MissingRedisError says redis-server cannot be found.
type MissingRedisError struct{ Path, Addr string }

func (e *MissingRedisError) Error() string {
	return fmt.Sprintf("redis-server binary %q not found; install it: sudo apt-get install redis-server", e.Path)
}

// Hint returns the full installation advice.
func (e *MissingRedisError) Hint() string {
	return fmt.Sprintf(RedisInstallHint, e.Addr, e.Addr)
}

func printSummary(out io.Writer, o Options, natsURL string, useRedis bool, kids []*running) {
	fmt.Fprintln(out, "")
	fmt.Fprintln(out, "Kestrel is running on this machine:")
	fmt.Fprintf(out, "  %-18s %-28s data %s, log %s\n", "NATS + JetStream", natsURL, filepath.Join(o.VarDir, "nats"), filepath.Join(o.VarDir, "log", "nats.log"))
	if useRedis {
		fmt.Fprintf(out, "  %-18s %-28s (already running; not started by kestrel-run)\n", "Redis", o.RedisAddr)
	} else {
		fmt.Fprintf(out, "  %-18s %-28s data %s (appendonly), log %s\n", "Redis", o.RedisAddr, filepath.Join(o.VarDir, "redis"), filepath.Join(o.VarDir, "log", "redis.log"))
	}
	for _, k := range kids {
		fmt.Fprintf(out, "  %-18s http://%-21s pid %d, log %s\n", k.cfg.Name, dialAddr(k.cfg.HTTPListen("")), k.child.Pid(), k.child.LogPath)
	}
	agent := dialAddr(kids[len(kids)-1].cfg.HTTPListen(""))
	fmt.Fprintf(out, "\nTrigger the demo alarm (rule: all(#3) demo.load > 90) by pushing three high points:\n\n%s\n\n", CurlExample(agent))
	fmt.Fprintf(out, "Alarm events from Redis %s are printed below as they arrive. Ctrl-C stops everything.\n\n", o.EventStream)
}

// CurlExample is the README's demo: three demo.load points above 90, one
// minute apart, pushed through the agent's Open-Falcon push API.
func CurlExample(agentAddr string) string {
	return `now=$(date +%s); for i in 2 1 0; do
  curl -s -X POST http://` + agentAddr + `/v1/push -d "[{\"endpoint\":\"demo-host\",\"metric\":\"demo.load\",\"value\":95,\"step\":60,\"counterType\":\"GAUGE\",\"tags\":\"\",\"timestamp\":$((now - i*60))}]"; echo
done`
}
