package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
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

// BenchmarkLargeCommitWrites measures what SQLite writes for a commit in
// a conversation of 10,000 members on X-Wing, at the store: a 40 KB
// commit, a 3 KB GroupInfo, a 2 KB follower state and the 15 nodes of a
// member's direct path (a leaf of 1,380 bytes and parents of 1,240, as
// X-Wing's keys with Ed25519 signatures make them: 1,365–1,398 and
// 1,221–1,253 in a group built by the mls package), in a tree of 19,999
// such nodes, with the default tree history of 1,000 epochs. It runs
// warm commits first, into the steady state where commits delete old
// changes and snapshots as they add new ones, then reports the bytes the
// process wrote (write system calls: the WAL, and the database file at
// checkpoints) per commit: wal-KiB/commit, the median commit, which ran
// no checkpoint and wrote no snapshot, and KiB/commit, all of them with
// their share of the checkpoints, a last one included, and of the
// snapshots, which SnapshotTree writes after the commits as the delivery
// service does (one every ~1,370 commits here: run at least a few
// thousand). It also reports the commits' time, median and slowest, the
// slowest snapshot, and the time to read the current tree at the end.
// Linux only (/proc/self/io).
//
//	go test -run '^$' -bench LargeCommitWrites -benchtime 5000x -timeout 30m ./server/store/sqlite
func BenchmarkLargeCommitWrites(b *testing.B) {
	if _, err := os.Stat("/proc/self/io"); err != nil {
		b.Skip("needs /proc/self/io")
	}
	const members, leafSize, parentSize, history, warm = 10000, 1380, 1240, 1000, 3000
	s := open(b)
	defer s.Close()
	ctx := context.Background()
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "bench", IdentityKey: []byte("k"), Device: store.Device{ID: "bench-1", SignatureKey: []byte("s")}})
	if err != nil {
		b.Fatal(err)
	}
	random := func(n int) []byte {
		p := make([]byte, n)
		rand.Read(p)
		return p
	}
	nodeSize := func(x int) int {
		if x%2 == 0 {
			return leafSize
		}
		return parentSize
	}
	tree := make([]store.TreeNode, 2*members-1)
	for x := range tree {
		tree[x] = store.TreeNode{Index: uint32(x), Data: random(nodeSize(x))}
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("large"), Suite: 0xF001, GroupInfo: random(3000), Tree: tree, FollowerState: random(2000), Creator: d.ID})
	if err != nil {
		b.Fatal(err)
	}
	epoch := uint64(0)
	var took, snapshots []time.Duration
	commit := func() int64 {
		// The direct path of a random member's leaf (levels 1 to 14 of
		// a tree of 16,384 leaves), within the 19,999 nodes.
		x := 2 * mrand.IntN(members)
		changes := []store.TreeNode{{Index: uint32(x), Data: random(leafSize)}}
		for lvl := 1; lvl < 15; lvl++ {
			if p := x&^(1<<(lvl+1)-1) | (1<<lvl - 1); p < len(tree) {
				changes = append(changes, store.TreeNode{Index: uint32(p), Data: random(parentSize)})
			}
		}
		before := writtenBytes(b)
		t0 := time.Now()
		if _, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: epoch, Sender: d.ID, Data: random(40000), GroupInfo: random(3000),
			FollowerState: random(2000), Tree: changes, TreeHistory: history, Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
		epoch++
		// As the delivery service does after every commit.
		t0 = time.Now()
		wrote, err := s.SnapshotTree(ctx, c.ID)
		if err != nil {
			b.Fatal(err)
		}
		if wrote {
			snapshots = append(snapshots, time.Since(t0))
		}
		return writtenBytes(b) - before
	}
	checkpoint := func() int64 {
		before := writtenBytes(b)
		if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		return writtenBytes(b) - before
	}
	for range warm {
		commit()
	}
	checkpoint()
	took, snapshots = took[:0], snapshots[:0]
	var each []int64
	var total int64
	for b.Loop() {
		w := commit()
		each = append(each, w)
		total += w
	}
	total += checkpoint()
	slices.Sort(each)
	slices.Sort(took)
	b.ReportMetric(float64(each[len(each)/2])/1024, "wal-KiB/commit")
	b.ReportMetric(float64(total)/float64(len(each))/1024, "KiB/commit")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(len(snapshots)), "snapshots")
	// What a joiner's first fetch or a follower's whole load reads: the
	// current tree, from its snapshot and the changes since.
	t0 := time.Now()
	if ns, err := s.Tree(ctx, c.ID, epoch); err != nil || len(ns) != len(tree) {
		b.Fatalf("tree at the end: %d nodes, %v", len(ns), err)
	}
	b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "tree-read-ms")
	if len(snapshots) > 0 {
		b.ReportMetric(float64(slices.Max(snapshots).Milliseconds()), "snapshot-ms")
	}
}

// writtenBytes is the bytes the process passed to write system calls.
func writtenBytes(b *testing.B) int64 {
	p, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(p), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("/proc/self/io has no wchar")
	return 0
}
