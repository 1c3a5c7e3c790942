//go:build e2e

// Package e2e runs the real Kestrel binaries as processes, the way a user
// does: kestrel-nats, redis-server, transfers, judges, an agent and the
// kestrel-run launcher, each on random free ports with configs written by
// the test. Run: cd deploy && go test -tags e2e -race -count=1 -timeout 20m ./e2e/
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
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

// freePort returns a port that was free a moment ago, for a process the
// test does not start itself (kestrel-run's children, ops-meta).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := spawn.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freeAddr(t *testing.T) string { return spawn.LocalAddr(freePort(t)) }

// proc is a child process of a test (kestrel-run's and loadgen's
// spawn.Child): SIGKILLed with its process group on cleanup, the tail of
// its log (and its stdout, when captured) printed when the test failed.
type proc struct {
	*spawn.Child
	stdout *syncbuf.Buffer // when captured
}

// watch makes c a proc of the test.
func watch(t *testing.T, c *spawn.Child, stdout *syncbuf.Buffer) *proc {
	p := &proc{Child: c, stdout: stdout}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- last lines of %s (%s) ----\n%s", p.Name, p.LogPath, spawn.TailFile(p.LogPath, 40))
			if p.stdout != nil {
				t.Logf("---- stdout of %s ----\n%s", p.Name, p.stdout.String())
			}
		}
	})
	return p
}

// startProc starts path with args in dir; stdout and stderr go to
// <dir>/<name>.log (with captureStdout, stdout goes to a buffer instead).
func startProc(t *testing.T, dir, name, path string, captureStdout bool, args ...string) *proc {
	t.Helper()
	c := &spawn.Child{Name: name, Path: path, Args: args, Dir: dir, LogPath: filepath.Join(dir, name+".log")}
	var stdout *syncbuf.Buffer
	if captureStdout {
		stdout = &syncbuf.Buffer{}
		c.Stdout = stdout
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return watch(t, c, stdout)
}

// waitRunning is wait.For that also fails the test at once when one of procs
// exits meanwhile.
func waitRunning(t *testing.T, what string, timeout time.Duration, cond func() bool, procs ...*proc) {
	t.Helper()
	wait.For(t, what, timeout, func() bool {
		for _, p := range procs {
			if p.Exited() {
				t.Fatalf("%s exited (%s) while waiting for %s", p.Name, p.ExitStatus(), what)
			}
		}
		return cond()
	})
}

// exitWithin waits up to d for p to exit and fails the test if it does not.
func exitWithin(t *testing.T, p *proc, d time.Duration, why string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatalf("%s did not exit %s", p.Name, why)
	}
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
