//go:build js && wasm

package kvstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store/storetest"
)

// dbSeq numbers the databases of one run of the tests.
var dbSeq atomic.Int64

// TestIndexedDBStore runs the conformance suite on IndexedDB, a fresh
// database for each test.
func TestIndexedDBStore(t *testing.T) {
	run := time.Now().UnixNano()
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		name := fmt.Sprintf("kvstore-test-%d-%d", run, dbSeq.Add(1))
		t.Cleanup(func() {
			if err := DeleteIndexedDB(context.Background(), name); err != nil {
				t.Errorf("delete database: %v", err)
			}
		})
		return &opener{key: newKey(), backend: func(t *testing.T) Backend {
			b, err := OpenIndexedDB(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}}
	})
}

// TestIndexedDBBackend: Commit writes puts and deletes together, Load
// reads them back, byte for byte, in a new connection.
func TestIndexedDBBackend(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("kvstore-backend-%d", time.Now().UnixNano())
	defer DeleteIndexedDB(ctx, name)
	b, err := OpenIndexedDB(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := b.Load(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("Load of a new database = %v, %v", recs, err)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := b.Commit(ctx, map[string][]byte{"a": {1, 2, 3}, "b": {}, "c": big}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, map[string][]byte{"a": {4}}, []string{"b", "missing"}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = OpenIndexedDB(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	recs, err := b.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || string(recs["a"]) != "\x04" || string(recs["c"]) != string(big) {
		t.Errorf("Load = %d records (a %x, c %d bytes)", len(recs), recs["a"], len(recs["c"]))
	}

	// A commit whose context ends at once is aborted or completes, and
	// says which: all of its records are there, or none.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	puts := map[string][]byte{"x": {1}, "y": {2}, "z": big}
	err = b.Commit(cctx, puts, []string{"a"})
	recs, lerr := b.Load(ctx)
	if lerr != nil {
		t.Fatal(lerr)
	}
	t.Logf("commit with an ended context: %v", err)
	_, hasA := recs["a"]
	n := 0
	for k := range puts {
		if _, ok := recs[k]; ok {
			n++
		}
	}
	if err == nil && (n != 3 || hasA) || err != nil && (n != 0 || !hasA) {
		t.Errorf("commit with an ended context = %v, and %d of its 3 puts are stored, a deleted %v", err, n, !hasA)
	}
}
