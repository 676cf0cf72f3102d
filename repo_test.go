// Package parley_test holds repository-wide checks: every package has a
// doc comment, and imports point only downwards.
package parley_test

import (
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
// stay usable without any server dependency.
func TestMLSImports(t *testing.T) {
	allowed := []string{module + "/mls", "github.com/cloudflare/circl", "golang.org/x/crypto", "golang.org/x/sys"}
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
