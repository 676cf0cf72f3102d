package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"

	"github.com/parley-chat/parley/server/store/sqlite/sqlitetest"
)

// withUmask sets the process umask for the test and restores it after.
// The tests of this package do not run in parallel.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// fill creates a user and a conversation with n entries of size bytes.
func fill(t testing.TB, s *Store, n, size int) {
	t.Helper()
	ctx := context.Background()
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]store.NewEntry, 0, 1000)
	for i := 0; i < n; i += len(batch) {
		batch = batch[:0]
		for j := i; j < n && len(batch) < cap(batch); j++ {
			data := make([]byte, size)
			for k := range data {
				data[k] = byte(rng.Uint32())
			}
			batch = append(batch, store.NewEntry{Conversation: c.ID, Sender: d.ID, Data: data, Created: time.Now()})
		}
		res, err := s.AppendEntries(ctx, batch)
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
	}
}

// TestFileModes checks that the database, its -wal and -shm files and a
// backup are 0600 under a permissive umask.
func TestFileModes(t *testing.T) {
	withUmask(t, 0o022)
	dir := t.TempDir()
	s := open(t)
	defer s.Close()
	fill(t, s, 10, 100)
	backup := filepath.Join(dir, "backup.db")
	if err := s.Backup(context.Background(), backup); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm", backup} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, m)
		}
	}
	// A backup never overwrites a file, and a failed one leaves none.
	if err := s.Backup(context.Background(), backup); err == nil || !strings.Contains(err.Error(), backup) {
		t.Errorf("backup over an existing file: %v", err)
	}
	bad := filepath.Join(dir, "missing-dir", "b.db")
	if err := s.Backup(context.Background(), bad); err == nil {
		t.Error("backup into a missing directory succeeded")
	}
}

// TestCheckFile checks the verdicts of CheckFile: a healthy file passes,
// a damaged b-tree page and a damaged header are findings, a missing file
// is an error and is not created, and an expired budget is told apart.
func TestCheckFile(t *testing.T) {
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	s := open(t)
	fill(t, s, 500, 200)
	path := s.path
	s.Close()
	for _, full := range []bool{false, true} {
		if problems, err := CheckFile(ctx, path, full, 10); err != nil || len(problems) != 0 {
			t.Fatalf("healthy database (full %t): %q, %v", full, problems, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := CheckFile(cctx, path, false, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled check: %v, want context.Canceled", err)
	}

	sqlitetest.CorruptTable(t, path, "entries", rng)
	for _, full := range []bool{false, true} {
		problems, err := CheckFile(ctx, path, full, 10)
		if err != nil || len(problems) == 0 || len(problems) > 10 {
			t.Errorf("damaged entries page (full %t): %q, %v; want 1 to 10 findings", full, problems, err)
		}
	}

	// Random bytes over the header: not a database any more.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 100)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	f.WriteAt(junk, 0)
	f.Close()
	if problems, err := CheckFile(ctx, path, false, 10); err != nil || len(problems) == 0 {
		t.Errorf("damaged header: %q, %v; want a finding", problems, err)
	}

	missing := filepath.Join(t.TempDir(), "none.db")
	if _, err := CheckFile(ctx, missing, false, 10); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckFile created %s: %v", missing, err)
	}
}

// BenchmarkQuickCheck measures PRAGMA quick_check and integrity_check on a
// database of 100,000 log entries of 512 bytes (about 60 MB), the figure
// behind the default start-up check budget (docs/operations.md).
func BenchmarkQuickCheck(b *testing.B) {
	s := open(b)
	fill(b, s, 100_000, 512)
	path := s.path
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("full=%t", full), func(b *testing.B) {
			for b.Loop() {
				if problems, err := CheckFile(context.Background(), path, full, 10); err != nil || len(problems) > 0 {
					b.Fatal(problems, err)
				}
			}
			b.ReportMetric(float64(fi.Size())/1e6, "MB")
			b.ReportMetric(float64(fi.Size())/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
		})
	}
}
