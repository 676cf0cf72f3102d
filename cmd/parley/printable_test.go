package main

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
)

// TestPrintable checks that text chosen by other people cannot reach the
// terminal as control sequences or direction overrides, while ordinary
// text, newlines and emoji sequences stay as they are.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello, world", "hello, world"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab"},
		{"\x1b]0;pwned\x07title", "\uFFFD]0;pwned\uFFFDtitle"},
		{"\x1b[2J\x1b[Hclear", "\uFFFD[2J\uFFFD[Hclear"},
		{"c1 \u009b31m", "c1 \uFFFD31m"},
		{"abc\u202etxt.exe", "abc\uFFFDtxt.exe"},
		{"\u2066isolate\u2069", "\uFFFDisolate\uFFFD"},
		{"family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"},
		{"del\x7f", "del\uFFFD"},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestMessageLinePrintable checks the line `read` and `listen` print for
// a message whose text, file name and reaction carry escape sequences.
func TestMessageLinePrintable(t *testing.T) {
	m := &client.Message{Sender: "mallory", Sent: time.Now(), Text: "hi\x1b]52;c;ZXZpbA==\x07",
		Attachment: &client.Attachment{FileName: "report\u202efdp.exe", Size: 10, ID: "ab"},
		Reactions:  []client.Reaction{{Emoji: "\x1b[31m", User: "eve"}}}
	line := messageLine(m)
	if strings.ContainsAny(line, "\x1b\x07\u202e") {
		t.Errorf("messageLine kept a control character: %q", line)
	}
	if !strings.Contains(line, "report\uFFFDfdp.exe") || !strings.Contains(line, "hi\uFFFD]52;c;ZXZpbA==\uFFFD") {
		t.Errorf("messageLine = %q, want the text with U+FFFD in place of the controls", line)
	}
}
