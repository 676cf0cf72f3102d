package backup

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// A RecoveryKey is 144 random bits with a 16-bit checksum, written as
// 32 characters of Crockford's base32 in eight groups of four
// ("7KQ2-…"). Reading one ignores case, spaces and dashes, takes I and L
// for 1 and O for 0, and refuses one whose checksum does not match, so
// that a typo is reported as a typo, not as a wrong key.
type RecoveryKey struct {
	b [recoveryKeyBytes]byte
}

const (
	recoveryKeyBytes = 18
	checksumBytes    = 2
	recoveryKeyChars = (recoveryKeyBytes + checksumBytes) * 8 / 5
)

// crockford is Crockford's base32 alphabet: digits and letters without
// I, L, O and U.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// ErrRecoveryKeyInvalid means a text is not a recovery key: of the wrong
// length, with a character outside the alphabet, or with a typo that the
// checksum caught.
var ErrRecoveryKeyInvalid = errors.New("backup: not a valid recovery key")

// NewRecoveryKey returns a random recovery key.
func NewRecoveryKey() RecoveryKey {
	var k RecoveryKey
	rand.Read(k.b[:]) // never fails since Go 1.24
	return k
}

// checksum returns the checksum of the key's bytes.
func (k RecoveryKey) checksum() []byte {
	h := sha256.Sum256(append([]byte("parley recovery key\x00"), k.b[:]...))
	return h[:checksumBytes]
}

// Text returns the key to show the user, once: 32 characters in groups
// of four separated by dashes.
func (k RecoveryKey) Text() string {
	s := crockford.EncodeToString(append(k.b[:], k.checksum()...))
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i : i+4])
	}
	return b.String()
}

// String returns a placeholder, never the key (use Text to show it).
func (RecoveryKey) String() string { return "backup.RecoveryKey(secret)" }

// GoString returns a placeholder, never the key.
func (k RecoveryKey) GoString() string { return k.String() }

// ParseRecoveryKey reads a recovery key as Text writes it, ignoring case,
// spaces and dashes and reading I and L as 1, O as 0. Errors wrap
// ErrRecoveryKeyInvalid; they never quote the input.
func ParseRecoveryKey(s string) (RecoveryKey, error) {
	var k RecoveryKey
	norm := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t', '\n', '\r':
			return -1
		case 'i', 'I', 'l', 'L':
			return '1'
		case 'o', 'O':
			return '0'
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if n := len([]rune(norm)); n != recoveryKeyChars {
		return k, fmt.Errorf("%w: it has %d characters, want %d (eight groups of four)", ErrRecoveryKeyInvalid, n, recoveryKeyChars)
	}
	b, err := crockford.DecodeString(norm)
	if err != nil {
		var ce base32.CorruptInputError
		if errors.As(err, &ce) {
			return k, fmt.Errorf("%w: character %d is not one of 0-9 and A-Z without U", ErrRecoveryKeyInvalid, int(ce)+1)
		}
		return k, fmt.Errorf("%w: %v", ErrRecoveryKeyInvalid, err)
	}
	copy(k.b[:], b)
	if subtle.ConstantTimeCompare(k.checksum(), b[recoveryKeyBytes:]) != 1 {
		return RecoveryKey{}, fmt.Errorf("%w: it has a typo (its checksum does not match): check every group", ErrRecoveryKeyInvalid)
	}
	return k, nil
}
