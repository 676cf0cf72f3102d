package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/browsertest"
)

// binaries are built once per test process.
var binaries struct {
	once         sync.Once
	dir          string
	parleyd, cli string
	out          []byte
	err          error
}

// repoRoot is the module's root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// build builds the web client (scripts/build-web), then parleyd, which
// embeds it, and the parley CLI.
func build(t testing.TB) (parleyd, cli string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the web client and runs it in Chromium")
	}
	browsertest.Chromium(t)
	root := repoRoot(t)
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "parley-e2e-")
		if binaries.err != nil {
			return
		}
		binaries.parleyd = filepath.Join(binaries.dir, "parleyd")
		binaries.cli = filepath.Join(binaries.dir, "parley")
		for _, args := range [][]string{
			{filepath.Join(root, "scripts", "build-web")},
			{"go", "build", "-o", binaries.parleyd, "./cmd/parleyd"},
			{"go", "build", "-o", binaries.cli, "./cmd/parley"},
		} {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			binaries.out = append(binaries.out, out...)
			if err != nil {
				binaries.err = fmt.Errorf("%s: %v", strings.Join(args, " "), err)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatalf("build: %v\n%s", binaries.err, binaries.out)
	}
	return binaries.parleyd, binaries.cli
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// server is a parleyd process on loopback: plain HTTP, which browsers
// treat as a secure context like https, or https with parleyd's
// self-signed certificate.
type server struct {
	url         string
	fingerprint string // the self-signed certificate's, when there is one
	invite      string // the first start's admin invite
}

var (
	urlRE         = regexp.MustCompile(`listening on (https?://\S+)`)
	adminInviteRE = regexp.MustCompile(`admin invite: (\S+)`)
	fingerprintRE = regexp.MustCompile(`TLS certificate SHA-256 fingerprint: ([0-9a-f]{64})`)
)

// startServer starts parleyd serving plain HTTP with a new data
// directory and waits until it answers /readyz.
func startServer(t testing.TB, bin string) *server {
	t.Helper()
	return startServerTLS(t, bin, "off")
}

// startServerTLS is startServer with the TLS mode tls ("off" or
// "self-signed").
func startServerTLS(t testing.TB, bin, tlsMode string) *server {
	t.Helper()
	return startServerArgs(t, bin, "--tls-mode", tlsMode)
}

// startServerArgs starts parleyd with a new data directory and more
// arguments (plain HTTP unless they say otherwise).
func startServerArgs(t testing.TB, bin string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "", "--tls-mode", "off",
		"--data-dir", filepath.Join(t.TempDir(), "data")}, args...)...)
	var log lockedBuffer
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(&log, pw)
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start parleyd: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("parleyd output:\n%s", log.String())
		}
	})
	s := &server{}
	sc := bufio.NewScanner(pr)
	for (s.url == "" || s.invite == "") && sc.Scan() {
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			s.url = m[1]
		}
		if m := adminInviteRE.FindStringSubmatch(sc.Text()); m != nil {
			s.invite = m[1]
		}
		if m := fingerprintRE.FindStringSubmatch(sc.Text()); m != nil {
			s.fingerprint = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if s.url == "" || s.invite == "" {
		t.Fatalf("parleyd printed no URL and invite:\n%s", log.String())
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("parleyd not ready within 30s: %v", err)
		}
		select {
		case <-done:
			t.Fatalf("parleyd exited:\n%s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// cliUser runs parley commands on one profile.
type cliUser struct {
	t   testing.TB
	bin string
	dir string
}

func newCLIUser(t testing.TB, bin string) *cliUser {
	return &cliUser{t: t, bin: bin, dir: filepath.Join(t.TempDir(), "profile")}
}

// newAdmin registers the CLI user carol with the server's first-start
// invite (she becomes its administrator) and returns her and an invite
// link for uses registrations, checked to be on the server.
func newAdmin(t testing.TB, bin string, srv *server, uses int) (carol *cliUser, link string) {
	t.Helper()
	carol = newCLIUser(t, bin)
	args := []string{"register", "--server", srv.url, "--invite", srv.invite, "carol"}
	if srv.fingerprint != "" {
		args = append(args, "--fingerprint", srv.fingerprint)
	}
	carol.run(args...)
	m := inviteRE.FindStringSubmatch(carol.run("invite", "create", "--uses", strconv.Itoa(uses)))
	if m == nil {
		t.Fatal("parley invite create printed no invite link")
	}
	if !strings.HasPrefix(m[1], srv.url) {
		t.Fatalf("invite link %s is not on the server %s", m[1], srv.url)
	}
	return carol, m[1]
}

// run runs a parley command and returns its standard output; it fails
// the test if the command fails.
func (u *cliUser) run(args ...string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, u.bin, append([]string{"--dir", u.dir}, args...)...)
	cmd.Env = append(os.Environ(), "PARLEY_PASSPHRASE=", "PARLEY_DAEMON=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		u.t.Fatalf("parley %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
