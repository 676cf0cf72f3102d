//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach makes cmd start in a session of its own, away from the
// terminal's signals (Ctrl-C) and its end.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
