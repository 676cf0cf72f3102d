package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// benchLog is the number of entries in each conversation of Benchmark:
// AckBatch moves cursors forward through them, so runs of up to benchLog
// iterations measure forward acknowledgements only.
const benchLog = 2000

// Benchmark measures the store's hot paths as the delivery service uses
// them on every request or message, the same on every backend: session
// lookup, membership and conversation reads, a page of the log, and a
// durable batch of acknowledgements. open returns a fresh, empty store;
// Benchmark closes it.
func Benchmark(b *testing.B, open func(b *testing.B) store.Store) {
	const convs = 20
	s := open(b)
	defer s.Close()
	ctx := context.Background()
	type member struct {
		device store.DeviceID
		conv   store.ConversationID
		token  []byte
	}
	var ms []member
	for i := range convs {
		_, d, err := s.CreateUser(ctx, store.NewUser{Name: fmt.Sprint("bench", i), IdentityKey: []byte(fmt.Sprint("k", i)), Created: t0,
			Device: store.Device{ID: store.DeviceID(fmt.Sprint("bench-", i)), SignatureKey: []byte(fmt.Sprint("s", i)), Created: t0}})
		if err != nil {
			b.Fatal(err)
		}
		c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte(fmt.Sprint("g", i)), Suite: suite, Tree: []store.TreeNode{{Index: 0, Data: make([]byte, 4096)}}, GroupInfo: make([]byte, 1024), Creator: d.ID, Created: t0})
		if err != nil {
			b.Fatal(err)
		}
		token := []byte(fmt.Sprint("token", i))
		if err := s.CreateSession(ctx, store.Session{TokenHash: token, Device: d.ID, User: d.User, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		for range benchLog / 500 {
			batch := make([]store.NewEntry, 500)
			for j := range batch {
				batch[j] = store.NewEntry{Conversation: c.ID, Sender: d.ID, Data: make([]byte, 256), Created: t0}
			}
			if _, err := s.AppendEntries(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		ms = append(ms, member{d.ID, c.ID, token})
	}
	now := t0.Add(time.Minute)
	b.Run("Session", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Session(ctx, ms[i%convs].token, now); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Membership", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m := ms[i%convs]
			if _, err := s.Membership(ctx, m.conv, m.device); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Conversation", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Conversation(ctx, ms[i%convs].conv); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Entries100", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			es, err := s.Entries(ctx, ms[i%convs].conv, uint64(i%(benchLog-100)), 100)
			if err != nil || len(es) != 100 {
				b.Fatal(len(es), err)
			}
			i++
		}
	})
	b.Run("AckBatch", func(b *testing.B) {
		b.ReportAllocs()
		acks := make([]store.Ack, convs)
		seq := uint64(0)
		for b.Loop() {
			seq = seq%benchLog + 1
			for j, m := range ms {
				acks[j] = store.Ack{Device: m.device, Conversation: m.conv, Seq: seq}
			}
			if _, err := s.AckBatch(ctx, acks); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimBatch measures one batched claim of 500 users of two
// devices each (ClaimKeyPackagesBatch under the default per-device
// budget), with KeyPackages of X-Wing's size (2.9 KB): a 10,000-member
// channel takes 20 of them. The first iterations hand out one-time
// packages, the later ones the last-resort packages. open returns a
// fresh, empty store; BenchmarkClaimBatch closes it.
func BenchmarkClaimBatch(b *testing.B, open func(b *testing.B) store.Store) {
	const users = 500
	s := open(b)
	defer s.Close()
	ctx := context.Background()
	ids := make([]store.UserID, users)
	var kps []store.KeyPackage
	for i := range users {
		u, d, err := s.CreateUser(ctx, store.NewUser{Name: fmt.Sprint("user", i), IdentityKey: []byte(fmt.Sprint("k", i)), Created: t0,
			Device: store.Device{ID: store.DeviceID(fmt.Sprintf("dev%04d-1", i)), SignatureKey: []byte(fmt.Sprint("s", i)), Created: t0}})
		if err != nil {
			b.Fatal(err)
		}
		d2, err := s.AddDevice(ctx, store.Device{ID: store.DeviceID(fmt.Sprintf("dev%04d-2", i)), User: u.ID, SignatureKey: []byte(fmt.Sprint("t", i)), Created: t0})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
		for _, dev := range []store.DeviceID{d.ID, d2.ID} {
			for j := range 3 {
				kps = append(kps, store.KeyPackage{Ref: []byte(fmt.Sprint(dev, "/", j)), Device: dev, Suite: suite, Data: make([]byte, 2900),
					LastResort: j == 2, Expires: t0.Add(24 * time.Hour), Created: t0})
			}
		}
	}
	for len(kps) > 0 {
		n := min(len(kps), 600)
		if err := s.AddKeyPackages(ctx, kps[:n]); err != nil {
			b.Fatal(err)
		}
		kps = kps[n:]
	}
	budget := store.ClaimBudget{Burst: 5, Interval: 250 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.ClaimKeyPackagesBatch(ctx, ids, suite, t0, budget)
		if err != nil || len(got) != users || len(got[0].KeyPackages) != 2 {
			b.Fatalf("claim batch: %d users, %v", len(got), err)
		}
	}
}
