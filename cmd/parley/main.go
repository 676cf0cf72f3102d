// Command parley is Parley's command-line client: it registers an account
// on a parleyd server, opens 1:1 and group conversations, sends and reads
// end-to-end encrypted messages and files, and compares safety numbers.
// It is a thin layer on the client SDK (package
// github.com/parley-chat/parley/client).
//
// Usage:
//
//	parley [--profile NAME] [--dir PATH] [--json] [-v] COMMAND [flags] [args]
//
//	register --link LINK NAME        LINK from 'parleyd admin invite create' or 'parley invite create'
//	register --server URL [--invite CODE] [--fingerprint SHA256] NAME
//	whoami
//	link --server URL [--fingerprint SHA256] [--name NAME]   make this new profile a device of your account
//	devices [list] | link CODE [--yes] | rename ID NAME | revoke ID [--force] | sync
//	chat new USER...                 1:1 (one user) or small group (several)
//	group create TITLE --members a,b [--members-file FILE]
//	channel create TITLE [--members a,b] [--members-file FILE]   only admins post; members read and react
//	send CONV TEXT | send CONV - | send CONV --file PATH [--reply ID]
//	read [CONV] [--last N]           history, or the conversations with unread counts
//	listen                           stream events until interrupted
//	rename CONV TITLE | topic CONV TEXT
//	members CONV
//	add CONV USER... [--members-file FILE] | remove CONV USER | leave CONV
//	react CONV ID EMOJI [--remove] | edit CONV ID TEXT | delete CONV ID
//	verify USER [--mark] [--no-qr] | verify --accept USER DIGITS
//	get ATTACHMENT-ID -o PATH
//	invite create [--uses N] [--ttl DURATION]   administrators
//	daemon                           hold the profile and serve it on a local socket (docs/daemon.md)
//	tui                              full-screen client; starts the daemon, which keeps running after
//	web-hash URL [--expect HEX]      the bundle hash of the web client a server serves
//	version
//
// A profile is a directory (default os.UserConfigDir()/parley/default)
// holding the encrypted store (which also keeps the pinned server
// certificate fingerprint) and its key file. Conversations are named by their id, their
// title, or (1:1) the other user's name. Every command prints stable JSON
// with --json. Exit codes: 0 success, 1 failure, 2 usage, 3 server
// unreachable, 4 unknown user, 5 not a member, 6 identity changed,
// 7 unknown conversation, message or attachment, 8 profile problem
// (not registered, busy, wrong passphrase), 9 forged device, 13 not
// permitted by the conversation's policy (see docs/cli.md). A store
// encrypted with a passphrase takes it from $PARLEY_PASSPHRASE, else asks
// for it on the terminal. While a parley daemon holds the profile, every
// command but register goes through it; with PARLEY_DAEMON=auto a command
// starts one when none runs (docs/daemon.md). See docs/cli.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process.
		<-ctx.Done()
		stop()
	}()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stdin: os.Stdin}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		e.readPassword = func(prompt string) ([]byte, error) {
			fmt.Fprint(os.Stderr, prompt)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(fd)
		}
	}
	err := run(ctx, os.Args[1:], e)
	os.Exit(exitCode(err, e))
}
