//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/proto"
)

// launcherConfigs writes transfer/judge/agent configs on free ports and
// copies the shipped rules; it returns the config dir and the agent address.
func launcherConfigs(t *testing.T, dir string) (string, string) {
	cfg := filepath.Join(dir, "config")
	os.MkdirAll(cfg, 0o755)
	rules, err := os.ReadFile(filepath.Join("..", "local", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg, "rules.yaml"), string(rules))
	agent := freeAddr(t)
	writeFile(t, filepath.Join(cfg, "transfer.yaml"), fmt.Sprintf("nats:\n  urls: [\"nats://127.0.0.1:4222\"]\nhttp:\n  listen: %q\n", freeAddr(t)))
	writeFile(t, filepath.Join(cfg, "judge.yaml"), fmt.Sprintf("node_id: launcher-judge\nnats:\n  urls: [\"nats://127.0.0.1:4222\"]\nhttp:\n  listen: %q\nredis:\n  addr: \"127.0.0.1:6379\"\nrules_file: rules.yaml\n", freeAddr(t)))
	writeFile(t, filepath.Join(cfg, "agent.yaml"), fmt.Sprintf("hostname: launcher-agent\nnats:\n  urls: [\"nats://127.0.0.1:4222\"]\nhttp:\n  listen: %q\n", agent))
	return cfg, agent
}

// startLauncher runs kestrel-run (stdout captured) with the configs in cfg
// and NATS and Redis on the given addresses, and waits for its start
// summary.
func startLauncher(t *testing.T, dir, cfg, natsAddr, redisAddr string) *proc {
	t.Helper()
	run := startProc(t, dir, "kestrel-run", filepath.Join(binDir, "kestrel-run"), true,
		"-bin", binDir, "-config", cfg, "-var", filepath.Join(dir, "var"), "-nats", natsAddr, "-redis", redisAddr)
	waitRunning(t, "the launcher's start summary", 90*time.Second, func() bool {
		return strings.Contains(run.stdout.String(), "Alarm events from Redis kestrel:events are printed below")
	}, run)
	return run
}

// The make-run launcher with the shipped rules: starts everything, prints
// the demo alarm as it arrives, and stops in order on SIGINT.
func TestLauncherDemoAlarm(t *testing.T) {
	dir := t.TempDir()
	cfg, agentAddr := launcherConfigs(t, dir)
	natsAddr, redisAddr := freeAddr(t), freeAddr(t)
	run := startLauncher(t, dir, cfg, natsAddr, redisAddr)
	out := run.stdout.String()
	for _, want := range []string{"child output goes to " + filepath.Join(dir, "var", "log"), "nats://" + natsAddr, redisAddr, "/v1/push"} {
		if !strings.Contains(out, want) {
			t.Errorf("start summary lacks %q:\n%s", want, out)
		}
	}

	c := &cluster{t: t, agentAddr: agentAddr}
	base := proto.AlignTimestamp(time.Now().Unix(), 60) - 180
	c.push("[" + mv("demo-host", "demo.load", "", 95, base) + "," + mv("demo-host", "demo.load", "", 96, base+60) + "," + mv("demo-host", "demo.load", "", 97, base+120) + "]")
	line := regexp.MustCompile(`(?m)^event  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  PROBLEM  p0  demo-host  demo\.load  97  \(e_1_[0-9a-f]{32}, step 1/3\)  "demo load too high"$`)
	waitRunning(t, "the demo alarm line", 60*time.Second, func() bool { return line.MatchString(run.stdout.String()) }, run)

	if err := syscall.Kill(run.Pid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exitWithin(t, run, 90*time.Second, "after SIGINT")
	if run.Err() != nil {
		t.Fatalf("launcher exit: %v", run.Err())
	}
	log := spawn.TailFile(run.LogPath, 100)
	order := []string{"stopping on signal", "kestrel-agent stopped", "kestrel-transfer stopped", "kestrel-judge stopped", "nats stopped", "redis-server stopped", "everything stopped"}
	pos := -1
	for _, s := range order {
		i := strings.Index(log, s)
		if i < 0 || i < pos {
			t.Fatalf("launcher log lacks %q or has it out of order %v:\n%s", s, order, log)
		}
		pos = i
	}
	// Nothing left listening.
	for _, a := range []string{natsAddr, redisAddr, agentAddr} {
		if spawn.TCPUp(a) {
			t.Errorf("%s still answers after the launcher stopped", a)
		}
	}
}

// A busy port is reported clearly and nothing starts.
func TestLauncherBusyPort(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := launcherConfigs(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	run := startProc(t, dir, "kestrel-run", filepath.Join(binDir, "kestrel-run"), false,
		"-bin", binDir, "-config", cfg, "-var", filepath.Join(dir, "var"), "-nats", ln.Addr().String(), "-redis", freeAddr(t))
	exitWithin(t, run, 60*time.Second, "with a busy NATS port")
	if run.Err() == nil {
		t.Fatal("launcher exited 0 with a busy NATS port")
	}
	if log := spawn.TailFile(run.LogPath, 20); !strings.Contains(log, "port "+port+" (NATS, "+ln.Addr().String()+") is in use by another process; stop it or") {
		t.Fatalf("launcher output:\n%s", log)
	}
}

// A child that dies is reported with its status and log tail, and the
// launcher stops everything and exits non-zero.
func TestLauncherChildDies(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := launcherConfigs(t, dir)
	natsAddr, redisAddr := freeAddr(t), freeAddr(t)
	run := startLauncher(t, dir, cfg, natsAddr, redisAddr)
	m := regexp.MustCompile(`kestrel-judge\s+http://\S+\s+pid (\d+)`).FindStringSubmatch(run.stdout.String())
	if m == nil {
		t.Fatalf("no judge pid in:\n%s", run.stdout.String())
	}
	var pid int
	fmt.Sscan(m[1], &pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exitWithin(t, run, 90*time.Second, "after its judge died")
	if run.Err() == nil {
		t.Fatal("launcher exited 0 after a child died")
	}
	log := spawn.TailFile(run.LogPath, 60)
	if !strings.Contains(log, "kestrel-judge died; stopping everything") || !strings.Contains(log, "killed by signal: killed") {
		t.Fatalf("launcher log:\n%s", log)
	}
	if !strings.Contains(run.stdout.String(), "---- last lines of "+filepath.Join(dir, "var", "log", "kestrel-judge.log")) {
		t.Fatalf("no log tail of the judge in:\n%s", run.stdout.String())
	}
	if !strings.Contains(log, "everything stopped") {
		t.Fatalf("launcher did not stop everything:\n%s", log)
	}
}
