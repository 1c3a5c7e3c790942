package spawn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

func TestTailLines(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"a\n", 0, ""},
		{"one", 1, "one"},
	}
	for _, c := range cases {
		if got := TailLines([]byte(c.in), c.n); got != c.want {
			t.Errorf("TailLines(%q,%d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestChildLifecycle(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// exits on its own with a status, output in the log
	c := &Child{Name: "fails", Path: sh, Args: []string{"-c", "echo starting; echo boom >&2; exit 3"}, Dir: dir, LogPath: filepath.Join(dir, "fails.log")}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit")
	}
	if c.ExitStatus() != "exit status 3" {
		t.Errorf("status %q", c.ExitStatus())
	}
	if tail := TailFile(c.LogPath, 2); tail != "starting\nboom" {
		t.Errorf("tail %q", tail)
	}
	// stops on SIGTERM
	c2 := &Child{Name: "sleeper", Path: sh, Args: []string{"-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done"}, Dir: dir, LogPath: filepath.Join(dir, "s.log")}
	if err := c2.Start(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c2.LogPath, "ready")
	status, killed := c2.Stop(10 * time.Second)
	if killed || status != "exit status 0" {
		t.Errorf("stop: %q killed=%v", status, killed)
	}
	// ignores SIGTERM: killed after the timeout
	c3 := &Child{Name: "stubborn", Path: sh, Args: []string{"-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"}, Dir: dir, LogPath: filepath.Join(dir, "k.log")}
	if err := c3.Start(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c3.LogPath, "ready")
	status, killed = c3.Stop(200 * time.Millisecond)
	if !killed || status != "killed by signal: killed" {
		t.Errorf("stop stubborn: %q killed=%v", status, killed)
	}
}

// Stdout set: stdout goes there, stderr (and the start line) to the log.
func TestChildStdout(t *testing.T) {
	dir := t.TempDir()
	var out syncbuf.Buffer
	c := &Child{Name: "talker", Path: "/bin/sh", Args: []string{"-c", "echo out; echo err >&2"}, Dir: dir, LogPath: filepath.Join(dir, "talker.log"), Stdout: &out}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if c.Err() != nil || out.String() != "out\n" {
		t.Fatalf("err %v, stdout %q", c.Err(), out.String())
	}
	if log := TailFile(c.LogPath, 5); !strings.HasPrefix(log, "---- ") || !strings.HasSuffix(log, "\nerr") {
		t.Fatalf("log %q", log)
	}
}

// WaitReady: ready at once, a child that exits (ErrDied with its log
// tail), a child that is never ready (it keeps running).
func TestWaitReady(t *testing.T) {
	dir := t.TempDir()
	start := func(script string) *Child {
		c := &Child{Name: "sh", Path: "/bin/sh", Args: []string{"-c", script}, Dir: dir, LogPath: filepath.Join(dir, "sh.log")}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Kill)
		return c
	}
	ctx := context.Background()
	if err := WaitReady(ctx, start("sleep 30"), time.Minute, func() bool { return true }); err != nil {
		t.Errorf("ready at once: %v", err)
	}
	err := WaitReady(ctx, start("echo gone; exit 4"), time.Minute, func() bool { return false })
	if !errors.Is(err, ErrDied) || !strings.Contains(err.Error(), "exit status 4") || !strings.HasSuffix(err.Error(), "gone") {
		t.Errorf("exiting child: %v", err)
	}
	c := start("sleep 30")
	err = WaitReady(ctx, c, 100*time.Millisecond, func() bool { return false })
	if err == nil || errors.Is(err, ErrDied) || !strings.Contains(err.Error(), "not ready after 100ms") || c.Exited() {
		t.Errorf("never ready: %v (exited %v)", err, c.Exited())
	}
}

func TestProbes(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	free, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	f := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	f("TCPUp(server)", TCPUp(addr), true)
	f("TCPUp(free port)", TCPUp(LocalAddr(free)), false)
	f("HTTPOK(/health)", HTTPOK(hs.URL+"/health"), true)
	f("HTTPOK(/nothing)", HTTPOK(hs.URL+"/nothing"), false)
	f("HTTPAnswers(/nothing)", HTTPAnswers(hs.URL+"/nothing"), true)
	f("HTTPAnswers(free port)", HTTPAnswers("http://"+LocalAddr(free)+"/"), false)
	if err := HTTPCheck(hs.URL + "/nothing"); err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("HTTPCheck(/nothing) = %v", err)
	}
	f("RedisPing(HTTP server)", RedisPing(context.Background(), addr), false)
	r := redistest.Start(t)
	f("RedisPing(redis)", RedisPing(context.Background(), r.Addr), true)
	if pid, err := RedisProcessID(r.Addr); err != nil || pid <= 0 {
		t.Errorf("RedisProcessID = %d, %v", pid, err)
	}
	if _, err := RedisProcessID(addr); err == nil {
		t.Error("RedisProcessID of an HTTP server: no error")
	}
}

// waitLog polls until the file's last line is want (the trap is set).
func waitLog(t *testing.T, path, want string) {
	t.Helper()
	wait.For(t, path+" saying "+want, 10*time.Second, func() bool { return TailFile(path, 1) == want })
}
