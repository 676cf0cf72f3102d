// Package pgblob stores attachment content in PostgreSQL, chunked, for
// the delivery core: the shared attachment store of a parleyd cluster
// whose nodes have no shared file system. It implements
// [delivery.BlobStore] with the semantics of the disk store in
// server/blob: content-addressed by the lowercase hex SHA-256, a blob is
// either complete or absent, and identical uploads share one copy.
//
// # Tables
//
// The tables live in the schema of the PostgreSQL store (Config.Schema),
// beside its tables but created and migrated by this package, under its
// own advisory lock and version table (pgblob_migrations):
//
//	pgblob_uploads (upload, started)          one row per upload, finished or not
//	pgblob_chunks  (upload, n, data)          the content in ChunkSize pieces
//	pgblob_objects (id, upload, size, chunk_size, created)  finished blobs
//
// # Put
//
// An upload streams the content into pgblob_chunks, one autocommitted
// INSERT per chunk, under a new upload number, hashing as it goes; a
// connection is held only while a chunk is written, never while the client
// sends. When the content ends, one transaction inserts the pgblob_objects
// row (ON CONFLICT (id) DO NOTHING): the blob appears complete, at once,
// on every node. When another upload of the same content won, the chunks
// of this one are deleted and the existing blob is returned. A failed or
// too large upload deletes its chunks; one cut short by a crash is removed
// by [Store.Sweep] (called by Open) once it is older than an hour.
//
// # Open
//
// A reader fetches one chunk per query as it reads or seeks (range
// requests read only the chunks they need), so a download needs memory for
// one chunk and holds no connection between reads. A blob deleted while it
// is being read fails the next chunk fetch.
package pgblob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/pgschema"
	"github.com/parley-chat/parley/server/blob"
	"github.com/parley-chat/parley/server/delivery"
)

// DefaultChunkSize is the default size of a stored chunk: large enough
// that a 100 MiB attachment is 100 rows, small enough that a chunk is
// cheap to buffer and to send in one message.
const DefaultChunkSize = 1 << 20

// StaleUpload is how old an unfinished upload must be before Sweep
// removes it; uploads in progress on other nodes are younger.
const StaleUpload = time.Hour

// Config configures a Store. Start from NewConfig.
type Config struct {
	// DSN is the connection string (see pgx's ParseConfig). It should not
	// set search_path.
	DSN string
	// Schema is the schema of the tables, normally the PostgreSQL
	// store's; it is created when missing.
	Schema string
	// MaxConns bounds this node's connections for attachments.
	MaxConns int
	// ChunkSize is the size of new chunks in bytes; blobs keep the chunk
	// size they were written with.
	ChunkSize int
}

// NewConfig returns the default configuration for the connection string:
// schema "parley", 4 connections, 1 MiB chunks.
func NewConfig(dsn string) Config {
	return Config{DSN: dsn, Schema: "parley", MaxConns: 4, ChunkSize: DefaultChunkSize}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.pool().Validate(); err != nil {
		return fmt.Errorf("pgblob: config: %v", err)
	}
	if c.ChunkSize < 1 || c.ChunkSize > 64<<20 {
		return fmt.Errorf("pgblob: config: chunk size %d, want 1 to 64 MiB", c.ChunkSize)
	}
	return nil
}

func (c Config) pool() pgschema.Pool {
	return pgschema.Pool{DSN: c.DSN, Schema: c.Schema, MaxConns: c.MaxConns}
}

// Store is a chunked, content-addressed blob store in PostgreSQL. It is
// safe for concurrent use, and Stores in many processes may share one
// schema.
type Store struct {
	pool      *pgxpool.Pool
	schema    string
	chunkSize int
}

var _ delivery.BlobStore = (*Store)(nil)

// Open connects, creates or migrates the tables and sweeps stale
// uploads.
func Open(ctx context.Context, c Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pool, err := pgschema.Open(ctx, c.pool())
	if err != nil {
		return nil, fmt.Errorf("pgblob: %v", err)
	}
	s := &Store{pool: pool, schema: c.Schema, chunkSize: c.ChunkSize}
	m := pgschema.Migrations{Table: "pgblob_migrations", LockClass: migrateLockClass, List: migrations}
	if err := m.Apply(ctx, pool, c.Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgblob: %v", err)
	}
	if _, err := s.Sweep(ctx, StaleUpload); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migrations are the schema versions, applied in order.
var migrations = []pgschema.Migration{{Version: 1, Name: "chunks and objects", SQL: `
CREATE TABLE pgblob_uploads (
	upload  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE pgblob_chunks (
	upload BIGINT NOT NULL REFERENCES pgblob_uploads (upload) ON DELETE CASCADE,
	n      INTEGER NOT NULL CHECK (n >= 0),
	data   BYTEA NOT NULL,
	PRIMARY KEY (upload, n)
);
CREATE TABLE pgblob_objects (
	id         TEXT PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
	upload     BIGINT NOT NULL UNIQUE REFERENCES pgblob_uploads (upload),
	size       BIGINT NOT NULL CHECK (size >= 0),
	chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
	created    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The chunks are written once and read rarely; keep them out of line
-- without compressing ciphertext.
ALTER TABLE pgblob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
`}}

// migrateLockClass is the first key of the migration advisory lock ("PBlb");
// the second is a hash of the schema name.
const migrateLockClass = 0x50426c62

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgblob: ping: %v", err)
	}
	return nil
}

// Put implements delivery.BlobStore: it streams r in chunks, at most max
// bytes, and publishes the blob atomically when the content is complete.
func (s *Store) Put(ctx context.Context, r io.Reader, max int64) (id string, size int64, err error) {
	var upload int64
	if err := s.pool.QueryRow(ctx, `INSERT INTO pgblob_uploads DEFAULT VALUES RETURNING upload`).Scan(&upload); err != nil {
		return "", 0, fmt.Errorf("pgblob: put: start upload: %v", err)
	}
	keep := false
	defer func() {
		if !keep {
			// The chunks go with the upload row (ON DELETE CASCADE).
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			s.pool.Exec(cctx, `DELETE FROM pgblob_uploads WHERE upload = $1`, upload)
			cancel()
		}
	}()
	h := sha256.New()
	in := io.LimitReader(blob.ContextReader(ctx, r), max+1)
	buf := make([]byte, s.chunkSize)
	for n := 0; ; n++ {
		k, rerr := io.ReadFull(in, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return "", 0, fmt.Errorf("pgblob: put: read upload: %w", rerr)
		}
		size += int64(k)
		if size > max {
			return "", 0, fmt.Errorf("pgblob: put: more than %d bytes: %w", max, delivery.ErrBlobTooLarge)
		}
		if k > 0 || n == 0 {
			h.Write(buf[:k])
			if _, err := s.pool.Exec(ctx, `INSERT INTO pgblob_chunks (upload, n, data) VALUES ($1, $2, $3)`, upload, n, buf[:k]); err != nil {
				return "", 0, fmt.Errorf("pgblob: put: write chunk %d: %v", n, err)
			}
		}
		if rerr != nil {
			break
		}
	}
	id = hex.EncodeToString(h.Sum(nil))
	tag, err := s.pool.Exec(ctx, `INSERT INTO pgblob_objects (id, upload, size, chunk_size) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
		id, upload, size, s.chunkSize)
	if err != nil {
		return "", 0, fmt.Errorf("pgblob: put %s: %v", id, err)
	}
	// When another upload of the same content won, its blob is the one
	// returned and this upload's chunks are deleted by the deferred call.
	keep = tag.RowsAffected() == 1
	return id, size, nil
}

// Open implements delivery.BlobStore.
func (s *Store) Open(ctx context.Context, id string) (delivery.BlobReader, error) {
	if !delivery.ValidBlobID(id) {
		return nil, fmt.Errorf("pgblob: open %.70q: invalid id: %w", id, delivery.ErrBlobNotFound)
	}
	o := &object{s: s, id: id, ctx: context.WithoutCancel(ctx), chunk: -1}
	err := s.pool.QueryRow(ctx, `SELECT upload, size, chunk_size FROM pgblob_objects WHERE id = $1`, id).Scan(&o.upload, &o.size, &o.chunkSize)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgblob: open %s: %w", id, delivery.ErrBlobNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("pgblob: open %s: %v", id, err)
	}
	return o, nil
}

// Delete implements delivery.BlobStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !delivery.ValidBlobID(id) {
		return fmt.Errorf("pgblob: delete %.70q: invalid id", id)
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var upload int64
		err := tx.QueryRow(ctx, `DELETE FROM pgblob_objects WHERE id = $1 RETURNING upload`, id).Scan(&upload)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM pgblob_uploads WHERE upload = $1`, upload)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgblob: delete %s: %v", id, err)
	}
	return nil
}

// Sweep deletes unfinished uploads started more than olderThan ago (left
// by a crash) with their chunks, and returns how many it deleted.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pgblob_uploads u WHERE started < now() - make_interval(secs => $1)
		AND NOT EXISTS (SELECT 1 FROM pgblob_objects o WHERE o.upload = u.upload)`, olderThan.Seconds())
	if err != nil {
		return 0, fmt.Errorf("pgblob: sweep: %v", err)
	}
	return tag.RowsAffected(), nil
}

// object is an open blob; it reads one chunk at a time.
type object struct {
	s         *Store
	ctx       context.Context
	id        string
	upload    int64
	size      int64
	chunkSize int64
	off       int64

	chunk int64  // chunk is the index of data, or -1.
	data  []byte // data is the current chunk.
}

// Size implements delivery.BlobReader.
func (o *object) Size() int64 { return o.size }

// Read implements io.Reader.
func (o *object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	want := o.off / o.chunkSize
	if want != o.chunk {
		var data []byte
		err := o.s.pool.QueryRow(o.ctx, `SELECT data FROM pgblob_chunks WHERE upload = $1 AND n = $2`, o.upload, want).Scan(&data)
		if err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, fmt.Errorf("pgblob: read %s: chunk %d is gone (blob deleted?)", o.id, want)
			}
			return 0, fmt.Errorf("pgblob: read %s chunk %d: %v", o.id, want, err)
		}
		o.chunk, o.data = want, data
	}
	start := o.off - o.chunk*o.chunkSize
	if start >= int64(len(o.data)) {
		return 0, fmt.Errorf("pgblob: read %s: chunk %d is short", o.id, o.chunk)
	}
	n := copy(p, o.data[start:])
	o.off += int64(n)
	return n, nil
}

// Seek implements io.Seeker.
func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, fmt.Errorf("pgblob: seek %s: bad whence %d", o.id, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("pgblob: seek %s: negative position %d", o.id, offset)
	}
	o.off = offset
	return offset, nil
}

// Close implements io.Closer; it releases the buffered chunk.
func (o *object) Close() error {
	o.data = nil
	return nil
}
