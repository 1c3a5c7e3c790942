package spawn

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Child is a child process whose output goes to a log file. It runs in its
// own process group, so a Ctrl-C in the terminal reaches only the parent,
// which stops its children in order.
type Child struct {
	Name    string
	Path    string
	Args    []string
	Dir     string
	LogPath string    // stdout and stderr are appended to it
	Stdout  io.Writer // if set, stdout goes here instead of LogPath

	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit error, valid after done
}

// Start starts the child. A line at the top of its output in the log says
// when and how it was started.
func (c *Child) Start() error {
	f, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", c.Name, err)
	}
	fmt.Fprintf(f, "---- %s starting %s %s\n", time.Now().Format(time.RFC3339), c.Path, strings.Join(c.Args, " "))
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = f, f
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("cannot start %s: %w", c.Name, err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
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

// Exited reports whether the child has exited.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Err is what exec.Cmd.Wait returned (valid after Done): nil for exit
// status 0.
func (c *Child) Err() error { return c.err }

// ExitStatus describes how the child ended (valid after Done).
func (c *Child) ExitStatus() string { return DescribeExit(c.err) }

// Signal sends sig to the child (not to its process group).
func (c *Child) Signal(sig os.Signal) error { return c.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs the child's
// process group. It returns how the child ended and whether it had to
// be killed.
func (c *Child) Stop(timeout time.Duration) (status string, killed bool) {
	if c.Exited() {
		return c.ExitStatus(), false
	}
	_ = c.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.ExitStatus(), false
	case <-time.After(timeout):
	}
	c.Kill()
	return c.ExitStatus(), true
}

// Kill SIGKILLs the child's process group and waits for the child.
func (c *Child) Kill() {
	if c.Exited() {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
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
