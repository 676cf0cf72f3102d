// Command parleyd is the Parley server: the MLS Delivery Service and
// Authentication Service for one organisation, in one binary.
//
// With no arguments it serves on https://127.0.0.1:8443 from an embedded
// SQLite database in the data directory ($XDG_DATA_HOME/parley or
// ~/.local/share/parley), with a self-signed certificate whose SHA-256
// fingerprint it prints. Configuration comes from defaults, a TOML file
// (--config), PARLEY_* environment variables and flags, in increasing
// precedence.
//
// Usage:
//
//	parleyd [serve] [flags]             run the server
//	parleyd backup [flags] PATH         write an online, consistent copy of the database
//	parleyd admin [flags] invite create [--uses N] [--expires DUR] [--url URL] [--link] [--json]
//	parleyd admin invite list [--json] | delete ID
//	parleyd admin users list [--json] | disable NAME | enable NAME | promote NAME | demote NAME
//	parleyd admin devices list USER [--json] | disable ID | enable ID
//	parleyd admin stats [--json]
//	parleyd admin check                 check the database's integrity and the store's invariants
//	parleyd config [flags]              print the effective configuration
//	parleyd version                     print the version and build information
//	parleyd help                        print this help
//
// With --store postgres://… and --fanout nats://… several nodes serve one
// organisation behind a load balancer (docs/deployment.md). Admin and
// backup commands open the database directly; they work while the server
// runs. Exit codes: 0 success, 1 runtime failure, 2 usage or
// configuration error. See docs/operations.md.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parley-chat/parley/internal/buildinfo"
)

func main() {
	restrictUmask()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], &env{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		now:    time.Now,
		rand:   rand.Reader,
	})
	os.Exit(exitCode(err, os.Stderr))
}

// env is what a command may use of the process: its output streams, its
// environment, the clock and randomness.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	rand           io.Reader
	// ready, when not nil, receives the listener's address once the
	// server accepts connections (tests).
	ready func(addr string)
}

// usageError is a command-line or configuration error: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode maps run's error to the exit code, reporting it on stderr.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "parleyd: %v\n(run 'parleyd help' for usage)\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "parleyd: %v\n", err)
		return 1
	}
}

// run executes the command line args (without the program name).
func run(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 || len(args[0]) > 0 && args[0][0] == '-' {
		return cmdServe(ctx, args, e)
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], e)
	case "backup":
		return cmdBackup(ctx, args[1:], e)
	case "admin":
		return cmdAdmin(ctx, args[1:], e)
	case "config":
		return cmdConfig(args[1:], e)
	case "version":
		if len(args) > 1 {
			return usagef("version: unexpected argument %q", args[1])
		}
		fmt.Fprint(e.stdout, buildinfo.String("parleyd"))
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, helpText)
		return nil
	}
	return usagef("unknown command %q", args[0])
}

// helpText is the output of `parleyd help`.
const helpText = `parleyd - the Parley server

Usage:
  parleyd [serve] [flags]              run the server
  parleyd backup [flags] PATH          write an online, consistent copy of the database to PATH
  parleyd admin invite create [--uses N] [--expires DUR] [--url URL] [--link] [--json]
                                       prints the code, and the invite link for
                                       parley register --link
  parleyd admin invite list [--json]
  parleyd admin invite delete ID
  parleyd admin users list [--json]
  parleyd admin users disable|enable|promote|demote NAME [--json]
  parleyd admin devices list USER [--json]
  parleyd admin devices disable|enable ID [--json]
  parleyd admin stats [--json]
  parleyd admin check                  check the database's integrity and the store's invariants
  parleyd config [flags]               print the effective configuration as TOML
  parleyd version                      print the version and build information
  parleyd help                         print this help

Every command accepts --config PATH, --data-dir DIR, --store sqlite:PATH or
--store postgres://… and --store-schema NAME;
'parleyd serve -h' lists all server flags. Settings come from defaults, the
config file, PARLEY_* environment variables and flags, in increasing
precedence. Admin and backup commands work while the server runs.

Exit codes: 0 success, 1 failure, 2 usage or configuration error.
Documentation: docs/operations.md
`

// version returns the module version of the binary, or "devel".
func version() string { return buildinfo.Version() }

// newFlagSet returns a flag set that reports errors (not exits) and
// writes its usage to stderr.
func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args with fs, turning errors into usage errors;
// flag.ErrHelp passes through. Flags may follow positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{fmt.Errorf("%s: %v", fs.Name(), err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// cmdConfig prints the effective configuration.
func cmdConfig(args []string, e *env) error {
	var cf configFlags
	fs := newFlagSet("config", e)
	cf.bind(fs, nil)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("config: unexpected argument %q", pos[0])
	}
	c, err := loadConfig(&cf, e.getenv)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprint(e.stdout, formatConfig(&c))
	return nil
}
