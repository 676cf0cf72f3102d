package attach

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/internal/padding"
)

// seeded returns a deterministic random source and logs its seed.
func seeded(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func encryptBytes(t testing.TB, plain []byte) ([]byte, Key, Hash) {
	t.Helper()
	var ct bytes.Buffer
	k, h, n, err := Encrypt(&ct, bytes.NewReader(plain))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if n != int64(ct.Len()) || n != CiphertextSize(int64(len(plain))) {
		t.Fatalf("Encrypt size %d, buffer %d, CiphertextSize %d", n, ct.Len(), CiphertextSize(int64(len(plain))))
	}
	if sha256.Sum256(ct.Bytes()) != h {
		t.Fatalf("Encrypt hash is not the SHA-256 of the ciphertext")
	}
	return ct.Bytes(), k, h
}

func TestRoundTrip(t *testing.T) {
	r := seeded(t)
	for _, n := range []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 3*ChunkSize + 17, 5 << 20} {
		plain := randomBytes(r, n)
		ct, k, h := encryptBytes(t, plain)
		var out bytes.Buffer
		if err := Decrypt(&out, bytes.NewReader(ct), k, h); err != nil {
			t.Fatalf("size %d: Decrypt: %v", n, err)
		}
		if !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("size %d: round trip differs", n)
		}
	}
}

func TestFreshKeys(t *testing.T) {
	_, k1, h1 := encryptBytes(t, []byte("same"))
	_, k2, h2 := encryptBytes(t, []byte("same"))
	if k1 == k2 || h1 == h2 {
		t.Fatal("two encryptions of the same file share a key or a hash")
	}
}

func TestKeyNotPrinted(t *testing.T) {
	var k Key
	k[0] = 0xab
	for _, s := range []string{k.String(), k.GoString()} {
		if bytes.Contains([]byte(s), []byte("ab")) || bytes.Contains([]byte(s), []byte("171")) {
			t.Fatalf("key printed: %s", s)
		}
	}
}

func decryptErr(ct []byte, k Key, h Hash) error {
	return Decrypt(io.Discard, bytes.NewReader(ct), k, h)
}

func TestTruncation(t *testing.T) {
	r := seeded(t)
	plain := randomBytes(r, 3*ChunkSize+100)
	ct, k, _ := encryptBytes(t, plain)
	cuts := []int{0, 1, 2, 17, sealedChunkSize, sealedChunkSize + 1, 2*sealedChunkSize + 1, 3*sealedChunkSize + 1, len(ct) - 1}
	for _, cut := range cuts {
		short := ct[:cut]
		// Give the hash of the truncated input, so that only the chunk
		// structure can detect the truncation.
		err := decryptErr(short, k, sha256.Sum256(short))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d of %d: got %v, want ErrCorrupt", cut, len(ct), err)
		}
	}
}

func TestReorderAndDrop(t *testing.T) {
	r := seeded(t)
	plain := randomBytes(r, 3*ChunkSize)
	ct, k, _ := encryptBytes(t, plain)
	c0 := ct[1 : 1+sealedChunkSize]
	c1 := ct[1+sealedChunkSize : 1+2*sealedChunkSize]
	c2 := ct[1+2*sealedChunkSize:]
	cases := map[string][][]byte{
		"swap 0 1":     {c1, c0, c2},
		"drop middle":  {c0, c2},
		"drop last":    {c0, c1},
		"duplicate":    {c0, c0, c1, c2},
		"append chunk": {c0, c1, c2, c2},
	}
	for name, parts := range cases {
		bad := append([]byte{Version}, bytes.Join(parts, nil)...)
		if err := decryptErr(bad, k, sha256.Sum256(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}

func TestBitFlips(t *testing.T) {
	r := seeded(t)
	plain := randomBytes(r, 2*ChunkSize+5)
	ct, k, _ := encryptBytes(t, plain)
	for range 200 {
		bad := bytes.Clone(ct)
		i := r.IntN(len(bad))
		bad[i] ^= 1 << r.IntN(8)
		if err := decryptErr(bad, k, sha256.Sum256(bad)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit flip at %d: got %v, want ErrCorrupt", i, err)
		}
	}
}

func TestWrongKeyAndHash(t *testing.T) {
	ct, k, h := encryptBytes(t, []byte("hello, attachment"))
	wrong := k
	wrong[5] ^= 1
	if err := decryptErr(ct, wrong, h); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong key: got %v, want ErrCorrupt", err)
	}
	badHash := h
	badHash[0] ^= 1
	if err := decryptErr(ct, k, badHash); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("wrong hash: got %v, want ErrHashMismatch", err)
	}
}

func TestEmpty(t *testing.T) {
	ct, k, h := encryptBytes(t, nil)
	if want := 1 + padding.AttachmentMin + tagSize; len(ct) != want {
		t.Fatalf("empty file ciphertext is %d bytes, want %d", len(ct), want)
	}
	var out bytes.Buffer
	if err := Decrypt(&out, bytes.NewReader(ct), k, h); err != nil || out.Len() != 0 {
		t.Fatalf("Decrypt empty: %v, %d bytes", err, out.Len())
	}
	if err := decryptErr(nil, k, sha256.Sum256(nil)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decrypt of no bytes: got %v, want ErrCorrupt", err)
	}
	if err := decryptErr([]byte{Version}, k, sha256.Sum256([]byte{Version})); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decrypt of header only: got %v, want ErrCorrupt", err)
	}
}

func TestParseHash(t *testing.T) {
	_, _, h := encryptBytes(t, []byte("x"))
	got, err := ParseHash(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseHash(%s) = %v, %v", h, got, err)
	}
	for _, bad := range []string{"", "zz", h.String()[:63] + "g"} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

// countingReader yields n pseudo-random bytes without holding them.
type countingReader struct{ left int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	for i := range p {
		p[i] = byte(c.left - int64(i))
	}
	c.left -= int64(len(p))
	return len(p), nil
}

// TestStreamingLarge encrypts and decrypts 100 MiB through a pipe and
// checks that the heap does not grow with the file.
func TestStreamingLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB in -short mode")
	}
	const size = 100 << 20
	pr, pw := io.Pipe()
	type result struct {
		k   Key
		h   Hash
		n   int64
		err error
	}
	done := make(chan result, 1)
	ctHash := sha256.New()
	go func() {
		k, h, n, err := Encrypt(pw, &countingReader{left: size})
		pw.CloseWithError(err)
		done <- result{k, h, n, err}
	}()
	// Hash the ciphertext as it streams by instead of keeping it.
	if _, err := io.Copy(ctHash, pr); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.n != CiphertextSize(size) {
		t.Fatalf("Encrypt: %v, %d bytes", res.err, res.n)
	}
	if Hash(ctHash.Sum(nil)) != res.h {
		t.Fatal("hash differs")
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	func() {
		pr, pw := io.Pipe()
		go func() {
			_, err := encryptWith(pw, &countingReader{left: size}, res.k)
			pw.CloseWithError(err)
		}()
		var n int64
		counter := writerFunc(func(p []byte) (int, error) { n += int64(len(p)); return len(p), nil })
		if err := Decrypt(counter, pr, res.k, res.h); err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if n != size {
			t.Fatalf("decrypted %d bytes, want %d", n, size)
		}
	}()
	runtime.ReadMemStats(&after)
	// A handful of chunk buffers, not one allocation per chunk and not the
	// file.
	allocs, bytes := after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
	t.Logf("encrypt+decrypt of 100 MiB: %d allocations, %d bytes", allocs, bytes)
	if allocs > 200 || bytes > 2<<20 {
		t.Fatalf("encrypt+decrypt of 100 MiB allocated %d times, %d bytes", allocs, bytes)
	}
}

// encryptWith is encrypt without the hash, for tests.
func encryptWith(w io.Writer, r io.Reader, k Key) (int64, error) {
	_, n, err := encrypt(w, r, k)
	return n, err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func FuzzDecrypt(f *testing.F) {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	for _, n := range []int{0, 1, 1000, ChunkSize, ChunkSize + 1} {
		var ct bytes.Buffer
		if _, _, err := encrypt(&ct, bytes.NewReader(make([]byte, n)), k); err != nil {
			f.Fatal(err)
		}
		f.Add(ct.Bytes())
	}
	var v1 bytes.Buffer
	if _, _, err := encryptVersion(&v1, bytes.NewReader([]byte("old")), k, versionUnpadded); err != nil {
		f.Fatal(err)
	}
	f.Add(v1.Bytes())
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, ct []byte) {
		var out bytes.Buffer
		err := Decrypt(&out, bytes.NewReader(ct), k, sha256.Sum256(ct))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// Accepted: it must be exactly what Encrypt makes of the plaintext
		// (or made, for the unpadded version 1).
		var again bytes.Buffer
		var err2 error
		if ct[0] == versionUnpadded {
			_, _, err2 = encryptVersion(&again, bytes.NewReader(out.Bytes()), k, versionUnpadded)
		} else {
			_, _, err2 = encrypt(&again, bytes.NewReader(out.Bytes()), k)
		}
		if err2 != nil {
			t.Fatal(err2)
		}
		if !bytes.Equal(again.Bytes(), ct) {
			t.Fatal("accepted ciphertext is not canonical")
		}
	})
}

func benchmarkEncrypt(b *testing.B, size int) {
	plain := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := Encrypt(io.Discard, bytes.NewReader(plain)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkDecrypt(b *testing.B, size int) {
	var ct bytes.Buffer
	k, h, _, err := Encrypt(&ct, bytes.NewReader(make([]byte, size)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := Decrypt(io.Discard, bytes.NewReader(ct.Bytes()), k, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt5MiB(b *testing.B) { benchmarkEncrypt(b, 5<<20) }
func BenchmarkDecrypt5MiB(b *testing.B) { benchmarkDecrypt(b, 5<<20) }
