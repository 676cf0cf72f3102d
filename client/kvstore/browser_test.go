//go:build !js

package kvstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/internal/browsertest"
)

// testPage runs the wasm test binary with the arguments in its URL's
// query (one "arg" each) and logs its exit code.
const testPage = `<!doctype html>
<meta charset="utf-8">
<title>kvstore tests</title>
<script src="wasm_exec.js"></script>
<script>
const go = new Go();
go.argv = ["kvstore.test", ...new URLSearchParams(location.search).getAll("arg")];
go.exit = (code) => console.log("kvstore-test-exit " + code);
WebAssembly.instantiateStreaming(fetch("kvstore.test.wasm"), go.importObject)
	.then((r) => go.run(r.instance))
	.catch((e) => console.log("kvstore-test-exit error " + e));
</script>
`

// TestBrowser runs the tests of the IndexedDB backend (the _js_test.go
// files) in headless Chromium: it builds the package's test binary for
// GOOS=js GOARCH=wasm, serves it on loopback with wasm_exec.js and a
// page that runs it, and collects the binary's output from the console.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the build of the wasm test binary and its run in Chromium")
	}
	chromium := browsertest.Chromium(t)
	dir := t.TempDir()
	wasm := filepath.Join(dir, "kvstore.test.wasm")
	build := exec.Command("go", "test", "-c", "-o", wasm, ".")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the wasm test binary: %v\n%s", err, out)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	wasmExec := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(testPage))
	})
	mux.HandleFunc("GET /wasm_exec.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, wasmExec) })
	mux.HandleFunc("GET /kvstore.test.wasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/wasm")
		http.ServeFile(w, r, wasm)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := browsertest.Flags(chromium, filepath.Join(dir, "profile"))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	out := &consoleLog{exited: make(chan struct{})}
	if err := chromedp.Listen(bctx, out.listen); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	args := url.Values{"arg": {"-test.v", "-test.run=^TestIndexedDB"}}
	page := fmt.Sprintf("http://%s/?%s", ln.Addr(), args.Encode())
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("navigate to %s: %v", page, err)
	}
	select {
	case <-out.exited:
	case <-ctx.Done():
		t.Fatalf("the wasm tests did not finish: %v\n%s", ctx.Err(), out.text())
	}
	text, code := out.text(), out.code()
	t.Logf("output of the wasm tests:\n%s", text)
	if code != "0" {
		t.Errorf("the wasm test binary exited with %q, want 0", code)
	}
	if !slices.Contains(strings.Split(text, "\n"), "PASS") || !strings.Contains(text, "--- PASS: TestIndexedDBStore") {
		t.Error("the wasm test binary did not print PASS for TestIndexedDBStore")
	}
}

// consoleLog collects the page's console output until the test binary
// exits.
type consoleLog struct {
	mu       sync.Mutex
	lines    []string
	exitCode string
	exited   chan struct{}
	once     sync.Once
}

const exitPrefix = "kvstore-test-exit "

// listen runs on chromedp's event goroutine: it must not block.
func (c *consoleLog) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			var s string
			if err := json.Unmarshal(a.Value, &s); err != nil {
				s = string(a.Value)
			}
			parts = append(parts, s)
		}
		line = strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		line = "uncaught exception: " + ev.ExceptionDetails.Text
		if e := ev.ExceptionDetails.Exception; e != nil {
			line += " " + e.Description
		}
		c.exit(line, "exception")
		return
	default:
		return
	}
	if code, ok := strings.CutPrefix(line, exitPrefix); ok {
		c.exit("", code)
		return
	}
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.mu.Unlock()
}

func (c *consoleLog) exit(line, code string) {
	c.mu.Lock()
	if line != "" {
		c.lines = append(c.lines, line)
	}
	if c.exitCode == "" {
		c.exitCode = code
	}
	c.mu.Unlock()
	c.once.Do(func() { close(c.exited) })
}

func (c *consoleLog) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func (c *consoleLog) code() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitCode
}
