package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

// Files of a daemon in the profile directory (docs/daemon.md).
const (
	// pidFileName holds the process id of the running daemon; it is
	// removed when the daemon stops cleanly.
	pidFileName = "daemon.pid"
	// logFileName collects the standard error of daemons started on
	// demand (PARLEY_DAEMON=auto).
	logFileName = "daemon.log"
)

// daemonStartWait bounds how long startDaemon waits for the started
// daemon to answer: as long as the daemon itself waits for a profile that
// another process holds (lockWait).
const daemonStartWait = lockWait

// errDaemonHolds is the error of a command that does not go through the
// daemon while a daemon holds its profile; it wraps
// client.ErrProfileBusy (exit code 8, profile_busy).
func (e *env) errDaemonHolds(dir string) error {
	return withHint(fmt.Errorf("profile %s is held by a parley daemon (socket %s): %w", dir, filepath.Join(dir, daemonapi.SocketFile), client.ErrProfileBusy),
		"'parley %s' does not go through the daemon yet: stop the daemon (SIGTERM or Ctrl-C), run the command, then start the daemon again (see docs/daemon.md)", e.command)
}

// viaDaemon connects to the daemon of the profile in dir, if one runs:
// a command that goes through it (o.routed) gets a session on it, any
// other fails with errDaemonHolds. Without a daemon it returns nil, nil
// and the command opens the profile itself.
//
// With PARLEY_DAEMON=auto, a command that goes through the daemon starts
// one when none runs (startDaemon); if that fails, it says why on stderr
// and opens the profile itself.
func (e *env) viaDaemon(ctx context.Context, dir string, o openOptions) (*session, error) {
	routed := o.routed && !o.create
	dc, err := daemonapi.Dial(ctx, dir)
	if err != nil && routed && e.getenv("PARLEY_DAEMON") == "auto" {
		if dc, err = e.startDaemon(ctx, dir); err != nil {
			(&session{e: e}).notice("daemon_not_started", fmt.Sprintf("PARLEY_DAEMON=auto: %v; opening the profile without a daemon", err))
		}
	}
	if err != nil {
		return nil, nil // no daemon: a stale socket answers nothing
	}
	if !routed {
		dc.Close()
		if o.create {
			return nil, withHint(fmt.Errorf("profile %s is held by a parley daemon (socket %s): %w", dir, filepath.Join(dir, daemonapi.SocketFile), client.ErrProfileBusy),
				"'parley register' creates a profile, and this one is registered already: choose another --profile or --dir")
		}
		return nil, e.errDaemonHolds(dir)
	}
	return &session{e: e, dir: dir, api: dc, daemon: dc, done: make(chan struct{})}, nil
}

// startDaemon starts 'parley daemon' for the profile in dir, detached
// from this process (its own session, standard input and output
// /dev/null, standard error appended to logFileName in dir), and
// connects to it once it answers. It fails when the daemon exits first
// (the log says why: a passphrase it cannot ask for, a profile held by
// another process) or does not answer within daemonStartWait. The daemon
// runs on after this process ends; its pid is in pidFileName.
func (e *env) startDaemon(ctx context.Context, dir string) (*daemonapi.Client, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start a daemon for profile %s: %v", dir, err)
	}
	logPath := filepath.Join(dir, logFileName)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start a daemon for profile %s: %v", dir, err)
	}
	defer logFile.Close()
	args := []string{"--dir", dir}
	if e.verbose {
		args = append(args, "-v")
	}
	cmd := exec.Command(exe, append(args, "daemon")...)
	cmd.Stderr = logFile // stdin and stdout: the null device
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a daemon for profile %s: %v", dir, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(daemonStartWait)
	defer deadline.Stop()
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
		if dc, err := daemonapi.Dial(ctx, dir); err == nil {
			return dc, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-exited:
			// Another daemon may have won the race for the profile.
			if dc, derr := daemonapi.Dial(ctx, dir); derr == nil {
				return dc, nil
			}
			return nil, fmt.Errorf("the daemon started for profile %s exited (%v): see %s", dir, err, logPath)
		case <-deadline.C:
			return nil, fmt.Errorf("the daemon started for profile %s (pid %d) did not answer within %v: see %s", dir, cmd.Process.Pid, daemonStartWait, logPath)
		case <-time.After(backoff):
		}
	}
}

// writePIDFile records this process as the daemon of the profile in dir.
// The returned function removes the file, unless another daemon replaced
// it meanwhile.
func writePIDFile(dir string) (func(), error) {
	path := filepath.Join(dir, pidFileName)
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(path, []byte(pid+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("daemon pid file %s: %v", path, err)
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == pid {
			os.Remove(path)
		}
	}, nil
}

func cmdDaemon(ctx context.Context, e *env, args []string) error {
	fs := e.flags("daemon", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	dir, err := e.profileDir()
	if err != nil {
		return err
	}
	if dc, err := daemonapi.Dial(ctx, dir); err == nil {
		dc.Close()
		return withHint(fmt.Errorf("profile %s: a parley daemon already runs for it (socket %s): %w", dir, filepath.Join(dir, daemonapi.SocketFile), client.ErrProfileBusy),
			"one daemon at a time may hold a profile; its commands go through the one that runs")
	}
	s, err := e.open(ctx, openOptions{ownEvents: true})
	if err != nil {
		return err
	}
	defer s.c.Close()
	// Opening a store protected by a passphrase ran Argon2id, which
	// allocates its memory parameter (64 MiB by default) once. An idle
	// daemon allocates too little to start another collection, so those
	// pages would stay resident until the runtime's periodic one, minutes
	// later: return them to the system now.
	debug.FreeOSMemory()
	ln, err := daemonapi.Listen(s.dir)
	if err != nil {
		return err
	}
	removePID, err := writePIDFile(s.dir)
	if err != nil {
		ln.Close()
		return err
	}
	defer removePID()
	var logger *slog.Logger
	if e.verbose {
		logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := daemonapi.NewServer(s.c, s.dir, logger)
	// The search index is built from the store in the background, so
	// that the first search does not wait for it (docs/cli.md, "Search").
	s.c.PrepareSearch()
	stopped := ctx // done at SIGTERM or SIGINT
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- s.c.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	fmt.Fprintf(e.stderr, "parley: daemon serving profile %s on %s\n", s.dir, filepath.Join(s.dir, daemonapi.SocketFile))
	select {
	case err = <-runErr:
		cancel()
		<-served
	case err = <-served:
		cancel()
		<-runErr
	}
	if stopped.Err() != nil || err == nil {
		fmt.Fprintln(e.stderr, "parley: daemon stopped")
		return nil
	}
	return err
}
