package launch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Child is a supervised child process whose output goes to a log file.
// It runs in its own process group, so a Ctrl-C in the terminal reaches
// only the launcher, which stops children in order.
type Child struct {
	Name    string
	Path    string
	Args    []string
	Dir     string
	LogPath string

	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // exit error, valid after done
}

// Start starts the child.
func (c *Child) Start() error {
	f, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", c.Name, err)
	}
	fmt.Fprintf(f, "---- %s kestrel-run starts %s %s\n", time.Now().Format(time.RFC3339), c.Path, strings.Join(c.Args, " "))
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("cannot start %s: %w", c.Name, err)
	}
	c.cmd, c.log, c.done = cmd, f, make(chan struct{})
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return nil
}

// Pid returns the process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Done is closed when the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// ExitStatus describes how the child ended (valid after Done).
func (c *Child) ExitStatus() string { return DescribeExit(c.err) }

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs the child's
// process group. It returns how the child ended and whether it had to
// be killed.
func (c *Child) Stop(timeout time.Duration) (status string, killed bool) {
	select {
	case <-c.done:
		return c.ExitStatus(), false
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.ExitStatus(), false
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	return c.ExitStatus(), true
}

// DescribeExit turns an exec Wait error into "exit status 0",
// "exit status 2" or "killed by signal: killed".
func DescribeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}

// TailFile returns the last n lines of a file ("" if it cannot be read).
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return TailLines(b, n)
}

// TailLines returns the last n lines of b.
func TailLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 || n <= 0 {
		return ""
	}
	i := len(b)
	for k := 0; k < n; k++ {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			return string(b)
		}
		i = j
	}
	return string(b[i+1:])
}
