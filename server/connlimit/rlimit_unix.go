//go:build unix

package connlimit

import (
	"fmt"
	"syscall"
)

// OpenFileLimit returns the process's soft limit on open files
// (RLIMIT_NOFILE), which the Go runtime raises to the hard limit at
// start.
func OpenFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("connlimit: getrlimit RLIMIT_NOFILE: %v", err)
	}
	return uint64(rl.Cur), nil
}
