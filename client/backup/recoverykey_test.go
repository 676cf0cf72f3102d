package backup_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client/backup"
)

// TestRecoveryKeyText: a key reads back from its text, whatever the
// case, spacing and dashes, with I, L and O read as 1, 1 and 0; its
// String never shows it.
func TestRecoveryKeyText(t *testing.T) {
	for range 100 {
		k := backup.NewRecoveryKey()
		text := k.Text()
		if !regexp.MustCompile(`^([0-9A-HJKMNP-TV-Z]{4}-){7}[0-9A-HJKMNP-TV-Z]{4}$`).MatchString(text) {
			t.Fatalf("text %q is not eight groups of four Crockford characters", text)
		}
		for _, in := range []string{text, strings.ToLower(text), strings.ReplaceAll(text, "-", " "), strings.ReplaceAll(text, "-", ""), " " + text + "\n"} {
			got, err := backup.ParseRecoveryKey(in)
			if err != nil || got != k {
				t.Fatalf("ParseRecoveryKey(%q) = %v, want the key", in, err)
			}
		}
		confused := strings.NewReplacer("1", "l", "0", "O").Replace(text)
		if got, err := backup.ParseRecoveryKey(confused); err != nil || got != k {
			t.Fatalf("ParseRecoveryKey(%q) = %v, want the key", confused, err)
		}
		if strings.Contains(k.String(), text[:4]) || strings.Contains(k.GoString(), text[:4]) {
			t.Fatal("String shows the key")
		}
	}
}

// TestRecoveryKeyTypos: a changed character or two swapped characters
// are caught by the checksum, a wrong length or character is refused; no
// error quotes the input. (One typo in 65,536 passes the 16-bit
// checksum and is then a wrong key: the test takes a key for which its
// typos do not.)
func TestRecoveryKeyTypos(t *testing.T) {
	swap := func(s string, i int) string {
		b := []byte(s)
		j := i + 1
		if b[j] == '-' {
			j++
		}
		b[i], b[j] = b[j], b[i]
		return string(b)
	}
	typo := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	var text string
	for {
		text = backup.NewRecoveryKey().Text()
		caught := 0
		for _, in := range []string{typo(text, 0), typo(text, len(text)-1), typo(text, 20), swap(text, 0)} {
			if _, err := backup.ParseRecoveryKey(in); err != nil || in == text {
				caught++
			}
		}
		if caught == 4 {
			break
		}
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "0 characters"},
		{"short", text[:len(text)-5], "28 characters"},
		{"long", text + "-AAAA", "36 characters"},
		{"U", "U" + text[1:], "character 1"},
		{"symbol", text[:5] + "*" + text[6:], "character 5"},
		{"typo first", typo(text, 0), "typo"},
		{"typo last", typo(text, len(text)-1), "typo"},
		{"typo middle", typo(text, 20), "typo"},
	} {
		_, err := backup.ParseRecoveryKey(tc.in)
		if !errors.Is(err, backup.ErrRecoveryKeyInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrRecoveryKeyInvalid saying %q", tc.name, err, tc.want)
		}
		if len(tc.in) >= 8 && strings.Contains(err.Error(), tc.in[:8]) {
			t.Errorf("%s: the error quotes the input: %v", tc.name, err)
		}
	}
	if s := swap(text, 0); s != text {
		if _, err := backup.ParseRecoveryKey(s); !errors.Is(err, backup.ErrRecoveryKeyInvalid) {
			t.Errorf("swapped characters accepted: %v", err)
		}
	}
}
