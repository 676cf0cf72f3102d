package daemonapi

import "slices"

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
