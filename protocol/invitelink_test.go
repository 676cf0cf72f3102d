package protocol

import (
	"strings"
	"testing"
)

func TestInviteLink(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	for _, l := range []InviteLink{
		{Server: "https://chat.example.org:8443", Code: "Zm9v-YmFy_", Fingerprint: fp},
		{Server: "https://chat.example.org", Code: "c0de"},
		{Server: "https://example.org/parley", Code: "a+b&c", Fingerprint: fp},
	} {
		s := l.String()
		got, err := ParseInviteLink(s)
		if err != nil {
			t.Fatalf("ParseInviteLink(%q): %v", s, err)
		}
		if got != l {
			t.Errorf("ParseInviteLink(%q) = %+v, want %+v", s, got, l)
		}
		if strings.Contains(strings.SplitN(s, "#", 2)[0], l.Code) {
			t.Errorf("%q: the code is outside the fragment", s)
		}
	}
	got, err := ParseInviteLink(" https://h:1/#invite=x&fp=" + strings.ToUpper(fp) + "\n")
	if err != nil || got.Server != "https://h:1" || got.Fingerprint != fp || got.Code != "x" {
		t.Errorf("upper-case fp, spaces: %+v, %v", got, err)
	}
	for _, s := range []string{
		"",
		"chat.example.org#invite=x",
		"ftp://h/#invite=x",
		"https:///#invite=x",
		"https://h/?invite=x",
		"https://u:p@h/#invite=x",
		"https://h/",
		"https://h/#fp=" + fp,
		"https://h/#invite=",
		"https://h/#invite=x&invite=y",
		"https://h/#invite=x&fp=abc",
		"https://h/#invite=x&fp=" + fp + "&fp=" + fp,
		"https://h/#invite=x&fp=" + strings.Repeat("zz", 32),
		"https://h/#invite=%zz",
	} {
		if l, err := ParseInviteLink(s); err == nil {
			t.Errorf("ParseInviteLink(%q) = %+v, want an error", s, l)
		} else if strings.Contains(err.Error(), "invite=x") {
			t.Errorf("ParseInviteLink(%q): error %q shows the code", s, err)
		}
	}
}

func FuzzParseInviteLink(f *testing.F) {
	f.Add("https://h:1/#invite=x&fp=" + strings.Repeat("0", 64))
	f.Add("http://h/p/#invite=a%20b")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseInviteLink(s)
		if err != nil {
			return
		}
		again, err := ParseInviteLink(l.String())
		if err != nil || again != l {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, l, l.String(), again, err)
		}
	})
}
