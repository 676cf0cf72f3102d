package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/server/delivery"
)

func TestDisk(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("abc"), 1000)
	id, n, err := d.Put(t.Context(), bytes.NewReader(data), 3000)
	sum := sha256.Sum256(data)
	if err != nil || n != 3000 || id != hex.EncodeToString(sum[:]) {
		t.Fatalf("put: %s %d %v", id, n, err)
	}
	if _, _, err := d.Put(t.Context(), bytes.NewReader(data), 2999); !errors.Is(err, delivery.ErrBlobTooLarge) {
		t.Fatalf("oversized put: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("%d temporary files left", len(ents))
	}
	r, err := d.Open(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	r.Seek(3, io.SeekStart)
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data[3:]) || r.Size() != 3000 {
		t.Fatal("content differs")
	}
	if err := d.Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(t.Context(), id); !errors.Is(err, delivery.ErrBlobNotFound) {
		t.Fatalf("open deleted: %v", err)
	}
	if err := d.Delete(t.Context(), id); err != nil {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := d.Open(t.Context(), "../../etc/passwd"); err == nil {
		t.Fatal("path traversal accepted")
	}
}
