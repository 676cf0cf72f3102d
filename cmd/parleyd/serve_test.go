package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// server is an in-process parleyd started with run.
type server struct {
	addr           string
	stdout, stderr *syncBuffer
	stop           func() error // stop cancels the context and returns run's error.
}

// startInProcess runs `parleyd args...` in this process on a free
// loopback port and waits until it listens.
func startInProcess(t *testing.T, vars map[string]string, args ...string) *server {
	t.Helper()
	e, stdout, stderr := testEnv(t, vars)
	ready := make(chan string, 1)
	e.ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = run(ctx, append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, args...), e)
	}()
	s := &server{stdout: stdout, stderr: stderr}
	s.stop = func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(30 * time.Second):
			t.Fatal("parleyd did not stop within 30s")
			return nil
		}
	}
	t.Cleanup(func() { cancel(); <-done })
	select {
	case s.addr = <-ready:
	case <-done:
		t.Fatalf("parleyd exited: %v\n%s", runErr, stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("parleyd did not start within 30s")
	}
	return s
}

// line returns the value after prefix on a line of out, or "".
func line(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// certFingerprint returns the fingerprint of the PEM certificate file.
func certFingerprint(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:])
}

// TestFirstStartAndRestart checks the first start (data directory,
// certificate, fingerprint, admin invite) and that restarts reuse the
// certificate and keep an unused invite.
func TestFirstStartAndRestart(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{"HOME": home}
	dataDir := filepath.Join(home, ".local", "share", "parley")

	s := startInProcess(t, vars)
	out := s.stdout.String()
	fi, err := os.Stat(dataDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory %s: %v, %v; want mode 0700", dataDir, fi, err)
	}
	fp := line(out, "TLS certificate SHA-256 fingerprint: ")
	if want := certFingerprint(t, filepath.Join(dataDir, tlsutil.CertFile)); fp != want {
		t.Errorf("printed fingerprint %q, certificate file has %q", fp, want)
	}
	if !strings.Contains(out, "listening on https://"+s.addr) {
		t.Errorf("no URL in %q", out)
	}
	invite1 := line(out, "admin invite: ")
	if len(invite1) != 43 {
		t.Errorf("admin invite %q", invite1)
	}
	if strings.Contains(s.stderr.String(), invite1) {
		t.Error("the invite code is in the log")
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Restart: same certificate; still no users, and the invite handed
	// out keeps working: the same one is printed again.
	s = startInProcess(t, vars)
	out = s.stdout.String()
	if got := line(out, "TLS certificate SHA-256 fingerprint: "); got != fp {
		t.Errorf("restart: fingerprint %q, want %q", got, fp)
	}
	if strings.Contains(out, "new self-signed") {
		t.Error("restart generated a new certificate")
	}
	invite2 := line(out, "admin invite: ")
	if invite2 != invite1 {
		t.Errorf("restart: invite %q, want the unused first one %q", invite2, invite1)
	}
	if strings.Contains(out, "replace") {
		t.Errorf("restart says an invite was replaced:\n%s", out)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.NewConfig(filepath.Join(dataDir, "parley.db")))
	if err != nil {
		t.Fatal(err)
	}
	invs, err := st.Invites(context.Background())
	st.Close()
	if err != nil || len(invs) != 1 {
		t.Errorf("invites after restart: %d, %v; want the first one only", len(invs), err)
	}

	// With a user, no invite is printed.
	seedStore(t, dataDir, "alice").Close()
	s = startInProcess(t, vars)
	if strings.Contains(s.stdout.String(), "admin invite") {
		t.Errorf("invite printed although a user exists:\n%s", s.stdout)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestBootstrapInviteExpiry: a restart keeps the unused first-start
// invite (and the first user who registers with it is an administrator)
// until it expires; then a new one replaces it and the start message says
// so.
func TestBootstrapInviteExpiry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(dir, "parley.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, _, _ := testEnv(t, nil)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return now }
	c := Config{DataDir: dir}
	start := func() (*bootstrapInvite, *bootstrapStore) {
		t.Helper()
		bs := &bootstrapStore{Store: st, log: slog.New(slog.DiscardHandler)}
		inv, err := bootstrap(ctx, c, bs, e)
		if err != nil || inv == nil {
			t.Fatalf("bootstrap at %v: %v, %v", now, inv, err)
		}
		return inv, bs
	}
	first, _ := start()
	now = now.Add(bootstrapInviteTTL - time.Minute)
	again, bs := start()
	if again.code != first.code || !again.expires.Equal(first.expires) || again.replaced != "" {
		t.Errorf("restart before expiry: %+v, want the first invite %+v", again, first)
	}
	h := sha256.Sum256([]byte(again.code))
	bs.mu.Lock()
	armed := bytes.Equal(bs.hash, h[:])
	bs.mu.Unlock()
	if !armed {
		t.Error("the kept invite does not make an administrator")
	}
	now = now.Add(2 * time.Minute)
	renewed, _ := start()
	if renewed.code == first.code || !strings.Contains(renewed.replaced, "expired") {
		t.Errorf("restart after expiry: %+v, want a new invite replacing the expired one", renewed)
	}
	var out bytes.Buffer
	printStart(&out, c, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, &tlsSetup{}, startInfo{}, renewed)
	if !strings.Contains(out.String(), "the previous admin invite expired: a new admin invite replaces it") {
		t.Errorf("start message does not say the invite was replaced:\n%s", out.String())
	}
	invs, err := st.Invites(ctx)
	if err != nil || len(invs) != 1 {
		t.Errorf("invites: %d, %v; want the new one only", len(invs), err)
	}
}

// TestServeTLSModes starts the server with certificate files, with TLS
// off and with metrics off.
func TestServeTLSModes(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := tlsutil.Generate([]string{"localhost", "127.0.0.1"}, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(certPEM))
	writeFile(t, keyFile, string(keyPEM))
	blk, _ := pem.Decode(certPEM)

	s := startInProcess(t, nil, "--data-dir", filepath.Join(dir, "files"), "--tls-mode", "files", "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--metrics=false")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: tlsutil.VerifyFingerprint(mustFingerprint(t, tlsutil.Fingerprint(blk.Bytes)))}}}
	for path, want := range map[string]int{"/healthz": 200, "/metrics": 404} {
		resp, err := hc.Get("https://" + s.addr + path)
		if err != nil {
			t.Fatalf("files mode: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("files mode: GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// ACME mode starts without contacting the CA (certificates are
	// requested at the first handshake for a listed name).
	s = startInProcess(t, nil, "--data-dir", filepath.Join(dir, "acme"), "--tls-mode", "acme", "--tls-acme-domains", "chat.example.invalid",
		"--tls-acme-directory-url", "https://127.0.0.1:1/directory", "--tls-acme-http-listen", "127.0.0.1:0")
	if fi, err := os.Stat(filepath.Join(dir, "acme", "acme")); err != nil || !fi.IsDir() {
		t.Errorf("ACME cache directory: %v", err)
	}
	if !strings.Contains(s.stdout.String(), "ACME certificates for [chat.example.invalid]") {
		t.Errorf("ACME start message: %s", s.stdout)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = startInProcess(t, nil, "--data-dir", filepath.Join(dir, "off"), "--tls-mode", "off", "--open-registration")
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatalf("TLS off: %v", err)
	}
	resp.Body.Close()
	if !strings.Contains(s.stderr.String(), "TLS is OFF") || !strings.Contains(s.stdout.String(), "http://") {
		t.Errorf("TLS off: no warning or URL:\n%s\n%s", s.stdout, s.stderr)
	}
	if strings.Contains(s.stdout.String(), "admin invite") {
		t.Error("open registration printed an admin invite")
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// mustFingerprint parses a fingerprint.
func mustFingerprint(t *testing.T, s string) []byte {
	t.Helper()
	b, err := tlsutil.ParseFingerprint(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
