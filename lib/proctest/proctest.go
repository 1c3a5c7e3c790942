// Package proctest runs a built binary as a child process in a test, the
// way an operator runs it. The child's output goes to a Buffer that is
// safe to read while the child writes it (exec.Cmd copies a non-file
// Stdout/Stderr from a goroutine of its own, so a plain bytes.Buffer read
// before Wait returns is a data race). The process is killed and waited
// for on cleanup, and its output is logged when the test failed.
package proctest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers: a
// child's output, or a test logger's sink.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

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
