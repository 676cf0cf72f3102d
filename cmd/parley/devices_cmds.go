package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// cmdLink makes a new profile another device of an existing account:
// it shows the link code, waits for 'parley devices link CODE' on a
// device of the account, shows the confirmation and waits until the
// device is linked and in the account's conversations.
func cmdLink(ctx context.Context, e *env, args []string) error {
	fs := e.flags("link", "--server URL [--fingerprint SHA256] [--name NAME] [--no-qr]")
	server := fs.String("server", "", "server `URL` of the account, such as https://chat.example.org")
	fingerprint := fs.String("fingerprint", "", "pin the server's self-signed certificate by its `SHA256` fingerprint")
	name := fs.String("name", "", "`NAME` of this device in the account's device list (default: the host name)")
	noQR := fs.Bool("no-qr", false, "do not print the QR code")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *server == "" {
		return usagef("link: --server URL is required")
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	s, dir, release, err := e.openUnbound(ctx, *fingerprint)
	if err != nil {
		return err
	}
	acct, err := s.c.Link(ctx, *server, client.LinkOptions{
		DeviceName: *name,
		Code: func(c client.LinkCode) {
			if e.json {
				writeJSON(e.stdout, map[string]any{"code": c.Code, "qr_payload": c.QRPayload, "expires": c.Expires})
				return
			}
			fmt.Fprintf(e.stdout, "link code: %s\n", c.Code)
			if !*noQR && c.QR != "" {
				fmt.Fprint(e.stdout, c.QR)
			}
			fmt.Fprintf(e.stdout, "on a device of your account run: parley devices link %s\n(the code expires at %s)\n", c.Code, c.Expires.Local().Format("15:04"))
		},
		Confirmation: func(conf string) {
			if e.json {
				writeJSON(e.stdout, map[string]any{"confirmation": conf})
				return
			}
			fmt.Fprintf(e.stdout, "confirmation: %s (check that your other device shows the same, and confirm there)\n", conf)
		},
	})
	// A device linked but not told about its conversations keeps its
	// profile (a sync or another link adds them).
	release()
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, toAccountJSON(acct, dir))
	}
	fmt.Fprintf(e.stdout, "linked %s (device %s) on %s\nprofile: %s\n", acct.Address, acct.Device, acct.Server, dir)
	return nil
}

// cmdDevices lists, links, renames and revokes the account's devices.
func cmdDevices(ctx context.Context, e *env, args []string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list":
		return devicesList(ctx, e, args)
	case "link":
		return devicesLink(ctx, e, args)
	case "rename":
		return devicesRename(ctx, e, args)
	case "revoke":
		return devicesRevoke(ctx, e, args)
	case "sync":
		return devicesSync(ctx, e, args)
	}
	return usagef("devices: unknown subcommand %q (want list, link, rename, revoke or sync)", printable(sub))
}

func devicesList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("devices", "[list]")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	devs, err := s.api.Devices(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, map[string]any{"devices": devs})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST SEEN\tSTATE")
	for _, d := range devs {
		state := "active"
		switch {
		case d.Forged:
			state = "FORGED: not certified by your identity key; refused"
		case !d.Revoked.IsZero():
			state = "revoked " + d.Revoked.Local().Format(time.DateTime)
		case d.Disabled:
			state = "disabled by the server's administrator"
		}
		if d.This {
			state += " (this device)"
		}
		seen := "-"
		if !d.LastSeen.IsZero() {
			seen = d.LastSeen.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, printable(d.Name), d.Created.Local().Format(time.DateTime), seen, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range devs {
		if d.Forged {
			fmt.Fprintf(e.stderr, "warning: the server lists device %s for your account, which none of your devices certified: it is refused\n", d.ID)
		}
	}
	return nil
}

func devicesLink(ctx context.Context, e *env, args []string) error {
	fs := e.flags("devices link", "CODE [--yes] [--history all|none|ID,...]")
	yes := fs.Bool("yes", false, "link without asking to confirm (scripts)")
	historyFlag := fs.String("history", "", "send the history of all, none or the listed conversations to the new device (asked when not given)")
	pos, err := parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	pick, err := parseHistoryPick(*historyFlag)
	if err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.sync(ctx); err != nil {
		return err
	}
	in := bufio.NewReader(orEmpty(e.stdin))
	ask := func(q string) bool {
		fmt.Fprint(e.stdout, q)
		line, _ := in.ReadString('\n')
		ans := strings.ToLower(strings.TrimSpace(line))
		return ans == "y" || ans == "yes"
	}
	linked, err := s.api.LinkDeviceWith(ctx, strings.Join(pos, ""), client.LinkDeviceOptions{
		Confirm: func(r client.LinkRequest) bool {
			fmt.Fprintf(e.stdout, "new device %s (%s)\nconfirmation: %s\n", r.Device, printable(r.Name), r.Confirmation)
			return *yes || ask("does the new device show the same confirmation? Link it to your account [y/N] ")
		},
		History: func() []protocol.ConversationID {
			if pick == nil && !*yes && ask("send your message history to it too? [y/N] ") {
				pick = []protocol.ConversationID{}
			}
			return historyConversations(ctx, s.api, pick)
		},
	})
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, linked)
	}
	fmt.Fprintf(e.stdout, "linked device %s (%s); added it to %d conversations\n", linked.Device, printable(linked.Name), linked.Conversations)
	if linked.History.Conversations > 0 {
		fmt.Fprintf(e.stdout, "sent it the history of %d conversations (%d messages)\n", linked.History.Conversations, linked.History.Messages)
	}
	if linked.HistoryError != "" {
		fmt.Fprintf(e.stderr, "parley: the history was not sent: %s\n", printable(linked.HistoryError))
	}
	if len(linked.Failed) > 0 {
		fmt.Fprintf(e.stderr, "parley: not added to %d conversations (%v): run 'parley devices sync' later\n", len(linked.Failed), linked.Failed)
	}
	return nil
}

// parseHistoryPick parses --history: nil for none (or not given), an
// empty list for all, else the conversations listed.
func parseHistoryPick(v string) ([]protocol.ConversationID, error) {
	switch v {
	case "", "none":
		return nil, nil
	case "all":
		return []protocol.ConversationID{}, nil
	}
	var out []protocol.ConversationID
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n <= 0 {
			return nil, usagef("--history %q: want all, none or conversation ids separated by commas", v)
		}
		out = append(out, protocol.ConversationID(n))
	}
	return out, nil
}

// historyConversations turns a pick of parseHistoryPick into the
// conversations to send: every one of the profile for an empty pick.
func historyConversations(ctx context.Context, c profileAPI, pick []protocol.ConversationID) []protocol.ConversationID {
	if pick == nil || len(pick) > 0 {
		return pick
	}
	cvs, err := c.Conversations(ctx)
	if err != nil {
		return nil
	}
	all := make([]protocol.ConversationID, len(cvs))
	for i, cv := range cvs {
		all[i] = cv.ID
	}
	return all
}

func devicesRename(ctx context.Context, e *env, args []string) error {
	fs := e.flags("devices rename", "ID NAME")
	pos, err := parse(fs, args, 2, -1)
	if err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.api.RenameDevice(ctx, protocol.DeviceID(pos[0]), strings.Join(pos[1:], " ")); err != nil {
		return err
	}
	if !e.json {
		fmt.Fprintf(e.stdout, "renamed device %s\n", printable(pos[0]))
	}
	return nil
}

func devicesRevoke(ctx context.Context, e *env, args []string) error {
	fs := e.flags("devices revoke", "ID [--force]")
	force := fs.Bool("force", false, "revoke even the account's last active device (the account is then locked for good)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.api.RevokeOwnDevice(ctx, protocol.DeviceID(pos[0]), *force); err != nil {
		if errors.Is(err, client.ErrLastDevice) {
			return withHint(err, "link another device first (parley link on it, then parley devices link CODE here), or use --force")
		}
		return err
	}
	if !e.json {
		fmt.Fprintf(e.stdout, "revoked device %s: it is removed from your conversations and can no longer sign in\n", printable(pos[0]))
	}
	return nil
}

// devicesSync adds the account's devices missing from this device's
// conversations (after a link that could not add them everywhere).
func devicesSync(ctx context.Context, e *env, args []string) error {
	fs := e.flags("devices sync", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.sync(ctx); err != nil {
		return err
	}
	n, failed, err := s.api.AddOwnDevices(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, map[string]any{"conversations": n, "failed": failed})
	}
	fmt.Fprintf(e.stdout, "added your devices to %d conversations\n", n)
	if len(failed) > 0 {
		return fmt.Errorf("devices sync: not added to %d conversations (%v)", len(failed), failed)
	}
	return nil
}

// orEmpty returns r, or an empty reader for nil.
func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}
