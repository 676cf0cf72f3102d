//go:build !unix

package main

import "os/exec"

// detach does nothing here: the started daemon stays in the process
// group of the command that started it.
func detach(cmd *exec.Cmd) {}
