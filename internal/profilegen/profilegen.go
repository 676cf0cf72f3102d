// Package profilegen fills a client profile with many conversations and a
// long history, written straight into the profile's store
// (client/sqlitestore) instead of through a server, for benchmarks and
// tests of what a large profile costs to open, list and show. The profile
// has the layout client.Open reads (the store file client.StoreFile in
// the profile directory) and opens like any other.
//
// What it cannot make is MLS state: the conversations it adds have no
// group state, so client.Open loads them without a group (Epoch 0, the
// members of the stored conversation) and nothing can be sent in them.
// Everything that reads the store — Conversations, History, Unseen —
// works on them as on conversations followed through a server. For a
// profile that costs client.Open what real groups cost, Config.GroupsLike
// gives every conversation a copy of the group state of a real one (made
// through a server): such a profile is for measuring only, and must never
// run against a server (Client.Run), since the copies share their keys.
//
// The read positions (Conversation.Unread) are the SDK's settings
// "read/<conversation>", holding a history position (Message.Seq) in
// decimal; the client tests that use this package check that the SDK
// still reads them so.
package profilegen

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/sqlitestore"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Config says what to write.
type Config struct {
	// Dir is the profile directory (client.Config.ProfileDir). A
	// registered profile keeps its account; an empty or missing one gets
	// a new account of User with a self-signed device certificate, which
	// client.Open loads but no server knows.
	Dir string
	// Passphrase and KDF open the store as client.Config's do (a profile
	// protected by a key file is not supported).
	Passphrase []byte
	KDF        store.KDFParams
	// User is the account of a new profile (default "alice").
	User string
	// Peers is how many other users the conversations are with (default
	// 50): peer000, peer001… Every third is a contact whose safety
	// number was compared (verified); the others are trusted on first
	// use only.
	Peers int
	// Conversations is how many conversations to add, Entries how many
	// history entries in all, spread evenly over them (the first ones
	// take the remainder). Each conversation's first entry is a system
	// line (this device joined); the others are text messages, one in
	// three of this user's, one in fifty deleted.
	Conversations int
	Entries       int
	// UnreadConversations is how many conversations (the last ones added)
	// keep their UnreadEntries last entries after the read position; the
	// others are read to their end. With NoReadPositions no read
	// position is written at all: every message of another user counts
	// as unread.
	UnreadConversations int
	UnreadEntries       int
	NoReadPositions     bool
	// GroupsLike, when not 0, is a conversation of the registered profile
	// whose MLS group state every added conversation gets a copy of (see
	// the package doc); client.Open then loads a group for each, whose
	// members are those of that conversation.
	GroupsLike protocol.ConversationID
	// Seed makes the content reproducible.
	Seed uint64
	// Now is the time of the newest entries (default time.Now).
	Now time.Time
}

// Profile describes what Fill wrote.
type Profile struct {
	// User is the profile's account.
	User string
	// Conversations are the conversations added, in increasing order.
	Conversations []Conversation
}

// Conversation is one conversation Fill added.
type Conversation struct {
	ID protocol.ConversationID
	// Entries is the number of history entries; the last one has
	// position (Message.Seq) Entries.
	Entries int
	// Read is the read position written, 0 for none.
	Read int64
	// Unread is the number of messages of other users, not deleted,
	// after Read: what Conversation.Unread should say.
	Unread int
	// LastText is the text of the last entry ("" for a deleted message
	// or a system line).
	LastText string
}

// batch is how many conversations one transaction writes.
const batch = 50

// Fill adds conversations and their histories to the profile in
// cfg.Dir. The profile must not be open.
func Fill(ctx context.Context, cfg Config) (*Profile, error) {
	if cfg.Dir == "" || cfg.Conversations <= 0 || cfg.Entries < cfg.Conversations {
		return nil, fmt.Errorf("profilegen: fill %q: want a directory and at least one entry per conversation (%d conversations, %d entries)", cfg.Dir, cfg.Conversations, cfg.Entries)
	}
	if cfg.User == "" {
		cfg.User = "alice"
	}
	if cfg.Peers <= 0 {
		cfg.Peers = 50
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("profilegen: fill %s: %v", cfg.Dir, err)
	}
	path := filepath.Join(cfg.Dir, client.StoreFile)
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("profilegen: fill %s: %v", cfg.Dir, err)
	} else {
		f.Close()
	}
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Passphrase: cfg.Passphrase, KDF: cfg.KDF})
	if err != nil {
		return nil, fmt.Errorf("profilegen: fill %s: %w", cfg.Dir, err)
	}
	g := &gen{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, 0x70726f66696c65))}
	err = g.fill(ctx, st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("profilegen: fill %s: %w", cfg.Dir, err)
	}
	return &g.out, nil
}

// fill writes the account and the conversations, batch by batch.
func (g *gen) fill(ctx context.Context, st *sqlitestore.Store) error {
	if err := st.Update(ctx, g.account); err != nil {
		return fmt.Errorf("account: %w", err)
	}
	for start := 0; start < g.cfg.Conversations; start += batch {
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := start; i < min(start+batch, g.cfg.Conversations); i++ {
				if err := g.conversation(tx, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// gen holds the state of one Fill.
type gen struct {
	cfg  Config
	rnd  *rand.Rand
	self *store.Identity
	// group and ratchet are the group state to copy (Config.GroupsLike)
	// and its ratchet state, if any.
	group, ratchet []byte
	first          protocol.ConversationID // the id of the first conversation added
	out            Profile
}

// account reads the profile's account, or writes a new one, and the
// peers as contacts.
func (g *gen) account(tx store.Tx) error {
	id, err := tx.Identity()
	if errors.Is(err, store.ErrNotFound) {
		id, err = g.newAccount(tx)
	}
	if err != nil {
		return err
	}
	g.self, g.out.User = id, id.User
	cvs, err := tx.Conversations()
	if err != nil {
		return err
	}
	g.first = 1
	if n := len(cvs); n > 0 {
		g.first = cvs[n-1].ID + 1
	}
	if like := g.cfg.GroupsLike; like != 0 {
		if g.group, err = tx.GroupState(like); err != nil {
			return err
		}
		g.ratchet, err = tx.RatchetState(like)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	for p := range g.cfg.Peers {
		key, _, _ := ed25519.GenerateKey(crand.Reader)
		ct := &store.Contact{User: peer(p), IdentityKey: key, Verified: p%3 == 0, Pinned: g.cfg.Now.Add(-365 * 24 * time.Hour)}
		if err := tx.PutContact(ct); err != nil {
			return err
		}
	}
	return nil
}

// newAccount writes the account of a new profile as Register would,
// with a certificate the account's own identity key signs.
func (g *gen) newAccount(tx store.Tx) (*store.Identity, error) {
	_, idKey, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		return nil, err
	}
	dev := make([]byte, 16)
	crand.Read(dev)
	const server = "parley.invalid"
	id := &store.Identity{
		Server: "https://" + server, User: g.cfg.User, Device: protocol.DeviceID(hex.EncodeToString(dev)),
		IdentityKey: idKey, DeviceScheme: protocol.SchemeEd25519, DeviceKey: signer.PrivateKey(),
		Created: g.cfg.Now.Add(-400 * 24 * time.Hour),
	}
	if id.Certificate, err = protocol.NewDeviceCertificate(idKey, server, id.User, id.Device, id.DeviceScheme, signer.PublicKey(), id.Created); err != nil {
		return nil, err
	}
	if err := tx.PutIdentity(id); err != nil {
		return nil, err
	}
	return id, tx.SetSetting("server_name", []byte(server))
}

func peer(i int) string { return fmt.Sprintf("peer%03d", i) }

// conversation writes the i-th conversation with its history and read
// position.
func (g *gen) conversation(tx store.Tx, i int) error {
	cfg := g.cfg
	conv := g.first + protocol.ConversationID(i)
	entries := cfg.Entries / cfg.Conversations
	if i < cfg.Entries%cfg.Conversations {
		entries++
	}
	// One in three is a named group of three to five users, the others
	// 1:1 conversations.
	members := []string{g.self.User}
	cv := &store.Conversation{ID: conv, GroupID: make([]byte, 32), Created: cfg.Now.Add(-time.Duration(entries+1) * time.Hour)}
	crand.Read(cv.GroupID)
	if i%3 == 0 {
		cv.Name = fmt.Sprintf("group %d", i)
		for range 2 + g.rnd.IntN(3) {
			members = append(members, peer(g.rnd.IntN(cfg.Peers)))
		}
	} else {
		cv.Direct = true
		members = append(members, peer(g.rnd.IntN(cfg.Peers)))
	}
	cv.Members = sortedUnique(members)
	if err := tx.PutConversation(cv); err != nil {
		return err
	}
	if g.group != nil {
		if err := tx.PutGroupState(conv, g.group); err != nil {
			return err
		}
		if g.ratchet != nil {
			if err := tx.PutRatchetState(conv, g.ratchet); err != nil {
				return err
			}
		}
	}
	others := cv.Members[:0:0]
	for _, u := range cv.Members {
		if u != g.self.User {
			others = append(others, u)
		}
	}
	out := Conversation{ID: conv, Entries: entries}
	unread := 0 // entries left after the read position
	switch {
	case cfg.NoReadPositions:
		unread = entries
	case i >= cfg.Conversations-cfg.UnreadConversations:
		unread = min(cfg.UnreadEntries, entries)
	}
	out.Read = int64(entries - unread)
	for n := range entries {
		at := cfg.Now.Add(-time.Duration(entries-n) * time.Minute)
		m := &store.Message{Conversation: conv, ID: content.NewMessageID(), Sent: at, Received: at}
		switch {
		case n == 0:
			m.Sender, m.SenderDevice = g.self.User, g.self.Device
			m.System = &store.SystemEvent{Kind: "joined", Users: []string{g.self.User}}
		case n%3 == 0:
			m.Sender, m.SenderDevice, m.State = g.self.User, g.self.Device, store.Read
		default:
			m.Sender, m.SenderDevice = others[g.rnd.IntN(len(others))], "peerdevice"
		}
		m.ServerSeq = uint64(n + 1)
		if m.System == nil {
			if err := g.text(m, n%50 == 49); err != nil {
				return err
			}
		}
		if _, err := tx.AddMessage(m); err != nil {
			return err
		}
		if int64(n+1) > out.Read && m.Sender != g.self.User && m.System == nil && !m.Deleted {
			out.Unread++
		}
		if n == entries-1 {
			out.LastText = m.Text
		}
	}
	if out.Read > 0 {
		if err := tx.SetSetting("read/"+strconv.FormatInt(int64(conv), 10), []byte(strconv.FormatInt(out.Read, 10))); err != nil {
			return err
		}
	}
	g.out.Conversations = append(g.out.Conversations, out)
	return nil
}

// words make the texts.
var words = strings.Fields("the a meeting tomorrow at noon lunch can you send me file draft review looks good thanks " +
	"see later call now on my way which one yes no maybe tonight weekend plan budget ticket flight late")

// text gives m a text message's content of 3 to 20 words, or marks it
// deleted (which clears content and text, as the SDK does).
func (g *gen) text(m *store.Message, deleted bool) error {
	if deleted {
		m.Deleted = true
		return nil
	}
	w := make([]string, 3+g.rnd.IntN(18))
	for i := range w {
		w[i] = words[g.rnd.IntN(len(words))]
	}
	cm := content.New(content.KindText, m.Sent)
	cm.ID, cm.Text = content.MessageID(m.ID), strings.Join(w, " ")
	data, err := content.Encode(cm)
	if err != nil {
		return err
	}
	m.Content, m.Text = data, cm.Text
	return nil
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
