package client_test

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
)

// TestMaliciousServerJoin: a server whose membership checks are switched
// off lets eve join a 1:1 conversation and a group by external commit.
// alice and bob reject the commit before merging it, raise the alarm
// (which survives a restart), refuse to send, and eve decrypts nothing
// sent after her join — not even a message bob encrypted before he saw
// it. Recreate starts a clean conversation without eve.
func TestMaliciousServerJoin(t *testing.T) {
	t.Parallel()
	for _, direct := range []bool{true, false} {
		name := map[bool]string{true: "direct", false: "group"}[direct]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := newServerWith(t, func(c *delivery.Config) { c.UnsafeSkipMembershipChecks = true })
			alice, bob, eve := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "eve")
			alice.start()
			bob.start()
			var conv protocol.ConversationID
			var err error
			if direct {
				conv, err = alice.c.NewDirect(ctx, "bob")
			} else {
				conv, err = alice.c.NewGroup(ctx, "team", "bob")
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alice.c.Send(ctx, conv, "before", client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			bob.waitTexts(conv, "before")
			before, err := alice.c.Conversation(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if before.Direct != direct {
				t.Fatalf("alice: direct = %v, want %v", before.Direct, direct)
			}

			// bob does not follow while eve joins, so that he sends one
			// message in the epoch before her commit (caught up before,
			// his client encrypts without fetching the log again).
			if err := bob.c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			bob.stop()
			if err := client.JoinExternalForTest(ctx, eve.c, conv, mls.CipherSuite(before.CipherSuite)); err != nil {
				t.Fatalf("eve's external join (the server should let it through): %v", err)
			}
			eve.start()
			if _, err := bob.c.Send(ctx, conv, "raced", client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			bob.start()

			for _, d := range []*device{alice, bob} {
				ev := d.waitEvent("conversation_unsafe", func(ev client.Event) bool {
					return ev.Kind == client.EventConversationUnsafe && ev.Conversation == conv
				})
				if ev.User != "eve" || ev.Device == "" || !errors.Is(ev.Err, client.ErrConversationUnsafe) {
					t.Errorf("%s: alarm user %q device %q err %v; want eve's device and ErrConversationUnsafe", d.name, ev.User, ev.Device, ev.Err)
				}
				cv, err := d.c.Conversation(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				if cv.Unsafe == nil || cv.Unsafe.User != "eve" || slices.Contains(cv.Members, "eve") || cv.Epoch != before.Epoch {
					t.Errorf("%s: conversation after the alarm: unsafe %+v members %v epoch %d (want eve rejected, epoch %d)", d.name, cv.Unsafe, cv.Members, cv.Epoch, before.Epoch)
				}
				if _, err := d.c.Send(ctx, conv, "after", client.SendOptions{}); !errors.Is(err, client.ErrConversationUnsafe) {
					t.Errorf("%s: send in the unsafe conversation: %v, want ErrConversationUnsafe", d.name, err)
				}
			}
			// alice still reads bob's message of the epoch she stayed in.
			alice.waitTexts(conv, "before", "raced")

			// eve got the entry of bob's message, but not its key.
			eve.waitEvent("undecryptable message", func(ev client.Event) bool {
				return ev.Kind == client.EventError && ev.Conversation == conv
			})
			for _, d := range []*device{alice, bob} {
				d.mu.Lock()
				for _, ev := range d.events {
					if ev.Kind == client.EventMemberJoined && ev.User == "eve" {
						t.Errorf("%s: member_joined for eve", d.name)
					}
				}
				d.mu.Unlock()
			}
			if got := eve.texts(conv); len(got) != 0 {
				t.Fatalf("eve decrypted %q", got)
			}

			// The alarm survives a restart.
			alice.close()
			alice = openDevice(t, s, alice.dir, "alice")
			cv, err := alice.c.Conversation(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if cv.Unsafe == nil || cv.Unsafe.User != "eve" {
				t.Fatalf("alice after reopening: unsafe = %+v", cv.Unsafe)
			}
			if _, err := alice.c.Send(ctx, conv, "after restart", client.SendOptions{}); !errors.Is(err, client.ErrConversationUnsafe) {
				t.Fatalf("send after reopening: %v, want ErrConversationUnsafe", err)
			}

			// The way forward: the same members in a new conversation.
			alice.start()
			fresh, err := alice.c.Recreate(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if fresh == conv {
				t.Fatal("Recreate returned the unsafe conversation")
			}
			if _, err := alice.c.Send(ctx, fresh, "fresh", client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			bob.waitTexts(fresh, "fresh")
			ncv, err := bob.c.Conversation(ctx, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ncv.Members, []string{"alice", "bob"}) || ncv.Direct != direct || ncv.Unsafe != nil {
				t.Fatalf("recreated conversation at bob: members %v direct %v unsafe %+v", ncv.Members, ncv.Direct, ncv.Unsafe)
			}
			if direct {
				if again, err := alice.c.NewDirect(ctx, "bob"); err != nil || again != fresh {
					t.Fatalf("NewDirect after Recreate = %d, %v; want %d", again, err, fresh)
				}
			}
		})
	}
}

// craftedJoin is an external commit made outside the SDK: a device of
// user, certified by identity for certServer at created, with a credential
// naming serverName, joining from a GroupInfo.
func craftedJoin(t *testing.T, serverName, certServer string, created time.Time, cs mls.CipherSuite, groupInfo, tree []byte, user string, identity ed25519.PrivateKey, device protocol.DeviceID) []byte {
	t.Helper()
	signer, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := protocol.NewDeviceCertificate(identity, certServer, user, device, protocol.SchemeEd25519, signer.PublicKey(), created)
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.EncodeCredential(serverName, cert)
	if err != nil {
		t.Fatal(err)
	}
	_, pc, err := mls.JoinExternal(&mls.Config{}, groupInfo, signer, mls.BasicCredential(id), mls.ExternalJoinOptions{RatchetTree: tree, Capabilities: &mls.Capabilities{
		Extensions: []uint16{protocol.PolicyExtensionType}, Credentials: []mls.CredentialType{mls.CredentialBasic},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return pc.Message
}

// craftedAddProposal is an Add proposal by a new member (RFC 9420
// §12.1.8): a device of user, certified by identity, asking to be added.
func craftedAddProposal(t *testing.T, serverName string, cs mls.CipherSuite, groupInfo []byte, user string, identity ed25519.PrivateKey, device protocol.DeviceID) []byte {
	t.Helper()
	signer, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := protocol.NewDeviceCertificate(identity, serverName, user, device, protocol.SchemeEd25519, signer.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.EncodeCredential(serverName, cert)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mls.NewKeyPackage(&mls.Config{}, cs, signer, mls.BasicCredential(id), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mls.NewMemberAddProposal(groupInfo, kp)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestMembershipRules feeds alice's client external commits and
// proposals made outside the SDK, as a server could deliver them: a new
// device of bob certified by bob's identity key joins (device linking,
// rule b; the SDK cannot link devices yet); eve's device, a device that
// claims to be bob's but is certified by eve's key, and eve's request to
// be added are rejected with the alarm, in a 1:1 conversation and in a
// group. So is a device of bob certified by bob's key for another server
// (with a credential naming this server or the other), or with a
// certificate that is expired or dated in the future. Own-device resync
// (rule a) is covered by the crash tests.
func TestMembershipRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, eve := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "eve")
	aliceAcct, err := alice.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}
	bobKey, eveKey := client.IdentityKeyForTest(bob.c), client.IdentityKeyForTest(eve.c)
	// eve's key is pinned by alice as a contact would be.
	if _, err := alice.c.SafetyNumber(ctx, "eve"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		direct   bool
		proposal bool
		user     string
		identity ed25519.PrivateKey
		// credServer and certServer, if set, are the servers the
		// credential and the certificate name instead of alice's.
		credServer, certServer string
		// age is how long before now the certificate was made.
		age    time.Duration
		accept bool
		// reason, if set, is in the alarm's reason.
		reason string
	}{
		{name: "new device of bob, 1:1", direct: true, user: "bob", identity: bobKey, accept: true},
		{name: "new device of bob, group", user: "bob", identity: bobKey, accept: true},
		{name: "eve, 1:1", direct: true, user: "eve", identity: eveKey},
		{name: "eve, group", user: "eve", identity: eveKey},
		{name: "bob's device certified by eve", user: "bob", identity: eveKey},
		{name: "eve's Add proposal, group", proposal: true, user: "eve", identity: eveKey},
		{name: "bob's Add proposal, 1:1", direct: true, proposal: true, user: "bob", identity: bobKey},
		{name: "bob's device certified for another server, 1:1", direct: true, user: "bob", identity: bobKey, certServer: "other.example", reason: `is for server "other.example", not this server "test.example"`},
		{name: "bob's device certified for another server, group", user: "bob", identity: bobKey, certServer: "other.example", reason: `is for server "other.example", not this server "test.example"`},
		{name: "bob's device of another server, group", user: "bob", identity: bobKey, credServer: "other.example", certServer: "other.example", reason: `is for server "other.example", not this server "test.example"`},
		{name: "bob's device with an old certificate, group", user: "bob", identity: bobKey, age: protocol.MaxCertificateAge - time.Hour, accept: true},
		{name: "bob's device with an expired certificate, group", user: "bob", identity: bobKey, age: protocol.MaxCertificateAge + time.Hour, reason: "expired"},
		{name: "bob's device with a certificate of the future, group", user: "bob", identity: bobKey, age: -protocol.CertificateClockSkew - time.Hour, reason: "in the future"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var conv protocol.ConversationID
			if tc.direct {
				conv, err = alice.c.NewDirect(ctx, "bob")
			} else {
				conv, err = alice.c.NewGroup(ctx, fmt.Sprint("case ", i), "bob")
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := bob.c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			cv, err := alice.c.Conversation(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if cv.Unsafe != nil {
				t.Fatalf("fresh conversation unsafe: %+v", cv.Unsafe)
			}
			gi, tree, err := client.GroupInfoForTest(alice.c, conv)
			if err != nil {
				t.Fatal(err)
			}
			cs := mls.CipherSuite(cv.CipherSuite)
			dev := protocol.DeviceID(fmt.Sprintf("%s-crafted-%d", tc.user, i))
			var msg []byte
			if tc.proposal {
				msg = craftedAddProposal(t, aliceAcct.ServerName, cs, gi, tc.user, tc.identity, dev)
			} else {
				credServer, certServer := cmp.Or(tc.credServer, aliceAcct.ServerName), cmp.Or(tc.certServer, aliceAcct.ServerName)
				msg = craftedJoin(t, credServer, certServer, time.Now().Add(-tc.age), cs, gi, tree, tc.user, tc.identity, dev)
			}
			cur, err := client.CursorForTest(ctx, alice.c, conv)
			if err != nil {
				t.Fatal(err)
			}
			entry := protocol.Entry{Conversation: conv, Seq: cur + 1, Kind: protocol.KindHandshake, Sender: dev, Data: msg, Time: time.Now()}
			if err := client.ApplyEntryForTest(ctx, alice.c, entry); err != nil {
				t.Fatal(err)
			}
			after, err := alice.c.Conversation(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept {
				alice.waitEvent("member_joined", func(ev client.Event) bool {
					return ev.Kind == client.EventMemberJoined && ev.Conversation == conv && ev.Device == dev
				})
				if after.Unsafe != nil || after.Epoch != cv.Epoch+1 {
					t.Fatalf("join of a new device of a member: unsafe %+v, epoch %d -> %d", after.Unsafe, cv.Epoch, after.Epoch)
				}
				ms, err := alice.c.Members(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.ContainsFunc(ms, func(m client.Member) bool { return m.User == "bob" && m.Device == dev }) {
					t.Fatalf("members %+v lack bob's new device", ms)
				}
				return
			}
			ev := alice.waitEvent("conversation_unsafe", func(ev client.Event) bool {
				return ev.Kind == client.EventConversationUnsafe && ev.Conversation == conv
			})
			if !errors.Is(ev.Err, client.ErrConversationUnsafe) {
				t.Fatalf("alarm error %v", ev.Err)
			}
			if after.Unsafe == nil || after.Epoch != cv.Epoch || slices.Contains(after.Members, "eve") {
				t.Fatalf("after a rejected change: unsafe %+v, epoch %d -> %d, members %v", after.Unsafe, cv.Epoch, after.Epoch, after.Members)
			}
			if !strings.Contains(after.Unsafe.Reason, tc.reason) {
				t.Errorf("alarm reason %q, want %q in it", after.Unsafe.Reason, tc.reason)
			}
			if _, err := alice.c.Send(ctx, conv, "hello", client.SendOptions{}); !errors.Is(err, client.ErrConversationUnsafe) {
				t.Fatalf("send after the alarm: %v, want ErrConversationUnsafe", err)
			}
		})
	}
}

// TestNoThirdUserInDirect: a member cannot add a third user to a 1:1
// conversation; the refusal happens before anything is sent.
func TestNoThirdUserInDirect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	register(t, s, "carol")
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	epoch := alice.epoch(conv)
	if err := alice.c.Add(ctx, conv, "carol"); err == nil {
		t.Fatal("alice added carol to her 1:1 conversation with bob")
	}
	if got := alice.epoch(conv); got != epoch {
		t.Fatalf("epoch %d -> %d after a refused add", epoch, got)
	}
}
