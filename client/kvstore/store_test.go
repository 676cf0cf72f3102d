package kvstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/client/store/storetest"
)

// TestStore runs the conformance suite on the memory backend.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		b := NewMemoryBackend()
		return &opener{key: newKey(), backend: func(*testing.T) Backend { return b }}
	})
}

// opener opens stores with one key on the backend that backend opens
// each time, and changes the records through the backend as someone
// holding them but not the key could.
type opener struct {
	key     []byte
	backend func(t *testing.T) Backend
}

func (o *opener) Open(t *testing.T) store.Store { return openStore(t, o.backend(t), o.key) }

func openStore(t testing.TB, b Backend, key []byte) *Store {
	t.Helper()
	s, err := Open(context.Background(), b, key)
	if err != nil {
		b.Close()
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newKey returns a random store key.
func newKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// ContactKey computes user's record key from the store key, as the
// store does.
func (o *opener) ContactKey(t *testing.T, user string) string {
	s := &Store{}
	s.setKeys(o.key)
	return prefixContact + hex.EncodeToString(s.blind("contact", []byte(user)))
}

// recordsUnder returns the stored records whose keys start with prefix.
func (o *opener) recordsUnder(t *testing.T, prefix string) storetest.Records {
	t.Helper()
	b := o.backend(t)
	defer b.Close()
	recs, err := b.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := storetest.Records{}
	for k, v := range recs {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// replaceUnder replaces the stored records whose keys start with prefix
// by r.
func (o *opener) replaceUnder(t *testing.T, prefix string, r storetest.Records) {
	t.Helper()
	var dels []string
	for k := range o.recordsUnder(t, prefix) {
		if _, ok := r[k]; !ok {
			dels = append(dels, k)
		}
	}
	b := o.backend(t)
	defer b.Close()
	if err := b.Commit(context.Background(), r, dels); err != nil {
		t.Fatal(err)
	}
}

func (o *opener) Contacts(t *testing.T) storetest.Records { return o.recordsUnder(t, prefixContact) }

func (o *opener) SetContacts(t *testing.T, r storetest.Records) { o.replaceUnder(t, prefixContact, r) }

func (o *opener) TrustRoot(t *testing.T) storetest.Records { return o.recordsUnder(t, keyTrustRoot) }

func (o *opener) SetTrustRoot(t *testing.T, r storetest.Records) { o.replaceUnder(t, keyTrustRoot, r) }

func (o *opener) DeleteTrustVersion(t *testing.T) { o.replaceUnder(t, keyTrustVersion, nil) }

var _ storetest.Tamperer = (*opener)(nil)
