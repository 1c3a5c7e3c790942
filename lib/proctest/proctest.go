// Package proctest runs a built binary as a child process in a test, the
// way an operator runs it. The child's output goes to a Buffer that is
// safe to read while the child writes it (exec.Cmd copies a non-file
// Stdout/Stderr from a goroutine of its own, so a plain bytes.Buffer read
// before Wait returns is a data race). The process is killed and waited
// for on cleanup, and its output is logged when the test failed.
package proctest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
)

// Buffer is the child's output: safe to read while the child writes it.
type Buffer = syncbuf.Buffer

// Proc is a running child process.
type Proc struct {
	Cmd *exec.Cmd
	// Output holds the child's stdout and stderr.
	Output *Buffer

	exited chan struct{}
	err    error // set before exited is closed
}

// Start starts name with args. On cleanup it is killed (if still
// running) and waited for; if the test failed, its output is logged.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(name, args...), Output: &Buffer{}, exited: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit 10s after SIGKILL", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output.String())
		}
	})
	return p
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Exited is closed once the process exited and all its output is in
// Output.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Wait waits at most timeout for the process to exit: exited is false if
// it is still running, else err is what exec.Cmd.Wait returned.
func (p *Proc) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.exited:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop sends SIGTERM and fails the test unless the process exits cleanly
// (code 0) within d.
func (p *Proc) Stop(t testing.TB, d time.Duration) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	exited, err := p.Wait(d)
	if !exited {
		t.Fatalf("still running %v after SIGTERM", d)
	}
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// LogLines returns the child's JSON log lines (log.format json) whose msg
// starts with prefix ("" for all), oldest first; a line still being
// written is left out.
func (p *Proc) LogLines(prefix string) []map[string]any {
	var out []map[string]any
	for l := range strings.Lines(p.Output.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// Run runs name with args to completion and returns its exit code,
// stdout and stderr. A process that cannot be started fails the test.
func Run(t testing.TB, name string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer // read only after Run returned
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	return code, out.String(), errOut.String()
}
