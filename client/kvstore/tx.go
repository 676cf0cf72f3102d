package kvstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/parley-chat/parley/client/store"
)

// Tx is a transaction on the store, valid only inside the function given
// to [Store.Update] or [Store.View].
type Tx struct {
	s        *Store
	readOnly bool
	// puts and dels are the records to commit: the sealed values written
	// and the keys deleted. A key is in at most one of them.
	puts map[string][]byte
	dels map[string]bool
	// journal undoes the changes made in memory, last first.
	journal []func()
}

// errReadOnly is the error of a write in a View.
func errReadOnly(op string) error {
	return fmt.Errorf("kvstore: %s: read-only transaction", op)
}

// writable fails in a View.
func (t *Tx) writable(op string) error {
	if t.readOnly {
		return errReadOnly(op)
	}
	return nil
}

// onUndo records how to undo a change made in memory.
func (t *Tx) onUndo(f func()) { t.journal = append(t.journal, f) }

// undo undoes every change made in memory, last first.
func (t *Tx) undo() {
	for i := len(t.journal) - 1; i >= 0; i-- {
		t.journal[i]()
	}
	t.journal = nil
}

// put records a sealed record to commit, and forgets that the key was
// damaged.
func (t *Tx) put(key string, sealed []byte) {
	t.puts[key] = sealed
	delete(t.dels, key)
	t.clearDamage(key)
}

// del records a record to delete.
func (t *Tx) del(key string) {
	delete(t.puts, key)
	t.dels[key] = true
	t.clearDamage(key)
}

func (t *Tx) clearDamage(key string) {
	st := t.s.st
	if err, ok := st.damaged[key]; ok {
		delete(st.damaged, key)
		t.onUndo(func() { st.damaged[key] = err })
	}
}

// sealJSON encodes v as JSON and seals it for key.
func (t *Tx) sealJSON(op, key string, v any) ([]byte, []byte, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("kvstore: %s: %v", op, err)
	}
	return p, t.s.seal(key, p), nil
}

// putJSON seals v as JSON under key and decodes the JSON again into a
// fresh value for the store to hold, so that what is held is what a
// reopened store reads.
func putJSON[T any](t *Tx, op, key string, v *T) (*T, error) {
	if err := t.writable(op); err != nil {
		return nil, err
	}
	p, sealed, err := t.sealJSON(op, key, v)
	if err != nil {
		return nil, err
	}
	held := new(T)
	if err := json.Unmarshal(p, held); err != nil {
		return nil, fmt.Errorf("kvstore: %s: %v", op, err)
	}
	clear(p)
	t.put(key, sealed)
	return held, nil
}

// putBytes seals p under key.
func (t *Tx) putBytes(key string, p []byte) { t.put(key, t.s.seal(key, p)) }

// commit hands the records written to the backend.
func (t *Tx) commit(ctx context.Context) error {
	if len(t.puts) == 0 && len(t.dels) == 0 {
		return nil
	}
	dels := make([]string, 0, len(t.dels))
	for k := range t.dels {
		dels = append(dels, k)
	}
	slices.Sort(dels)
	if err := t.s.b.Commit(ctx, t.puts, dels); err != nil {
		return fmt.Errorf("commit %d records: %v", len(t.puts)+len(dels), err)
	}
	return nil
}

// damage returns the error of the damaged record key, or nil.
func (t *Tx) damage(op, key string) error {
	if err, ok := t.s.st.damaged[key]; ok {
		return fmt.Errorf("kvstore: %s: %w", op, err)
	}
	return nil
}

// damageUnder returns the error of a damaged record whose key starts
// with prefix, or nil.
func (t *Tx) damageUnder(op, prefix string) error {
	keys := make([]string, 0)
	for k := range t.s.st.damaged {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return t.damage(op, keys[0])
}

// setMap sets m[k] = v, journaling the previous entry.
func setMap[K comparable, V any](t *Tx, m map[K]V, k K, v V) {
	old, had := m[k]
	m[k] = v
	t.onUndo(func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

// deleteMap deletes m[k], journaling the entry.
func deleteMap[K comparable, V any](t *Tx, m map[K]V, k K) {
	old, had := m[k]
	if !had {
		return
	}
	delete(m, k)
	t.onUndo(func() { m[k] = old })
}

// digest returns the digest of a sealed contact record that the trust
// root keeps.
func digest(sealed []byte) []byte {
	d := sha256.Sum256(sealed)
	return d[:]
}

// notFound wraps store.ErrNotFound for op.
func notFound(op string) error {
	return fmt.Errorf("kvstore: %s: %w", op, store.ErrNotFound)
}
