package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/storetest"
)

// BenchmarkAppendBatch measures group commit: batches of 256-byte
// application entries per durable (synchronous=FULL) transaction, over
// several conversations, each with its own sender device (as under load,
// where every conversation's head and every sender's membership is looked
// up once per batch). It reports entries/s.
func BenchmarkAppendBatch(b *testing.B) {
	for _, bc := range []struct{ perTx, convs int }{{100, 10}, {100, 100}, {256, 100}, {1024, 100}} {
		b.Run(fmt.Sprintf("entries=%d/convs=%d", bc.perTx, bc.convs), func(b *testing.B) {
			benchAppend(b, bc.perTx, bc.convs)
		})
	}
}

func benchAppend(b *testing.B, perTx, convs int) {
	s := open(b)
	defer s.Close()
	ctx := context.Background()
	batch := make([]store.NewEntry, perTx)
	for i := range convs {
		_, d, err := s.CreateUser(ctx, store.NewUser{Name: fmt.Sprint("bench", i), IdentityKey: []byte(fmt.Sprint("k", i)), Device: store.Device{ID: store.DeviceID(fmt.Sprint("bench-", i)), SignatureKey: []byte(fmt.Sprint("s", i))}})
		if err != nil {
			b.Fatal(err)
		}
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
	storetest.Benchmark(b, func(b *testing.B) store.Store { return open(b) })
}

func BenchmarkClaimBatch(b *testing.B) {
	storetest.BenchmarkClaimBatch(b, func(b *testing.B) store.Store { return open(b) })
}
