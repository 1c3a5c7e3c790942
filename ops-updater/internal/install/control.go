package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// Control runs "./control <cmd>" in a version directory.
type Control struct {
	Timeout time.Duration
}

// limitedBuffer keeps the first 64 KiB of output.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// Run runs ./control arg in dir and returns its trimmed output. The script
// runs in its own process group (so signals to the updater do not reach
// the agent it starts); on timeout the whole group is killed. A canceled
// ctx does not stop a running script: killing "control start" half-way
// would leave the agent in an unknown state, so only the timeout bounds it.
func (c Control) Run(ctx context.Context, dir, arg string) (string, error) {
	ctl := filepath.Join(dir, "control")
	fi, err := os.Stat(ctl)
	if err != nil {
		return "", fmt.Errorf("no control script: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", ctl)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./control", arg)
	cmd.Dir = dir
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A daemon that keeps our stdout open must not block us.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	text := strings.TrimSpace(out.String())
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return text, fmt.Errorf("./control %s timed out after %s", arg, c.Timeout)
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return text, fmt.Errorf("./control %s failed: %v: %s", arg, err, lastLine(text))
	}
	return text, nil
}

// Status runs ./control status and returns the status word it printed:
// the last non-empty line ("started", "stoped" or "stopped" from a well
// behaved script). A script that cannot run reports "stopped".
func (c Control) Status(ctx context.Context, dir string) string {
	out, err := c.Run(ctx, dir, "status")
	s := lastLine(out)
	if s == "" || (err != nil && s != proto.AgentStarted && s != proto.AgentStoped && s != proto.AgentStopped) {
		return proto.AgentStopped
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	return s
}
