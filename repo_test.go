// Package parley_test holds repository-wide checks: every package has a
// doc comment, and imports point only downwards (STYLE.md's arrows:
// cmd → server → mls, protocol; client → mls, protocol).
package parley_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/parley-chat/parley"

// TestPackageDocs checks that every package has a package doc comment.
func TestPackageDocs(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Name}}{{if not .GoFiles}}-testonly{{end}}\t{{.Doc}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 || f[1] == "main" || strings.HasSuffix(f[1], "-testonly") {
			continue
		}
		if strings.TrimSpace(f[2]) == "" {
			t.Errorf("package %s has no package doc", f[0])
		}
	}
}

// TestMLSImports checks that the MLS library depends only on the standard
// library, its own packages and the crypto modules chosen for it: it must
// stay usable without any server dependency. (internal/testenv, which its
// vector loader uses, is held to the standard library by TestLayerImports.)
func TestMLSImports(t *testing.T) {
	allowed := []string{module + "/mls", "github.com/cloudflare/circl", "golang.org/x/crypto", "golang.org/x/sys", module + "/internal/testenv"}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./mls/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("mls depends on %s, which is not an allowed dependency", dep)
		}
	}
}

// under reports whether the import path p is one of prefixes or inside one.
func under(p string, prefixes ...string) bool {
	for _, x := range prefixes {
		if p == x || strings.HasPrefix(p, x+"/") {
			return true
		}
	}
	return false
}

// TestLayerImports checks the layers' import rules outside mls: protocol,
// the contract between client and server, imports no Parley package above
// it; the Delivery Service core speaks neither HTTP nor a database; the
// SDK depends on nothing of the server. Only the packages' own (non-test) files
// count: tests may start a real server.
func TestLayerImports(t *testing.T) {
	rules := []struct {
		pkgs      string // a go list pattern
		all       bool   // every dependency, or only the direct imports
		forbidden func(dep string) bool
		why       string
	}{
		{"./protocol/...", true, func(dep string) bool {
			return under(dep, module) && !under(dep, module+"/protocol", module+"/mls")
		}, "protocol may depend only on mls among Parley's packages"},
		{"./server/delivery/...", false, func(dep string) bool {
			return under(dep, "net/http", "database", "github.com/coder/websocket", "github.com/jackc", "modernc.org/sqlite",
				"github.com/nats-io", module+"/server/httpapi", module+"/server/store/sqlite", module+"/server/store/postgres",
				module+"/server/blob", module+"/server/fanout/nats", module+"/internal/pgschema")
		}, "the Delivery Service core takes its transport and storage as interfaces"},
		{"./client/...", true, func(dep string) bool {
			return under(dep, module+"/server", module+"/cmd")
		}, "the SDK meets the server only in protocol and mls"},
		{"./tui/...", true, func(dep string) bool {
			return under(dep, module+"/server", module+"/cmd", module+"/client/sqlitestore/internal")
		}, "the terminal client works through the daemon's API, never the server"},
	}
	for _, r := range rules {
		format := "{{.ImportPath}}\t{{join .Imports \" \"}}"
		if r.all {
			format = "{{.ImportPath}}\t{{join .Deps \" \"}}"
		}
		out, err := exec.Command("go", "list", "-f", format, r.pkgs).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", r.pkgs, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			pkg, deps, _ := strings.Cut(line, "\t")
			for _, dep := range strings.Fields(deps) {
				if r.forbidden(dep) {
					t.Errorf("%s imports %s: %s", pkg, dep, r.why)
				}
			}
		}
	}
}

// TestTestenvImports checks that internal/testenv depends only on the
// standard library: the MLS library's tests use it.
func TestTestenvImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./internal/testenv").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != module+"/internal/testenv" {
			t.Errorf("internal/testenv depends on %s: it must stay on the standard library", dep)
		}
	}
}

// TestWebClientBuilds checks that the web client's program and the SDK
// it runs type-check for the browser (GOOS=js GOARCH=wasm): a native-only
// import in the SDK, such as its SQLite store, would break it.
func TestWebClientBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the SDK for another platform")
	}
	cmd := exec.Command("go", "vet", "./cmd/parley-web")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("GOOS=js GOARCH=wasm go vet ./cmd/parley-web: %v\n%s", err, out)
	}
}
