package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// startupCheckMaxErrors bounds the findings the start-up check reports.
const startupCheckMaxErrors = 10

// restoreAdvice tells how to restore the SQLite database at path from a
// backup (docs/operations.md, "Backup and restore").
func restoreAdvice(path string) string {
	return fmt.Sprintf("restore from a backup: stop parleyd, move %[1]s and any %[1]s-wal and %[1]s-shm aside, "+
		"copy the latest backup made by 'parleyd backup' to %[1]s (mode 0600) and start parleyd again "+
		"(see \"Backup and restore\" in docs/operations.md)", path)
}

// startupCheck runs, before the store is opened (and so before any
// migration writes to it), SQLite's PRAGMA quick_check on an existing
// database, within the store_check_timeout budget: a check that does not
// finish in time is logged and start-up goes on; a damaged database stops
// it with an error naming the file and the way to restore it. It also
// warns about a database file other users may read. PostgreSQL is not
// checked at start: the server guards its own pages (WAL, optional data
// checksums), and a scan of the shared database by every node at every
// start would cost more than it finds; 'parleyd admin check' checks the
// store's invariants there.
func startupCheck(ctx context.Context, c Config, log *slog.Logger) error {
	spec, err := parseStore(c.Store, c.StoreSchema, c.DataDir)
	if err != nil {
		return usageError{fmt.Errorf("store: %v", err)}
	}
	if spec.backend != "sqlite" {
		log.Debug("no start-up integrity check on PostgreSQL; run 'parleyd admin check'", "store", spec.describe())
		return nil
	}
	fi, err := os.Stat(spec.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a new database
	} else if err != nil {
		return fmt.Errorf("store: %v", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("database file is accessible to other users; chmod 600 it and its -wal and -shm files", "path", spec.path, "mode", fi.Mode().Perm().String())
	}
	if c.StoreCheckTimeout == 0 {
		log.Info("start-up integrity check skipped (store_check_timeout = 0)", "path", spec.path)
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.StoreCheckTimeout)
	defer cancel()
	start := time.Now()
	problems, err := sqlite.CheckFile(cctx, spec.path, false, startupCheckMaxErrors)
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		log.Warn("start-up integrity check (PRAGMA quick_check) did not finish within store_check_timeout; starting anyway: run 'parleyd admin check' or raise the budget",
			"path", spec.path, "bytes", fi.Size(), "took", took, "store_check_timeout", c.StoreCheckTimeout)
		return nil
	case err != nil:
		return fmt.Errorf("store: start-up integrity check: %v", err)
	case len(problems) > 0:
		log.Error("start-up integrity check failed: the database is damaged", "path", spec.path, "took", took, "problems", len(problems))
		return fmt.Errorf("store: the database %s is damaged: PRAGMA quick_check found: %s; parleyd will not start on it; %s",
			spec.path, strings.Join(problems, "; "), restoreAdvice(spec.path))
	}
	log.Info("start-up integrity check passed (PRAGMA quick_check)", "path", spec.path, "bytes", fi.Size(), "took", took)
	return nil
}

// adminCheck runs `parleyd admin check`: the store's full consistency
// check (CheckInvariants: for SQLite the full PRAGMA integrity_check and
// foreign_key_check too). It prints "ok" or one finding per line on
// stdout and fails when there is any.
func adminCheck(ctx context.Context, name string, args []string, e *env) error {
	c, _, _, err := storeCommand(name, args, e, false, "")
	if err != nil {
		return err
	}
	spec, err := parseStore(c.Store, c.StoreSchema, c.DataDir)
	if err != nil {
		return usageError{fmt.Errorf("store: %v", err)}
	}
	advice := "investigate before restarting parleyd"
	if spec.backend == "sqlite" {
		advice = restoreAdvice(spec.path)
		// SQLite's quick check first, on the file as it is: a damaged
		// file is not opened as a store (which may migrate it). The
		// full integrity check is part of CheckInvariants.
		if _, err := os.Stat(spec.path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check: no database at %s: pass --data-dir or --store", spec.path)
		}
		problems, err := sqlite.CheckFile(ctx, spec.path, false, 100)
		if err != nil {
			return fmt.Errorf("check: %v", err)
		}
		if len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintf(e.stdout, "integrity_check: %s\n", p)
			}
			return fmt.Errorf("check: the database %s is damaged (%d finding(s) above); %s", spec.path, len(problems), advice)
		}
	}
	start := e.now()
	return withStore(ctx, c, func(st store.Store) error {
		ck, ok := st.(interface{ CheckInvariants(context.Context) error })
		if !ok {
			return fmt.Errorf("check: %s has no consistency check", spec.describe())
		}
		err := ck.CheckInvariants(ctx)
		if err == nil {
			fmt.Fprintf(e.stdout, "ok: %s passed its consistency check in %v\n", spec.describe(), e.now().Sub(start).Round(time.Millisecond))
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("check: %v", err)
		}
		findings := findingsOf(err)
		for _, f := range findings {
			fmt.Fprintln(e.stdout, f)
		}
		return fmt.Errorf("check: %s failed its consistency check (%d finding(s) above); %s", spec.describe(), len(findings), advice)
	})
}

// findingsOf splits CheckInvariants' error into its findings: the errors
// it joined, under the one that names the operation.
func findingsOf(err error) []string {
	for {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			var out []string
			for _, e := range j.Unwrap() {
				out = append(out, strings.ReplaceAll(e.Error(), "\n", " "))
			}
			return out
		}
		next := errors.Unwrap(err)
		if next == nil {
			return []string{err.Error()}
		}
		err = next
	}
}
