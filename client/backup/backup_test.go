package backup_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/store"
)

// fastKDF keeps Argon2id cheap in tests.
var fastKDF = store.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// seal writes content as a backup protected by s.
func seal(t testing.TB, s backup.Secret, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, s, fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes cross chunk boundaries.
	for rest := content; len(rest) > 0; {
		n := min(len(rest), 7919)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// open decrypts a backup.
func open(file []byte, s backup.Secret) ([]byte, error) {
	r, err := backup.NewReader(bytes.NewReader(file), s)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRoundTrip: content of every size around the chunk boundaries
// comes back whole, with a recovery key and with a passphrase.
func TestRoundTrip(t *testing.T) {
	key := backup.NewRecoveryKey()
	secrets := map[string]backup.Secret{
		"recovery key": backup.WithRecoveryKey(key),
		"passphrase":   backup.WithPassphrase([]byte("correct horse battery staple")),
	}
	sizes := []int{0, 1, backup.ChunkSize - 1, backup.ChunkSize, backup.ChunkSize + 1, 3*backup.ChunkSize + 17}
	for name, s := range secrets {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				content := randomBytes(uint64(n), n)
				file := seal(t, s, content)
				h, err := backup.ReadHeader(bytes.NewReader(file))
				if err != nil {
					t.Fatal(err)
				}
				if h.Protection != s.Protection() || h.Version != backup.Version {
					t.Errorf("header %+v, want protection %v", h, s.Protection())
				}
				got, err := open(file, s)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, content) {
					t.Fatalf("got %d bytes back, want %d", len(got), len(content))
				}
				if err := backup.Verify(bytes.NewReader(file), s); err != nil {
					t.Fatalf("verify: %v", err)
				}
			})
		}
	}
}

// TestWrongSecret: another recovery key, another passphrase or the
// other kind of secret is ErrWrongKey, before any content is read.
func TestWrongSecret(t *testing.T) {
	file := seal(t, backup.WithRecoveryKey(backup.NewRecoveryKey()), []byte("secret"))
	pfile := seal(t, backup.WithPassphrase([]byte("one")), []byte("secret"))
	for name, tc := range map[string]struct {
		file []byte
		s    backup.Secret
		want string
	}{
		"other recovery key":  {file, backup.WithRecoveryKey(backup.NewRecoveryKey()), "does not open"},
		"passphrase for key":  {file, backup.WithPassphrase([]byte("one")), "protected by a recovery key, not a passphrase"},
		"other passphrase":    {pfile, backup.WithPassphrase([]byte("two")), "does not open"},
		"key for passphrase":  {pfile, backup.WithRecoveryKey(backup.NewRecoveryKey()), "protected by a passphrase"},
		"empty secret (zero)": {pfile, backup.Secret{}, "not a protection 0"},
	} {
		_, err := open(tc.file, tc.s)
		if !errors.Is(err, backup.ErrWrongKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrWrongKey saying %q", name, err, tc.want)
		}
	}
}

// TestTampered: any changed byte, a truncation anywhere and appended
// bytes are refused: ErrCorrupt, or ErrWrongKey for a changed key check
// or salt, or ErrNotBackup / ErrUnsupportedVersion for the start.
func TestTampered(t *testing.T) {
	s := backup.WithPassphrase([]byte("pass"))
	content := randomBytes(1, 2*backup.ChunkSize+100)
	file := seal(t, s, content)
	refused := func(what string, f []byte) {
		t.Helper()
		_, err := open(f, s)
		if !errors.Is(err, backup.ErrCorrupt) && !errors.Is(err, backup.ErrWrongKey) && !errors.Is(err, backup.ErrNotBackup) && !errors.Is(err, backup.ErrUnsupportedVersion) {
			t.Fatalf("%s: %v, want a refusal", what, err)
		}
	}
	// Every byte of the header, and bytes through the chunks.
	positions := []int{}
	for i := range 100 {
		positions = append(positions, i)
	}
	positions = append(positions, len(file)/2, len(file)-17, len(file)-1)
	for _, i := range positions {
		f := bytes.Clone(file)
		f[i] ^= 0x01
		refused(fmt.Sprintf("byte %d flipped", i), f)
	}
	r := rand.New(rand.NewPCG(2, 0))
	for range 50 {
		n := r.IntN(len(file))
		refused(fmt.Sprintf("truncated to %d", n), file[:n])
	}
	sealed := backup.ChunkSize + 16
	headerLen := len(file) - (2*sealed + 100 + 16)
	for _, n := range []int{headerLen, headerLen + sealed, headerLen + 2*sealed} {
		refused(fmt.Sprintf("truncated at a chunk boundary (%d)", n), file[:n])
	}
	refused("a byte appended", append(bytes.Clone(file), 0))
	// The second chunk dropped: the counters no longer match.
	refused("chunk dropped", append(bytes.Clone(file[:headerLen+sealed]), file[headerLen+2*sealed:]...))
}

// TestWriterErrors: no secret, and parameters out of range, make no
// writer.
func TestWriterErrors(t *testing.T) {
	if _, err := backup.NewWriter(io.Discard, backup.Secret{}, fastKDF); err == nil {
		t.Error("a writer without a secret")
	}
	if _, err := backup.NewWriter(io.Discard, backup.WithPassphrase([]byte("p")), store.KDFParams{Time: 1, MemoryKiB: 2 << 20, Threads: 1}); err == nil {
		t.Error("a writer with 2 GiB of Argon2id memory")
	}
	if backup.DefaultKDFParams().Validate() != nil {
		t.Error("the default parameters do not validate")
	}
}

// TestReadHeader is a table of headers: what is accepted, and why the
// rest is refused.
func TestReadHeader(t *testing.T) {
	salt := bytes.Repeat([]byte{1}, 32)
	check := bytes.Repeat([]byte{2}, 32)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	magic := []byte(backup.Magic)
	params := []byte{0, 0, 0, 3, 0, 0, 1, 0, 2} // time 3, 256 KiB, 2 threads
	for _, tc := range []struct {
		name string
		in   []byte
		want error // nil: accepted
	}{
		{"recovery key", join(magic, []byte{1, 1}, salt, check), nil},
		{"passphrase", join(magic, []byte{1, 2}, params, salt, check), nil},
		{"empty", nil, backup.ErrNotBackup},
		{"short magic", magic[:4], backup.ErrNotBackup},
		{"other magic", join([]byte("PARLEYBX"), []byte{1, 1}, salt, check), backup.ErrNotBackup},
		{"version 0", join(magic, []byte{0, 1}, salt, check), backup.ErrUnsupportedVersion},
		{"version 2", join(magic, []byte{2, 1}, salt, check), backup.ErrUnsupportedVersion},
		{"protection 0", join(magic, []byte{1, 0}, salt, check), backup.ErrCorrupt},
		{"protection 3", join(magic, []byte{1, 3}, salt, check), backup.ErrCorrupt},
		{"no salt", join(magic, []byte{1, 1}), backup.ErrCorrupt},
		{"short check", join(magic, []byte{1, 1}, salt, check[:31]), backup.ErrCorrupt},
		{"no params", join(magic, []byte{1, 2}, salt[:5]), backup.ErrCorrupt},
		{"time 0", join(magic, []byte{1, 2}, []byte{0, 0, 0, 0, 0, 0, 1, 0, 2}, salt, check), backup.ErrCorrupt},
		{"time 65", join(magic, []byte{1, 2}, []byte{0, 0, 0, 65, 0, 0, 1, 0, 2}, salt, check), backup.ErrCorrupt},
		{"memory 2 GiB", join(magic, []byte{1, 2}, []byte{0, 0, 0, 1, 0, 0x20, 0, 0, 1}, salt, check), backup.ErrCorrupt},
		{"threads 0", join(magic, []byte{1, 2}, []byte{0, 0, 0, 1, 0, 0, 1, 0, 0}, salt, check), backup.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := backup.ReadHeader(bytes.NewReader(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := h.Marshal(); !bytes.Equal(got, tc.in) {
					t.Fatalf("Marshal = %x, want %x", got, tc.in)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzReadHeader: no panic; an accepted header encodes back to the
// bytes it was read from, and ReadHeader read no more than them.
func FuzzReadHeader(f *testing.F) {
	salt := bytes.Repeat([]byte{1}, 64)
	f.Add(append([]byte(backup.Magic+"\x01\x01"), salt...))
	f.Add(append([]byte(backup.Magic+"\x01\x02\x00\x00\x00\x03\x00\x00\x01\x00\x02"), salt...))
	f.Add([]byte(backup.Magic + "\x01\x02\xff\xff\xff\xff"))
	f.Add([]byte("PARLEY"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := backup.ReadHeader(r)
		if err != nil {
			if h != nil {
				t.Fatal("a header with an error")
			}
			return
		}
		read := len(in) - r.Len()
		if got := h.Marshal(); !bytes.Equal(got, in[:read]) {
			t.Fatalf("Marshal = %x, read %x", got, in[:read])
		}
	})
}

// FuzzReader: a reader with the right key over arbitrary bytes after a
// valid header never panics, and returns nothing it did not
// authenticate: only the sealed content or an error.
func FuzzReader(f *testing.F) {
	key := backup.NewRecoveryKey()
	s := backup.WithRecoveryKey(key)
	content := randomBytes(3, backup.ChunkSize+10)
	file := seal(f, s, content)
	h, err := backup.ReadHeader(bytes.NewReader(file))
	if err != nil {
		f.Fatal(err)
	}
	hlen := len(h.Marshal())
	f.Add(file[hlen:])
	f.Add(file[hlen : hlen+100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		in := append(bytes.Clone(file[:hlen]), body...)
		got, err := open(in, s)
		if err == nil && !bytes.Equal(got, content) {
			t.Fatalf("accepted %d bytes that were never sealed", len(got))
		}
	})
}
