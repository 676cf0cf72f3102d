package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/tui"
)

func cmdTUI(ctx context.Context, e *env, args []string) (err error) {
	fs := e.flags("tui", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	dir, err := e.profileDir()
	if err != nil {
		return err
	}
	dc, started, err := e.daemonFor(ctx, dir)
	if err != nil {
		return err
	}
	if started {
		fmt.Fprintf(e.stderr, "parley: started a daemon for profile %s (log %s); it keeps running after tui quits\n", dir, filepath.Join(dir, logFileName))
	}
	d := &tuiDaemon{e: e, dir: dir, dc: dc}
	defer d.close()
	return e.runTUI(ctx, dc, d.reconnect)
}

// tuiDaemon is the daemon connection of parley tui, replaced when the
// daemon goes away (a crash, a kill, an upgrade) by one to a daemon
// started again.
type tuiDaemon struct {
	e   *env
	dir string
	mu  sync.Mutex
	dc  *daemonapi.Client
}

// reconnect closes the lost connection and connects to the profile's
// daemon, starting it when none runs.
func (d *tuiDaemon) reconnect(ctx context.Context) (tui.Backend, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dc != nil {
		d.dc.Close()
		d.dc = nil
	}
	dc, _, err := d.e.daemonFor(ctx, d.dir)
	if err != nil {
		return nil, err
	}
	d.dc = dc
	return dc, nil
}

func (d *tuiDaemon) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dc != nil {
		d.dc.Close()
	}
}

// runTUI runs the terminal client on the daemon's connection until the
// user quits or a signal ends ctx. Bubble Tea restores the terminal on
// a panic in the model; a panic here outside it is reported as an error.
func (e *env) runTUI(ctx context.Context, dc *daemonapi.Client, reconnect func(context.Context) (tui.Backend, error)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(e.stderr, "parley tui: internal error: %v\n%s", r, debug.Stack())
			err = fmt.Errorf("tui: internal error: %v", r)
		}
	}()
	plain := e.getenv("NO_COLOR") != ""
	m := tui.New(dc, tui.Options{Context: ctx, Plain: plain, Reconnect: reconnect})
	opts := []tea.ProgramOption{tea.WithContext(ctx)}
	if plain {
		opts = append(opts, tea.WithColorProfile(colorprofile.Ascii))
	}
	_, err = tea.NewProgram(m, opts...).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // SIGTERM or SIGINT: the terminal is restored
	}
	if err != nil {
		return fmt.Errorf("tui: %w", err)
	}
	return nil
}

// daemonFor connects to the daemon of the profile in dir, starting one
// when none runs (startDaemon); started says it did.
func (e *env) daemonFor(ctx context.Context, dir string) (dc *daemonapi.Client, started bool, err error) {
	if dc, err := daemonapi.Dial(ctx, dir); err == nil {
		return dc, false, nil
	}
	if _, err := os.Stat(filepath.Join(dir, client.StoreFile)); err != nil {
		return nil, false, withHint(fmt.Errorf("profile %s: %w", dir, client.ErrNotRegistered), "register first: parley register --link LINK NAME")
	}
	dc, err = e.startDaemon(ctx, dir)
	if err != nil {
		return nil, false, withHint(err, "run 'parley daemon' in a terminal to see why (a passphrase is read from $PARLEY_PASSPHRASE)")
	}
	return dc, true, nil
}
