package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/storetest"
)

// BenchmarkAppendBatch measures group commit: 100 application entries of
// 256 bytes over 10 conversations per transaction, as the SQLite
// benchmark does. It reports entries/s; durability is the server's
// (synchronous_commit, fsync).
func BenchmarkAppendBatch(b *testing.B) {
	const perTx, convs = 100, 10
	s := open(b)
	ctx := context.Background()
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "bench", IdentityKey: []byte("k"), Device: store.Device{ID: "bench-1", SignatureKey: []byte("s")}})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]store.NewEntry, perTx)
	for i := range convs {
		c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte(fmt.Sprint("g", i)), Creator: d.ID})
		if err != nil {
			b.Fatal(err)
		}
		for j := i; j < perTx; j += convs {
			batch[j] = store.NewEntry{Conversation: c.ID, Sender: d.ID, Data: make([]byte, 256)}
		}
	}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		now := time.Now()
		for i := range batch {
			batch[i].Created = now
		}
		res, err := s.AppendEntries(ctx, batch)
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
		n += perTx
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkHotPaths runs storetest's benchmark of the paths every request
// or message takes.
func BenchmarkHotPaths(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) store.Store { return openSchema(b, freshSchema(b, true)) })
}

func BenchmarkClaimBatch(b *testing.B) {
	storetest.BenchmarkClaimBatch(b, func(b *testing.B) store.Store { return openSchema(b, freshSchema(b, true)) })
}
