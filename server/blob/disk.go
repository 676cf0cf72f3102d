// Package blob stores attachment content on disk for the delivery core:
// each blob is streamed to a temporary file, synced, and renamed to the
// lowercase hex SHA-256 of its content, so a blob is either complete or
// absent, and identical uploads share one file.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/parley-chat/parley/server/delivery"
)

// Disk is a content-addressed blob store in a directory. Blob ab12… lives
// at DIR/ab/ab12…. It is safe for concurrent use.
type Disk struct {
	dir string
}

var _ delivery.BlobStore = (*Disk)(nil)

// NewDisk returns a Disk in dir, creating it if needed, and removes
// temporary files left by a crash.
func NewDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blob: create %s: %v", dir, err)
	}
	tmp := filepath.Join(dir, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("blob: read %s: %v", tmp, err)
	}
	for _, e := range ents {
		os.Remove(filepath.Join(tmp, e.Name()))
	}
	return &Disk{dir: dir}, nil
}

func (d *Disk) path(id string) string { return filepath.Join(d.dir, id[:2], id) }

// ContextReader returns a reader of r that fails with ctx's error once
// ctx ends, so that a copy from a client's upload stops when the request
// does.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader is ContextReader's reader.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Put implements delivery.BlobStore.
func (d *Disk) Put(ctx context.Context, r io.Reader, max int64) (id string, size int64, err error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "up-*")
	if err != nil {
		return "", 0, fmt.Errorf("blob: put: %v", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, max+1))
	if err != nil {
		return "", 0, fmt.Errorf("blob: put: read upload: %w", err)
	}
	if n > max {
		return "", 0, fmt.Errorf("blob: put: more than %d bytes: %w", max, delivery.ErrBlobTooLarge)
	}
	if err = f.Sync(); err != nil {
		return "", 0, fmt.Errorf("blob: put: sync: %v", err)
	}
	if err = f.Close(); err != nil {
		return "", 0, fmt.Errorf("blob: put: close: %v", err)
	}
	id = hex.EncodeToString(h.Sum(nil))
	dst := d.path(id)
	if err = os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("blob: put %s: %v", id, err)
	}
	if err = os.Rename(tmp, dst); err != nil {
		return "", 0, fmt.Errorf("blob: put %s: %v", id, err)
	}
	if dir, derr := os.Open(filepath.Dir(dst)); derr == nil {
		dir.Sync()
		dir.Close()
	}
	return id, n, nil
}

// file is an open blob.
type file struct {
	*os.File
	size int64
}

func (f file) Size() int64 { return f.size }

// Open implements delivery.BlobStore.
func (d *Disk) Open(ctx context.Context, id string) (delivery.BlobReader, error) {
	if !delivery.ValidBlobID(id) {
		return nil, fmt.Errorf("blob: open %.70q: invalid id: %w", id, delivery.ErrBlobNotFound)
	}
	f, err := os.Open(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob: open %s: %w", id, delivery.ErrBlobNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("blob: open %s: %v", id, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %v", id, err)
	}
	return file{f, st.Size()}, nil
}

// Delete implements delivery.BlobStore.
func (d *Disk) Delete(ctx context.Context, id string) error {
	if !delivery.ValidBlobID(id) {
		return fmt.Errorf("blob: delete %.70q: invalid id", id)
	}
	if err := os.Remove(d.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %v", id, err)
	}
	return nil
}
