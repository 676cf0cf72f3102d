//go:build race

package client_test

// raceEnabled: the race detector slows everything down several times.
const raceEnabled = true
