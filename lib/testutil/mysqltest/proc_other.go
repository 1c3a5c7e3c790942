//go:build !linux

package mysqltest

import (
	"os"
	"os/exec"
)

func setProcAttr(*exec.Cmd) {}

func terminate(c *exec.Cmd) { c.Process.Signal(os.Interrupt) }
