// Package attach encrypts and decrypts attachment files for Parley.
//
// Every file is encrypted on the sending client with a fresh random
// 32-byte [Key]; the ciphertext is uploaded to parleyd as an opaque blob,
// and the key and the SHA-256 [Hash] of the ciphertext travel to the other
// members inside an MLS application message (see package
// github.com/parley-chat/parley/client/content). The server, which stores
// the blob under the hex of the same hash, learns only its size, and that
// only up to a size class: the file is padded before encryption.
//
// # Format
//
// The ciphertext is a one-byte header followed by chunks:
//
//	uint8 version (2)
//	chunk*  ChaCha20-Poly1305(key, nonce_i, plaintext_i, ad = header)
//
// The plaintext is the file, one 0x80 byte and zero bytes up to
// max(4096, Padmé(size+1)) bytes in all (padding.Attachment; ISO/IEC
// 7816-4 padding to a Padmé length, Nikitin et al., PETS 2019): every file
// under 4 KiB yields one blob size, and above that a blob reveals about
// log2(log2(size)) bits of the size, at an overhead of at most 6.25% up
// to 64 KiB and 3.13% above (docs/content.md, "Padding"). The decryptor strips the last
// 0x80 and the zeros after it, and refuses padding of any other length,
// so that a ciphertext has exactly one plaintext. Version 1, written
// before padding, is the same without it and is still read.
//
// Plaintext is cut into chunks of [ChunkSize] bytes; every chunk but the
// last is full, the last holds 0 to ChunkSize bytes (it is empty only when
// the whole file is). Each sealed chunk is its plaintext plus a 16-byte tag.
// The 12-byte nonce of chunk i is the 11-byte big-endian counter i followed
// by one byte that is 1 for the last chunk and 0 otherwise (the STREAM
// construction of Hoang, Reyhanitabar, Rogaway and Vizár, as in age). A
// dropped, reordered, duplicated or appended chunk, and a truncation at a
// chunk boundary, therefore fail authentication. Because the key is fresh
// for every file and never reused, the deterministic nonces never repeat
// under one key.
//
// Encryption and decryption stream: memory use is a few chunks, whatever
// the file size.
package attach

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/parley-chat/parley/client/internal/padding"
)

// Version is the format version, the first byte of every ciphertext that
// Encrypt makes.
const Version = 2

// versionUnpadded is the format before padding: the plaintext is the file
// alone. Decrypt still reads it.
const versionUnpadded = 1

// padMarker is the byte that starts the padding of a version 2 plaintext.
const padMarker = 0x80

// ChunkSize is the plaintext size of every chunk but the last.
const ChunkSize = 64 << 10

// tagSize is the size of a ChaCha20-Poly1305 tag.
const tagSize = chacha20poly1305.Overhead

// sealedChunkSize is the ciphertext size of a full chunk.
const sealedChunkSize = ChunkSize + tagSize

// maxChunks bounds the chunk counter to 2^40 chunks (64 PiB), far beyond
// any attachment, so the 11-byte counter never wraps.
const maxChunks = 1 << 40

// KeySize is the size of a [Key].
const KeySize = chacha20poly1305.KeySize

// Key is the secret symmetric key of one attachment. Its String and
// GoString methods do not print the key; use the array to serialize it.
type Key [KeySize]byte

// String returns a placeholder, never the key.
func (Key) String() string { return "attach.Key(secret)" }

// GoString returns a placeholder, never the key.
func (k Key) GoString() string { return k.String() }

// Hash is the SHA-256 of a ciphertext. Its hex form is the attachment id
// parleyd assigns to the uploaded blob.
type Hash [sha256.Size]byte

// String returns the lowercase hex of the hash (the server's attachment id).
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash decodes the lowercase or uppercase hex of a hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("attach: parse hash %q: want %d hex digits", s, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("attach: parse hash %q: %v", s, err)
	}
	return h, nil
}

// Errors that callers may branch on. Errors returned by [Decrypt] wrap one
// of them when the input, rather than a reader or writer, is at fault.
var (
	// ErrCorrupt means the ciphertext is malformed, truncated, reordered
	// or altered, or the key is wrong.
	ErrCorrupt = errors.New("attach: ciphertext corrupt or key wrong")
	// ErrHashMismatch means every chunk authenticated but the SHA-256 of
	// the ciphertext differs from the expected hash.
	ErrHashMismatch = errors.New("attach: ciphertext hash mismatch")
)

// CiphertextSize returns the size of the ciphertext that Encrypt makes of
// a file of n bytes, padding included.
func CiphertextSize(n int64) int64 {
	return sealedSize(padding.Attachment(n))
}

// sealedSize returns the size of the ciphertext of a plaintext (padding
// included) of n bytes.
func sealedSize(n int64) int64 {
	chunks := n / ChunkSize
	if n%ChunkSize != 0 || n == 0 {
		chunks++
	}
	return 1 + n + chunks*tagSize
}

// nonce sets n to the nonce of chunk i and returns it.
func nonce(n *[chacha20poly1305.NonceSize]byte, i uint64, last bool) []byte {
	*n = [chacha20poly1305.NonceSize]byte{}
	binary.BigEndian.PutUint64(n[3:11], i)
	if last {
		n[11] = 1
	}
	return n[:]
}

// Encrypt reads the plaintext from src until EOF, writes the ciphertext to
// dst, and returns the fresh random key, the SHA-256 of the ciphertext and
// the ciphertext size. On error, whatever was written to dst must be
// discarded. Errors from src or dst are wrapped with %w.
func Encrypt(dst io.Writer, src io.Reader) (Key, Hash, int64, error) {
	var k Key
	rand.Read(k[:]) // never fails since Go 1.24
	h, n, err := encrypt(dst, src, k)
	if err != nil {
		return Key{}, Hash{}, 0, err
	}
	return k, h, n, nil
}

// hashWriter counts and hashes what it writes to w.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// padReader reads r and then the padding of what it read: the marker
// byte and zeros up to padding.Attachment of its length.
type padReader struct {
	r      io.Reader
	n      int64 // file bytes read from r
	eof    bool  // r is exhausted; the padding follows
	left   int64 // padding bytes still to yield, once eof
	marked bool  // the marker byte was yielded
}

func (p *padReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !p.eof {
		n, err := p.r.Read(b)
		p.n += int64(n)
		if err != io.EOF {
			return n, err
		}
		p.eof = true
		p.left = padding.Attachment(p.n) - p.n
		if n > 0 {
			return n, nil
		}
	}
	if p.left == 0 {
		return 0, io.EOF
	}
	m := int(min(int64(len(b)), p.left))
	clear(b[:m])
	if !p.marked {
		b[0], p.marked = padMarker, true
	}
	p.left -= int64(m)
	return m, nil
}

// encrypt encrypts src, padded, to dst under k.
func encrypt(dst io.Writer, src io.Reader, k Key) (Hash, int64, error) {
	return encryptVersion(dst, &padReader{r: src}, k, Version)
}

// encryptVersion encrypts the plaintext src, as it is, to dst under k
// with the given version byte.
func encryptVersion(dst io.Writer, src io.Reader, k Key, version byte) (Hash, int64, error) {
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return Hash{}, 0, fmt.Errorf("attach: encrypt: %v", err)
	}
	out := &hashWriter{w: dst, h: sha256.New()}
	header := []byte{version}
	if _, err := out.Write(header); err != nil {
		return Hash{}, 0, fmt.Errorf("attach: encrypt: write: %w", err)
	}
	in := bufio.NewReaderSize(src, ChunkSize)
	buf := make([]byte, sealedChunkSize)
	var nb [chacha20poly1305.NonceSize]byte
	for i := uint64(0); ; i++ {
		if i >= maxChunks {
			return Hash{}, 0, errors.New("attach: encrypt: file too large")
		}
		n, err := io.ReadFull(in, buf[:ChunkSize])
		last := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			return Hash{}, 0, fmt.Errorf("attach: encrypt: read: %w", err)
		default:
			if _, err := in.Peek(1); err == io.EOF {
				last = true
			} else if err != nil {
				return Hash{}, 0, fmt.Errorf("attach: encrypt: read: %w", err)
			}
		}
		sealed := aead.Seal(buf[:0], nonce(&nb, i, last), buf[:n], header)
		if _, err := out.Write(sealed); err != nil {
			return Hash{}, 0, fmt.Errorf("attach: encrypt: write: %w", err)
		}
		if last {
			break
		}
	}
	var h Hash
	out.h.Sum(h[:0])
	return h, out.n, nil
}

// Decrypt reads a ciphertext from src until EOF, checks every chunk with
// key and writes the file to dst without its padding, then checks that
// the SHA-256 of the whole ciphertext equals want. It reads both versions
// of the format.
//
// Plaintext is written as soon as its chunk authenticates, so on any error
// dst may hold a prefix of the file: the caller must then discard it (for
// example by writing to a temporary file and renaming it only on success).
// Errors caused by the input wrap [ErrCorrupt] or [ErrHashMismatch];
// errors from src or dst are wrapped with %w.
func Decrypt(dst io.Writer, src io.Reader, key Key, want Hash) error {
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		return fmt.Errorf("attach: decrypt: %v", err)
	}
	h := sha256.New()
	in := bufio.NewReaderSize(io.TeeReader(src, h), sealedChunkSize)
	header := make([]byte, 1)
	if _, err := io.ReadFull(in, header); err != nil {
		if err == io.EOF {
			return fmt.Errorf("%w: empty input", ErrCorrupt)
		}
		return fmt.Errorf("attach: decrypt: read: %w", err)
	}
	var out interface {
		write([]byte) error
		finish() error
	}
	switch header[0] {
	case Version:
		out = &unpadder{w: dst}
	case versionUnpadded:
		out = plainWriter{dst}
	default:
		return fmt.Errorf("%w: unknown version %d", ErrCorrupt, header[0])
	}
	buf := make([]byte, sealedChunkSize)
	var nb [chacha20poly1305.NonceSize]byte
	for i := uint64(0); ; i++ {
		if i >= maxChunks {
			return fmt.Errorf("%w: too many chunks", ErrCorrupt)
		}
		n, err := io.ReadFull(in, buf)
		last := false
		switch {
		case err == io.EOF:
			return fmt.Errorf("%w: truncated before chunk %d", ErrCorrupt, i)
		case err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			return fmt.Errorf("attach: decrypt: read: %w", err)
		default:
			if _, err := in.Peek(1); err == io.EOF {
				last = true
			} else if err != nil {
				return fmt.Errorf("attach: decrypt: read: %w", err)
			}
		}
		if n < tagSize {
			return fmt.Errorf("%w: chunk %d truncated", ErrCorrupt, i)
		}
		plain, err := aead.Open(buf[:0], nonce(&nb, i, last), buf[:n], header)
		if err != nil {
			return fmt.Errorf("%w: chunk %d fails authentication", ErrCorrupt, i)
		}
		if last && len(plain) == 0 && i > 0 {
			// Encrypt never makes an empty last chunk after a full one.
			return fmt.Errorf("%w: empty final chunk %d", ErrCorrupt, i)
		}
		if err := out.write(plain); err != nil {
			return err
		}
		if last {
			break
		}
	}
	if err := out.finish(); err != nil {
		return err
	}
	var got Hash
	h.Sum(got[:0])
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fmt.Errorf("%w: got %s, want %s", ErrHashMismatch, got, want)
	}
	return nil
}

// plainWriter writes a version 1 plaintext, which has no padding.
type plainWriter struct{ w io.Writer }

func (p plainWriter) write(b []byte) error {
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("attach: decrypt: write: %w", err)
	}
	return nil
}

func (plainWriter) finish() error { return nil }

// unpadder writes a version 2 plaintext to w without its padding. It
// holds back the last 0x80 byte seen and the zeros after it, which are the
// padding if nothing but zeros follows them, so that memory stays
// constant however long the padding is.
type unpadder struct {
	w      io.Writer
	total  int64  // plaintext bytes seen
	marked bool   // a 0x80 byte is held back
	zeros  int64  // zero bytes held back after it
	zbuf   []byte // zeros to flush from
}

func (u *unpadder) write(p []byte) error {
	u.total += int64(len(p))
	j := len(bytes.TrimRight(p, "\x00")) - 1 // the last non-zero byte
	if j < 0 && u.marked {
		u.zeros += int64(len(p))
		return nil
	}
	if j >= 0 {
		if err := u.flush(); err != nil {
			return err
		}
		if p[j] == padMarker {
			u.marked, u.zeros = true, int64(len(p)-j-1)
			p = p[:j]
		}
	}
	if _, err := u.w.Write(p); err != nil {
		return fmt.Errorf("attach: decrypt: write: %w", err)
	}
	return nil
}

// flush writes the held back bytes, which turned out to be file data.
func (u *unpadder) flush() error {
	if !u.marked {
		return nil
	}
	u.marked = false
	if _, err := u.w.Write([]byte{padMarker}); err != nil {
		return fmt.Errorf("attach: decrypt: write: %w", err)
	}
	if u.zbuf == nil && u.zeros > 0 {
		u.zbuf = make([]byte, 4096)
	}
	for u.zeros > 0 {
		n := min(u.zeros, int64(len(u.zbuf)))
		if _, err := u.w.Write(u.zbuf[:n]); err != nil {
			return fmt.Errorf("attach: decrypt: write: %w", err)
		}
		u.zeros -= n
	}
	return nil
}

// finish checks that the plaintext ended in the padding Encrypt makes
// for the file before it.
func (u *unpadder) finish() error {
	if !u.marked {
		return fmt.Errorf("%w: no padding after %d bytes", ErrCorrupt, u.total)
	}
	n := u.total - 1 - u.zeros
	if want := padding.Attachment(n); u.total != want {
		return fmt.Errorf("%w: %d bytes of padding after %d bytes of file, want %d", ErrCorrupt, u.zeros+1, n, want-n)
	}
	return nil
}
