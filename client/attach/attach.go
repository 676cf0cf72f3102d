// Package attach encrypts and decrypts attachment files for Parley.
//
// Every file is encrypted on the sending client with a fresh random
// 32-byte [Key]; the ciphertext is uploaded to parleyd as an opaque blob,
// and the key and the SHA-256 [Hash] of the ciphertext travel to the other
// members inside an MLS application message (see package
// github.com/parley-chat/parley/client/content). The server, which stores
// the blob under the hex of the same hash, learns only its size.
//
// # Format
//
// The ciphertext is a one-byte header followed by chunks:
//
//	uint8 version (1)
//	chunk*  ChaCha20-Poly1305(key, nonce_i, plaintext_i, ad = header)
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
)

// Version is the format version, the first byte of every ciphertext.
const Version = 1

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

// CiphertextSize returns the size of the ciphertext of a plaintext of n
// bytes.
func CiphertextSize(n int64) int64 {
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

// encrypt encrypts src to dst under k.
func encrypt(dst io.Writer, src io.Reader, k Key) (Hash, int64, error) {
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return Hash{}, 0, fmt.Errorf("attach: encrypt: %v", err)
	}
	out := &hashWriter{w: dst, h: sha256.New()}
	header := []byte{Version}
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
// key and writes the plaintext to dst, then checks that the SHA-256 of the
// whole ciphertext equals want.
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
	if header[0] != Version {
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
		if _, err := dst.Write(plain); err != nil {
			return fmt.Errorf("attach: decrypt: write: %w", err)
		}
		if last {
			break
		}
	}
	var got Hash
	h.Sum(got[:0])
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fmt.Errorf("%w: got %s, want %s", ErrHashMismatch, got, want)
	}
	return nil
}
