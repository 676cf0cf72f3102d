package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// memberDevices returns the devices of user in d's view of conv.
func memberDevices(t *testing.T, d *device, conv protocol.ConversationID, user string) []protocol.DeviceID {
	t.Helper()
	ms, err := d.c.Members(context.Background(), conv)
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.DeviceID
	for _, m := range ms {
		if m.User == user {
			out = append(out, m.Device)
		}
	}
	slices.Sort(out)
	return out
}

// TestLinkRevokeRelink: link a phone, use it, revoke it from the laptop
// (it leaves every conversation), link a tablet in its place; the
// account's last active device is not revoked unless forced.
func TestLinkRevokeRelink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	laptop, bob := register(t, s, "alice"), register(t, s, "bob")
	laptop.start()
	bob.start()
	conv, err := laptop.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	phone := linkDevice(t, s, laptop, "phone")
	phone.start()
	phoneID := phone.deviceID()
	if _, err := phone.c.Send(ctx, conv, "from the phone", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "from the phone")

	devs, err := laptop.c.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || !devs[0].This || devs[1].ID != phoneID || devs[1].Name != "phone" || devs[1].Forged || devs[1].LastSeen.IsZero() {
		t.Errorf("laptop's device list %+v", devs)
	}
	if err := laptop.c.RenameDevice(ctx, phoneID, "old phone"); err != nil {
		t.Fatal(err)
	}

	if err := laptop.c.RevokeOwnDevice(ctx, phoneID, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the phone to leave", func() bool { return len(memberDevices(t, bob, conv, "alice")) == 1 })
	bob.waitSystem(conv, client.SystemDeviceRemoved)
	if err := laptop.c.RevokeOwnDevice(ctx, laptop.deviceID(), false); !errors.Is(err, client.ErrLastDevice) {
		t.Errorf("revoking the last device: %v, want ErrLastDevice", err)
	}

	tablet := linkDevice(t, s, laptop, "tablet")
	tablet.start()
	want := []protocol.DeviceID{laptop.deviceID(), tablet.deviceID()}
	slices.Sort(want)
	waitFor(t, "the tablet to join", func() bool { return slices.Equal(memberDevices(t, bob, conv, "alice"), want) })
	if _, err := bob.c.Send(ctx, conv, "welcome tablet", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	tablet.waitTexts(conv, "welcome tablet")
	devs, err = tablet.c.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 || devs[1].Revoked.IsZero() || devs[1].Name != "old phone" || !devs[2].This {
		t.Errorf("tablet's device list %+v", devs)
	}
}

// TestLinkInventedDevice: a server that invents a device of a linked
// account (in the device list, lookups and KeyPackage claims, with a
// certificate the account's identity key never signed) is refused by
// every client: the account's own devices list it as forged and do not
// add it, and bob does not add it to a new group with alice.
func TestLinkInventedDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	laptop := registerVia(t, p, "alice")
	bob := registerVia(t, p, "bob")
	phone := linkDeviceVia(t, p, laptop, "phone")

	const ghost = protocol.DeviceID("ghost")
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := mls.GenerateSigner(mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := protocol.NewDeviceCertificate(attacker, s.name, "alice", ghost, protocol.SchemeEd25519, signer.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.set(func(path string, body []byte) []byte {
		switch path {
		case "/v1/users/alice":
			var u protocol.UserInfo
			if json.Unmarshal(body, &u) != nil {
				return body
			}
			u.Devices = append(u.Devices, protocol.DeviceInfo{ID: ghost, SignatureKey: signer.PublicKey(), Certificate: cert, Created: time.Now()})
			out, _ := json.Marshal(u)
			return out
		case "/v1/keypackages/claim":
			var res protocol.ClaimKeyPackagesResponse
			if json.Unmarshal(body, &res) != nil || len(res.KeyPackages) == 0 {
				return body
			}
			cs := mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519
			res.KeyPackages = append(res.KeyPackages, protocol.ClaimedKeyPackage{Device: ghost, Data: forgedKeyPackage(t, s.name, "alice", ghost, cs)})
			out, _ := json.Marshal(res)
			return out
		}
		return body
	})
	laptop.start()
	phone.start()
	bob.start()

	for _, d := range []*device{laptop, phone} {
		devs, err := d.c.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(devs, func(od client.OwnDevice) bool { return od.ID == ghost })
		if i < 0 || !devs[i].Forged || len(devs) != 3 {
			t.Errorf("%s's device list %+v: want the ghost, forged", d.name, devs)
		}
	}

	conv, err := bob.c.NewGroup(ctx, "team", "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.DeviceID{laptop.deviceID(), phone.deviceID()}
	slices.Sort(want)
	if got := memberDevices(t, bob, conv, "alice"); !slices.Equal(got, want) {
		t.Errorf("bob's group holds alice's devices %v, want %v", got, want)
	}
	laptop.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	if n, failed, err := laptop.c.AddOwnDevices(ctx); err != nil || len(failed) != 0 || n != 0 {
		t.Errorf("the laptop added its devices to %d conversations (failed %v): %v", n, failed, err)
	}
	if got := memberDevices(t, laptop, conv, "alice"); !slices.Equal(got, want) {
		t.Errorf("the laptop's view: alice's devices %v, want %v", got, want)
	}
}

// linkDeviceVia links a new device of existing's account through the
// proxy.
func linkDeviceVia(t *testing.T, p *evilProxy, existing *device, name string) *device {
	t.Helper()
	d, code, _, res := startLink(t, p.srv.URL, p.fp, name)
	if _, err := existing.c.LinkDevice(context.Background(), code, func(client.LinkRequest) bool { return true }); err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	if r := <-res; r.err != nil {
		t.Fatalf("link %s: %v", name, r.err)
	}
	return d
}

// TestReadPositionSync: reading a conversation on one device of an
// account clears its unread messages on the account's other device (the
// read receipt reaches both).
func TestReadPositionSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	laptop, bob := register(t, s, "alice"), register(t, s, "bob")
	laptop.start()
	bob.start()
	conv, err := bob.c.NewGroup(ctx, "team", "alice")
	if err != nil {
		t.Fatal(err)
	}
	laptop.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	phone := linkDevice(t, s, laptop, "phone")
	phone.start()
	for _, text := range []string{"one", "two"} {
		if _, err := bob.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	unread := func(d *device) int {
		cv, err := d.c.Conversation(ctx, conv)
		if err != nil {
			return -1
		}
		return cv.Unread
	}
	waitFor(t, "two unread on both devices", func() bool { return unread(laptop) == 2 && unread(phone) == 2 })
	laptop.mu.Lock()
	seen := len(laptop.events)
	laptop.mu.Unlock()
	if err := phone.c.MarkRead(ctx, conv); err != nil {
		t.Fatal(err)
	}
	laptop.waitEventFrom(seen, "read elsewhere", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationChanged && ev.Conversation == conv
	})
	if n := unread(laptop); n != 0 {
		t.Errorf("the laptop counts %d unread after the phone read them", n)
	}
	if _, err := bob.c.Send(ctx, conv, "three", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one unread on both devices", func() bool { return unread(laptop) == 1 && unread(phone) == 1 })
}

// TestLinkIntoChannel: a plain member of a channel (where only admins
// add and post) links a device: the device joins the channel all the
// same (adding one's own devices needs no role), and reads its posts.
func TestLinkIntoChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	laptop, bob := register(t, s, "alice"), register(t, s, "bob")
	laptop.start()
	bob.start()
	ch, err := bob.c.NewChannel(ctx, "news", "alice")
	if err != nil {
		t.Fatal(err)
	}
	laptop.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == ch
	})
	d, code, _, res := startLink(t, s.url, s.fingerprint, "phone")
	linked, err := laptop.c.LinkDevice(ctx, code, func(client.LinkRequest) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
	if linked.Conversations != 1 || len(linked.Failed) != 0 {
		t.Errorf("linked into %d conversations, failed %v", linked.Conversations, linked.Failed)
	}
	d.start()
	if _, err := bob.c.Send(ctx, ch, "news for all", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	d.waitTexts(ch, "news for all")
	if cv, err := d.c.Conversation(ctx, ch); err != nil || !cv.Channel || cv.Name != "news" {
		t.Errorf("the phone's view of the channel: %+v %v", cv, err)
	}
}

// waitEventFrom waits for an event matching f among those d received
// after its first from.
func (d *device) waitEventFrom(from int, what string, f func(client.Event) bool) {
	d.t.Helper()
	timer := time.AfterFunc(20*time.Second, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(20 * time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for _, ev := range d.events[min(from, len(d.events)):] {
			if f(ev) {
				return
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no event %s", d.name, what)
		}
		d.cond.Wait()
	}
}
