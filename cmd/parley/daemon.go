package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

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
func (e *env) viaDaemon(ctx context.Context, dir string, o openOptions) (*session, error) {
	dc, err := daemonapi.Dial(ctx, dir)
	if err != nil {
		return nil, nil // no daemon: a stale socket answers nothing
	}
	if !o.routed || o.create {
		dc.Close()
		return nil, e.errDaemonHolds(dir)
	}
	return &session{e: e, dir: dir, api: dc, daemon: dc, done: make(chan struct{})}, nil
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
	ln, err := daemonapi.Listen(s.dir)
	if err != nil {
		return err
	}
	var logger *slog.Logger
	if e.verbose {
		logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := daemonapi.NewServer(s.c, s.dir, logger)
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
