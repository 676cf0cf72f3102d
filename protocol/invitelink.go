package protocol

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// InviteLink is everything a new user needs to register, in one pasteable
// link: the server's URL, its certificate's SHA-256 fingerprint (for a
// self-signed certificate; empty for one a public CA signed) and the
// invite code. Its text form is the server URL with a fragment:
//
//	https://chat.example.org:8443/#invite=CODE&fp=HEX
//
// The fragment is never sent to the server, so the code stays out of
// access logs and proxies; a browser-based client served by parleyd reads
// it from location.hash. fp is 64 lowercase hexadecimal digits.
type InviteLink struct {
	// Server is the server's URL: https (or http) scheme, host and
	// optional port and path, without query or fragment.
	Server string
	// Code is the invite code.
	Code string
	// Fingerprint is the hex SHA-256 fingerprint of the server's
	// certificate, or empty.
	Fingerprint string
}

// String returns the link's text form.
func (l InviteLink) String() string {
	server := l.Server
	if u, err := url.Parse(server); err == nil && u.Path == "" {
		server += "/"
	}
	v := "invite=" + url.QueryEscape(l.Code)
	if l.Fingerprint != "" {
		v += "&fp=" + strings.ToLower(l.Fingerprint)
	}
	return server + "#" + v
}

// ParseInviteLink parses the text form of an InviteLink. It requires an
// http or https URL with a host and no query, and a fragment with a
// non-empty invite parameter; fp, when present, must be 64 hexadecimal
// digits. Errors quote the link without its code.
func ParseInviteLink(s string) (InviteLink, error) {
	s = strings.TrimSpace(s)
	base, frag, _ := strings.Cut(s, "#")
	shown, _, _ := strings.Cut(base, "?")
	bad := func(why string) (InviteLink, error) {
		return InviteLink{}, fmt.Errorf("invite link %.100q: %s", shown+"#…", why)
	}
	u, err := url.Parse(base)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return bad("want an https:// URL")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Opaque != "" {
		return bad("want https://HOST[:PORT][/PATH]#invite=CODE&fp=FINGERPRINT")
	}
	q, err := url.ParseQuery(frag)
	if err != nil {
		return bad("fragment is not invite=CODE&fp=FINGERPRINT")
	}
	l := InviteLink{Code: q.Get("invite"), Fingerprint: strings.ToLower(q.Get("fp"))}
	if l.Code == "" || len(q["invite"]) > 1 || len(q["fp"]) > 1 {
		return bad("want exactly one invite=CODE after the #")
	}
	if l.Fingerprint != "" {
		if b, err := hex.DecodeString(l.Fingerprint); err != nil || len(b) != 32 {
			return bad("fp is not a SHA-256 fingerprint (64 hexadecimal digits)")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath, u.Fragment, u.RawFragment = "", "", ""
	l.Server = u.String()
	return l, nil
}
