package client_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parley-chat/parley/client"
)

// TestSafeFileName: a sender's file name cannot name another directory,
// a hidden file, or hide its real extension behind control or
// bidirectional characters, and its length is bounded.
func TestSafeFileName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200) + ".pdf"
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{".bashrc", "bashrc"},
		{"../../.ssh/authorized_keys", "authorized_keys"},
		{`..\..\AppData\evil.exe`, "evil.exe"},
		{"/etc/passwd", "passwd"},
		{"..", "fallback"},
		{"...", "fallback"},
		{"", "fallback"},
		{"   .hidden  ", "hidden"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe"},         // right-to-left override
		{"a\u2066b\u2069c\u200Fd\u200Be.txt", "abcde.txt"}, // isolates, marks, zero-width space
		{"line\nbreak\x00\x1b[31m.txt", "line break[31m.txt"},
		{"tab\there.txt", "tab here.txt"},
		{"c:drive.txt", "c_drive.txt"},
		{"trailing. . ", "trailing"},
		{"bad\xffutf8.txt", "badutf8.txt"},
	} {
		if got := client.SafeFileName(c.in, "fallback"); got != c.want {
			t.Errorf("SafeFileName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := client.SafeFileName(long, "fallback")
	if len(got) > 120 || !strings.HasSuffix(got, ".pdf") || !utf8.ValidString(got) || !strings.HasPrefix(got, "éé") {
		t.Errorf("SafeFileName(%d bytes) = %q (%d bytes), want at most 120 valid bytes ending in .pdf", len(long), got, len(got))
	}
}
