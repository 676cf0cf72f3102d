package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsfanout "github.com/parley-chat/parley/server/fanout/nats"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv returns an env with captured output and the given environment
// variables (HOME points to a temporary directory unless set).
func testEnv(t *testing.T, vars map[string]string) (*env, *syncBuffer, *syncBuffer) {
	t.Helper()
	if vars == nil {
		vars = map[string]string{}
	}
	if _, ok := vars["HOME"]; !ok {
		vars["HOME"] = t.TempDir()
	}
	var stdout, stderr syncBuffer
	return &env{
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return vars[k] },
		now:    time.Now,
		rand:   rand.Reader,
	}, &stdout, &stderr
}

// parseConfig loads a configuration from args (serve flags) and vars.
func parseConfig(t *testing.T, args []string, vars map[string]string) (Config, error) {
	t.Helper()
	e, _, _ := testEnv(t, vars)
	var cf configFlags
	fs := newFlagSet("test", e)
	cf.bind(fs, nil)
	if _, err := parseFlags(fs, args); err != nil {
		return Config{}, err
	}
	return loadConfig(&cf, e.getenv)
}

func TestConfigDefaults(t *testing.T) {
	home := t.TempDir()
	c, err := parseConfig(t, nil, map[string]string{"HOME": home})
	if err != nil {
		t.Fatal(err)
	}
	want := NewConfig()
	want.DataDir = filepath.Join(home, ".local", "share", "parley")
	if c.Listen != "127.0.0.1:8443" || c.DataDir != want.DataDir || c.TLS.Mode != tlsSelfSigned || c.OpenRegistration || c.Retention != 30*24*time.Hour {
		t.Errorf("defaults: got %+v", c)
	}
	xdg := t.TempDir()
	c, err = parseConfig(t, nil, map[string]string{"HOME": home, "XDG_DATA_HOME": xdg})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(xdg, "parley") {
		t.Errorf("XDG_DATA_HOME: data dir %q", c.DataDir)
	}
	if _, err := parseConfig(t, nil, map[string]string{"HOME": ""}); err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf("no HOME: err %v, want one naming data_dir", err)
	}
}

// TestConfigPrecedence checks flags > env > file > defaults, key by key.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "parleyd.toml")
	writeFile(t, file, `
listen = "127.0.0.1:1001"
server_name = "file.example"
retention = "48h"
open_registration = true
allowed_origins = ["a.example", "*.b.example"]

[tls]
mode = "files"
cert_file = "/file/cert.pem"
key_file = "/file/key.pem"

[limits]
max_blob_bytes = 2097152
blob_quota_bytes = "10MiB"

[rate_limits.posts_per_device]
per_second = 100
burst = 7

[log]
level = "debug"
`)
	vars := map[string]string{
		"PARLEY_DATA_DIR":    filepath.Join(dir, "data"),
		"PARLEY_LISTEN":      "127.0.0.1:2002",
		"PARLEY_SERVER_NAME": "env.example",
		"PARLEY_TLS_MODE":    "self-signed",
		"PARLEY_LOG_FORMAT":  "json",
	}
	args := []string{"--config", file, "--listen", "127.0.0.1:3003", "--tls-mode=off", "--rate-limits-posts-per-device-burst", "9"}
	c, err := parseConfig(t, args, vars)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen (flag over env over file)", c.Listen, "127.0.0.1:3003"},
		{"server_name (env over file)", c.ServerName, "env.example"},
		{"tls.mode (flag over env over file)", c.TLS.Mode, tlsOff},
		{"tls.cert_file (file)", c.TLS.CertFile, "/file/cert.pem"},
		{"retention (file)", c.Retention, 48 * time.Hour},
		{"open_registration (file)", c.OpenRegistration, true},
		{"allowed_origins (file)", strings.Join(c.AllowedOrigins, " "), "a.example *.b.example"},
		{"limits.max_blob_bytes (file)", c.Limits.MaxBlobBytes, int64(2 << 20)},
		{"limits.blob_quota_bytes (file, suffix)", c.Limits.BlobQuotaBytes, int64(10 << 20)},
		{"rate_limits.posts_per_device.per_second (file)", c.RateLimits.PostsPerDevice.PerSecond, 100.0},
		{"rate_limits.posts_per_device.burst (flag)", c.RateLimits.PostsPerDevice.Burst, 9},
		{"log.level (file)", c.Log.Level, "debug"},
		{"log.format (env)", c.Log.Format, "json"},
		{"data_dir (env)", c.DataDir, filepath.Join(dir, "data")},
		{"session_ttl (default)", c.SessionTTL, 24 * time.Hour},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	// PARLEY_CONFIG names the file when --config is absent.
	vars["PARLEY_CONFIG"] = file
	c, err = parseConfig(t, nil, vars)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.CertFile != "/file/cert.pem" || c.Listen != "127.0.0.1:2002" {
		t.Errorf("PARLEY_CONFIG: got cert %q listen %q", c.TLS.CertFile, c.Listen)
	}

	// A boolean flag without a value sets true; env false is overridden.
	vars = map[string]string{"PARLEY_OPEN_REGISTRATION": "false", "PARLEY_DATA_DIR": dir}
	c, err = parseConfig(t, []string{"--open-registration"}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if !c.OpenRegistration {
		t.Error("--open-registration did not override PARLEY_OPEN_REGISTRATION=false")
	}
}

// TestConfigErrors checks that every error names its setting and source.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		file string
		args []string
		vars map[string]string
		want []string
	}{
		{name: "unknown file key", file: "listne = \"x\"\n", want: []string{"unknown key", "listne"}},
		{name: "unknown table key", file: "[tls]\nmod = \"x\"\n", want: []string{"tls.mod"}},
		{name: "bad toml", file: "listen = \n", want: []string{"config file"}},
		{name: "bad file value", file: "retention = \"forever\"\n", want: []string{"retention", "forever"}},
		{name: "bad file type", file: "allowed_origins = [1]\n", want: []string{"allowed_origins"}},
		{name: "bad env", vars: map[string]string{"PARLEY_METRICS": "maybe"}, want: []string{"PARLEY_METRICS", "maybe"}},
		{name: "bad flag value", args: []string{"--limits-max-blob-bytes", "huge"}, want: []string{"limits-max-blob-bytes", "huge"}},
		{name: "tiny group state", args: []string{"--limits-max-group-state-bytes", "10"}, want: []string{"limits.max_group_state_bytes", "minimum"}},
		{name: "no pending proposals", vars: map[string]string{"PARLEY_LIMITS_MAX_PENDING_PROPOSALS": "0"}, want: []string{"limits.max_pending_proposals", "minimum"}},
		{name: "tiny pending proposal bytes", args: []string{"--limits-max-pending-proposal-bytes", "10"}, want: []string{"limits.max_pending_proposal_bytes", "minimum"}},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: []string{"no-such-flag"}},
		{name: "bad listen", args: []string{"--listen", "nope"}, want: []string{"listen", "nope"}},
		{name: "bad tls mode", args: []string{"--tls-mode", "maybe"}, want: []string{"tls.mode", "maybe"}},
		{name: "files without cert", args: []string{"--tls-mode", "files"}, want: []string{"tls.cert_file", "tls.key_file"}},
		{name: "acme without domains", args: []string{"--tls-mode", "acme"}, want: []string{"tls.acme_domains"}},
		{name: "postgres schemas differ", args: []string{"--store", "postgres://db/parley?schema=a", "--store-schema", "b"}, want: []string{"store", `"a"`, `"b"`}},
		{name: "postgres search_path", args: []string{"--store", "postgres://db/parley?search_path=x"}, want: []string{"store", "search_path"}},
		{name: "postgres blobs on sqlite", args: []string{"--blobs", "postgres"}, want: []string{"blobs", "PostgreSQL"}},
		{name: "bad blobs", args: []string{"--blobs", "s3://bucket"}, want: []string{"blobs", "s3://bucket"}},
		{name: "bad fanout", args: []string{"--fanout", "redis://x"}, want: []string{"fanout", "redis"}},
		{name: "bad fanout prefix", args: []string{"--fanout-prefix", "a.*"}, want: []string{"fanout_prefix"}},
		{name: "bad node id", args: []string{"--node-id", "node one"}, want: []string{"node_id"}},
		{name: "zero conns", args: []string{"--store-max-conns", "0"}, want: []string{"store_max_conns"}},
		{name: "unknown store", args: []string{"--store", "mysql://db"}, want: []string{"store", "mysql"}},
		{name: "bad origin", args: []string{"--allowed-origins", "https://a.example"}, want: []string{"allowed_origins", "https://a.example"}},
		{name: "bad origin pattern", args: []string{"--allowed-origins", "[a"}, want: []string{"allowed_origins", "[a"}},
		{name: "zero rate", args: []string{"--rate-limits-auth-per-ip-per-second", "0"}, want: []string{"rate_limits.auth_per_ip.per_second"}},
		{name: "zero ping", args: []string{"--websocket-ping-interval", "0s"}, want: []string{"websocket.ping_interval"}},
		{name: "negative retention", args: []string{"--retention", "-1h"}, want: []string{"retention"}},
		{name: "quota below blob", args: []string{"--limits-blob-quota-bytes", "1MiB", "--limits-max-blob-bytes", "2MiB"}, want: []string{"limits.blob_quota_bytes"}},
		{name: "bad level", args: []string{"--log-level", "loud"}, want: []string{"log.level", "loud"}},
		{name: "bad server name", args: []string{"--server-name", "a b"}, want: []string{"server_name"}},
		{name: "burst zero", args: []string{"--rate-limits-auth-per-ip-burst", "0"}, want: []string{"rate_limits.auth_per_ip.burst"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
				writeFile(t, p, tc.file)
				args = append([]string{"--config", p}, args...)
			}
			vars := map[string]string{"PARLEY_DATA_DIR": dir}
			for k, v := range tc.vars {
				vars[k] = v
			}
			_, err := parseConfig(t, args, vars)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestConfigCommand checks that `parleyd config` prints a file that loads
// back to the same configuration.
func TestConfigCommand(t *testing.T) {
	dir := t.TempDir()
	e, stdout, _ := testEnv(t, map[string]string{"PARLEY_DATA_DIR": dir})
	args := []string{"config", "--allowed-origins", "x.example", "--retention", "2d", "--tls-hosts", "chat.example,10.0.0.1"}
	if err := run(context.Background(), args, e); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "dump.toml")
	writeFile(t, file, stdout.String())
	want, err := parseConfig(t, args[1:], map[string]string{"PARLEY_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseConfig(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatalf("reload dump: %v\n%s", err, stdout)
	}
	if formatConfig(&got) != formatConfig(&want) {
		t.Errorf("dump does not round-trip:\n%s\nvs\n%s", formatConfig(&got), formatConfig(&want))
	}
}

func TestParseSizeAndDuration(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1KiB": 1024, "100MiB": 100 << 20, "2GB": 2e9, "5 MiB": 5 << 20, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1TiB", "x", "99999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1.5d": 36 * time.Hour, "90s": 90 * time.Second, "0": 0} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "forever"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q): no error", in)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"version"}, 0},
		{[]string{"help"}, 0},
		{[]string{"serve", "-h"}, 0},
		{[]string{"frobnicate"}, 2},
		{[]string{"version", "extra"}, 2},
		{[]string{"--listen", "nope"}, 2},
		{[]string{"admin"}, 2},
		{[]string{"admin", "users", "explode", "x"}, 2},
		{[]string{"admin", "invite", "create", "--uses", "0"}, 2},
		{[]string{"backup"}, 2},
		{[]string{"backup", "--data-dir", "/nonexistent-parley", "/tmp/x"}, 1},
		{[]string{"admin", "stats", "--data-dir", "/nonexistent-parley"}, 1},
	} {
		e, _, stderr := testEnv(t, nil)
		err := run(context.Background(), tc.args, e)
		if got := exitCode(err, e.stderr); got != tc.code {
			t.Errorf("%q: exit code %d, want %d (err %v, stderr %q)", tc.args, got, tc.code, err, stderr)
		}
	}
	if exitCode(flag.ErrHelp, &bytes.Buffer{}) != 0 {
		t.Error("help is not exit code 0")
	}
}

// writeFile writes a test file.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOperationsDocExample checks that the example config file in
// docs/operations.md loads and validates.
func TestOperationsDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Skipf("docs/operations.md: %v", err)
	}
	_, rest, ok := strings.Cut(string(doc), "```toml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no TOML example in docs/operations.md")
	}
	file := filepath.Join(t.TempDir(), "example.toml")
	writeFile(t, file, example)
	c, err := parseConfig(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	if c.TLS.Mode != tlsACME || c.RateLimits.RegisterPerIP.PerSecond != 0.1 || c.Limits.MaxBodyBytes != 8<<20 || c.ServerName != "chat.example.org" {
		t.Errorf("example loaded as %+v", c)
	}
	if d := deliveryConfig(c); d.MaxGroupStateBytes != 6<<20 {
		t.Errorf("example's max_group_state_bytes reaches the server as %d", d.MaxGroupStateBytes)
	}
}

// TestClusterConfig checks the scale-out settings: the PostgreSQL store
// with its schema from the URL or store_schema, the attachment store
// following the store, and NATS fan-out; and that the single-node default
// stays SQLite, disk attachments and the in-process hub.
func TestClusterConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := parseConfig(t, nil, map[string]string{"PARLEY_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := parseStore(c.Store, c.StoreSchema, c.DataDir)
	bspec, _ := parseBlobs(c.Blobs, spec.backend, c.DataDir)
	urls, _ := parseFanout(c.Fanout)
	if spec.backend != "sqlite" || bspec.backend != "disk" || bspec.path != filepath.Join(dir, "blobs") || urls != nil {
		t.Errorf("single-node defaults: store %+v, blobs %+v, fanout %v", spec, bspec, urls)
	}

	file := filepath.Join(dir, "cluster.toml")
	writeFile(t, file, `store = "postgres://parley:pw@db.internal:5432/chat?sslmode=verify-full&schema=org1"
fanout = "nats://n1:4222,nats://n2:4222"
fanout_prefix = "parley.org1"
node_id = "node-a"
store_max_conns = 32
`)
	c, err = parseConfig(t, []string{"--config", file}, map[string]string{"PARLEY_DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	spec, err = parseStore(c.Store, c.StoreSchema, c.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.backend != "postgres" || spec.schema != "org1" || strings.Contains(spec.dsn, "schema=") || !strings.Contains(spec.dsn, "sslmode=verify-full") {
		t.Errorf("store %+v", spec)
	}
	if d := spec.describe(); strings.Contains(d, "pw") || !strings.Contains(d, "parley@db.internal:5432/chat") {
		t.Errorf("describe %q", d)
	}
	if bspec, _ := parseBlobs(c.Blobs, spec.backend, c.DataDir); bspec.backend != "postgres" {
		t.Errorf("attachments with PostgreSQL: %+v", bspec)
	}
	if urls, _ := parseFanout(c.Fanout); len(urls) != 2 || c.FanoutPrefix != "parley.org1" || c.NodeID != "node-a" || c.StoreMaxConns != 32 {
		t.Errorf("fanout %v prefix %q node %q conns %d", urls, c.FanoutPrefix, c.NodeID, c.StoreMaxConns)
	}
	// The environment and flags override the file.
	c, err = parseConfig(t, []string{"--config", file, "--blobs", "disk:/srv/shared/blobs"},
		map[string]string{"PARLEY_DATA_DIR": dir, "PARLEY_STORE_SCHEMA": "org1", "PARLEY_FANOUT": "local"})
	if err != nil {
		t.Fatal(err)
	}
	bspec, _ = parseBlobs(c.Blobs, "postgres", c.DataDir)
	if urls, _ := parseFanout(c.Fanout); urls != nil || bspec.path != "/srv/shared/blobs" {
		t.Errorf("overrides: fanout %v blobs %+v", urls, bspec)
	}
	spec, _ = parseStore("postgres://h/db", "", dir)
	if spec.schema != "parley" {
		t.Errorf("default schema %q", spec.schema)
	}
	if got := withApplicationName("postgres://h/db?sslmode=disable", "n1"); !strings.Contains(got, "application_name=parleyd+n1") {
		t.Errorf("application name: %s", got)
	}
	if got := redactURLs([]string{"nats://u:secret@h:4222", "nats://tok@h2:4222"}); strings.Contains(got, "secret") || strings.Contains(got, "tok") {
		t.Errorf("redacted %q", got)
	}
	if id := defaultNodeID(strings.NewReader("\x01\x02")); !natsfanout.ValidNodeID(id) || !strings.HasSuffix(id, "-0102") {
		t.Errorf("default node id %q", id)
	}
}
