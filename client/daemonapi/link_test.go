package daemonapi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/internal/testserver"
)

// newDevice is a profile being linked: client.Client.Link runs on it.
type newDevice struct {
	code          string
	confirmations chan string
	done          chan error
}

// startNewDevice runs Link on a fresh profile named name and returns
// once it shows its code.
func startNewDevice(t *testing.T, url, fp, name string) *newDevice {
	t.Helper()
	c, err := client.Open(context.Background(), client.Config{
		ProfileDir: t.TempDir(), Passphrase: []byte("correct horse " + name),
		KDF:       store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		ServerURL: url, TLSFingerprint: fp,
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &newDevice{confirmations: make(chan string, 1), done: make(chan error, 1)}
	codes := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := c.Link(ctx, url, client.LinkOptions{
			DeviceName:   name,
			Code:         func(lc client.LinkCode) { codes <- lc.Code },
			Confirmation: func(s string) { d.confirmations <- s },
		})
		d.done <- err
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		c.Close()
	})
	select {
	case d.code = <-codes:
	case err := <-d.done:
		t.Fatalf("link %s: %v", name, err)
	case <-time.After(hangGuard):
		t.Fatalf("link %s: no code", name)
	}
	return d
}

// result waits for the end of the device's Link.
func (d *newDevice) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.done:
		return err
	case <-time.After(hangGuard):
		t.Fatal("the new device's link did not end")
	}
	return nil
}

// confirmation waits for the confirmation the device shows.
func (d *newDevice) confirmation(t *testing.T) string {
	t.Helper()
	select {
	case s := <-d.confirmations:
		return s
	case err := <-d.done:
		t.Fatalf("the new device's link ended before its confirmation: %v", err)
	case <-time.After(hangGuard):
		t.Fatal("the new device shows no confirmation")
	}
	return ""
}

// serveLinks serves c on dir's socket like daemon, with links that wait
// wait for their answer.
func serveLinks(t *testing.T, c *client.Client, dir string, wait time.Duration) {
	t.Helper()
	ln, err := daemonapi.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := daemonapi.NewServer(c, dir, nil)
	daemonapi.SetLinkConfirmWait(srv, wait)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if _, err := os.Stat(filepath.Join(dir, daemonapi.SocketFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})
}

// TestLinkDevice: a device of alice's account links new devices through
// her daemon: accepted (both show the same confirmation, the new device
// is in her conversation), a second link while one waits is refused, a
// declined link and one cancelled, one whose connection closes, one
// left unanswered (declined after the wait) all end on both sides, and
// the next link works.
func TestLinkDevice(t *testing.T) {
	ts := testserver.Start(t, nil)
	url, fp := ts.URL, ts.Fingerprint
	alice, dir := register(t, url, fp, "alice")
	bob, _ := register(t, url, fp, "bob")
	ctx := waitCtx(t)
	if _, err := bob.NewDirect(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	serveLinks(t, alice, dir, 5*time.Second)
	dc := dial(t, dir)

	// Accepted, through the typed client: the same confirmation on both
	// sides, the new device added to the conversation, and listed.
	phone := startNewDevice(t, url, fp, "phone")
	var asked client.LinkRequest
	linked, err := dc.LinkDevice(ctx, phone.code, func(r client.LinkRequest) bool {
		asked = r
		return r.Confirmation == phone.confirmation(t)
	})
	if err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	if err := phone.result(t); err != nil {
		t.Fatalf("the phone's link: %v", err)
	}
	if linked.Name != "phone" || asked.Name != "phone" || linked.Device != asked.Device || linked.Conversations != 1 || len(linked.Failed) != 0 {
		t.Errorf("linked %+v after asking %+v", linked, asked)
	}
	if ds, err := dc.Devices(ctx); err != nil || len(ds) != 2 {
		t.Errorf("devices after the link = %+v, %v", ds, err)
	}

	// A second link while one waits for its answer is refused; another
	// connection can neither answer nor cancel the first; declined, it
	// ends on both sides.
	tablet := startNewDevice(t, url, fp, "tablet")
	var q daemonapi.LinkDeviceResult
	if err := dc.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: tablet.code}, &q); err != nil || q.Link == "" || q.Name != "tablet" || len(q.Confirmation) != 7 {
		t.Fatalf("link_device = %+v, %v", q, err)
	}
	if c := tablet.confirmation(t); c != q.Confirmation {
		t.Errorf("confirmations: tablet %q, daemon %q", c, q.Confirmation)
	}
	other := dial(t, dir)
	if err := other.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: tablet.code}, nil); !errors.Is(err, daemonapi.ErrLinkInProgress) {
		t.Errorf("a second link_device = %v, want link_in_progress", err)
	}
	var rpcErr *daemonapi.Error
	if err := other.Call(ctx, "link_device_confirm", daemonapi.LinkConfirmParams{Link: q.Link, Accept: true}, nil); !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
		t.Errorf("link_device_confirm from another connection = %v, want invalid params", err)
	}
	var ok daemonapi.OK
	if err := other.Call(ctx, "cancel_link_device", nil, &ok); err != nil || ok.OK {
		t.Errorf("cancel_link_device from another connection = %+v, %v", ok, err)
	}
	if err := dc.Call(ctx, "link_device_confirm", daemonapi.LinkConfirmParams{Link: q.Link}, nil); !errors.Is(err, client.ErrLinkRefused) {
		t.Errorf("declined link_device_confirm = %v, want link_refused", err)
	}
	if err := tablet.result(t); !errors.Is(err, client.ErrLinkRefused) {
		t.Errorf("the tablet's link after the refusal = %v", err)
	}
	if err := dc.Call(ctx, "link_device_confirm", daemonapi.LinkConfirmParams{Link: q.Link, Accept: true}, nil); !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
		t.Errorf("link_device_confirm of a finished link = %v, want invalid params", err)
	}

	// Cancelled after the question: both sides end, and the next link
	// starts at once.
	watch := startNewDevice(t, url, fp, "watch")
	if err := dc.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: watch.code}, &q); err != nil {
		t.Fatal(err)
	}
	if err := dc.Call(ctx, "cancel_link_device", nil, &ok); err != nil || !ok.OK {
		t.Errorf("cancel_link_device = %+v, %v", ok, err)
	}
	if err := watch.result(t); err == nil {
		t.Error("the watch linked after the cancel")
	}

	// The connection that started a link closes: the link ends, and a
	// link from another connection waits for that end, then runs; left
	// unanswered, it is declined after the wait.
	tv := startNewDevice(t, url, fp, "tv")
	closing := dial(t, dir)
	if err := closing.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: tv.code}, &q); err != nil {
		t.Fatal(err)
	}
	closing.Close()
	if err := tv.result(t); err == nil {
		t.Error("the tv linked after its connection closed")
	}
	car := startNewDevice(t, url, fp, "car")
	if err := dc.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: car.code}, &q); err != nil {
		t.Fatalf("link_device after a closed connection's link: %v", err)
	}
	if err := car.result(t); !errors.Is(err, client.ErrLinkRefused) {
		t.Errorf("the car's link left unanswered = %v, want refused", err)
	}
	err = dc.Call(ctx, "link_device_confirm", daemonapi.LinkConfirmParams{Link: q.Link, Accept: true}, nil)
	if !errors.Is(err, client.ErrLinkRefused) && !(errors.As(err, &rpcErr) && rpcErr.Code == daemonapi.CodeInvalidParams) {
		t.Errorf("a late link_device_confirm = %v, want the refusal or no such link", err)
	}

	// Bad params change nothing.
	if err := dc.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: " "}, nil); !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
		t.Errorf("link_device without a code = %v", err)
	}
	if err := dc.Call(ctx, "link_device", daemonapi.LinkDeviceParams{Code: "not a code"}, nil); err == nil {
		t.Error("link_device with a malformed code succeeded")
	}
	if ds, err := dc.Devices(ctx); err != nil || len(ds) != 2 {
		t.Errorf("devices at the end = %+v, %v", ds, err)
	}
}
