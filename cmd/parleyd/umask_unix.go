//go:build unix

package main

import "syscall"

// restrictUmask sets the process umask to 0o077 once, in main before
// anything else runs, as defence in depth: every site that creates a
// file or directory already passes an explicit mode (0600 files, 0700
// directories), and the umask also covers files created by libraries
// that do not. It is never changed afterwards, so it cannot race with
// goroutines creating files.
func restrictUmask() { syscall.Umask(0o077) }
