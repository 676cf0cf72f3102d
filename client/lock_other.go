//go:build !unix

package client

import "os"

// tryLock does not lock on this platform: two processes opening one
// profile at the same time are not detected.
func tryLock(f *os.File) (bool, error) { return true, nil }

// unlockFile releases the lock of tryLock.
func unlockFile(f *os.File) {}
