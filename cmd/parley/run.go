package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// env is what a command may use of the process: its output streams and
// environment, and the global options.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdin is the standard input ('send CONV -'); nil means none.
	stdin io.Reader
	// readPassword, when not nil, asks for a secret on the terminal
	// without echo; it is nil when standard input is not a terminal.
	readPassword func(prompt string) ([]byte, error)

	// command is the name of the command that runs.
	command string

	// Global options, accepted before and after the command name.
	profile string
	dir     string
	json    bool
	verbose bool
}

// register adds the global options to a command's flag set.
func (e *env) register(fs *flag.FlagSet) {
	fs.StringVar(&e.profile, "profile", e.profile, "profile `NAME` (default $PARLEY_PROFILE or \"default\")")
	fs.StringVar(&e.dir, "dir", e.dir, "profile directory `PATH` (default $PARLEY_DIR or CONFIG_DIR/parley/PROFILE)")
	fs.BoolVar(&e.json, "json", e.json, "print JSON for scripts")
	fs.BoolVar(&e.verbose, "v", e.verbose, "log diagnostics to stderr")
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order help shows them.
var commands []command

func init() {
	commands = []command{
		{"register", "--server URL [--invite CODE] [--fingerprint SHA256] NAME | --link LINK NAME", "create an account on a server and bind this profile to it", cmdRegister},
		{"whoami", "", "show this profile's account", cmdWhoami},
		{"link", "--server URL [--fingerprint SHA256] [--name NAME] [--no-qr]", "make this new profile another device of your account: shows a code for 'parley devices link'", cmdLink},
		{"devices", "[list] | link CODE [--yes] | rename ID NAME | revoke ID [--force] | sync", "list your account's devices; link a new one, name or revoke one; add them where missing", cmdDevices},
		{"backup", "create FILE [--passphrase] [--force] | verify FILE", "write an encrypted backup of your account (identity, contacts, history) protected by a recovery key; check one", cmdBackup},
		{"restore", "FILE [--server URL] [--fingerprint SHA256] [--name NAME] [--revoke-old]", "recover your account from a backup into this new profile: a new device that rejoins your conversations", cmdRestore},
		{"chat", "new USER... | recreate CONV", "open the 1:1 conversation with a user, or a group of several users; recreate an unsafe one", cmdChat},
		{"group", "create TITLE --members a,b [--members-file FILE]", "create a named group", cmdGroup},
		{"channel", "create TITLE [--members a,b] [--members-file FILE]", "create a channel: only admins post, members read and react", cmdChannel},
		{"send", "CONV TEXT | CONV - | CONV --file PATH [--reply ID]", "send a message (TEXT, or - for standard input) or a file", cmdSend},
		{"read", "[CONV] [--last N] | --mentions", "show a conversation's history, the conversations with unread counts, or the messages that mention you", cmdRead},
		{"search", "QUERY [--from USER] [--in CONV] [--after DATE] [--before DATE]", "search the messages of every conversation (words; the last one as a prefix)", cmdSearch},
		{"mute", "CONV [--off]", "mute a conversation on this device (mentions of you still notify)", cmdMute},
		{"listen", "", "print events (messages, members, identity changes) until interrupted", cmdListen},
		{"rename", "CONV TITLE", "rename a conversation for every member", cmdRename},
		{"topic", "CONV TEXT", "set a conversation's topic for every member", cmdTopic},
		{"members", "CONV", "list the devices of a conversation and their verification state", cmdMembers},
		{"add", "CONV USER... [--members-file FILE]", "add users (all their devices) to a conversation", cmdAdd},
		{"remove", "CONV USER", "remove a user (all devices) from a conversation", cmdRemove},
		{"leave", "CONV", "leave a conversation", cmdLeave},
		{"role", "CONV USER admin|member", "make a user an admin of a group, or a plain member (admins)", cmdRole},
		{"policy", "CONV [ACTION=admins|members ...]", "show a group's admins and who may add, remove, rename, ...; or change it (admins)", cmdPolicy},
		{"timer", "CONV off|5m|1h|1d|1w|4w", "set the disappearing-message timer of a conversation (off, or 5 minutes to 4 weeks)", cmdTimer},
		{"react", "CONV ID EMOJI [--remove]", "react to a message", cmdReact},
		{"edit", "CONV ID TEXT", "replace the text of one of your messages", cmdEdit},
		{"delete", "CONV ID", "delete one of your messages for everyone", cmdDelete},
		{"verify", "USER [--mark] [--no-qr] | --accept USER DIGITS", "show the safety number with a user; mark verified; accept a changed key", cmdVerify},
		{"get", "ID -o PATH [--force]", "download and decrypt an attachment (ID: of the attachment or its message)", cmdGet},
		{"invite", "create [--uses N] [--ttl DURATION]", "create an invite link on this profile's server (administrators)", cmdInvite},
		{"daemon", "", "hold this profile and serve it to other parley commands and bots on a local socket", cmdDaemon},
		{"tui", "", "full-screen terminal client; starts the profile's daemon if none runs (it keeps running after)", cmdTUI},
		{"web-hash", "URL [--expect HEX] [--fingerprint SHA256]", "print the bundle hash of the web client a server serves (parleyd prints its own at start)", cmdWebHash},
		{"version", "", "print the version and build information", cmdVersion},
		{"help", "[COMMAND]", "show help", cmdHelp},
	}
}

// run parses the global options and runs one command.
func run(ctx context.Context, args []string, e *env) error {
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.register(fs)
	fs.Usage = func() { printUsage(e.stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsagePrinted
	}
	rest := fs.Args()
	if len(rest) == 0 {
		printUsage(e.stderr)
		return errUsagePrinted
	}
	name := rest[0]
	for _, c := range commands {
		if c.name == name {
			e.command = name
			return c.run(ctx, e, rest[1:])
		}
	}
	if name == "-h" || name == "--help" {
		printUsage(e.stdout)
		return nil
	}
	return usagef("unknown command %q", name)
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: parley [--profile NAME] [--dir PATH] [--json] [-v] COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.args)
		fmt.Fprintf(w, "           %s\n", c.summary)
	}
	fmt.Fprintf(w, "\nCONV is a conversation id, title, or (1:1) the other user's name.\n")
	fmt.Fprintf(w, "Message ids may be shortened to a unique prefix of at least 4 digits.\n")
	fmt.Fprintf(w, "Every command takes --json. See docs/cli.md.\n")
}

func cmdHelp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		printUsage(e.stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, e, []string{"-h"})
		}
	}
	return usagef("help: unknown command %q", args[0])
}

// flags is a command's flag set with the global options.
func (e *env) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: parley %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags anywhere among the arguments (until "--") and
// returns the positional arguments; want is the allowed count (min, max;
// max < 0 means any).
func parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(io.Discard)
				return nil, errHelpShown
			}
			return nil, errUsagePrinted
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		fs.Usage()
		return nil, errUsagePrinted
	}
	return pos, nil
}

// errHelpShown ends a command after -h printed its usage.
var errHelpShown = errors.New("help shown")

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, strings.TrimPrefix(f, "@"))
		}
	}
	return out
}
