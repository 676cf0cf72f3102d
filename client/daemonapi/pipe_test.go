package daemonapi_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

// TestPipe serves a client without a profile directory, as the web
// client does, over a PipeListener: the API answers and sends, and the
// file methods are not offered.
func TestPipe(t *testing.T) {
	url, fp := startParleyd(t)
	alice, _ := register(t, url, fp, "alice")
	bob, _ := register(t, url, fp, "bob")

	ln := daemonapi.NewPipeListener()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := daemonapi.NewServer(alice, "", nil).Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if _, err := ln.Dial(context.Background()); err == nil {
			t.Error("dial after the server stopped: no error")
		}
	})
	nc, err := ln.Dial(waitCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	dc := daemonapi.NewClient(nc)
	t.Cleanup(func() { dc.Close() })

	ctx = waitCtx(t)
	var acct daemonapi.Account
	if err := dc.Call(ctx, "whoami", nil, &acct); err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if acct.User != "alice" || acct.Profile != "" {
		t.Errorf("whoami = user %q, profile %q; want alice and no profile", acct.User, acct.Profile)
	}
	conv, err := dc.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatalf("new_direct: %v", err)
	}
	if _, err := dc.Send(ctx, conv, "over the pipe", client.SendOptions{}); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := bob.History(ctx, conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 || msgs[len(msgs)-1].Text != "over the pipe" {
		t.Errorf("bob's history ends with %+v, want the message sent over the pipe", msgs)
	}

	err = dc.Call(ctx, "download", daemonapi.DownloadParams{Attachment: "00", Dst: "/tmp/x"}, nil)
	var rerr *daemonapi.Error
	if !errors.As(err, &rerr) || rerr.Code != daemonapi.CodeMethodNotFound {
		t.Errorf("download without a profile directory: %v, want method not found", err)
	}
}
