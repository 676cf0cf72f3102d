package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	s1, err := LoadOrCreate(dir, []string{"localhost", "127.0.0.1", "chat.example", ""}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !s1.Created || len(s1.Fingerprint) != 64 {
		t.Fatalf("first call: created %t fingerprint %q", s1.Created, s1.Fingerprint)
	}
	pub, ok := s1.Leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", s1.Leaf.PublicKey)
	}
	if err := s1.Leaf.VerifyHostname("chat.example"); err != nil {
		t.Error(err)
	}
	if err := s1.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}

	s2, err := LoadOrCreate(dir, nil, now.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Created || s2.Fingerprint != s1.Fingerprint {
		t.Errorf("second call: created %t, fingerprint changed %s → %s", s2.Created, s1.Fingerprint, s2.Fingerprint)
	}

	// Close to expiry, it is replaced.
	s3, err := LoadOrCreate(dir, nil, s1.Leaf.NotAfter.Add(-time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !s3.Created || s3.Fingerprint == s1.Fingerprint {
		t.Error("expiring certificate was not replaced")
	}

	// A lone certificate file is an error, not silently replaced.
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, nil, now, rand.Reader); err == nil || !strings.Contains(err.Error(), "only one") {
		t.Errorf("lone certificate: %v", err)
	}
	// A corrupt pair is an error naming the file.
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600)
	if _, err := LoadOrCreate(dir, nil, now, rand.Reader); err == nil || !strings.Contains(err.Error(), CertFile) {
		t.Errorf("corrupt pair: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	fp := Fingerprint([]byte("x"))
	want := "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	if fp != want {
		t.Fatalf("Fingerprint = %s", fp)
	}
	colons := strings.ToUpper(fp[:2])
	for i := 2; i < len(fp); i += 2 {
		colons += ":" + strings.ToUpper(fp[i:i+2])
	}
	for _, in := range []string{fp, strings.ToUpper(fp), colons, "sha256:" + fp} {
		b, err := ParseFingerprint(in)
		if err != nil || len(b) != 32 {
			t.Errorf("ParseFingerprint(%q): %v", in, err)
			continue
		}
		if err := VerifyFingerprint(b)([][]byte{[]byte("x")}, nil); err != nil {
			t.Errorf("VerifyFingerprint: %v", err)
		}
		if err := VerifyFingerprint(b)([][]byte{[]byte("y")}, nil); err == nil {
			t.Error("VerifyFingerprint accepted another certificate")
		}
	}
	for _, in := range []string{"", "abc", fp + "00", "zz" + fp[2:]} {
		if _, err := ParseFingerprint(in); err == nil {
			t.Errorf("ParseFingerprint(%q): no error", in)
		}
	}
}
