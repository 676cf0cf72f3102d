// Package e2e holds the web client's end-to-end tests: the real parleyd
// binary (with the web client built into it) on loopback, users in
// headless Chromium driven over the DevTools protocol, and users of the
// parley CLI, chatting together. The package has no code of its own.
package e2e
