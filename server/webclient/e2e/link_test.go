package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/browsertest"
)

// linkingCLI is 'parley link' running on a new profile.
type linkingCLI struct {
	code  string
	lines chan string
	done  chan error
	out   strings.Builder
}

// startLinkCLI starts 'parley link' on u's (new) profile and returns once
// it printed its code.
func (u *cliUser) startLinkCLI(srv *server, name string) *linkingCLI {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	u.t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, u.bin, "--dir", u.dir, "link", "--server", srv.url, "--name", name, "--no-qr")
	cmd.Env = append(os.Environ(), "PARLEY_PASSPHRASE=", "PARLEY_DAEMON=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	l := &linkingCLI{lines: make(chan string, 64), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("parley link: %v\n%s", err, stderr.String())
		}
		l.done <- err
	}()
	l.code = strings.TrimPrefix(l.waitLine(u.t, "link code: "), "link code: ")
	return l
}

// waitLine waits for a line of parley link's output that starts with
// prefix.
func (l *linkingCLI) waitLine(t testing.TB, prefix string) string {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("parley link ended without a line %q:\n%s", prefix, l.out.String())
			}
			l.out.WriteString(line + "\n")
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			t.Fatalf("parley link printed no line %q within 2 minutes:\n%s", prefix, l.out.String())
		}
	}
}

// wait waits for parley link to end.
func (l *linkingCLI) wait(t testing.TB) {
	t.Helper()
	l.waitLine(t, "linked ")
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("parley link did not end")
	}
}

// confirmationOf is the 7 characters after "confirmation: " in s.
func confirmationOf(s string) string {
	_, after, ok := strings.Cut(s, "confirmation: ")
	if !ok || len(after) < 7 {
		return ""
	}
	return after[:7]
}

// TestWebClientLink: a CLI user's account gets a browser as a second
// device: the browser asks for a link code, the CLI completes the link
// with 'parley devices link CODE --yes', both show the same
// confirmation, and the browser then has the account's conversations and
// receives what is sent to the user. Its devices screen lists both
// devices, and it links a third one (a CLI 'parley link'): the code
// typed in the page, the same confirmation on both sides, accepted in
// the page with the history. The new CLI device then reads the
// conversation, what was said before it joined included.
func TestWebClientLink(t *testing.T) {
	parleyd, cliBin := build(t)
	srv := startServer(t, parleyd)
	carol, link := newAdmin(t, cliBin, srv, 1)
	alice := newCLIUser(t, cliBin)
	alice.run("register", "--link", link, "alice")
	carol.run("group", "create", "team", "--members", "alice")
	alice.run("read") // joins the group

	// The browser asks for a code; the page's confirmation is kept as it
	// shows, since the page moves on to the conversations at once.
	web := newWebUser(t, "alice", srv.url)
	web.p.Open(srv.url + "/")
	web.p.Click(sel("link-start"))
	web.p.Until(fmt.Sprintf(`document.querySelector(%q)?.value.length > 0`, sel("link-name")))
	web.p.Click(sel("link-submit"))
	web.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.length > 0 && document.querySelector(%q)?.complete`, sel("link-code"), sel("link-qr")))
	web.p.Shot("link")
	code := browsertest.Eval[string](web.p, fmt.Sprintf(`document.querySelector(%q).textContent`, sel("link-code")))
	browsertest.Eval[bool](web.p, fmt.Sprintf(`(new MutationObserver(() => {
		const c = document.querySelector(%q);
		if (c) window.seenConfirmation = c.textContent;
	}).observe(document.body, {childList: true, subtree: true, characterData: true}), true)`, sel("link-confirmation")))

	out := alice.run("devices", "link", code, "--yes")
	if !strings.Contains(out, "added it to 1 conversations") {
		t.Errorf("parley devices link:\n%s", out)
	}
	web.waitConnected()
	if seen := browsertest.Eval[string](web.p, `window.seenConfirmation || ""`); seen == "" || seen != confirmationOf(out) {
		t.Errorf("the page showed the confirmation %q, the CLI %q", seen, confirmationOf(out))
	}
	if me := browsertest.Eval[string](web.p, fmt.Sprintf(`document.querySelector(%q).textContent`, sel("me"))); me != "alice" {
		t.Errorf("the linked browser is %q, want alice", me)
	}

	// The browser has the account's conversation and receives what is
	// sent to alice, and what alice sends from her other device.
	web.open("team")
	carol.run("send", "team", "hello to every device of alice")
	web.waitMessage("hello to every device of alice")
	alice.run("send", "team", "sent from alice's terminal")
	mine := web.waitMessage("sent from alice's terminal")
	if sender := browsertest.Eval[string](web.p, fmt.Sprintf(`document.querySelector(%q).dataset.sender`, messageWith(mine))); sender != "alice" {
		t.Errorf("alice's message from the CLI shows from %q", sender)
	}
	web.send("and from alice's browser")
	carol.waitRead("team", "and from alice's browser")

	// The devices screen lists both devices, this one marked.
	web.p.Click(sel("devices-open"))
	web.p.Until(fmt.Sprintf(`document.querySelectorAll(%q).length === 2 && document.querySelectorAll('%s[data-this=true]').length === 1 && !document.querySelector(%q)`,
		sel("device"), sel("device"), sel("device-forged")))
	web.p.Shot("devices")

	// The browser links a new CLI device: the code typed in the page,
	// the same confirmation on both sides, accepted in the page.
	laptop := newCLIUser(t, cliBin)
	l := laptop.startLinkCLI(srv, "laptop")
	web.p.Click(sel("link-device-open"))
	web.p.Keys(sel("link-device-code"), l.code)
	web.p.Click(sel("link-device-submit"))
	web.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.length > 0`, sel("link-device-confirmation")))
	shown := browsertest.Eval[string](web.p, fmt.Sprintf(`document.querySelector(%q).textContent`, sel("link-device-confirmation")))
	if cli := confirmationOf(l.waitLine(t, "confirmation: ")); cli != shown {
		t.Errorf("the page shows the confirmation %q, the new device %q", shown, cli)
	}
	if !strings.Contains(browsertest.Eval[string](web.p, fmt.Sprintf(`document.querySelector(%q).textContent`, sel("link-device"))), "laptop") {
		t.Error("the page does not name the new device")
	}
	web.p.Click(sel("link-device-history"))
	web.p.Shot("devices-link")
	web.p.Click(sel("link-device-accept"))
	web.p.Until(browsertest.HasText(sel("link-device-result"), "Linked laptop; added it to 1 conversation") +
		fmt.Sprintf(` && document.querySelectorAll(%q).length === 3`, sel("device")))
	web.p.Until(browsertest.HasText(sel("link-device-history-result"), "Sent it the history of 1 conversation"))
	l.wait(t)
	carol.run("send", "team", "now for three devices")
	laptop.waitRead("team", "now for three devices")
	// The history the browser sent: what was said before the laptop
	// joined.
	if out := laptop.run("read", "team"); !strings.Contains(out, "and from alice's browser") || !strings.Contains(out, "hello to every device of alice") {
		t.Errorf("the laptop's history of team lacks what the browser sent it:\n%s", out)
	}
	web.waitMessageAnywhere("now for three devices")
	web.checkOrigins()
}

// waitMessageAnywhere waits until the list's preview of a conversation
// shows text (the devices screen hides the history).
func (u *webUser) waitMessageAnywhere(text string) {
	u.t.Helper()
	u.p.Until(browsertest.HasText(sel("conv-preview"), text))
}
