//go:build !linux

package mysqltest

import "os/exec"

func setProcAttr(*exec.Cmd) {}
