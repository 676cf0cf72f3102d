package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock file inside the profile directory. The
// Client holding a profile open holds an exclusive flock on it and writes
// its process id into it.
const LockFile = "lock"

// ErrProfileBusy means another Client (in this or another process) has the
// profile open. One Client at a time may use a profile: each keeps the
// MLS state of the open conversations in memory, and two would fork it.
// Running a command while a long-lived Client (such as parley listen)
// holds the profile would need a daemon owning the profile that commands
// talk to; there is none.
var ErrProfileBusy = errors.New("profile in use by another client")

// ProfileBusyError is the error of Open when the profile is locked. It
// matches ErrProfileBusy with errors.Is.
type ProfileBusyError struct {
	// Dir is the profile directory.
	Dir string
	// PID is the process id the holder wrote into the lock file, or 0.
	PID int
}

// Error names the profile and the holder.
func (e *ProfileBusyError) Error() string {
	if e.PID != 0 {
		return fmt.Sprintf("client: open profile %s: %v (process %d)", e.Dir, ErrProfileBusy, e.PID)
	}
	return fmt.Sprintf("client: open profile %s: %v", e.Dir, ErrProfileBusy)
}

// Is reports whether target is ErrProfileBusy.
func (e *ProfileBusyError) Is(target error) bool { return target == ErrProfileBusy }

// lockProfile takes the profile's lock without waiting. The lock is
// released when the returned file is closed (or the process ends).
func lockProfile(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("client: lock profile %s: %v", dir, err)
	}
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("client: lock profile %s: %v", dir, err)
	}
	if !ok {
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		f.Close()
		return nil, &ProfileBusyError{Dir: dir, PID: pid}
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// unlockProfile releases the lock of lockProfile.
func unlockProfile(f *os.File) {
	if f != nil {
		unlockFile(f)
		f.Close()
	}
}

// createPrivate creates an empty file with mode 0600 if none exists, so
// that the store (and SQLite's journal files, which take the database
// file's mode) is never readable by others. An existing file with more
// permissive modes is restricted.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(path, 0o600)
	}
	return nil
}
