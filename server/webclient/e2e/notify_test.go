package e2e_test

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/internal/browsertest"
)

// TestWebClientNotifications: with notifications allowed, a page in the
// background (its window minimized, so document.hidden) shows a browser
// notification for a new message — the conversation as the title, the
// sender and text as the body — and none while it is in sight; a muted
// conversation notifies only a mention.
func TestWebClientNotifications(t *testing.T) {
	srv, carol, alice := aliceRegistered(t)
	alice.p.Grant(srv.url, "notifications")
	alice.p.Click(sel("notify-toggle"))
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q).dataset.permission === "granted"`, sel("notify-toggle")))

	carol.run("group", "create", "team", "--members", "alice")
	carol.run("group", "create", "quiet", "--members", "alice")
	carol.run("send", "team", "while you look")
	alice.open("team")
	alice.waitMessage("while you look")
	shown := func() string {
		return browsertest.Eval[string](alice.p, `(document.body.dataset.notifications || "0") + " " + (document.body.dataset.lastNotification || "")`)
	}
	if got := shown(); got != "0 " {
		t.Errorf("notifications while the page is in sight: %q", got)
	}

	// Mute "quiet".
	alice.open("quiet")
	alice.p.Click(sel("members-toggle"))
	alice.p.Click(sel("conv-mute"))
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)?.getAttribute("aria-pressed") === "true"`, sel("conv-mute")))
	alice.p.Click(sel("panel-close"))
	alice.open("team")

	// In the background: the muted conversation's message does not
	// notify, the next one does; a mention in the muted one does.
	alice.p.Minimize(true)
	alice.p.UntilHidden(`document.hidden`)
	carol.run("send", "quiet", "muted chatter")
	carol.run("send", "team", "ping while away")
	alice.p.UntilHidden(`document.body.dataset.notifications === "1"`)
	if got := shown(); got != "1 team\ncarol: ping while away" {
		t.Errorf("first notification: %q", got)
	}
	carol.run("send", "quiet", "@alice you are needed")
	alice.p.UntilHidden(`document.body.dataset.notifications === "2"`)
	if got := shown(); got != "2 quiet\ncarol: @alice you are needed" {
		t.Errorf("notification of a mention in a muted conversation: %q", got)
	}

	// Back in sight: no notification. (A hidden page draws nothing:
	// its history shows what came once it is in sight again.)
	alice.p.Minimize(false)
	alice.p.Until(`!document.hidden`)
	carol.run("send", "team", "back again")
	alice.waitMessage("back again")
	if got := shown(); got != "2 quiet\ncarol: @alice you are needed" {
		t.Errorf("notifications after coming back: %q", got)
	}
}
