package spawn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/nats-io/nats.go"
)

// takenThenFree is a port picker whose first n answers are port: another
// process took that port between FreePort and the child's bind.
func takenThenFree(port, n int) func() (int, error) {
	var mu sync.Mutex
	return func() (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if n > 0 {
			n--
			return port, nil
		}
		return FreePort()
	}
}

func testSpawner(t *testing.T, pick func() (int, error)) (*Spawner, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	s := NewSpawner(t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
	s.freePort = pick
	t.Cleanup(func() {
		for _, c := range s.Children() {
			c.Stop(5 * time.Second)
		}
	})
	return s, &logs
}

// squatRedis starts a redis-server of the test's own on a free port: the
// "other process" that takes the port a spawned child was meant to have.
func squatRedis(t *testing.T) (port, pid int) {
	t.Helper()
	r := redistest.Start(t)
	_, p, _ := net.SplitHostPort(r.Addr)
	port, _ = strconv.Atoi(p)
	pid, err := RedisProcessID(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return port, pid
}

// A Redis of another process answering on the port the spawned
// redis-server was given is not taken for the child: the child fails to
// bind and exits, the spawner starts it again on another port, and the
// Redis the pipeline uses is its own child.
func TestSpawnRedisNotFooledByAnotherRedis(t *testing.T) {
	taken, otherPid := squatRedis(t)
	s, logs := testSpawner(t, takenThenFree(taken, 1))
	_, port, err := s.Start(context.Background(), RedisSpec(redistest.Binary(t), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if port == taken {
		t.Fatalf("the pipeline's Redis is on port %d, where the test's redis-server (pid %d) answers", port, otherPid)
	}
	if len(s.Children()) != 1 {
		t.Fatalf("%d children running, want 1", len(s.Children()))
	}
	if id, err := RedisProcessID(LocalAddr(port)); err != nil || id != s.Children()[0].Pid() {
		t.Fatalf("port %d answered by process %d (%v), want the child %d", port, id, err, s.Children()[0].Pid())
	}
	if !strings.Contains(logs.String(), "took the port") {
		t.Errorf("the retry is not logged: %s", logs)
	}
	if id, err := RedisProcessID(LocalAddr(taken)); err != nil || id != otherPid {
		t.Errorf("the other redis-server was disturbed: %d %v", id, err)
	}
}

// Ports taken again and again: the spawner gives up after its attempts,
// saying why.
func TestSpawnGivesUpWhenPortsKeepBeingTaken(t *testing.T) {
	taken, _ := squatRedis(t)
	s, _ := testSpawner(t, takenThenFree(taken, 100))
	_, _, err := s.Start(context.Background(), RedisSpec(redistest.Binary(t), t.TempDir()))
	if !errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "3 ports in a row") {
		t.Fatalf("got %v, want the port taken 3 times", err)
	}
	if len(s.Children()) != 0 {
		t.Fatalf("%d children left running", len(s.Children()))
	}
}

// Any process listening on kestrel-nats' port (here the test itself)
// answers the TCP readiness check; the spawner waits for the socket to be
// the child's, and starts it on another port when the child cannot bind.
func TestSpawnNATSNotFooledByAnotherListener(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kestrel-nats")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/kestrel-nats")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build kestrel-nats: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	s, _ := testSpawner(t, takenThenFree(taken, 1))
	_, port, err := s.Start(context.Background(), NATSSpec(bin, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if port == taken {
		t.Fatalf("kestrel-nats taken to be on port %d, where the test listens", port)
	}
	nc, err := nats.Connect("nats://"+LocalAddr(port), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("no NATS on the spawned port %d: %v", port, err)
	}
	nc.Close()
	if held, err := holdsListener(s.Children()[0].Pid(), port); err != nil || !held {
		t.Fatalf("child does not hold port %d: %v %v", port, held, err)
	}
}

// holdsListener tells the process listening on a port from every other,
// with /proc (Linux) and with lsof (elsewhere; tested where installed).
func TestHoldsListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	wild, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer wild.Close()
	wildPort := wild.Addr().(*net.TCPAddr).Port
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	free, _ := FreePort()
	impls := map[string]func(pid, port int) (bool, error){}
	if _, err := os.Stat("/proc/self/net/tcp"); err == nil {
		impls["proc"] = func(pid, port int) (bool, error) { return holdsListenerProc("/proc", pid, port) }
	}
	if _, err := exec.LookPath("lsof"); err == nil {
		impls["lsof"] = holdsListenerLsof
	}
	if len(impls) == 0 {
		t.Skip("neither /proc nor lsof")
	}
	for name, holds := range impls {
		f := func(pid, port int, want bool) {
			t.Helper()
			if got, err := holds(pid, port); err != nil || got != want {
				t.Errorf("%s: holds(pid %d, port %d) = %v, %v; want %v", name, pid, port, got, err, want)
			}
		}
		f(os.Getpid(), port, true)
		f(os.Getpid(), wildPort, true)
		f(other.Process.Pid, port, false)
		f(os.Getpid(), free, false)
	}
}
