// Package buildinfo describes the running binary for the version
// commands of parley and parleyd: its module version and what the Go
// toolchain recorded about the build.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version returns the module version of the binary, or "devel" for a
// build from a working tree.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// String describes the binary named cmd for people, one fact a line:
//
//	parleyd v1.2.0
//	go: go1.26.8 linux/amd64
//	commit: 0123abcd… (2026-12-06T10:00:00Z, modified)
//
// The commit line appears only when the build recorded version control
// information (go build without -buildvcs=false in a git checkout).
func String(cmd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", cmd, Version())
	fmt.Fprintf(&b, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b.String()
	}
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		var extra []string
		if when != "" {
			extra = append(extra, when)
		}
		if modified {
			extra = append(extra, "modified")
		}
		fmt.Fprintf(&b, "commit: %s", rev)
		if len(extra) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}
