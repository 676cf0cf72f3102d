package sqlitestore

import (
	"encoding/hex"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/client/store/storetest"
)

// TestStore runs the conformance suite on store files.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		return &opener{path: filepath.Join(t.TempDir(), "store.db")}
	})
}

// opener opens a store file with the passphrase "pw" and changes its
// rows with SQL, as someone with the file but without the key could.
type opener struct{ path string }

func (o *opener) Open(t *testing.T) store.Store { return openStore(t, o.path, passOpts("pw")) }

// ContactKey computes the blinded name of user from the header's salt
// and the passphrase, without opening the store.
func (o *opener) ContactKey(t *testing.T, user string) string {
	t.Helper()
	h := map[string][]byte{}
	for _, r := range rawRows(t, o.path, `SELECT name, value FROM header`) {
		h[string(r[0])] = r[1]
	}
	p, err := parseKDF(h)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{}
	s.setKeys(argon2.IDKey([]byte("pw"), h["argon2id.salt"], p.Time, p.MemoryKiB, p.Threads, KeySize))
	return hex.EncodeToString(s.blind("contact", []byte(user)))
}

func (o *opener) Contacts(t *testing.T) storetest.Records {
	out := storetest.Records{}
	for _, r := range rawRows(t, o.path, `SELECT h, v FROM contacts`) {
		out[hex.EncodeToString(r[0])] = r[1]
	}
	return out
}

func (o *opener) SetContacts(t *testing.T, r storetest.Records) {
	rawExec(t, o.path, `DELETE FROM contacts`)
	for k, v := range r {
		h, err := hex.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		rawExec(t, o.path, `INSERT INTO contacts (h, v) VALUES (?, ?)`, h, v)
	}
}

func (o *opener) TrustRoot(t *testing.T) storetest.Records {
	out := storetest.Records{}
	for _, r := range rawRows(t, o.path, `SELECT k, v FROM trust`) {
		out[string(r[0])] = r[1]
	}
	return out
}

func (o *opener) SetTrustRoot(t *testing.T, r storetest.Records) {
	rawExec(t, o.path, `DELETE FROM trust`)
	for k, v := range r {
		rawExec(t, o.path, `INSERT INTO trust (k, v) VALUES (?, ?)`, k, v)
	}
}

func (o *opener) DeleteTrustVersion(t *testing.T) {
	rawExec(t, o.path, `DELETE FROM header WHERE name = 'trust_version'`)
}

var _ storetest.Tamperer = (*opener)(nil)
