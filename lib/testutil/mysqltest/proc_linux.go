//go:build linux

package mysqltest

import (
	"os/exec"
	"syscall"
)

// setProcAttr kills mariadbd when the test binary dies.
func setProcAttr(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(c *exec.Cmd) { c.Process.Signal(syscall.SIGTERM) }
