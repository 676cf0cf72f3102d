package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/protocol"
)

// TestMain lets the test binary run as a bare server process for
// TestIdleConnectionMemory (PARLEY_TEST_SERVE=1).
func TestMain(m *testing.M) {
	if os.Getenv("PARLEY_TEST_SERVE") == "1" {
		serveForMemTest()
		return
	}
	os.Exit(m.Run())
}

// serveForMemTest runs a server, prints its URL and a token, and answers
// each line on stdin with the process's heap and stack bytes in use.
func serveForMemTest() {
	t := &testing.T{}
	dir, _ := os.MkdirTemp("", "parley-mem")
	defer os.RemoveAll(dir)
	e := newEnvDir(t, dir)
	d := e.register("alice")
	fmt.Printf("%s %s\n", e.srv.URL, d.token)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if p := os.Getenv("PARLEY_MEMPROF"); p != "" && in.Text() == "prof" {
			f, _ := os.Create(p)
			runtime.GC()
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		for range 4 { // stacks shrink by half per cycle
			runtime.GC()
		}
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(os.Stderr, "heap %d stack %d\n", ms.HeapInuse, ms.StackInuse)
		fmt.Printf("%d %d\n", ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine())
	}
}

// TestIdleConnectionMemory measures the server's memory per idle,
// subscribed WebSocket connection in a separate process. It runs only with
// PARLEY_MEMTEST=N (connections).
func TestIdleConnectionMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PARLEY_MEMTEST"))
	if n == 0 {
		t.Skip("set PARLEY_MEMTEST=connections to run")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PARLEY_TEST_SERVE=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewScanner(stdout)
	out.Scan()
	f := strings.Fields(out.Text())
	url, token := f[0], f[1]
	mem := func() (int64, int) {
		fmt.Fprintln(stdin, "mem")
		out.Scan()
		var b int64
		var g int
		fmt.Sscan(out.Text(), &b, &g)
		return b, g
	}
	before, g0 := mem()
	conns := make([]*websocket.Conn, 0, n)
	sub, _ := protocol.MarshalFrame(&protocol.SubscribeFrame{})
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		c.Write(ctx, websocket.MessageText, sub)
		cancel()
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second)
	after, g1 := mem()
	fmt.Fprintln(stdin, "prof")
	out.Scan()
	t.Logf("%d idle connections: %.1f KiB of heap+stack each, %.1f goroutines each", n, float64(after-before)/float64(n)/1024, float64(g1-g0)/float64(n))
	for _, c := range conns {
		c.CloseNow()
	}
}

// newEnvDir is newEnv without a testing.T's cleanup, for the subprocess.
func newEnvDir(t *testing.T, dir string) *env {
	_ = httptest.NewServer
	return newEnv(&noCleanup{T: t, dir: dir}, nil)
}

// noCleanup is a testing.TB for a process that is not a test.
type noCleanup struct {
	*testing.T
	dir string
}

func (n *noCleanup) Cleanup(func())    {}
func (n *noCleanup) TempDir() string   { return n.dir }
func (n *noCleanup) Helper()           {}
func (n *noCleanup) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }
func (n *noCleanup) Fatalf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, f+"\n", args...)
	os.Exit(2)
}
func (n *noCleanup) Errorf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (n *noCleanup) Context() context.Context     { return context.Background() }
