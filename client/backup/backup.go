// Package backup encrypts and decrypts Parley's backup files.
//
// A backup file is a header followed by the encrypted content. The key
// comes from a generated [RecoveryKey] (144 random bits, shown once as
// 32 characters) or from a passphrase through Argon2id; the header says
// which, and carries the Argon2id parameters and a fresh random salt, so
// every file has its own key. What the content holds is the caller's
// business (package client writes the account and its history); this
// package only composes standard primitives: Argon2id (RFC 9106),
// HKDF-SHA-256 (RFC 5869) and ChaCha20-Poly1305 (RFC 8439) in the STREAM
// construction that package client/attach uses for attachments.
//
// # Format (version 1)
//
// The header, with big-endian integers:
//
//	8 bytes  magic "PARLEYBK"
//	uint8    version (1)
//	uint8    protection: 1 recovery key, 2 passphrase
//	         (passphrase only) uint32 Argon2id time, uint32 memory in KiB,
//	         uint8 threads
//	32 bytes salt
//	32 bytes key check
//
// The input keying material is the recovery key's 18 bytes, or
// Argon2id(passphrase, salt, time, memory, threads) of 32 bytes. Then
//
//	prk   = HKDF-Extract(SHA-256, salt, ikm)
//	key   = HKDF-Expand(prk, "parley backup v1 key", 32)
//	check = HKDF-Expand(prk, "parley backup v1 check", 32)
//
// The key check lets a reader tell a wrong key from a damaged file before
// it decrypts anything; it reveals nothing that a trial decryption of the
// first chunk would not.
//
// The content is cut into chunks of [ChunkSize] bytes, every chunk but
// the last full, the last holding 0 to ChunkSize bytes (0 only when the
// whole content is empty). Chunk i is sealed with ChaCha20-Poly1305 under
// key with the nonce of the 11-byte big-endian counter i and one byte, 1
// for the last chunk and 0 otherwise, and the whole header as associated
// data. A changed header, a dropped, reordered, duplicated or appended
// chunk, and a truncation anywhere therefore fail authentication.
package backup

import (
	"bufio"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/parley-chat/parley/client/store"
)

// Magic starts every backup file.
const Magic = "PARLEYBK"

// Version is the format version this package writes and reads.
const Version = 1

// ChunkSize is the content size of every chunk but the last.
const ChunkSize = 64 << 10

const (
	saltSize  = 32
	checkSize = 32
	tagSize   = chacha20poly1305.Overhead
	// maxChunks bounds the chunk counter (2^40 chunks of 64 KiB), so the
	// 11-byte counter never wraps.
	maxChunks = 1 << 40
	// maxMemoryKiB bounds the Argon2id memory a file may ask for (1 GiB):
	// a file cannot make a restore exhaust the machine's memory.
	maxMemoryKiB = 1 << 20
)

// Protection says what opens a backup.
type Protection uint8

// The protections of a backup.
const (
	// ProtectedByRecoveryKey: a generated RecoveryKey.
	ProtectedByRecoveryKey Protection = 1
	// ProtectedByPassphrase: a passphrase, through Argon2id.
	ProtectedByPassphrase Protection = 2
)

// String names the protection ("recovery key", "passphrase").
func (p Protection) String() string {
	switch p {
	case ProtectedByRecoveryKey:
		return "recovery key"
	case ProtectedByPassphrase:
		return "passphrase"
	}
	return fmt.Sprintf("protection %d", uint8(p))
}

// Errors that callers branch on; the errors of this package wrap one of
// them when the file, or the key, is at fault.
var (
	// ErrNotBackup means the input does not start like a backup file.
	ErrNotBackup = errors.New("backup: not a Parley backup file")
	// ErrUnsupportedVersion means the file is of a format version this
	// package does not read (made by a newer Parley).
	ErrUnsupportedVersion = errors.New("backup: unsupported format version")
	// ErrCorrupt means the file is malformed, truncated or altered.
	ErrCorrupt = errors.New("backup: file damaged or altered")
	// ErrWrongKey means the recovery key or passphrase is not the one
	// the file was made with (or the protection differs).
	ErrWrongKey = errors.New("backup: wrong recovery key or passphrase")
)

// DefaultKDFParams returns the Argon2id parameters of a new passphrase
// backup: 3 passes over 256 MiB with 4 threads. A backup file is likely
// to be copied to places an attacker can read, and guessing its
// passphrase offline costs this much per guess.
func DefaultKDFParams() store.KDFParams {
	return store.KDFParams{Time: 3, MemoryKiB: 256 << 10, Threads: 4}
}

// checkKDF bounds Argon2id parameters read from a file or given to a
// writer.
func checkKDF(p store.KDFParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.MemoryKiB > maxMemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB is more than %d KiB", p.MemoryKiB, maxMemoryKiB)
	}
	return nil
}

// Secret is what opens a backup: a recovery key or a passphrase.
type Secret struct {
	recovery   *RecoveryKey
	passphrase []byte
}

// WithRecoveryKey returns the Secret of a recovery key.
func WithRecoveryKey(k RecoveryKey) Secret { return Secret{recovery: &k} }

// WithPassphrase returns the Secret of a passphrase.
func WithPassphrase(p []byte) Secret { return Secret{passphrase: p} }

// Protection returns what the secret is (0 for the zero Secret).
func (s Secret) Protection() Protection {
	switch {
	case s.recovery != nil:
		return ProtectedByRecoveryKey
	case len(s.passphrase) > 0:
		return ProtectedByPassphrase
	}
	return 0
}

// Header is the unencrypted start of a backup file.
type Header struct {
	Version    uint8
	Protection Protection
	// KDF are the Argon2id parameters of a passphrase backup (zero
	// otherwise).
	KDF   store.KDFParams
	Salt  [saltSize]byte
	Check [checkSize]byte
}

// Marshal encodes the header.
func (h *Header) Marshal() []byte {
	b := append([]byte(Magic), h.Version, byte(h.Protection))
	if h.Protection == ProtectedByPassphrase {
		b = binary.BigEndian.AppendUint32(b, h.KDF.Time)
		b = binary.BigEndian.AppendUint32(b, h.KDF.MemoryKiB)
		b = append(b, h.KDF.Threads)
	}
	b = append(b, h.Salt[:]...)
	return append(b, h.Check[:]...)
}

// ReadHeader reads and checks the header at the start of r, and no more
// of r than the header.
func ReadHeader(r io.Reader) (*Header, error) {
	start := make([]byte, len(Magic)+2)
	if _, err := io.ReadFull(r, start); err != nil {
		return nil, readError("header", err, ErrNotBackup)
	}
	if string(start[:len(Magic)]) != Magic {
		return nil, ErrNotBackup
	}
	h := &Header{Version: start[len(Magic)], Protection: Protection(start[len(Magic)+1])}
	if h.Version != Version {
		return nil, fmt.Errorf("%w %d (this Parley reads version %d): restore with a newer Parley", ErrUnsupportedVersion, h.Version, Version)
	}
	rest := saltSize + checkSize
	switch h.Protection {
	case ProtectedByRecoveryKey:
	case ProtectedByPassphrase:
		rest += 9
	default:
		return nil, fmt.Errorf("%w: unknown protection %d", ErrCorrupt, uint8(h.Protection))
	}
	b := make([]byte, rest)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, readError("header", err, ErrCorrupt)
	}
	if h.Protection == ProtectedByPassphrase {
		h.KDF = store.KDFParams{Time: binary.BigEndian.Uint32(b), MemoryKiB: binary.BigEndian.Uint32(b[4:]), Threads: b[8]}
		if err := checkKDF(h.KDF); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		b = b[9:]
	}
	copy(h.Salt[:], b)
	copy(h.Check[:], b[saltSize:])
	return h, nil
}

// readError describes a failed read of what: the end of the input is
// the file's fault (short), any other error the reader's.
func readError(what string, err error, short error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated in the %s", short, what)
	}
	return fmt.Errorf("backup: read the %s: %w", what, err)
}

// keys derives the content key and the key check of the header with s.
func (h *Header) keys(s Secret) (key, check []byte, err error) {
	var ikm []byte
	switch h.Protection {
	case ProtectedByRecoveryKey:
		if s.recovery == nil {
			return nil, nil, fmt.Errorf("backup: the secret is no recovery key")
		}
		ikm = s.recovery.b[:]
	case ProtectedByPassphrase:
		if len(s.passphrase) == 0 {
			return nil, nil, fmt.Errorf("backup: the secret is no passphrase")
		}
		ikm = argon2.IDKey(s.passphrase, h.Salt[:], h.KDF.Time, h.KDF.MemoryKiB, h.KDF.Threads, 32)
	default:
		return nil, nil, fmt.Errorf("backup: unknown protection %d", uint8(h.Protection))
	}
	prk, err := hkdf.Extract(sha256.New, ikm, h.Salt[:])
	if err != nil {
		return nil, nil, err
	}
	if key, err = hkdf.Expand(sha256.New, prk, "parley backup v1 key", chacha20poly1305.KeySize); err != nil {
		return nil, nil, err
	}
	if check, err = hkdf.Expand(sha256.New, prk, "parley backup v1 check", checkSize); err != nil {
		return nil, nil, err
	}
	return key, check, nil
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

// Writer encrypts a backup's content to an underlying writer. Close
// seals the last chunk: a backup without it does not decrypt.
type Writer struct {
	w      io.Writer
	aead   cipherAEAD
	header []byte
	buf    []byte
	i      uint64
	nb     [chacha20poly1305.NonceSize]byte
	err    error
	closed bool
}

// cipherAEAD is the sealing and opening of chacha20poly1305.
type cipherAEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// NewWriter writes the header of a new backup protected by s to w and
// returns the Writer of its content. kdf are the Argon2id parameters of a
// passphrase (zero: DefaultKDFParams); a recovery key needs none.
func NewWriter(w io.Writer, s Secret, kdf store.KDFParams) (*Writer, error) {
	h := &Header{Version: Version, Protection: s.Protection()}
	switch h.Protection {
	case ProtectedByRecoveryKey:
	case ProtectedByPassphrase:
		if kdf == (store.KDFParams{}) {
			kdf = DefaultKDFParams()
		}
		if err := checkKDF(kdf); err != nil {
			return nil, fmt.Errorf("backup: new writer: %v", err)
		}
		h.KDF = kdf
	default:
		return nil, errors.New("backup: new writer: no recovery key or passphrase")
	}
	rand.Read(h.Salt[:])
	key, check, err := h.keys(s)
	if err != nil {
		return nil, fmt.Errorf("backup: new writer: %v", err)
	}
	copy(h.Check[:], check)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("backup: new writer: %v", err)
	}
	bw := &Writer{w: w, aead: aead, header: h.Marshal(), buf: make([]byte, 0, ChunkSize+tagSize)}
	if _, err := w.Write(bw.header); err != nil {
		return nil, fmt.Errorf("backup: write the header: %w", err)
	}
	return bw, nil
}

// Write encrypts p. A full chunk is written once the next byte arrives,
// so that the last chunk is known at Close.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("backup: write after close")
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.seal(false); err != nil {
				return n, err
			}
		}
		m := min(len(p), ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:m]...)
		p, n = p[m:], n+m
	}
	return n, nil
}

// seal writes the buffered chunk.
func (w *Writer) seal(last bool) error {
	if w.i >= maxChunks {
		w.err = errors.New("backup: content too large")
		return w.err
	}
	sealed := w.aead.Seal(w.buf[:0], nonce(&w.nb, w.i, last), w.buf, w.header)
	if _, err := w.w.Write(sealed); err != nil {
		w.err = fmt.Errorf("backup: write: %w", err)
		return w.err
	}
	w.buf, w.i = w.buf[:0], w.i+1
	return nil
}

// Close seals the last chunk. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	return w.seal(true)
}

// Reader decrypts a backup's content, authenticating every chunk before
// it returns any of its bytes. Read returns io.EOF only after the last
// chunk authenticated: a file cut short anywhere fails with ErrCorrupt.
type Reader struct {
	r      *bufio.Reader
	aead   cipherAEAD
	header []byte
	buf    []byte
	plain  []byte // decrypted, not yet read
	i      uint64
	nb     [chacha20poly1305.NonceSize]byte
	done   bool
	err    error
}

// NewReader reads the header of a backup from r, checks s against it
// (ErrWrongKey) and returns the Reader of its content.
func NewReader(r io.Reader, s Secret) (*Reader, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	return h.Open(r, s)
}

// Open checks s against the header (ErrWrongKey) and returns the Reader
// of the content that follows the header in r.
func (h *Header) Open(r io.Reader, s Secret) (*Reader, error) {
	if got := s.Protection(); got != h.Protection {
		return nil, fmt.Errorf("%w: the backup is protected by a %s, not a %s", ErrWrongKey, h.Protection, got)
	}
	key, check, err := h.keys(s)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(check, h.Check[:]) != 1 {
		return nil, fmt.Errorf("%w: the %s does not open this backup", ErrWrongKey, h.Protection)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("backup: open: %v", err)
	}
	return &Reader{r: bufio.NewReaderSize(r, ChunkSize+tagSize), aead: aead, header: h.Marshal(), buf: make([]byte, ChunkSize+tagSize)}, nil
}

// Read reads decrypted content.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// next reads and opens the next chunk.
func (r *Reader) next() error {
	if r.i >= maxChunks {
		return fmt.Errorf("%w: too many chunks", ErrCorrupt)
	}
	n, err := io.ReadFull(r.r, r.buf)
	last := false
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: truncated before chunk %d", ErrCorrupt, r.i)
	case err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return fmt.Errorf("backup: read chunk %d: %w", r.i, err)
	default:
		if _, err := r.r.Peek(1); err == io.EOF {
			last = true
		} else if err != nil {
			return fmt.Errorf("backup: read chunk %d: %w", r.i, err)
		}
	}
	if n < tagSize {
		return fmt.Errorf("%w: chunk %d truncated", ErrCorrupt, r.i)
	}
	plain, err := r.aead.Open(r.buf[:0], nonce(&r.nb, r.i, last), r.buf[:n], r.header)
	if err != nil {
		return fmt.Errorf("%w: chunk %d fails authentication", ErrCorrupt, r.i)
	}
	if last && len(plain) == 0 && r.i > 0 {
		// A writer never ends with an empty chunk after a full one.
		return fmt.Errorf("%w: empty final chunk %d", ErrCorrupt, r.i)
	}
	r.plain, r.done, r.i = plain, last, r.i+1
	return nil
}

// Verify reads the whole content of a backup from r with s, checking
// every chunk and the end, and discards it: it reports whether the file
// is whole and s opens it, without using any of it.
func Verify(r io.Reader, s Secret) error {
	br, err := NewReader(r, s)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, br)
	return err
}
