package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/protocol"
)

// TestAdminInviteLink checks the invite link of parleyd admin invite
// create: the public URL from server_name and listen (or --url), the
// fingerprint of the self-signed certificate in the data directory, and
// the code of the stored invite.
func TestAdminInviteLink(t *testing.T) {
	dir := t.TempDir()
	st := seedStore(t, dir)
	ss, err := tlsutil.LoadOrCreate(dir, []string{"chat.example.org"}, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e, stdout, stderr := testEnv(t, map[string]string{
		"PARLEY_DATA_DIR": dir, "PARLEY_SERVER_NAME": "chat.example.org", "PARLEY_LISTEN": "0.0.0.0:8443",
	})
	checkCode := func(code string) {
		t.Helper()
		invs, err := st.Invites(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(code))
		for _, inv := range invs {
			if string(inv.CodeHash) == string(h[:]) {
				return
			}
		}
		t.Errorf("the link's code %q is no stored invite", code)
	}

	out := runOK(t, e, stdout, "admin", "invite", "create", "--link")
	l, err := protocol.ParseInviteLink(out)
	if err != nil {
		t.Fatalf("invite create --link printed %q: %v", out, err)
	}
	if l.Server != "https://chat.example.org:8443" || l.Fingerprint != ss.Fingerprint {
		t.Errorf("link %+v, want server https://chat.example.org:8443 and fingerprint %s", l, ss.Fingerprint)
	}
	checkCode(l.Code)

	// Plain output: the code on stdout, the link on stderr.
	before := len(stderr.String())
	code := strings.TrimSpace(runOK(t, e, stdout, "admin", "invite", "create"))
	if !strings.Contains(stderr.String()[before:], "https://chat.example.org:8443/#invite="+code+"&fp="+ss.Fingerprint) {
		t.Errorf("plain invite create: stderr %q lacks the link of code %q", stderr.String()[before:], code)
	}

	// JSON carries the link; --url overrides the public URL.
	out = runOK(t, e, stdout, "admin", "invite", "create", "--json", "--url", "https://parley.example.net/")
	var j struct {
		protocol.InviteInfo
		Link string `json:"link"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	want := protocol.InviteLink{Server: "https://parley.example.net", Code: j.Code, Fingerprint: ss.Fingerprint}.String()
	if j.Link != want {
		t.Errorf("JSON link %q, want %q", j.Link, want)
	}
	checkCode(j.Code)

	for _, bad := range []string{"chat.example.org", "ftp://x", "https://x/?a=b"} {
		var ue usageError
		if err := run(context.Background(), []string{"admin", "invite", "create", "--url", bad}, e); !errors.As(err, &ue) {
			t.Errorf("--url %q: %v, want a usage error", bad, err)
		}
	}

	// Without a certificate (the server never started) or a known port,
	// there is no link: --link says so before creating an invite.
	dir2 := t.TempDir()
	seedStore(t, dir2)
	e2, _, _ := testEnv(t, map[string]string{"PARLEY_DATA_DIR": dir2})
	var ue usageError
	if err := run(context.Background(), []string{"admin", "invite", "create", "--link"}, e2); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--url") {
		t.Errorf("--link without a certificate: %v, want a usage error naming --url", err)
	}
}

// TestVersion checks that parleyd version prints the build information.
func TestVersion(t *testing.T) {
	e, stdout, _ := testEnv(t, nil)
	out := runOK(t, e, stdout, "version")
	if !strings.HasPrefix(out, "parleyd "+version()+"\n") || !strings.Contains(out, "go: "+runtime.Version()) {
		t.Errorf("parleyd version printed %q", out)
	}
}
