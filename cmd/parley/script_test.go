package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// mainM removes the build directory after the tests.
type mainM struct{ m *testing.M }

func (w mainM) Run() int {
	dir, err := os.MkdirTemp("", "parley-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buildDir = dir
	defer os.RemoveAll(dir)
	return w.m.Run()
}

// TestMain lets the test binary run as the parley command inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(mainM{m}, map[string]func(){"parley": main})
}

// TestScripts runs testdata/script/*.txtar: each script gets its own
// parleyd (parleyd-start) on loopback with a data directory in $WORK, and
// runs the parley command in-process of the test binary.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts parleyd processes")
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(e.WorkDir, "config"))
			e.Setenv("HOME", filepath.Join(e.WorkDir, "home"))
			e.Setenv("TZ", "UTC")
			e.Values[serverKey] = &serverHolder{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"parleyd-start":   cmdParleydStart,
			"parleyd-stop":    cmdParleydStop,
			"parleyd-restart": cmdParleydRestart,
			"parleyd-metric":  cmdParleydMetric,
			"parleyd-invite":  cmdParleydInvite,
			"exits":           cmdExits,
			"genfile":         cmdGenfile,
			"jsonget":         cmdJSONGet,
			"jsoneq":          cmdJSONEq,
			"cmpmsgs":         cmdCmpMsgs,
			"substr":          cmdSubstr,
			"forget-contacts": cmdForgetContacts,
		},
	})
}

// serverKey keys the script's *serverHolder in its values.
const serverKey = "parleyd"

// serverHolder holds the parleyd of a script.
type serverHolder struct{ s *server }

// cmdParleydStart starts parleyd for the script and exports $SERVER,
// $FINGERPRINT, $INVITE (the first-start admin invite), and $PARLEYD and
// $PARLEYD_DATA (its binary and data directory, for exec $PARLEYD admin).
//
//	parleyd-start [parleyd flags...]
func cmdParleydStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! parleyd-start")
	}
	h := ts.Value(serverKey).(*serverHolder)
	if h.s != nil {
		ts.Fatalf("parleyd already started")
	}
	s, err := startServer(ts.MkAbs("parleyd-data"), args...)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	h.s = s
	ts.Defer(func() {
		s.Stop()
		if strings.Contains(s.stderr.String(), "panic") {
			ts.Logf("parleyd stderr:\n%s", s.stderr.String())
		}
	})
	ts.Setenv("SERVER", s.URL)
	ts.Setenv("FINGERPRINT", s.Fingerprint)
	ts.Setenv("INVITE", s.Invite)
	ts.Setenv("PARLEYD", s.bin)
	ts.Setenv("PARLEYD_DATA", s.dataDir)
}

func scriptServer(ts *testscript.TestScript) *server {
	s := ts.Value(serverKey).(*serverHolder).s
	if s == nil {
		ts.Fatalf("parleyd not started (parleyd-start)")
	}
	return s
}

// cmdParleydStop stops the script's parleyd (SIGTERM).
func cmdParleydStop(ts *testscript.TestScript, neg bool, args []string) {
	scriptServer(ts).Stop()
}

// cmdParleydRestart starts the script's parleyd again (after
// parleyd-stop, or stopping it first) on the same address and data
// directory.
func cmdParleydRestart(ts *testscript.TestScript, neg bool, args []string) {
	h := ts.Value(serverKey).(*serverHolder)
	s, err := scriptServer(ts).Restart()
	if err != nil {
		ts.Fatalf("%v", err)
	}
	h.s = s
	ts.Defer(s.Stop)
}

// cmdParleydMetric checks the sum of a metric of parleyd since its last
// start (the samples whose line starts with PREFIX).
//
//	parleyd-metric PREFIX WANT
func cmdParleydMetric(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: parleyd-metric PREFIX WANT")
	}
	want, err := strconv.ParseFloat(args[1], 64)
	ts.Check(err)
	got, err := scriptServer(ts).metric(args[0])
	ts.Check(err)
	if got != want {
		ts.Fatalf("%s: %v, want %v", args[0], got, want)
	}
}

// cmdParleydInvite creates an invite and exports it.
//
//	parleyd-invite VAR [USES]
func cmdParleydInvite(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: parleyd-invite VAR [USES]")
	}
	uses := 1
	if len(args) == 2 {
		var err error
		if uses, err = strconv.Atoi(args[1]); err != nil {
			ts.Fatalf("uses: %v", err)
		}
	}
	code, err := scriptServer(ts).NewInvite(uses)
	ts.Check(err)
	ts.Setenv(args[0], code)
}

// cmdExits runs a command and checks its exit code; stdout and stderr are
// kept for the following stdout/stderr commands.
//
//	exits CODE COMMAND [ARGS...]
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdSubstr exports the first N bytes of VALUE as VAR.
//
//	substr VAR VALUE N
func cmdSubstr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: substr VAR VALUE N")
	}
	n, err := strconv.Atoi(args[2])
	ts.Check(err)
	if n < 0 || n > len(args[1]) {
		ts.Fatalf("substr: %d bytes of %q", n, args[1])
	}
	ts.Setenv(args[0], args[1][:n])
}

// cmdGenfile writes SIZE bytes of seeded random data to PATH.
//
//	genfile PATH SIZE SEED
func cmdGenfile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: genfile PATH SIZE SEED")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	seed, err := strconv.ParseUint(args[2], 10, 64)
	ts.Check(err)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	r.Read(b)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
}

// jsonPath returns the value at a dotted path (object keys and array
// indexes) of the JSON file.
func jsonPath(ts *testscript.TestScript, file, path string) any {
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(file)), &v))
	if path == "." {
		return v
	}
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				ts.Fatalf("%s: no %q in %s", file, k, path)
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("%s: index %q out of range in %s", file, k, path)
			}
			v = x[i]
		default:
			ts.Fatalf("%s: %s: %q is not inside an object or array", file, path, k)
		}
	}
	return v
}

// cmdJSONGet exports the value at PATH of a JSON file (stdout for the last
// command's output) as VAR.
//
//	jsonget VAR FILE PATH
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonget VAR FILE PATH")
	}
	v := jsonPath(ts, args[1], args[2])
	switch x := v.(type) {
	case string:
		ts.Setenv(args[0], x)
	default:
		b, _ := json.Marshal(x)
		ts.Setenv(args[0], string(b))
	}
}

// cmdJSONEq compares the values at PATH of two JSON files; with a third
// file name and more, all of them.
//
//	[!] jsoneq PATH FILE1 FILE2...
func cmdJSONEq(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 {
		ts.Fatalf("usage: jsoneq PATH FILE1 FILE2...")
	}
	first := jsonPath(ts, args[1], args[0])
	for _, f := range args[2:] {
		v := jsonPath(ts, f, args[0])
		eq := reflect.DeepEqual(first, v)
		if eq == neg {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(v)
			ts.Fatalf("%s of %s and %s: %s vs %s (want equal: %v)", args[0], args[1], f, a, b, !neg)
		}
	}
}

// sharedMessage is the part of a message every member sees identically.
type sharedMessage struct {
	ID, Sender, Kind, Text, ReplyTo string
	Attachment                      *attachmentJSON
	Edited, Deleted                 bool
	Reactions                       []reactionJSON
	ServerSeq                       uint64
}

// cmdCmpMsgs compares the histories printed by parley read --json CONV in
// several files: the same messages in the same order with the same
// content, replies, attachments, edits, deletions and reactions. System
// lines, which each device writes for itself, are left out.
//
//	cmpmsgs FILE1 FILE2...
func cmdCmpMsgs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: cmpmsgs FILE1 FILE2...")
	}
	load := func(f string) []sharedMessage {
		var h struct{ Messages []messageJSON }
		ts.Check(json.Unmarshal([]byte(ts.ReadFile(f)), &h))
		var out []sharedMessage
		for _, m := range h.Messages {
			if m.Kind == "system" {
				continue
			}
			out = append(out, sharedMessage{m.ID, m.Sender, m.Kind, m.Text, m.ReplyTo, m.Attachment, m.Edited, m.Deleted, m.Reactions, m.ServerSeq})
		}
		return out
	}
	first := load(args[0])
	if len(first) == 0 {
		ts.Fatalf("%s: no messages", args[0])
	}
	for _, f := range args[1:] {
		other := load(f)
		if !reflect.DeepEqual(first, other) {
			var b bytes.Buffer
			fmt.Fprintf(&b, "histories differ: %s (%d messages) vs %s (%d messages)\n", args[0], len(first), f, len(other))
			for i := range max(len(first), len(other)) {
				var x, y any
				if i < len(first) {
					x = first[i]
				}
				if i < len(other) {
					y = other[i]
				}
				mark := " "
				if !reflect.DeepEqual(x, y) {
					mark = "!"
				}
				fmt.Fprintf(&b, "%s %d: %+v\n  %+v\n", mark, i, x, y)
			}
			ts.Fatalf("%s", b.String())
		}
	}
}
