// Package kvstore is the Parley client's local store for the browser: the
// records of package store held in memory, decoded and indexed as each
// query needs them, and persisted as sealed values in a key-value
// [Backend] (IndexedDB in the browser, see OpenIndexedDB; an in-memory
// backend for tests).
//
// # Encryption at rest
//
// Every value is sealed with XChaCha20-Poly1305 under a key derived with
// HKDF from the 32-byte store key given to [Open]; the record's key is
// the associated data, so a value moved to another key fails to open
// ([store.ErrCorrupt]). A sealed check record tells a wrong key
// ([store.ErrWrongKey]) from damaged records. Record keys do not reveal
// who the user talks to: a contact's key is a keyed hash (HMAC-SHA-256)
// of the user name, and message ids are only inside sealed values. What
// stays in clear is what the server knows anyway: conversation numbers,
// device ids, KeyPackage references, the number and order of messages
// and the size of values. Nonces are 24 random bytes drawn for every
// write.
//
// # Transactions
//
// [Store.Update] runs its function against the records in memory,
// journaling how to undo each change. If the function fails or panics,
// the journal undoes the changes; otherwise the changed records are
// sealed and handed to [Backend.Commit] in one call, which writes all of
// them or none, and the journal undoes the changes in memory if the
// commit fails. An Update that returns nil is therefore durable, and
// the state in memory is always the state stored.
//
// # Trust records
//
// As in client/sqlitestore, a sealed trust root lists the digest of
// every contact's sealed record with a version, kept a second time in a
// record of its own; Open checks them and refuses, with
// [store.ErrTrustRollback], the contacts whose records were deleted or
// replaced by another copy ([store.TrustAlarm]). A rollback of every
// record together cannot be seen from inside the store.
//
// # Damaged records
//
// A record that does not open or decode makes the reads that need it
// fail with an error wrapping [store.ErrCorrupt] that names the record,
// until it is written again; the other records stay usable.
package kvstore

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/parley-chat/parley/client/store"
)

// KeySize is the size of the store key.
const KeySize = 32

// Backend keeps the sealed records. Keys are short ASCII strings.
type Backend interface {
	// Load returns every record.
	Load(ctx context.Context) (map[string][]byte, error)
	// Commit writes puts and removes deletes, all of them or none; the
	// change is durable when it returns nil. The backend may keep the
	// maps' values: the store does not change them afterwards.
	Commit(ctx context.Context, puts map[string][]byte, deletes []string) error
	// Close releases the backend.
	Close() error
}

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// checkPlaintext is sealed in the check record to recognize the right key.
const checkPlaintext = "parley kvstore key check v1"

// Store is an open store. Close it when done.
type Store struct {
	mu       sync.RWMutex
	b        Backend
	aead     cipher.AEAD
	indexKey [32]byte
	st       *state
	alarm    *store.TrustAlarm
	closed   bool
}

// Open loads the records of b and opens them with key, the 32-byte store
// key, creating a new store if b holds no record. It returns an error
// wrapping [store.ErrWrongKey] if key does not open the store, and one
// wrapping [store.ErrCorrupt] if the records cannot form a store. On
// success the Store owns b and closes it on Close.
func Open(ctx context.Context, b Backend, key []byte) (*Store, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("kvstore: open: key is %d bytes, want %d", len(key), KeySize)
	}
	s := &Store{b: b}
	s.setKeys(key)
	if err := s.load(ctx); err != nil {
		return nil, fmt.Errorf("kvstore: open: %w", err)
	}
	return s, nil
}

// load reads the records, creates a new store or checks an existing one,
// and commits what opening changed.
func (s *Store) load(ctx context.Context) error {
	recs, err := s.b.Load(ctx)
	if err != nil {
		return fmt.Errorf("load records: %v", err)
	}
	t := &Tx{s: s, puts: map[string][]byte{}, dels: map[string]bool{}}
	if len(recs) == 0 {
		s.st = newState()
		t.put(keyCheck, s.seal(keyCheck, []byte(checkPlaintext)))
		t.writeTrustRoot(&trustRoot{Version: 1, Rows: map[string][]byte{}})
	} else {
		check, ok := recs[keyCheck]
		if !ok {
			return fmt.Errorf("%w: record %s missing", store.ErrCorrupt, keyCheck)
		}
		if p, err := s.open(keyCheck, check); err != nil || string(p) != checkPlaintext {
			return store.ErrWrongKey
		}
		if s.st, err = s.decodeState(recs); err != nil {
			return err
		}
		if s.alarm, err = t.checkTrust(); err != nil {
			return err
		}
	}
	return t.commit(ctx)
}

// setKeys derives the sealing and index keys from the store key.
func (s *Store) setKeys(master []byte) {
	seal, err1 := hkdf.Key(sha256.New, master, nil, "parley kvstore v1 seal", chacha20poly1305.KeySize)
	index, err2 := hkdf.Key(sha256.New, master, nil, "parley kvstore v1 index", len(s.indexKey))
	if err1 != nil || err2 != nil {
		panic("kvstore: hkdf: " + errors.Join(err1, err2).Error()) // cannot happen for these lengths
	}
	aead, err := chacha20poly1305.NewX(seal)
	if err != nil {
		panic("kvstore: " + err.Error()) // the key size is fixed
	}
	s.aead = aead
	copy(s.indexKey[:], index)
	clear(seal)
	clear(index)
}

// ad returns the associated data binding a value to its record key.
func ad(key string) []byte {
	return append([]byte("parley kvstore v1\x00"), key...)
}

// seal seals plaintext for the record key.
func (s *Store) seal(key string, plaintext []byte) []byte {
	n := 1 + chacha20poly1305.NonceSizeX
	out := make([]byte, n, n+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plaintext, ad(key))
}

// open opens the sealed value of the record key.
func (s *Store) open(key string, sealed []byte) ([]byte, error) {
	n := 1 + chacha20poly1305.NonceSizeX
	if len(sealed) < n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: record %s: malformed", store.ErrCorrupt, key)
	}
	p, err := s.aead.Open(nil, sealed[1:n], sealed[n:], ad(key))
	if err != nil {
		return nil, fmt.Errorf("%w: record %s", store.ErrCorrupt, key)
	}
	return p, nil
}

// blind returns the keyed hash that stands for a name in a record key.
func (s *Store) blind(kind string, name []byte) []byte {
	m := hmac.New(sha256.New, s.indexKey[:])
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(name)
	return m.Sum(nil)[:16]
}

// Update runs fn in a write transaction and commits it if fn returns nil;
// otherwise (or if fn panics) it undoes fn's changes, leaving the store
// as it was. The commit is durable when Update returns nil.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("kvstore: update: store closed")
	}
	t := &Tx{s: s, puts: map[string][]byte{}, dels: map[string]bool{}}
	defer func() {
		if p := recover(); p != nil {
			t.undo()
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		t.undo()
		return err
	}
	if err := t.commit(ctx); err != nil {
		t.undo()
		return fmt.Errorf("kvstore: %w", err)
	}
	return nil
}

// View runs fn in a transaction that may only read.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errors.New("kvstore: view: store closed")
	}
	return fn(&Tx{s: s, readOnly: true})
}

// TrustAlarm returns what Open found wrong with the contacts' records,
// or nil if they were intact. The contacts it names stay refused
// (ErrTrustRollback) until they are written again.
func (s *Store) TrustAlarm() *store.TrustAlarm {
	if s.alarm == nil {
		return nil
	}
	a := *s.alarm
	a.Users = append([]string(nil), a.Users...)
	return &a
}

// Close closes the backend and forgets the records and keys. Closing a
// closed Store does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.st = nil
	s.aead = nil
	clear(s.indexKey[:])
	if err := s.b.Close(); err != nil {
		return fmt.Errorf("kvstore: close: %v", err)
	}
	return nil
}

// Store and Tx implement the store package's interfaces.
var (
	_ store.Store = (*Store)(nil)
	_ store.Tx    = (*Tx)(nil)
)
