package client_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// linkResult is what the new device's Link returned.
type linkResult struct {
	acct *client.Account
	err  error
}

// startLink runs Link on a fresh profile named name of s (through url and
// fp) and returns the device, the code it shows, the confirmation it
// shows (sent once the channel is up) and its result.
func startLink(t *testing.T, url, fp, name string) (*device, string, <-chan string, <-chan linkResult) {
	t.Helper()
	d := openDeviceURL(t, url, fp, t.TempDir(), name)
	codes := make(chan string, 1)
	confirmations := make(chan string, 1)
	res := make(chan linkResult, 1)
	go func() {
		acct, err := d.c.Link(context.Background(), url, client.LinkOptions{
			DeviceName:   name,
			Code:         func(c client.LinkCode) { codes <- c.Code },
			Confirmation: func(s string) { confirmations <- s },
		})
		res <- linkResult{acct, err}
	}()
	select {
	case code := <-codes:
		return d, code, confirmations, res
	case r := <-res:
		t.Fatalf("link %s: %v", name, r.err)
	}
	return nil, "", nil, nil
}

// linkDevice links a new device of existing's account and returns it once
// Link returned on both sides.
func linkDevice(t *testing.T, s *server, existing *device, name string) *device {
	t.Helper()
	d, code, confirmations, res := startLink(t, s.url, s.fingerprint, name)
	var shown string
	linked, err := existing.c.LinkDevice(context.Background(), code, func(r client.LinkRequest) bool {
		shown = r.Confirmation
		return r.Name == name
	})
	if err != nil {
		t.Fatalf("link %s from %s: %v", name, existing.name, err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("link %s: %v", name, r.err)
	}
	if c := <-confirmations; c != shown || len(c) != 7 {
		t.Errorf("confirmations: new device %q, existing device %q", c, shown)
	}
	if r.acct.User != existing.name || linked.Device != r.acct.Device {
		t.Errorf("linked %+v as %+v", linked, r.acct)
	}
	return d
}

// TestLinkDevice: a new device linked to alice's account joins her
// conversations; bob sees "alice added a device" and the same safety
// number; both of alice's devices send and receive with bob.
func TestLinkDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	direct, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	before, err := bob.c.SafetyNumber(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}

	phone := linkDevice(t, s, alice, "phone")
	phone.start()
	for _, cv := range []protocol.ConversationID{conv, direct} {
		if _, err := phone.c.Conversation(ctx, cv); err != nil {
			t.Errorf("phone: conversation %d: %v", cv, err)
		}
	}
	ev := bob.waitSystem(conv, client.SystemDeviceAdded)
	if m := ev.Message; m.Sender != "alice" || !slices.Equal(m.System.Users, []string{"alice"}) || len(m.System.Devices) != 1 || m.System.Devices[0] != phone.deviceID() {
		t.Errorf("bob's line %+v (%+v)", m, m.System)
	}
	after, err := bob.c.SafetyNumber(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if after.Digits != before.Digits {
		t.Errorf("bob's safety number with alice changed: %s → %s", before.Digits, after.Digits)
	}
	if a, _ := phone.c.Whoami(); !slices.Equal(a.IdentityKey, mustWhoami(t, alice).IdentityKey) {
		t.Error("the phone holds another identity key")
	}

	if _, err := bob.c.Send(ctx, conv, "from bob", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	phone.waitTexts(conv, "from bob")
	if _, err := phone.c.Send(ctx, conv, "from the phone", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "from bob", "from the phone")
	alice.waitTexts(conv, "from bob", "from the phone")
	if _, err := alice.c.Send(ctx, direct, "from the laptop", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	phone.waitTexts(direct, "from the laptop")
	bob.waitTexts(direct, "from the laptop")
	ms, err := bob.c.Messages(ctx, conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m := ms[len(ms)-1]; m.Sender != "alice" || m.SenderDevice != phone.deviceID() {
		t.Errorf("bob sees the phone's message from %s/%s", m.Sender, m.SenderDevice)
	}
}

func mustWhoami(t *testing.T, d *device) *client.Account {
	t.Helper()
	a, err := d.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestLinkDeclined: declining on the existing device leaves nothing
// registered, and the new device says so.
func TestLinkDeclined(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	alice := register(t, s, "alice")
	_, code, _, res := startLink(t, s.url, s.fingerprint, "phone")
	_, err := alice.c.LinkDevice(context.Background(), code, func(client.LinkRequest) bool { return false })
	if !errors.Is(err, client.ErrLinkRefused) {
		t.Errorf("existing side: %v", err)
	}
	if r := <-res; !errors.Is(r.err, client.ErrLinkRefused) {
		t.Errorf("new side: %v", r.err)
	}
	assertDevices(t, s, "alice", 1)
}

// assertDevices checks how many devices the server has for user.
func assertDevices(t *testing.T, s *server, user string, want int) {
	t.Helper()
	u, err := s.st.UserByName(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := s.st.Devices(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != want {
		t.Errorf("%s has %d devices at the server, want %d", user, len(devs), want)
	}
}

// TestLinkManInTheMiddle: a server that substitutes its own ephemeral
// keys in the mailbox (a man in the middle of the linking channel) fails
// the key confirmation: both devices refuse, the user is never asked to
// confirm, and no device is added to the account.
func TestLinkManInTheMiddle(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	mitm, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.set(func(path string, body []byte) []byte {
		if !strings.HasPrefix(path, "/v1/link/") {
			return body
		}
		var res protocol.LinkMessages
		if json.Unmarshal(body, &res) != nil {
			return body
		}
		for i, m := range res.Messages {
			var env map[string]any
			if json.Unmarshal(m.Message, &env) != nil || env["key"] == nil {
				continue
			}
			env["key"] = mitm.PublicKey().Bytes()
			res.Messages[i].Message, _ = json.Marshal(env)
		}
		out, _ := json.Marshal(res)
		return out
	})
	_, code, _, res := startLink(t, p.srv.URL, p.fp, "phone")
	asked := false
	_, err = alice.c.LinkDevice(context.Background(), code, func(client.LinkRequest) bool { asked = true; return true })
	if !errors.Is(err, client.ErrLinkTampered) {
		t.Errorf("existing device: %v, want ErrLinkTampered", err)
	}
	if r := <-res; !errors.Is(r.err, client.ErrLinkTampered) {
		t.Errorf("new device: %v, want ErrLinkTampered", r.err)
	}
	if asked {
		t.Error("the user was asked to confirm over a tampered channel")
	}
	assertDevices(t, s, "alice", 1)
}

// TestLinkWrongCode: a code with another secret (a typo, or a guess)
// fails the same way.
func TestLinkWrongCode(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	alice := register(t, s, "alice")
	_, code, _, res := startLink(t, s.url, s.fingerprint, "phone")
	b := []byte(code)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	_, err := alice.c.LinkDevice(context.Background(), string(b), func(client.LinkRequest) bool { return true })
	if !errors.Is(err, client.ErrLinkTampered) {
		t.Errorf("existing device: %v, want ErrLinkTampered", err)
	}
	if r := <-res; !errors.Is(r.err, client.ErrLinkTampered) {
		t.Errorf("new device: %v, want ErrLinkTampered", r.err)
	}
	assertDevices(t, s, "alice", 1)
}

// TestLinkHundredConversations: linking a device of an account in 100
// conversations adds it to all of them (one commit each) and the new
// device has joined them all when Link returns; the time from the
// start of LinkDevice to that point is logged (loopback; docs/performance.md).
func TestLinkHundredConversations(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100 conversations")
	}
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	register(t, s, "bob")
	const n = 100
	convs := make([]protocol.ConversationID, n)
	for i := range convs {
		var err error
		if convs[i], err = alice.c.NewGroup(ctx, fmt.Sprintf("g%d", i), "bob"); err != nil {
			t.Fatal(err)
		}
	}
	phone, code, _, res := startLink(t, s.url, s.fingerprint, "phone")
	start := time.Now()
	linked, err := alice.c.LinkDevice(ctx, code, func(client.LinkRequest) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
	took := time.Since(start)
	t.Logf("linked a device into %d conversations in %v (%v per conversation)", n, took.Round(time.Millisecond), (took / n).Round(time.Microsecond))
	if linked.Conversations != n || len(linked.Failed) != 0 {
		t.Errorf("added to %d conversations, failed %v", linked.Conversations, linked.Failed)
	}
	cs, err := phone.c.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != n {
		t.Errorf("the phone is in %d conversations, want %d", len(cs), n)
	}
	// The target is 10 s on an idle machine (about 3 s measured); the
	// bound leaves room for a loaded one.
	if took > time.Minute && !raceEnabled {
		t.Errorf("linking into %d conversations took %v, want well under 10s on an idle machine", n, took)
	}
}
