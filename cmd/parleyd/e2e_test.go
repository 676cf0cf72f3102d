package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/protocol"
)

// parleydBinary is the binary built by TestMain for the process tests.
var parleydBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "parleyd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	parleydBinary = filepath.Join(dir, "parleyd")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildOnce guards the build of parleydBinary.
var buildOnce struct {
	sync.Once
	err error
	out []byte
}

// buildParleyd builds the parleyd binary once per test run (go build -o).
func buildParleyd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the parleyd binary")
	}
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", parleydBinary, ".")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("go build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return parleydBinary
}

// child is a parleyd process.
type child struct {
	t           *testing.T
	cmd         *exec.Cmd
	url         string // url is https://127.0.0.1:PORT
	metricsURL  string // metricsURL is http://127.0.0.1:PORT/metrics, if served.
	fingerprint string
	invite      string // invite is the first-start admin invite, if printed.
	stdout      *syncBuffer
	stderr      *syncBuffer
	done        chan struct{} // closed when the process exited
	exitErr     error
}

// urlRE, fingerprintRE and inviteRE parse the start message.
var (
	urlRE         = regexp.MustCompile(`listening on (https?://\S+)`)
	fingerprintRE = regexp.MustCompile(`TLS certificate SHA-256 fingerprint: ([0-9a-f]{64})`)
	inviteRE      = regexp.MustCompile(`admin invite: (\S+)`)
	metricsRE     = regexp.MustCompile(`^metrics: (http://\S+)$`)
)

// startParleyd starts parleyd on a free loopback port with the data
// directory and waits until it prints its URL and answers /readyz.
func startParleyd(t *testing.T, bin, dataDir string, args ...string) *child {
	t.Helper()
	c := &child{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	c.cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=debug")
	pr, pw := io.Pipe()
	c.cmd.Stdout = io.MultiWriter(c.stdout, pw)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start parleyd: %v", err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("parleyd stdout:\n%s\nparleyd stderr:\n%s", c.stdout, c.stderr)
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-time.After(time.Minute):
			}
		}
		close(lines)
		io.Copy(io.Discard, pr)
	}()
	deadline := time.After(30 * time.Second)
	for c.fingerprint == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("parleyd exited before printing its fingerprint: %v\nstderr:\n%s", c.exitErr, c.stderr)
			}
			if m := urlRE.FindStringSubmatch(line); m != nil {
				c.url = m[1]
			}
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				c.metricsURL = m[1]
			}
			if m := inviteRE.FindStringSubmatch(line); m != nil {
				c.invite = m[1]
			}
			if m := fingerprintRE.FindStringSubmatch(line); m != nil {
				c.fingerprint = m[1]
			}
		case <-deadline:
			t.Fatalf("parleyd printed no fingerprint within 30s:\n%s\n%s", c.stdout, c.stderr)
		}
	}
	// The invite line follows the fingerprint line.
	for c.invite == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("parleyd exited: %v", c.exitErr)
			}
			if m := inviteRE.FindStringSubmatch(line); m != nil {
				c.invite = m[1]
			}
		case <-time.After(500 * time.Millisecond):
			c.invite = "-" // none printed
		}
	}
	if c.invite == "-" {
		c.invite = ""
	}
	go func() {
		for range lines {
		}
	}()
	c.waitReady()
	return c
}

// client returns an HTTP client that pins the child's certificate.
func (c *child) client() *http.Client {
	fp, err := tlsutil.ParseFingerprint(c.fingerprint)
	if err != nil {
		c.t.Fatal(err)
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify:    true, // the fingerprint is checked instead
			VerifyPeerCertificate: tlsutil.VerifyFingerprint(fp),
		}},
	}
}

// tlsConfig returns the pinned TLS configuration.
func (c *child) tlsConfig() *tls.Config {
	fp, err := tlsutil.ParseFingerprint(c.fingerprint)
	if err != nil {
		c.t.Fatal(err)
	}
	return &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: tlsutil.VerifyFingerprint(fp)}
}

// waitReady polls /readyz until it answers 200.
func (c *child) waitReady() {
	c.t.Helper()
	hc := c.client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(c.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("/readyz not OK within 30s: %v", err)
		}
		select {
		case <-c.done:
			c.t.Fatalf("parleyd exited while waiting for /readyz: %v", c.exitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends sig and waits for the exit; it returns the exit error.
func (c *child) stop(sig os.Signal, within time.Duration) error {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal parleyd: %v", err)
	}
	select {
	case <-c.done:
		return c.exitErr
	case <-time.After(within):
		c.t.Fatalf("parleyd did not exit within %v after %v", within, sig)
		return nil
	}
}

// doJSON sends a JSON request and decodes a JSON answer into out (if not
// nil); it fails the test unless the status is want.
func doJSON(t *testing.T, hc *http.Client, method, url, token string, in, out any, want int) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, data, err)
		}
	}
}

// TestEndToEnd builds parleyd, runs it as a child process on a loopback
// port, checks the operational endpoints and stops it with SIGTERM.
func TestEndToEnd(t *testing.T) {
	bin := buildParleyd(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	c := startParleyd(t, bin, dataDir)
	hc := c.client()

	if c.invite == "" {
		t.Error("first start printed no admin invite")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := hc.Get(c.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	// Metrics are on their own loopback listener, not the public one.
	resp, err := hc.Get(c.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public GET /metrics: %d, want 404", resp.StatusCode)
	}
	if c.metricsURL == "" {
		t.Fatal("no metrics line in the start message")
	}
	resp, err = http.Get(c.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "parley_", "parley_connections_open"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var info protocol.ServerInfo
	doJSON(t, hc, "GET", c.url+"/v1/info", "", nil, &info, http.StatusOK)
	if info.Name != "localhost" || len(info.Protocols) == 0 || info.OpenRegistration || info.Limits.MaxAttachmentBytes != 100<<20 {
		t.Errorf("/v1/info: %+v", info)
	}

	// The admin commands work beside the running server.
	out, err := exec.Command(bin, "admin", "stats", "--json", "--data-dir", dataDir).Output()
	if err != nil {
		t.Fatalf("admin stats beside the server: %v", err)
	}
	var s statsJSON
	if err := json.Unmarshal(out, &s); err != nil || s.Users != 0 {
		t.Errorf("admin stats: %s, %v", out, err)
	}

	if err := c.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	logs := c.stderr.String()
	if !strings.Contains(logs, "parleyd stopped") {
		t.Errorf("no orderly stop in the log:\n%s", logs)
	}
	if strings.Contains(logs, c.invite) {
		t.Error("the admin invite code appears in the log")
	}
	fi, err := os.Stat(dataDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}
