package e2e_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestWebClientReadReceipts: messages that come one at a time, seconds
// apart, to the conversation open in a page in front of the person each
// get a read receipt, and the list shows the conversation as read. (The
// page reloads the list once no message came for a moment, which marks
// the open conversation read on the screen; its receipt must still go
// out to the senders.)
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
