package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// keyFileName is the file of the store key in a profile directory (mode
// 0600), unless the store is encrypted with a passphrase. Everything else
// of a profile is the SDK's: its store (client.StoreFile), which also
// keeps the pinned server fingerprint, the session and the read and shown
// positions, and its lock (client.LockFile).
const keyFileName = "key"

// lockWait is how long a command waits for another parley process to
// release the profile.
const lockWait = 10 * time.Second

// profileDir returns the profile directory chosen by --dir, $PARLEY_DIR,
// --profile, $PARLEY_PROFILE, in that order.
func (e *env) profileDir() (string, error) {
	if e.dir != "" {
		return filepath.Abs(e.dir)
	}
	if d := e.getenv("PARLEY_DIR"); d != "" {
		return filepath.Abs(d)
	}
	name := e.profile
	if name == "" {
		name = e.getenv("PARLEY_PROFILE")
	}
	if name == "" {
		name = "default"
	}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", usagef("invalid profile name %q (use --dir for a path)", name)
	}
	base := e.getenv("XDG_CONFIG_HOME")
	if base == "" {
		var err error
		if base, err = os.UserConfigDir(); err != nil {
			return "", fmt.Errorf("no configuration directory (%v): pass --dir or set PARLEY_DIR", err)
		}
	}
	return filepath.Join(base, "parley", name), nil
}

// session is one command's use of a profile: the SDK client, which holds
// the profile's lock, or a connection to the daemon that holds it.
type session struct {
	e   *env
	dir string
	// keyFile says the store key is in the key file (not a passphrase).
	keyFile bool
	// api is what the commands that a daemon serves use: c, or daemon.
	api profileAPI
	// c is the profile opened by this process; nil with daemon.
	c *client.Client
	// daemon is the connection to the daemon that holds the profile,
	// for a command that goes through it (openOptions.routed).
	daemon *daemonapi.Client
	// offline says the server could not be reached: the command works
	// with what the profile holds.
	offline bool

	mu      sync.Mutex
	notices []client.Event
	done    chan struct{}
}

// openOptions say how a command opens its profile.
type openOptions struct {
	// create allows a new profile (register).
	create bool
	// fingerprint pins the server's certificate (register); the SDK
	// stores it in the profile.
	fingerprint string
	// ownEvents means the command reads the client's events itself
	// (listen): the session does not collect notices, since two readers
	// of Events would each get only some of them.
	ownEvents bool
	// routed means the command goes through the profile's daemon when
	// one runs (it uses only session.api); other commands fail then.
	routed bool
}

// profileAPI is what the commands that go through a daemon use of a
// profile: a *client.Client, or a *daemonapi.Client with the same
// methods, types and errors.
type profileAPI interface {
	Whoami() (*client.Account, error)
	Conversations(ctx context.Context) ([]client.Conversation, error)
	Conversation(ctx context.Context, conv protocol.ConversationID) (*client.Conversation, error)
	History(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*client.Message, error)
	Messages(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*client.Message, error)
	Members(ctx context.Context, conv protocol.ConversationID) ([]client.Member, error)
	Send(ctx context.Context, conv protocol.ConversationID, text string, opts client.SendOptions) (*client.Message, error)
	Sync(ctx context.Context) error
	MarkRead(ctx context.Context, conv protocol.ConversationID) error
	MarkReadUpTo(ctx context.Context, conv protocol.ConversationID, upTo int64) error
	MarkShown(ctx context.Context, conv protocol.ConversationID, upTo int64) error
	Unseen(ctx context.Context) ([]client.Event, error)
	NewDirect(ctx context.Context, user string) (protocol.ConversationID, error)
	NewGroup(ctx context.Context, title string, members ...string) (protocol.ConversationID, error)
	NewChannel(ctx context.Context, title string, members ...string) (protocol.ConversationID, error)
	Add(ctx context.Context, conv protocol.ConversationID, user string) error
	AddUsers(ctx context.Context, conv protocol.ConversationID, users ...string) error
	Remove(ctx context.Context, conv protocol.ConversationID, user string) error
	Leave(ctx context.Context, conv protocol.ConversationID) error
	SetName(ctx context.Context, conv protocol.ConversationID, name string) error
	SetTopic(ctx context.Context, conv protocol.ConversationID, topic string) error
	React(ctx context.Context, conv protocol.ConversationID, target content.MessageID, emoji string, remove bool) error
	Edit(ctx context.Context, conv protocol.ConversationID, target content.MessageID, text string) error
	Delete(ctx context.Context, conv protocol.ConversationID, target content.MessageID) error
	Recreate(ctx context.Context, conv protocol.ConversationID) (protocol.ConversationID, error)
	Policy(ctx context.Context, conv protocol.ConversationID) (*protocol.Policy, error)
	SetRole(ctx context.Context, conv protocol.ConversationID, user string, admin bool) error
	SetPolicy(ctx context.Context, conv protocol.ConversationID, rules map[protocol.Action]protocol.Who) error
	SetTimer(ctx context.Context, conv protocol.ConversationID, d time.Duration) error
	SendFile(ctx context.Context, conv protocol.ConversationID, path string, opts client.SendOptions) (*client.Message, error)
	DownloadWith(ctx context.Context, attachmentID, dst string, opts client.DownloadOptions) (string, error)
	SafetyNumber(ctx context.Context, user string) (*client.SafetyNumber, error)
	SafetyNumberPending(ctx context.Context, user string) (*client.SafetyNumber, error)
	MarkVerified(ctx context.Context, user string) error
	AcknowledgeIdentity(ctx context.Context, user, digits string) error
	IdentityChanged(ctx context.Context, user string) (bool, error)
	TrustRolledBack(ctx context.Context, user string) (bool, error)
	CreateInvite(ctx context.Context, uses int, ttl time.Duration) (*protocol.InviteInfo, error)
	InviteLink(code string) (protocol.InviteLink, error)
	Search(ctx context.Context, q client.SearchQuery) ([]*client.Message, error)
	SetMuted(ctx context.Context, conv protocol.ConversationID, muted bool) error
	Devices(ctx context.Context) ([]client.OwnDevice, error)
	RenameDevice(ctx context.Context, device protocol.DeviceID, name string) error
	RevokeOwnDevice(ctx context.Context, device protocol.DeviceID, force bool) error
	AddOwnDevices(ctx context.Context) (int, []protocol.ConversationID, error)
	LinkDeviceWith(ctx context.Context, code string, opts client.LinkDeviceOptions) (*client.LinkedDevice, error)
}

var (
	_ profileAPI = (*client.Client)(nil)
	_ profileAPI = (*daemonapi.Client)(nil)
)

// open locks and opens the profile. A profile that does not exist is an
// error wrapping client.ErrNotRegistered unless o.create.
func (e *env) open(ctx context.Context, o openOptions) (*session, error) {
	dir, err := e.profileDir()
	if err != nil {
		return nil, err
	}
	if !o.create {
		if _, err := os.Stat(filepath.Join(dir, client.StoreFile)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("profile %s: %w", dir, client.ErrNotRegistered)
		}
	}
	if s, err := e.viaDaemon(ctx, dir, o); s != nil || err != nil {
		return s, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("profile %s: %v", dir, err)
	}
	s := &session{e: e, dir: dir, done: make(chan struct{})}
	cfg := client.Config{ProfileDir: dir, TLSFingerprint: o.fingerprint}
	if cfg.DisableTyping, err = typingOff(e.getenv("PARLEY_TYPING")); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, keyFileName)
	_, keyErr := os.Stat(keyPath)
	_, storeErr := os.Stat(filepath.Join(dir, client.StoreFile))
	pass := e.getenv("PARLEY_PASSPHRASE")
	switch {
	case keyErr == nil || (pass == "" && errors.Is(storeErr, fs.ErrNotExist)):
		// A key file profile, or a new one without a passphrase.
		cfg.KeyFile, s.keyFile = keyPath, true
	default:
		// The store is encrypted with a passphrase: from the
		// environment, else asked on the terminal.
		p, ok, err := e.askPassphrase(dir)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, withHint(fmt.Errorf("profile %s: %w", dir, errNoPassphrase),
				"this profile's store is encrypted with a passphrase: set PARLEY_PASSPHRASE, or run parley on a terminal to be asked for it")
		}
		cfg.Passphrase = p
	}
	if e.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if s.c, err = openClient(ctx, cfg, e); err != nil {
		return nil, err
	}
	s.api = s.c
	if o.ownEvents {
		close(s.done)
	} else {
		go s.collect()
	}
	return s, nil
}

// collect keeps the events that a one-shot command should show: identity
// changes, refused devices, unsafe conversations, bad commits, errors,
// joins and removals.
func (s *session) collect() {
	defer close(s.done)
	for ev := range s.c.Events() {
		switch ev.Kind {
		case client.EventIdentityChanged, client.EventDeviceRejected, client.EventError,
			client.EventConversationJoined, client.EventConversationLeft, client.EventConversationUnsafe,
			client.EventStateRestored, client.EventBadCommit:
			s.mu.Lock()
			s.notices = append(s.notices, ev)
			s.mu.Unlock()
		}
	}
}

// close closes the client, prints the notices collected and releases the
// profile.
func (s *session) close() {
	if s.daemon != nil {
		s.daemon.Close()
		close(s.done)
		return
	}
	s.c.Close()
	<-s.done
	for _, ev := range s.notices {
		line := noticeLine(ev)
		if line == "" {
			continue
		}
		if s.e.json {
			b, _ := json.Marshal(struct {
				Notice       string `json:"notice"`
				Conversation int64  `json:"conversation,omitempty"`
				User         string `json:"user,omitempty"`
				Message      string `json:"message"`
			}{ev.Kind.String(), int64(ev.Conversation), ev.User, line})
			fmt.Fprintf(s.e.stderr, "%s\n", b)
			continue
		}
		fmt.Fprintf(s.e.stderr, "parley: %s\n", line)
	}
}

// notice prints a notice of the command itself on stderr at once (a JSON
// object with --json).
func (s *session) notice(kind, msg string) {
	if s.e.json {
		b, _ := json.Marshal(struct {
			Notice  string `json:"notice"`
			Message string `json:"message"`
		}{kind, msg})
		fmt.Fprintf(s.e.stderr, "%s\n", b)
		return
	}
	fmt.Fprintf(s.e.stderr, "parley: %s\n", msg)
}

// noticeLine describes an event for stderr.
func noticeLine(ev client.Event) string {
	var lost *client.TrustRollbackError
	switch {
	case errors.As(ev.Err, &lost):
		return fmt.Sprintf("WARNING: this profile lost the identity key it had pinned for %[1]s: its record was deleted or replaced by an older copy. "+
			"%[1]s's key is not trusted again until you compare safety numbers: parley verify %[1]s", printable(lost.User))
	case errors.Is(ev.Err, client.ErrTrustRollback):
		return "WARNING: " + ev.Error
	}
	switch ev.Kind {
	case client.EventIdentityChanged:
		return fmt.Sprintf("WARNING: the identity key of %[1]s changed. Sending to conversations with %[1]s is blocked until you accept it: compare safety numbers with 'parley verify %[1]s', then 'parley verify --accept %[1]s DIGITS' with the digits you compared.", ev.User)
	case client.EventDeviceRejected:
		return fmt.Sprintf("WARNING: refused device %s of %s: %s", ev.Device, ev.User, ev.Error)
	case client.EventConversationUnsafe:
		var ue *client.UnsafeError
		return unsafeLine(ev.Conversation, ev.Error, errors.As(ev.Err, &ue) && ue.Alarm.Unrecoverable)
	case client.EventBadCommit:
		return "WARNING: " + ev.Error
	case client.EventStateRestored:
		if ev.Error != "" {
			return fmt.Sprintf("WARNING: this profile is older than what this device already sent in conversation %d (it was restored from a copy), and rejoining with fresh keys failed: %s. Nothing is sent there until it succeeds; a copied profile is not a backup (see docs/cli.md).", ev.Conversation, ev.Error)
		}
		return fmt.Sprintf("this profile is older than what this device already sent in conversation %d (it was restored from a copy): it rejoined with fresh keys; messages sent from the newer copy are not in this history. A copied profile is not a backup (see docs/cli.md).", ev.Conversation)
	case client.EventError:
		return "warning: " + ev.Error
	case client.EventConversationJoined:
		return fmt.Sprintf("joined conversation %d", ev.Conversation)
	case client.EventConversationLeft:
		return fmt.Sprintf("no longer a member of conversation %d", ev.Conversation)
	}
	return ""
}

// unsafeLine is the alarm of an unsafe conversation (err is its
// *client.UnsafeError's text), with the way forward. An unrecoverable
// one (client.Alarm.Unrecoverable) cannot be followed any more, which
// says nothing of its members' trust.
func unsafeLine(conv protocol.ConversationID, err string, unrecoverable bool) string {
	if unrecoverable {
		return fmt.Sprintf("ALARM: %s. Start a new conversation with the same members with 'parley chat recreate %d', and consider removing the member named above.", err, conv)
	}
	return fmt.Sprintf("ALARM: %s. Do not trust it: start a new conversation with the same members with 'parley chat recreate %d'.", err, conv)
}

// sync fetches and applies what the server has for this device.
func (s *session) sync(ctx context.Context) error {
	return s.api.Sync(ctx)
}

// openClient opens the profile with the SDK, waiting up to lockWait for
// another parley process to release it. One process at a time may use a
// profile: the SDK keeps the MLS state of open conversations in memory
// and locks the profile (client.ErrProfileBusy).
func openClient(ctx context.Context, cfg client.Config, e *env) (*client.Client, error) {
	deadline := time.Now().Add(lockWait)
	warned := false
	for {
		c, err := client.Open(ctx, cfg)
		var busy *client.ProfileBusyError
		if !errors.As(err, &busy) {
			return c, err
		}
		if !warned {
			fmt.Fprintf(e.stderr, "parley: waiting for the profile, in use by parley process %d\n", busy.PID)
			warned = true
		}
		if time.Now().After(deadline) {
			return nil, withHint(fmt.Errorf("profile %s: %w", cfg.ProfileDir, err),
				"another parley process (such as 'parley listen') uses this profile; stop it first: one process at a time may use a profile")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// typingOff reads PARLEY_TYPING: "off" turns typing indicators off both
// ways (client.Config.DisableTyping), "on" or nothing leaves them on.
func typingOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "on":
		return false, nil
	case "off":
		return true, nil
	}
	return false, withHint(fmt.Errorf("PARLEY_TYPING=%q: want on or off", v), "set PARLEY_TYPING=off to turn typing indicators off, or unset it")
}
