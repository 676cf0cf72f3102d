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
	parleyd, cliBin := build(t)
	srv := startServer(t, parleyd)
	carol, link := newAdmin(t, cliBin, srv, 1)
	alice := newWebUser(t, "alice", srv.url)
	alice.register(link)
	carol.run("group", "create", "team", "--members", "alice")
	carol.run("send", "team", "one")
	alice.open("team")
	alice.waitMessage("one")
	alice.inFront()

	dc := startDaemon(t, cliBin, carol.dir)
	ctx := context.Background()
	if err := dc.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	convs, err := dc.Conversations(ctx)
	if err != nil || len(convs) != 1 {
		t.Fatalf("carol's conversations: %v, %v", convs, err)
	}
	for i := range 3 {
		text := fmt.Sprintf("spaced %d", i)
		if _, err := dc.Send(ctx, convs[0].ID, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		alice.waitMessage(text)
		waitReadBy(t, dc, "alice", text)
	}
	badge := fmt.Sprintf(`document.querySelector(%q) === null`, sel("conv-item")+" "+sel("unread-badge"))
	alice.p.Until(badge)
}
