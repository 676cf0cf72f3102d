package testenv

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	ended  string // "skip", "fail" or ""
	msg    string
	logged []string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.ended, r.msg = "skip", fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.ended, r.msg = "fail", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Log(args ...any) { r.logged = append(r.logged, fmt.Sprint(args...)) }

// run calls f with a recorder on its own goroutine (Skip and Fatalf end
// it) and returns the recorder once f ended.
func run(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestUnavailable checks the one rule: skip outside CI, fail under
// CI=true, with a message naming the resource, the error and the way to
// provide the resource.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		ci, want string
	}{{"", "skip"}, {"false", "skip"}, {"true", "fail"}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := run(t, func(tb testing.TB) { Unavailable(tb, NeedPostgres, errors.New("boom")) })
			if r.ended != tc.want {
				t.Fatalf("ended %q, want %q", r.ended, tc.want)
			}
			for _, s := range []string{"PostgreSQL", "boom", EnvPostgres, "scripts/services"} {
				if !strings.Contains(r.msg, s) {
					t.Errorf("message %q does not name %q", r.msg, s)
				}
			}
		})
	}
}

// TestOptional checks that a test going on with less logs outside CI and
// fails under it, and that no error means the resource is there.
func TestOptional(t *testing.T) {
	t.Setenv("CI", "")
	var ok bool
	r := run(t, func(tb testing.TB) { ok = Optional(tb, NeedNATS, errors.New("down")) })
	if ok || r.ended != "" || len(r.logged) != 1 || !strings.Contains(r.logged[0], EnvNATS) {
		t.Errorf("outside CI: ok %v, ended %q, logged %q", ok, r.ended, r.logged)
	}
	r = run(t, func(tb testing.TB) { ok = Optional(tb, NeedNATS, nil) })
	if !ok || r.ended != "" || len(r.logged) != 0 {
		t.Errorf("no error: ok %v, ended %q, logged %q", ok, r.ended, r.logged)
	}
	t.Setenv("CI", "true")
	r = run(t, func(tb testing.TB) { Optional(tb, NeedNATS, errors.New("down")) })
	if r.ended != "fail" {
		t.Errorf("under CI: ended %q", r.ended)
	}
}

// TestServices checks Postgres and NATS against a port nothing listens on
// and against a listening one, with and without a URL scheme.
func TestServices(t *testing.T) {
	t.Setenv("CI", "")
	closed := closedAddr(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().String()
	for _, tc := range []struct {
		env, value string
		get        func(testing.TB) string
		want       string
	}{
		{EnvPostgres, "postgres://u:secret@" + closed + "/db", Postgres, "skip"},
		{EnvPostgres, "postgres://u@" + open + "/db", Postgres, ""},
		{EnvNATS, "nats://" + closed, NATS, "skip"},
		{EnvNATS, closed, NATS, "skip"},
		{EnvNATS, open, NATS, ""},
		{EnvNATS, "nats://" + open, NATS, ""},
	} {
		t.Setenv(tc.env, tc.value)
		var got string
		r := run(t, func(tb testing.TB) { got = tc.get(tb) })
		if r.ended != tc.want {
			t.Errorf("%s=%s: ended %q (%s), want %q", tc.env, tc.value, r.ended, r.msg, tc.want)
		}
		if tc.want == "" && got != tc.value {
			t.Errorf("%s=%s: got %q", tc.env, tc.value, got)
		}
		if strings.Contains(r.msg, "secret") {
			t.Errorf("message shows the password: %s", r.msg)
		}
	}
}

// TestMLSVectors checks that missing vectors skip with a message that says
// where they come from and how to point PARLEY_MLS_VECTORS at them, and
// that a folder is returned as it is.
func TestMLSVectors(t *testing.T) {
	t.Setenv("CI", "")
	missing := filepath.Join(t.TempDir(), "nothing-here")
	t.Setenv(EnvMLSVectors, missing)
	r := run(t, func(tb testing.TB) { MLSVectors(tb) })
	if r.ended != "skip" {
		t.Fatalf("ended %q, want skip", r.ended)
	}
	for _, s := range []string{"MLS test vectors", missing, "mlswg/mls-implementations", "test-vectors", EnvMLSVectors} {
		if !strings.Contains(r.msg, s) {
			t.Errorf("message %q does not name %q", r.msg, s)
		}
	}

	dir := t.TempDir()
	t.Setenv(EnvMLSVectors, dir)
	var got string
	r = run(t, func(tb testing.TB) { got = MLSVectors(tb) })
	if r.ended != "" || got != dir {
		t.Errorf("existing folder: ended %q (%s), got %q", r.ended, r.msg, got)
	}

	t.Setenv(EnvMLSVectors, "")
	d, err := MLSVectorsDir()
	if err != nil || filepath.Base(d) != "mls-test-vectors" || filepath.Base(filepath.Dir(d)) != "shared" {
		t.Errorf("default folder %q, %v; want ../shared/mls-test-vectors beside the module root", d, err)
	}
}
