package attach

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/parley-chat/parley/client/internal/padding"
)

// TestPaddedSizes checks that the blob size reveals a size class, not the
// file size: files of 1 and 1000 bytes yield blobs of one size, and a
// bigger file a blob no more than 12% bigger than unpadded.
func TestPaddedSizes(t *testing.T) {
	r := seeded(t)
	sizes := map[int]int{}
	for _, n := range []int{0, 1, 1000, padding.AttachmentMin - 1} {
		plain := randomBytes(r, n)
		ct, k, h := encryptBytes(t, plain)
		sizes[len(ct)]++
		var out bytes.Buffer
		if err := Decrypt(&out, bytes.NewReader(ct), k, h); err != nil || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("%d bytes: Decrypt: %v, %d bytes out", n, err, out.Len())
		}
	}
	if len(sizes) != 1 {
		t.Errorf("files of 0, 1, 1000 and 4095 bytes give blobs of sizes %v, want one size", sizes)
	}
	for _, n := range []int64{5000, 1 << 20, 10<<20 + 12345} {
		got, unpadded := CiphertextSize(n), sealedSize(n)
		if got < unpadded || float64(got) > 1.12*float64(unpadded) {
			t.Errorf("%d bytes: blob %d, unpadded %d: overhead beyond 12%%", n, got, unpadded)
		}
	}
}

// TestPaddingLookalikes round-trips files that end like padding: a 0x80
// byte followed by zeros, within one chunk and across chunks.
func TestPaddingLookalikes(t *testing.T) {
	files := map[string][]byte{
		"marker":              {padMarker},
		"marker zeros":        {'a', padMarker, 0, 0},
		"zeros":               make([]byte, 3*ChunkSize),
		"marker across":       append(append([]byte{1}, padMarker), make([]byte, 2*ChunkSize)...),
		"marker then data":    append(append([]byte{padMarker}, make([]byte, 2*ChunkSize)...), 'x'),
		"two markers":         {padMarker, 0, padMarker, 0, 0},
		"marker at chunk end": append(make([]byte, ChunkSize-1), padMarker),
	}
	for name, plain := range files {
		ct, k, h := encryptBytes(t, plain)
		var out bytes.Buffer
		if err := Decrypt(&out, bytes.NewReader(ct), k, h); err != nil || !bytes.Equal(out.Bytes(), plain) {
			t.Errorf("%s: Decrypt: %v, %d bytes out, want %d", name, err, out.Len(), len(plain))
		}
	}
}

// TestUnpaddedStillRead checks that a version 1 ciphertext, written before
// padding, still decrypts.
func TestUnpaddedStillRead(t *testing.T) {
	plain := []byte("written by an older client")
	var k Key
	k[0] = 7
	var ct bytes.Buffer
	h, n, err := encryptVersion(&ct, bytes.NewReader(plain), k, versionUnpadded)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(1+len(plain)+tagSize) {
		t.Fatalf("version 1 ciphertext %d bytes, want %d", n, 1+len(plain)+tagSize)
	}
	var out bytes.Buffer
	if err := Decrypt(&out, bytes.NewReader(ct.Bytes()), k, h); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("Decrypt version 1: %v, %q", err, out.Bytes())
	}
}

// TestBadPadding checks that a version 2 plaintext without the padding
// Encrypt makes is refused: no marker, too little or too much padding.
func TestBadPadding(t *testing.T) {
	var k Key
	k[0] = 9
	file := []byte("file")
	cases := map[string][]byte{
		"no padding":    file,
		"no marker":     append(append([]byte{}, file...), make([]byte, padding.AttachmentMin-len(file))...),
		"short padding": append(append([]byte{}, file...), padMarker, 0, 0),
		"long padding":  append(append(append([]byte{}, file...), padMarker), make([]byte, padding.AttachmentMin)...),
	}
	for name, plain := range cases {
		var ct bytes.Buffer
		if _, _, err := encryptVersion(&ct, bytes.NewReader(plain), k, Version); err != nil {
			t.Fatal(err)
		}
		err := Decrypt(&bytes.Buffer{}, bytes.NewReader(ct.Bytes()), k, sha256.Sum256(ct.Bytes()))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}
