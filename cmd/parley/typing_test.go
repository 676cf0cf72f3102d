package main

import "testing"

// PARLEY_TYPING turns typing indicators off with "off" only; a value that
// is neither on nor off is an error, not silently on.
func TestTypingOff(t *testing.T) {
	for _, tc := range []struct {
		v        string
		off, bad bool
	}{
		{"", false, false}, {"on", false, false}, {"ON", false, false},
		{"off", true, false}, {"Off", true, false}, {"no", false, true},
	} {
		off, err := typingOff(tc.v)
		if off != tc.off || (err != nil) != tc.bad {
			t.Errorf("typingOff(%q) = %v, %v; want %v, error %v", tc.v, off, err, tc.off, tc.bad)
		}
	}
}
