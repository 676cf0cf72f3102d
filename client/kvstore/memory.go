package kvstore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
)

// MemoryBackend is a [Backend] that keeps the records in memory, for
// tests: it outlives the stores opened on it, so a test can close a
// store and open another on the same records, make the next commit fail,
// and read or change the records as someone holding them but not the
// key could.
type MemoryBackend struct {
	mu       sync.Mutex
	recs     map[string][]byte
	failNext error
	commits  int
}

// NewMemoryBackend returns an empty MemoryBackend.
func NewMemoryBackend() *MemoryBackend {
	return &MemoryBackend{recs: map[string][]byte{}}
}

// NewMemoryBackendWith returns a MemoryBackend holding a copy of recs.
func NewMemoryBackendWith(recs map[string][]byte) *MemoryBackend {
	m := NewMemoryBackend()
	m.SetRecords(recs)
	return m
}

// Load returns a copy of every record.
func (m *MemoryBackend) Load(ctx context.Context) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copyRecords(), nil
}

// Commit applies puts and deletes, or fails with the error given to
// FailNextCommit, changing nothing.
func (m *MemoryBackend) Commit(ctx context.Context, puts map[string][]byte, deletes []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for k, v := range puts {
		m.recs[k] = slices.Clone(v)
	}
	for _, k := range deletes {
		delete(m.recs, k)
	}
	m.commits++
	return nil
}

// Close does nothing: the records stay for the next store.
func (m *MemoryBackend) Close() error { return nil }

// FailNextCommit makes the next Commit fail with err.
func (m *MemoryBackend) FailNextCommit(err error) {
	if err == nil {
		err = errors.New("kvstore: memory backend: commit failed")
	}
	m.mu.Lock()
	m.failNext = err
	m.mu.Unlock()
}

// Commits returns the number of Commits that succeeded.
func (m *MemoryBackend) Commits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commits
}

// Records returns a copy of the records.
func (m *MemoryBackend) Records() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copyRecords()
}

// SetRecords replaces the records by a copy of recs.
func (m *MemoryBackend) SetRecords(recs map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = map[string][]byte{}
	for k, v := range recs {
		m.recs[k] = slices.Clone(v)
	}
}

func (m *MemoryBackend) copyRecords() map[string][]byte {
	out := make(map[string][]byte, len(m.recs))
	for k, v := range maps.All(m.recs) {
		out[k] = slices.Clone(v)
	}
	return out
}
