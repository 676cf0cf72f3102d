package e2e_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/browsertest"
)

// TestWebClientReadReceipts: messages that come one at a time, seconds
// apart, to the conversation open in a page in front of the person each
// get a read receipt, and the list shows the conversation as read. (A
// message that comes in sight is not counted unread on the screen; its
// receipt must still go out to the senders.)
func TestWebClientReadReceipts(t *testing.T) {
	alice, dc, conv := teamOfTwo(t, "one")
	alice.inFront()
	for i := range 3 {
		text := fmt.Sprintf("spaced %d", i)
		if _, err := dc.Send(context.Background(), conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		alice.waitMessage(text)
		waitReadBy(t, dc, "alice", text)
	}
	badge := fmt.Sprintf(`document.querySelector(%q) === null`, sel("conv-item")+" "+sel("unread-badge"))
	alice.p.Until(badge)
}

// TestWebClientUnreadAfterStart: messages that came while the browser was
// closed are counted once in the list when it starts again. The page
// loads the list from the SDK while the SDK applies those messages, and
// each message's event can come after an answer that counted it already;
// the page must not count it twice. A message that then comes live is
// the last event of the round: once its preview shows, the count is
// final.
func TestWebClientUnreadAfterStart(t *testing.T) {
	alice, dc, conv := teamOfTwo(t, "one")
	alice.inFront()
	waitReadBy(t, dc, "alice", "one")
	ctx := context.Background()
	item := sel("conv-item") + fmt.Sprintf(`[data-conversation="%d"]`, conv)
	for round := 1; round <= 3; round++ {
		alice.stop()
		away, live := fmt.Sprintf("away %d", round), fmt.Sprintf("live %d", round)
		if _, err := dc.Send(ctx, conv, away, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		alice.start()
		alice.p.Open(alice.url + "/")
		alice.p.Until(browsertest.HasText(item+" "+sel("conv-preview"), "carol: "+away))
		if _, err := dc.Send(ctx, conv, live, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		alice.p.Until(browsertest.HasText(item+" "+sel("conv-preview"), "carol: "+live))
		want := strconv.Itoa(2 * round)
		if got := browsertest.Eval[string](alice.p, fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ""`, item+" "+sel("unread-badge"))); got != want {
			t.Errorf("round %d: the list counts %q unread, want %s (one message while away and one live in each round)", round, got, want)
		}
	}
}
