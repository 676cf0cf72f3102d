package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPolicyEncoding: the default policy encodes to the documented bytes
// and decodes back.
func TestPolicyEncoding(t *testing.T) {
	p := DefaultPolicy("alice").WithAdmin("bob", true)
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{2, 7, 1, 2, 2, 1, 3, 2, 4, 2, 5, 1, 6, 2, 7, 2, 0, 0, 0, 0, 0, 2, 0, 5, 'a', 'l', 'i', 'c', 'e', 0, 3, 'b', 'o', 'b'}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding % x, want % x", b, want)
	}
	q, err := ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if q.String() != p.String() {
		t.Fatalf("decoded %s, want %s", q, p)
	}
}

// TestPolicyDecodeRefuses: every malformed encoding is refused, with an
// error naming the operation and the fault.
func TestPolicyDecodeRefuses(t *testing.T) {
	good, _ := DefaultPolicy("alice").WithAdmin("bob", true).MarshalBinary()
	head := func(rest ...byte) []byte {
		return append([]byte{2, 7, 1, 2, 2, 1, 3, 2, 4, 2, 5, 1, 6, 2, 7, 2, 0, 0, 0, 0}, rest...)
	}
	timer := func(t ...byte) []byte {
		return append(append([]byte{2, 7, 1, 2, 2, 1, 3, 2, 4, 2, 5, 1, 6, 2, 7, 2}, t...), 0, 1, 0, 1, 'a')
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "version truncated"},
		{"version", mod(func(b []byte) []byte { b[0] = 1; return b }), "unknown version 1"},
		{"rule count", mod(func(b []byte) []byte { b[1] = 6; return b }), "6 rules"},
		{"rule order", mod(func(b []byte) []byte { b[2], b[4] = 2, 1; return b }), "rule 1 is for action 2"},
		{"rule value", mod(func(b []byte) []byte { b[3] = 3; return b }), "unknown value 3"},
		{"rule value zero", mod(func(b []byte) []byte { b[3] = 0; return b }), "unknown value 0"},
		{"no admin", head(0, 0), "0 admins"},
		{"too many admins", head(0xff, 0xff), "65535 admins"},
		{"admins unsorted", head(0, 2, 0, 1, 'b', 0, 1, 'a'), "not sorted"},
		{"admins duplicate", head(0, 2, 0, 1, 'a', 0, 1, 'a'), "not sorted"},
		{"admin name", head(0, 1, 0, 1, 'A'), "not a valid user name"},
		{"admin empty", head(0, 1, 0, 0), "not a valid user name"},
		{"truncated admin", good[:len(good)-1], "admin truncated"},
		{"truncated count", good[:21], "admin count truncated"},
		{"truncated timer", good[:18], "timer truncated"},
		{"timer too short", timer(0, 0, 1, 43), "timer 4m59s"},
		{"timer too long", timer(0, 0x24, 0xea, 1), "timer 672h0m1s"},
		{"truncated rules", good[:5], "rule truncated"},
		{"trailing", append(bytes.Clone(good), 0), "1 trailing bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy(c.data)
			if err == nil || !strings.HasPrefix(err.Error(), "protocol: decode policy: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParsePolicy(% x): %v, want %q", c.data, err, c.want)
			}
		})
	}
	t.Logf("%d refusals", len(cases))
}

// FuzzParsePolicy: decoding never panics, and what decodes encodes to
// the same bytes.
func FuzzParsePolicy(f *testing.F) {
	good, _ := DefaultPolicy("alice").WithAdmin("bob", true).MarshalBinary()
	f.Add(good)
	f.Add([]byte{2, 7})
	withTimer, _ := DefaultPolicy("alice").WithTimer(MaxTimer).MarshalBinary()
	f.Add(withTimer)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoded % x, decoded % x", b, data)
		}
	})
}

// TestPolicyCheck: the decisions client and server share.
func TestPolicyCheck(t *testing.T) {
	p := DefaultPolicy("alice")
	members := []string{"alice", "bob", "carol"}
	add := func(by, who string) PolicyProposal {
		return PolicyProposal{Kind: ProposalAdd, Proposer: by, Target: who}
	}
	rm := func(by, who string) PolicyProposal {
		return PolicyProposal{Kind: ProposalRemove, Proposer: by, Target: who}
	}
	gce := func(by string) PolicyProposal { return PolicyProposal{Kind: ProposalExtensions, Proposer: by} }
	demoted := p.WithAdmin("dave", true).WithAdmin("alice", false)
	cases := []struct {
		name string
		h    PolicyHandshake
		ok   bool
	}{
		{"admin removes", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{rm("alice", "bob")}}, true},
		{"member removes another", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{rm("bob", "alice")}}, false},
		{"member leaves", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{rm("bob", "bob")}}, true},
		{"no policy", PolicyHandshake{Members: members, Proposals: []PolicyProposal{rm("bob", "alice"), gce("bob")}}, true},
		{"member adds", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{add("bob", "dave")}}, true},
		{"member adds, add=admins", PolicyHandshake{Policy: withRule(p, ActionAdd, WhoAdmins), Members: members, Proposals: []PolicyProposal{add("bob", "dave")}}, false},
		{"member adds a member's device, add=admins", PolicyHandshake{Policy: withRule(p, ActionAdd, WhoAdmins), Members: members, Proposals: []PolicyProposal{add("bob", "carol")}}, true},
		{"stranger adds", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{add("", "dave")}}, false},
		{"stranger removes", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{rm("", "bob")}}, false},
		{"member changes extensions", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: p.WithAdmin("bob", true), MembersAfter: members}, false},
		{"admin promotes", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("alice")}, Commit: true, NewPolicy: p.WithAdmin("bob", true), MembersAfter: members}, true},
		{"admin drops the policy", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("alice")}, Commit: true, MembersAfter: members}, false},
		{"admin sets an invalid policy", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("alice")}, Commit: true, NewPolicyErr: errors.New("bad"), MembersAfter: members}, false},
		{"last admin demoted for a non-member", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("alice")}, Commit: true, NewPolicy: demoted, MembersAfter: members}, false},
		{"first policy", PolicyHandshake{Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: DefaultPolicy("bob"), MembersAfter: members}, true},
		{"member changes the timer", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: p.WithTimer(MinTimer), MembersAfter: members}, true},
		{"member changes the timer, timer=admins", PolicyHandshake{Policy: withRule(p, ActionTimer, WhoAdmins), Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: withRule(p, ActionTimer, WhoAdmins).WithTimer(MinTimer), MembersAfter: members}, false},
		{"admin changes the timer, timer=admins", PolicyHandshake{Policy: withRule(p, ActionTimer, WhoAdmins), Members: members, Proposals: []PolicyProposal{gce("alice")}, Commit: true, NewPolicy: withRule(p, ActionTimer, WhoAdmins).WithTimer(MinTimer), MembersAfter: members}, true},
		{"member changes the timer and a rule", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: withRule(p, ActionAdd, WhoAdmins).WithTimer(MinTimer), MembersAfter: members}, false},
		{"member changes the timer and admins", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: p.WithAdmin("bob", true).WithTimer(MinTimer), MembersAfter: members}, false},
		{"member changes the timer and another extension", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("bob")}, Commit: true, NewPolicy: p.WithTimer(MinTimer), MembersAfter: members, OtherExtensionsChanged: true}, false},
		{"member proposes alone", PolicyHandshake{Policy: p, Members: members, Proposals: []PolicyProposal{gce("bob")}}, false},
		{"admin left: first leaf is admin", PolicyHandshake{Policy: p, Members: []string{"carol", "bob"}, Proposals: []PolicyProposal{rm("carol", "bob")}}, true},
		{"admin left: others are not", PolicyHandshake{Policy: p, Members: []string{"carol", "bob"}, Proposals: []PolicyProposal{rm("bob", "carol")}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.h.Check()
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrPolicyViolation)) {
				t.Fatalf("Check: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func withRule(p *Policy, a Action, w Who) *Policy {
	q := p.Clone()
	q.Rules[a-1] = w
	return q
}

// TestParseTimer: the timer's spellings, and the values refused.
func TestParseTimer(t *testing.T) {
	for in, want := range map[string]time.Duration{"off": 0, "0": 0, "5m": MinTimer, "1h": time.Hour, "1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour, "4w": MaxTimer, "90m": 90 * time.Minute} {
		d, err := ParseTimer(in)
		if err != nil || d != want {
			t.Errorf("ParseTimer(%q) = %v, %v, want %v", in, d, err, want)
		}
		if in != "0" && in != "90m" && FormatTimer(d) != in {
			t.Errorf("FormatTimer(%v) = %q, want %q", d, FormatTimer(d), in)
		}
	}
	for _, in := range []string{"4m", "5w", "1.5s", "5m1ms", "x", "-1h", "0d", ""} {
		if d, err := ParseTimer(in); err == nil {
			t.Errorf("ParseTimer(%q) = %v, want an error", in, d)
		}
	}
}
