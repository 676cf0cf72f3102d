package pgblob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/server/delivery"
)

// openTest opens a Store with small chunks on a fresh schema, dropped when
// the test ends. Without PostgreSQL it skips, or fails under CI=true
// (testenv).
func openTest(t *testing.T, chunk int) (*Store, Config) {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, testenv.NeedPostgres, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "pgblob_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(context.Background())
	})
	c := NewConfig(dsn)
	c.Schema, c.ChunkSize = schema, chunk
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

// seeded returns a random source whose seed the test prints.
func seeded(t *testing.T) *mrand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return mrand.New(mrand.NewPCG(seed, seed))
}

// TestRoundTrip stores blobs of sizes around the chunk size and reads them
// back whole and by seeking, from a second Store on the same schema (as a
// second node would).
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, c := openTest(t, 1000)
	other, err := Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rng := seeded(t)
	for _, size := range []int{0, 1, 999, 1000, 1001, 2000, 4567} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		sum := sha256.Sum256(data)
		id, n, err := s.Put(ctx, bytes.NewReader(data), 5000)
		if err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		if id != hex.EncodeToString(sum[:]) || n != int64(size) {
			t.Fatalf("put %d bytes: id %s size %d", size, id, n)
		}
		r, err := other.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != int64(size) {
			t.Errorf("size %d, want %d", r.Size(), size)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes back: %v (equal %t)", size, err, bytes.Equal(got, data))
		}
		for range 5 {
			if size == 0 {
				break
			}
			off := rng.IntN(size)
			if _, err := r.Seek(int64(off), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			part := make([]byte, min(size-off, 1+rng.IntN(1500)))
			if _, err := io.ReadFull(r, part); err != nil || !bytes.Equal(part, data[off:off+len(part)]) {
				t.Fatalf("size %d: read %d at %d: %v", size, len(part), off, err)
			}
		}
		r.Close()
	}
	if _, err := s.Open(ctx, "00"); !errors.Is(err, delivery.ErrBlobNotFound) {
		t.Errorf("open invalid id: %v", err)
	}
	missing := hex.EncodeToString(make([]byte, 32))
	if _, err := s.Open(ctx, missing); !errors.Is(err, delivery.ErrBlobNotFound) {
		t.Errorf("open missing: %v", err)
	}
	if err := s.Delete(ctx, missing); err != nil {
		t.Errorf("delete missing: %v", err)
	}
	checkNoOrphans(t, s)
}

// TestTooLarge refuses content beyond the limit and keeps no chunk of it.
func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, 100)
	data := bytes.Repeat([]byte{7}, 1001)
	if _, _, err := s.Put(ctx, bytes.NewReader(data), 1000); !errors.Is(err, delivery.ErrBlobTooLarge) {
		t.Fatalf("put 1001 bytes with limit 1000: %v, want ErrBlobTooLarge", err)
	}
	if _, n, err := s.Put(ctx, bytes.NewReader(data[:1000]), 1000); err != nil || n != 1000 {
		t.Fatalf("put 1000 bytes with limit 1000: %d, %v", n, err)
	}
	var uploads, chunks int
	s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgblob_uploads), (SELECT count(*) FROM pgblob_chunks)`).Scan(&uploads, &chunks)
	if uploads != 1 || chunks != 10 {
		t.Errorf("%d uploads and %d chunks kept, want 1 and 10", uploads, chunks)
	}
	checkNoOrphans(t, s)
}

// failingReader returns data and then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("client went away")
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

// TestFailedUpload keeps nothing of an upload whose reader fails.
func TestFailedUpload(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, 100)
	if _, _, err := s.Put(ctx, &failingReader{n: 350}, 1000); err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	var uploads int
	s.pool.QueryRow(ctx, `SELECT count(*) FROM pgblob_uploads`).Scan(&uploads)
	if uploads != 0 {
		t.Errorf("%d uploads left", uploads)
	}
}

// TestConcurrentSameContent uploads one content from many goroutines over
// two Stores: one blob results, every Put returns its id, and the losing
// uploads leave no chunks.
func TestConcurrentSameContent(t *testing.T) {
	ctx := context.Background()
	s, c := openTest(t, 512)
	other, err := Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	data := make([]byte, 3000)
	rand.Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		st := s
		if i%2 == 1 {
			st = other
		}
		wg.Go(func() {
			id, n, err := st.Put(ctx, bytes.NewReader(data), 1<<20)
			if err == nil && (id != want || n != int64(len(data))) {
				err = errors.New("wrong id or size")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var objects, uploads, chunks int
	s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgblob_objects), (SELECT count(*) FROM pgblob_uploads), (SELECT count(*) FROM pgblob_chunks)`).Scan(&objects, &uploads, &chunks)
	if objects != 1 || uploads != 1 || chunks != 6 {
		t.Errorf("%d objects, %d uploads, %d chunks; want 1, 1, 6", objects, uploads, chunks)
	}
	r, err := other.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Error("content differs")
	}
	if err := s.Delete(ctx, want); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	// The reader had chunk 5 buffered; chunk 0 is fetched again and gone.
	if _, err := io.ReadAll(r); err == nil {
		t.Error("reading a deleted blob succeeded")
	}
	if _, err := other.Open(ctx, want); !errors.Is(err, delivery.ErrBlobNotFound) {
		t.Errorf("open after delete: %v", err)
	}
	s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgblob_uploads), (SELECT count(*) FROM pgblob_chunks)`).Scan(&uploads, &chunks)
	if uploads != 0 || chunks != 0 {
		t.Errorf("after delete: %d uploads, %d chunks", uploads, chunks)
	}
}

// TestSweep removes an unfinished upload older than the cutoff and keeps
// finished blobs and recent uploads.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, 100)
	id, _, err := s.Put(ctx, bytes.NewReader([]byte("kept")), 100)
	if err != nil {
		t.Fatal(err)
	}
	// A crashed upload: an upload row with chunks and no object, an hour
	// old, and one in progress.
	for _, age := range []string{"2 hours", "1 second"} {
		var u int64
		if err := s.pool.QueryRow(ctx, `INSERT INTO pgblob_uploads (started) VALUES (now() - $1::interval) RETURNING upload`, age).Scan(&u); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO pgblob_chunks (upload, n, data) VALUES ($1, 0, 'x')`, u); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Sweep(ctx, StaleUpload)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1", n, err)
	}
	if _, err := s.Open(ctx, id); err != nil {
		t.Errorf("finished blob swept: %v", err)
	}
}

// checkNoOrphans checks that every upload and chunk belongs to an object.
func checkNoOrphans(t *testing.T, s *Store) {
	t.Helper()
	var orphans int
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM pgblob_uploads u WHERE NOT EXISTS (SELECT 1 FROM pgblob_objects o WHERE o.upload = u.upload)`).Scan(&orphans)
	if orphans != 0 {
		t.Errorf("%d unfinished uploads left", orphans)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := NewConfig("postgres://h/db").Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{}, {DSN: "postgres://h/db", MaxConns: 1, ChunkSize: 1}, {DSN: "postgres://h/db", Schema: "s", ChunkSize: 1}, {DSN: "postgres://h/db", Schema: "s", MaxConns: 1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
