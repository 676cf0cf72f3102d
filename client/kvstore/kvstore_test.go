package kvstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/client/store/storetest"
	"github.com/parley-chat/parley/protocol"
)

// filled returns a memory backend holding a store filled by
// storetest.Fill, and its key.
func filled(t *testing.T) (*MemoryBackend, []byte) {
	t.Helper()
	b, key := NewMemoryBackend(), newKey()
	s := openStore(t, b, key)
	storetest.Fill(t, s)
	s.Close()
	return b, key
}

// TestWrongKey: another key is ErrWrongKey, without changing the
// records; a key of the wrong size is refused; records without their
// check record are ErrCorrupt, and so is a record the store does not know.
func TestWrongKey(t *testing.T) {
	b, key := filled(t)
	before := b.Records()
	if _, err := Open(context.Background(), b, newKey()); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("Open with another key: %v, want ErrWrongKey", err)
	}
	if !maps.EqualFunc(before, b.Records(), bytes.Equal) {
		t.Error("a failed Open changed the records")
	}
	if _, err := Open(context.Background(), b, key[:16]); err == nil || errors.Is(err, store.ErrWrongKey) {
		t.Errorf("Open with a 16-byte key: %v", err)
	}
	storetest.Check(t, openStore(t, b, key))

	recs := b.Records()
	recs["unknown/1"] = recs[keyIdentity]
	b.SetRecords(recs)
	if _, err := Open(context.Background(), b, key); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "unknown/1") {
		t.Errorf("Open with an unknown record: %v, want ErrCorrupt naming it", err)
	}
	delete(recs, "unknown/1")
	delete(recs, keyCheck)
	b.SetRecords(recs)
	if _, err := Open(context.Background(), b, key); !errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrWrongKey) {
		t.Errorf("Open without the check record: %v, want ErrCorrupt", err)
	}
}

// TestNoPlaintextInRecords: secrets, names and message ids appear
// neither in the records' values nor in their keys.
func TestNoPlaintextInRecords(t *testing.T) {
	b, key := NewMemoryBackend(), newKey()
	s := openStore(t, b, key)
	secrets := []string{"SECRET-MESSAGE-TEXT", "zelda-the-contact", "MLS-STATE-SECRET", "PRIVATE-KEY-BYTES", "Secret Desk Name", "RATCHET-SECRET", "KP-PRIVATE", "setting-value"}
	id := [16]byte{0xde, 0xad, 0xbe, 0xef, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0}
	storetest.Update(t, s, func(tx store.Tx) error {
		_, err := tx.AddMessage(&store.Message{Conversation: 1, ID: id, Sender: secrets[1], Text: secrets[0], Content: []byte(secrets[0])})
		return errors.Join(err,
			tx.PutContact(&store.Contact{User: secrets[1], IdentityKey: []byte(secrets[3])}),
			tx.PutGroupState(1, []byte(secrets[2])),
			tx.PutRatchetState(1, []byte(secrets[5])),
			tx.PutKeyPackage([]byte("ref"), []byte(secrets[6])),
			tx.SetSetting("s", []byte(secrets[7])),
			tx.Enqueue(&store.Outgoing{Conversation: 1, MessageID: id, Content: []byte(secrets[0])}),
			tx.PutIdentity(&store.Identity{User: "me", IdentityKey: []byte(secrets[3])}),
			tx.PutConversation(&store.Conversation{ID: 1, Name: secrets[4]}))
	})
	recs := b.Records()
	var all []byte
	for k, v := range recs {
		all = append(append(all, k...), v...)
	}
	for _, sec := range append(secrets, string(id[:]), hex.EncodeToString(id[:]), hex.EncodeToString([]byte(secrets[1]))) {
		if bytes.Contains(all, []byte(sec)) {
			t.Errorf("%q is stored in clear", sec)
		}
	}
}

// TestRecordsNotSwappable: a sealed value moved to another key does not
// open there; the reads that need it fail with ErrCorrupt naming the
// record, and the other records stay readable.
func TestRecordsNotSwappable(t *testing.T) {
	b, key := filled(t)
	s := openStore(t, b, key)
	storetest.Update(t, s, func(tx store.Tx) error { return tx.PutRatchetState(2, []byte("ratchet 2")) })
	s.Close()
	recs := b.Records()
	swap := func(a, b string) {
		if recs[a] == nil || recs[b] == nil {
			t.Fatalf("no record %s or %s", a, b)
		}
		recs[a], recs[b] = recs[b], recs[a]
	}
	swap(msgKey(1, 1), msgKey(1, 2))
	swap(convKey(prefixGroup, 1), convKey(prefixGroup, 2))
	swap(convKey(prefixConv, 1), convKey(prefixConv, 2))
	swap(kpKey([]byte("ref1")), kpKey([]byte("ref2")))
	swap(convKey(prefixCursor, 0), convKey(prefixCursor, 1))
	recs[convKey(prefixGroup, 3)] = recs[convKey(prefixRatchet, 2)] // a ratchet state moved to a group state
	b.SetRecords(recs)

	s = openStore(t, b, key)
	storetest.View(t, s, func(tx store.Tx) error {
		_, e1 := tx.Messages(1, 0, 0)
		_, e2 := tx.GroupState(1)
		_, e3 := tx.Conversation(2)
		_, e4 := tx.KeyPackage([]byte("ref1"))
		_, e5 := tx.Cursor(1)
		_, e6 := tx.GroupState(3)
		_, e7 := tx.Conversations()
		_, e8 := tx.MessageByID(1, storetest.MID('f'))
		for i, err := range []error{e1, e2, e3, e4, e5, e6, e7, e8} {
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "record ") {
				t.Errorf("read %d after swap: %v, want ErrCorrupt naming the record", i+1, err)
			} else if i == 0 {
				t.Logf("swapped messages: %v", err)
			}
		}
		if _, err := tx.Identity(); err != nil {
			t.Errorf("Identity: %v", err)
		}
		if ms, err := tx.Messages(2, 0, 0); err != nil || len(ms) != 0 {
			t.Errorf("Messages of another conversation: %v, %v", ms, err)
		}
		if r, err := tx.RatchetState(2); err != nil || string(r) != "ratchet 2" {
			t.Errorf("RatchetState(2) = %q, %v", r, err)
		}
		return nil
	})
	// Writing a damaged record again repairs it.
	storetest.Update(t, s, func(tx store.Tx) error {
		return errors.Join(tx.PutGroupState(1, []byte("new state")), tx.SetCursor(1, 12))
	})
	storetest.View(t, s, func(tx store.Tx) error {
		if g, err := tx.GroupState(1); err != nil || string(g) != "new state" {
			t.Errorf("GroupState after writing it again = %q, %v", g, err)
		}
		if c, err := tx.Cursor(1); err != nil || c != 12 {
			t.Errorf("Cursor after writing it again = %d, %v", c, err)
		}
		return nil
	})
}

// readAll reads everything a store holds through tx, for comparing
// stores, and returns the first error.
func readAll(tx store.Tx, convs []protocol.ConversationID, refs []string) (string, error) {
	var out []any
	add := func(name string, v any, err error) error {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, name, v)
		return nil
	}
	id, err := tx.Identity()
	errs := []error{add("identity", id, err)}
	ds, err := tx.Devices("")
	errs = append(errs, add("devices", ds, err))
	cs, err := tx.Contacts()
	slices.SortFunc(cs, func(a, b store.Contact) int { return strings.Compare(a.User, b.User) })
	errs = append(errs, add("contacts", cs, err))
	for _, c := range cs {
		got, err := tx.Contact(c.User)
		if errors.Is(err, store.ErrTrustRollback) {
			got, err = nil, nil
		}
		errs = append(errs, add("contact "+c.User, got, err))
	}
	cv, err := tx.Conversations()
	errs = append(errs, add("conversations", cv, err))
	for _, conv := range convs {
		name := fmt.Sprint(conv)
		g, err := tx.GroupState(conv)
		errs = append(errs, add("group "+name, g, err))
		r, err := tx.RatchetState(conv)
		errs = append(errs, add("ratchet "+name, r, err))
		ms, err := tx.Messages(conv, 0, 0)
		errs = append(errs, add("messages "+name, ms, err))
		c, err := tx.Cursor(conv)
		errs = append(errs, add("cursor "+name, c, err))
		var texts []store.MessageText
		err = tx.MessageTexts(conv, func(m *store.MessageText) error { texts = append(texts, *m); return nil })
		errs = append(errs, add("texts "+name, texts, err))
		for _, m := range ms {
			byID, err := tx.MessageByID(conv, m.ID)
			errs = append(errs, add(fmt.Sprintf("message %s/%d", name, m.Seq), byID, err))
		}
	}
	curs, err := tx.Cursors()
	errs = append(errs, add("cursors", curs, err))
	ob, err := tx.Outbox(0)
	errs = append(errs, add("outbox", ob, err))
	n, err := tx.KeyPackageCount()
	errs = append(errs, add("key packages", n, err))
	for _, ref := range refs {
		kp, err := tx.KeyPackage([]byte(ref))
		errs = append(errs, add("key package "+ref, kp, err))
	}
	set, err := tx.Settings("")
	errs = append(errs, add("settings", set, err))
	exp, err := tx.ExpiredBy(time.Unix(1<<40, 0))
	errs = append(errs, add("expired", exp, err))
	at, ok, err := tx.NextExpiry()
	errs = append(errs, add("next expiry", fmt.Sprint(at.Unix(), ok), err))
	latest, err := tx.LatestMessages()
	errs = append(errs, add("latest", latest, err))
	after := map[protocol.ConversationID]int64{}
	for _, c := range convs {
		after[c] = 1
	}
	var heads []string
	err = tx.MessageHeadsAfter(after, func(h *store.MessageHead) error { heads = append(heads, fmt.Sprintf("%+v", *h)); return nil })
	slices.Sort(heads)
	errs = append(errs, add("heads", heads, err))
	j, jerr := json.Marshal(out)
	if jerr != nil {
		return "", jerr
	}
	return string(j), errors.Join(errs...)
}

// dump reads everything s holds.
func dump(t *testing.T, s store.Store, convs []protocol.ConversationID, refs []string) string {
	t.Helper()
	var d string
	storetest.View(t, s, func(tx store.Tx) error {
		var err error
		d, err = readAll(tx, convs, refs)
		return err
	})
	return d
}

// TestDamagedRecords: whatever is done to one record, opening the store
// and reading everything neither panics nor fails with anything but
// ErrCorrupt (naming the record) and the trust check's findings.
func TestDamagedRecords(t *testing.T) {
	b, key := filled(t)
	s := openStore(t, b, key)
	storetest.Update(t, s, func(tx store.Tx) error {
		_, err := tx.AddMessage(&store.Message{Conversation: 2, ID: storetest.MID(50), Expires: storetest.Now})
		return errors.Join(err, tx.PutRatchetState(1, []byte("r")))
	})
	s.Close()
	good := b.Records()
	sealer := &Store{}
	sealer.setKeys(slices.Clone(key))
	convs := []protocol.ConversationID{0, 1, 2, 3}
	refs := []string{"ref1", "ref2"}
	damages := map[string]func(k string, v []byte) (string, []byte){
		"truncated":    func(k string, v []byte) (string, []byte) { return k, v[:len(v)/2] },
		"empty":        func(k string, v []byte) (string, []byte) { return k, nil },
		"bit flipped":  func(k string, v []byte) (string, []byte) { v = slices.Clone(v); v[len(v)-1] ^= 1; return k, v },
		"not JSON":     func(k string, v []byte) (string, []byte) { return k, sealer.seal(k, []byte("{")) },
		"JSON null":    func(k string, v []byte) (string, []byte) { return k, sealer.seal(k, []byte("null")) },
		"empty object": func(k string, v []byte) (string, []byte) { return k, sealer.seal(k, []byte("{}")) },
		"9 bytes":      func(k string, v []byte) (string, []byte) { return k, sealer.seal(k, make([]byte, 9)) },
		"other message": func(k string, v []byte) (string, []byte) {
			return k, sealer.seal(k, []byte(`{"conversation":1,"seq":1,"id":[102,0,0,0,0,0,0,0,0,0,0,0,0,0,0,90]}`))
		},
	}
	var corrupt, alarms int
	defer func() {
		t.Logf("%d records damaged in %d ways: %d found ErrCorrupt, %d trust alarms", len(good), len(damages), corrupt, alarms)
	}()
	for _, k := range slices.Sorted(maps.Keys(good)) {
		for _, name := range slices.Sorted(maps.Keys(damages)) {
			dk, dv := damages[name](k, good[k])
			recs := maps.Clone(good)
			recs[dk] = dv
			b.SetRecords(recs)
			s, err := Open(context.Background(), b, key)
			if k == keyCheck {
				if !errors.Is(err, store.ErrWrongKey) {
					t.Errorf("check record %s: Open = %v, want ErrWrongKey", name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("record %s %s: Open: %v", k, name, err)
				continue
			}
			err = s.View(context.Background(), func(tx store.Tx) error {
				_, err := readAll(tx, convs, refs)
				return err
			})
			if err != nil {
				corrupt++
			}
			if s.TrustAlarm() != nil {
				alarms++
			}
			if err != nil && (!errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "record "+k)) {
				t.Errorf("record %s %s: %v, want nothing or ErrCorrupt naming the record", k, name, err)
			}
			s.Close()
		}
	}
}

// TestCommitFailure: an Update whose commit fails changes nothing, in
// memory or stored, and the store goes on working.
func TestCommitFailure(t *testing.T) {
	b, key := filled(t)
	s := openStore(t, b, key)
	convs := []protocol.ConversationID{0, 1, 2}
	refs := []string{"ref1", "ref2"}
	before := dump(t, s, convs, refs)
	injected := errors.New("disk full")
	b.FailNextCommit(injected)
	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.AddMessage(&store.Message{Conversation: 1, ID: storetest.MID(60), Text: "lost", Expires: storetest.Now})
		return errors.Join(err,
			tx.PutGroupState(1, []byte("lost state")),
			tx.SetCursor(1, 99),
			tx.PutContact(&store.Contact{User: "dave", IdentityKey: []byte{4}}),
			tx.DeleteConversation(2),
			tx.DeleteKeyPackage([]byte("ref1")),
			tx.Enqueue(&store.Outgoing{Conversation: 1}),
			tx.SetSetting("theme", []byte("light")))
	})
	if !errors.Is(err, injected) && !strings.Contains(fmt.Sprint(err), injected.Error()) {
		t.Fatalf("Update with a failing commit = %v", err)
	}
	if after := dump(t, s, convs, refs); after != before {
		t.Errorf("a failed commit changed the store in memory:\nbefore %s\nafter  %s", before, after)
	}
	s.Close()
	s = openStore(t, b, key)
	if after := dump(t, s, convs, refs); after != before {
		t.Errorf("a failed commit changed the stored records:\nbefore %s\nafter  %s", before, after)
	}
	if a := s.TrustAlarm(); a != nil {
		t.Errorf("TrustAlarm after a failed commit: %+v", a)
	}
	storetest.Update(t, s, func(tx store.Tx) error { return tx.PutContact(&store.Contact{User: "dave", IdentityKey: []byte{4}}) })
	s.Close()
	if a := openStore(t, b, key).TrustAlarm(); a != nil {
		t.Errorf("TrustAlarm after a commit that followed a failed one: %+v", a)
	}
}

// TestRandomUpdates runs random transactions, some of which fail (by
// error, panic or a failed commit), and checks after each that the
// store in memory reads the same as a store opened on its records, and
// that a failed one changed nothing.
func TestRandomUpdates(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	b, key := NewMemoryBackend(), newKey()
	s := openStore(t, b, key)
	convs := []protocol.ConversationID{0, 1, 2, 3}
	refs := []string{"a", "b", "c"}
	users := []string{"bob", "carol", "dave"}
	conv := func() protocol.ConversationID { return convs[r.IntN(len(convs))] }
	ops := []func(tx store.Tx) error{
		func(tx store.Tx) error {
			_, err := tx.AddMessage(&store.Message{Conversation: conv(), ID: storetest.MID(byte(r.IntN(40))), Text: fmt.Sprint(r.Int()),
				Expires: time.Unix(int64(r.IntN(3))*1000, 0)})
			return err
		},
		func(tx store.Tx) error {
			c := conv()
			ms, err := tx.Messages(c, 0, 0)
			if err != nil || len(ms) == 0 {
				return err
			}
			m := ms[r.IntN(len(ms))]
			m.Text, m.Reactions = "edited", append(m.Reactions, store.Reaction{User: "x", Emoji: "+"})
			return tx.UpdateMessage(&m)
		},
		func(tx store.Tx) error {
			_, err := tx.ExpireMessage(conv(), int64(r.IntN(5)))
			return err
		},
		func(tx store.Tx) error { return tx.PutGroupState(conv(), []byte(fmt.Sprint("g", r.Int()))) },
		func(tx store.Tx) error { return tx.PutRatchetState(conv(), []byte(fmt.Sprint("r", r.Int()))) },
		func(tx store.Tx) error { return tx.SetCursor(conv(), r.Uint64N(100)) },
		func(tx store.Tx) error {
			return tx.PutConversation(&store.Conversation{ID: conv(), Name: fmt.Sprint(r.Int())})
		},
		func(tx store.Tx) error {
			if r.IntN(4) != 0 {
				return nil
			}
			return tx.DeleteConversation(conv())
		},
		func(tx store.Tx) error { return tx.Enqueue(&store.Outgoing{Conversation: conv(), Content: []byte{1}}) },
		func(tx store.Tx) error {
			q, err := tx.Outbox(0)
			if err != nil || len(q) == 0 {
				return err
			}
			if r.IntN(2) == 0 {
				return tx.Dequeue(q[r.IntN(len(q))].ID)
			}
			o := q[r.IntN(len(q))]
			o.Attempts++
			return tx.UpdateOutgoing(&o)
		},
		func(tx store.Tx) error { return tx.PutKeyPackage([]byte(refs[r.IntN(3)]), []byte(fmt.Sprint(r.Int()))) },
		func(tx store.Tx) error { return tx.DeleteKeyPackage([]byte(refs[r.IntN(3)])) },
		func(tx store.Tx) error { return tx.SetSetting(refs[r.IntN(3)], []byte(fmt.Sprint(r.Int()))) },
		func(tx store.Tx) error {
			return tx.PutContact(&store.Contact{User: users[r.IntN(3)], IdentityKey: []byte(fmt.Sprint(r.Int()))})
		},
		func(tx store.Tx) error {
			return tx.PutDevice(&store.Device{ID: protocol.DeviceID(refs[r.IntN(3)]), User: "bob"})
		},
		func(tx store.Tx) error { return tx.DeleteDevice(protocol.DeviceID(refs[r.IntN(3)])) },
		func(tx store.Tx) error { return tx.PutIdentity(&store.Identity{User: fmt.Sprint(r.Int())}) },
	}
	boom := errors.New("boom")
	for round := range 300 {
		before := dump(t, s, convs, refs)
		fail := r.IntN(4) // 0: error, 1: panic, 2: commit failure, 3: success
		if fail == 2 {
			b.FailNextCommit(boom)
		}
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return s.Update(context.Background(), func(tx store.Tx) error {
				for range 1 + r.IntN(6) {
					if err := ops[r.IntN(len(ops))](tx); err != nil {
						return err
					}
				}
				switch fail {
				case 2:
					return tx.SetSetting("x", []byte(fmt.Sprint(round))) // something to commit
				case 0:
					return boom
				case 1:
					panic(boom)
				}
				return nil
			})
		}()
		if (err != nil) != (fail != 3) {
			t.Fatalf("round %d (mode %d): Update = %v", round, fail, err)
		}
		now := dump(t, s, convs, refs)
		if fail != 3 && now != before {
			t.Fatalf("round %d: a failed Update (mode %d) changed the store:\nbefore %s\nafter  %s", round, fail, before, now)
		}
		reopened, err := Open(context.Background(), NewMemoryBackendWith(b.Records()), key)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if a := reopened.TrustAlarm(); a != nil {
			t.Fatalf("round %d: TrustAlarm on reopen: %+v", round, a)
		}
		if got := dump(t, reopened, convs, refs); got != now {
			t.Fatalf("round %d: the stored records read differently from the store in memory:\nmemory %s\nstored %s", round, now, got)
		}
		reopened.Close()
	}
}

// TestWholeRollbackUndetected states the limit of the trust check: every
// record put back together is consistent in itself.
func TestWholeRollbackUndetected(t *testing.T) {
	b, key := filled(t)
	old := b.Records()
	s := openStore(t, b, key)
	storetest.Update(t, s, func(tx store.Tx) error {
		return tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{2}, 32), Verified: true, Pinned: storetest.Now})
	})
	s.Close()
	b.SetRecords(old)
	s = openStore(t, b, key)
	if a := s.TrustAlarm(); a != nil {
		t.Fatalf("TrustAlarm = %+v: the limit changed, update the package doc", a)
	}
	storetest.View(t, s, func(tx store.Tx) error {
		if c, err := tx.Contact("bob"); err != nil || c.Verified {
			t.Errorf("Contact(bob) = %+v, %v, want the old unverified record", c, err)
		}
		return nil
	})
}

// BenchmarkUpdateMessage measures the Update that receiving a message
// makes: the message, the ratchet state and the cursor.
func BenchmarkUpdateMessage(b *testing.B) {
	s, err := Open(context.Background(), NewMemoryBackend(), newKey())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ratchet := make([]byte, 512)
	content := make([]byte, 200)
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		if err := receiveMessage(s, i, ratchet, content); err != nil {
			b.Fatal(err)
		}
	}
}

// receiveMessage makes the Update that receiving message i makes: the
// message, the conversation's ratchet state and its cursor.
func receiveMessage(s *Store, i uint64, ratchet, content []byte) error {
	return s.Update(context.Background(), func(tx store.Tx) error {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:], i)
		if _, err := tx.AddMessage(&store.Message{Conversation: 1, ID: id, Text: "hello there", Content: content}); err != nil {
			return err
		}
		if err := tx.PutRatchetState(1, ratchet); err != nil {
			return err
		}
		return tx.SetCursor(1, i)
	})
}

// BenchmarkOpen measures opening a store that holds n received messages
// (each with the records receiving one leaves: the message and the
// conversation's ratchet state and cursor): Open reads and decodes every
// record, so its time grows with the history.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			key := newKey()
			be := NewMemoryBackend()
			s, err := Open(context.Background(), be, key)
			if err != nil {
				b.Fatal(err)
			}
			ratchet := make([]byte, 512)
			content := make([]byte, 200)
			for i := range uint64(n) {
				if err := receiveMessage(s, i, ratchet, content); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			b.ReportAllocs()
			for b.Loop() {
				if s, err = Open(context.Background(), be, key); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
			// What was opened is the history written.
			s = openStore(b, be, key)
			storetest.View(b, s, func(tx store.Tx) error {
				ms, err := tx.LastMessages(1, 1)
				if err != nil || len(ms) != 1 || ms[0].Seq != int64(n) {
					b.Errorf("last messages: %d (%v); want one, of seq %d", len(ms), err, n)
				} else if ms[0].Text != "hello there" {
					b.Errorf("last message's text %q", ms[0].Text)
				}
				return nil
			})
		})
	}
}

// TestConcurrentUse: Updates and Views from several goroutines are
// serialized (run it with -race).
func TestConcurrentUse(t *testing.T) {
	s := openStore(t, NewMemoryBackend(), newKey())
	const workers, rounds = 4, 50
	done := make(chan error, workers)
	for w := range workers {
		go func() {
			var err error
			for i := range rounds {
				err = errors.Join(err, s.Update(context.Background(), func(tx store.Tx) error {
					_, err := tx.AddMessage(&store.Message{Conversation: 1, ID: storetest.MID(byte(w*rounds + i))})
					return errors.Join(err, tx.SetCursor(protocol.ConversationID(w), uint64(i)))
				}))
				err = errors.Join(err, s.View(context.Background(), func(tx store.Tx) error {
					_, err := tx.LastMessages(1, 3)
					return err
				}))
			}
			done <- err
		}()
	}
	for range workers {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	storetest.View(t, s, func(tx store.Tx) error {
		ms, err := tx.Messages(1, 0, 0)
		if err != nil || len(ms) != workers*rounds || ms[len(ms)-1].Seq != workers*rounds {
			t.Errorf("Messages = %d, %v; want %d in sequence", len(ms), err, workers*rounds)
		}
		return nil
	})
}
