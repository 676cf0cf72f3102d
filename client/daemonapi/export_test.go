package daemonapi

import (
	"slices"
	"time"
)

// MethodNames lists the server's methods, sorted.
func MethodNames() []string {
	var out []string
	for name := range methods {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// ToError is toError: an SDK error as the server sends it.
var ToError = toError

// SetLinkConfirmWait sets how long s's links wait for their answer.
func SetLinkConfirmWait(s *Server, d time.Duration) { s.confirmWait = d }
