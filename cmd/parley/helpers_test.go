package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-chat/parley/internal/tlsutil"
)

// buildDir holds the binaries built for the tests; TestMain removes it.
var buildDir string

// builds guards the go build of each binary.
var builds sync.Map // package path → *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// buildBinary builds a command of this module once per test run.
func buildBinary(pkg string) (string, error) {
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		if buildDir == "" {
			b.err = errors.New("no build directory")
			return
		}
		b.path = filepath.Join(buildDir, filepath.Base(pkg))
		out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	return b.path, b.err
}

// fastLimits lifts parleyd's rate limits: every parley command
// authenticates anew, and the scripts run many commands from one address.
var fastLimits = []string{
	"--rate-limits-register-per-ip-per-second", "1000", "--rate-limits-register-per-ip-burst", "1000",
	"--rate-limits-auth-per-ip-per-second", "1000", "--rate-limits-auth-per-ip-burst", "1000",
	"--rate-limits-requests-per-ip-per-second", "10000", "--rate-limits-requests-per-ip-burst", "10000",
	"--rate-limits-requests-per-user-per-second", "10000", "--rate-limits-requests-per-user-burst", "10000",
	"--rate-limits-claims-per-user-per-second", "1000", "--rate-limits-claims-per-user-burst", "1000",
	"--rate-limits-claims-per-target-per-second", "1000", "--rate-limits-claims-per-target-burst", "1000",
}

// server is a parleyd process on a loopback port.
type server struct {
	bin, dataDir string
	extra        []string // extra flags
	cmd          *exec.Cmd
	URL          string
	Fingerprint  string
	MetricsURL   string // MetricsURL is the metrics listener's http://…/metrics.
	Invite       string // the first-start admin invite
	stdout       bytes.Buffer
	stderr       lockedBuffer
	done         chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	urlRE         = regexp.MustCompile(`listening on (https?://\S+)`)
	fingerprintRE = regexp.MustCompile(`TLS certificate SHA-256 fingerprint: ([0-9a-f]{64})`)
	inviteRE      = regexp.MustCompile(`admin invite: (\S+)`)
	metricsRE     = regexp.MustCompile(`^metrics: (http://\S+)$`)
)

// startServer builds parleyd (once) and starts it with a fresh data
// directory, waiting for its URL, fingerprint and admin invite.
func startServer(dataDir string, extra ...string) (*server, error) {
	return launchServer(dataDir, "127.0.0.1:0", true, extra)
}

// Restart stops parleyd and starts it again on the same address and data
// directory, with the same flags; it waits until the server is ready.
func (s *server) Restart() (*server, error) {
	s.Stop()
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	return launchServer(s.dataDir, u.Host, false, s.extra)
}

// launchServer starts parleyd on listen; with wantInvite it waits for the
// first-start admin invite too.
func launchServer(dataDir, listen string, wantInvite bool, extra []string) (*server, error) {
	bin, err := buildBinary("github.com/parley-chat/parley/cmd/parleyd")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dataDir: dataDir, extra: extra, done: make(chan struct{})}
	args := append([]string{"--listen", listen, "--metrics-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, fastLimits...)
	s.cmd = exec.Command(bin, append(args, extra...)...)
	s.cmd.Stderr = &s.stderr
	pr, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.After(60 * time.Second)
	for (wantInvite && s.Invite == "") || s.Fingerprint == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				return nil, fmt.Errorf("parleyd exited before printing its invite:\n%s\n%s", s.stdout.String(), s.stderr.String())
			}
			s.stdout.WriteString(line + "\n")
			if m := urlRE.FindStringSubmatch(line); m != nil {
				s.URL = m[1]
			}
			if m := fingerprintRE.FindStringSubmatch(line); m != nil {
				s.Fingerprint = m[1]
			}
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				s.MetricsURL = m[1]
			}
			if m := inviteRE.FindStringSubmatch(line); m != nil {
				s.Invite = m[1]
			}
		case <-deadline:
			s.Kill()
			return nil, fmt.Errorf("parleyd printed no invite within 60s:\n%s\n%s", s.stdout.String(), s.stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	if err := s.waitReady(); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// httpClient pins the server's certificate.
func (s *server) httpClient() *http.Client {
	fp, _ := tlsutil.ParseFingerprint(s.Fingerprint)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, VerifyPeerCertificate: tlsutil.VerifyFingerprint(fp),
	}}}
}

func (s *server) waitReady() error {
	hc := s.httpClient()
	for range 300 {
		resp, err := hc.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("parleyd not ready after 30s")
}

// metric returns the sum of the samples of a Prometheus metric whose line
// starts with prefix (name and labels).
func (s *server) metric(prefix string) (float64, error) {
	if s.MetricsURL == "" {
		return 0, errors.New("parleyd printed no metrics URL")
	}
	resp, err := s.httpClient().Get(s.MetricsURL) // plain HTTP on loopback
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, err
			}
			sum += v
		}
	}
	return sum, nil
}

// NewInvite creates an invite with parleyd admin.
func (s *server) NewInvite(uses int) (string, error) {
	cmd := exec.Command(s.bin, "admin", "invite", "create", "--data-dir", s.dataDir, "--uses", strconv.Itoa(uses))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output() // the code alone is on stdout
	if err != nil {
		return "", fmt.Errorf("parleyd admin invite create: %v\n%s", err, stderr.String())
	}
	code := strings.TrimSpace(string(out))
	if code == "" || strings.ContainsAny(code, " \n") {
		return "", fmt.Errorf("parleyd admin invite create printed %q", out)
	}
	return code, nil
}

// Stop ends parleyd with SIGTERM (a graceful shutdown).
func (s *server) Stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.Kill()
	}
}

// Kill ends parleyd at once.
func (s *server) Kill() {
	s.cmd.Process.Kill()
	<-s.done
}
