//go:build linux

package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTUILink: in a real terminal, alice's parley tui links a new device
// that 'parley link' shows a code for: /link CODE shows the
// confirmation, the same as the new device's, and asks; y links it,
// which joins her conversation; /devices lists both devices.
// PARLEY_SCREENSHOTS=DIR keeps the screens.
func TestTUILink(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("alice", "chat", "new", "bob")
	dir := filepath.Join(c.config, "parley", "alice")
	t.Cleanup(func() { stopDaemon(dir) })

	env := []string{"XDG_CONFIG_HOME=" + c.config, "PARLEY_PASSPHRASE=", "NO_COLOR=1", "TERM=xterm-256color"}
	a := newTmux(t, "alice", 110, 30, env, c.bin, "--profile", "alice", "tui")
	a.waitText("bob", "● connected")
	openByFilter(a, "bob")

	code, wait := c.startLinkCLI("phone")
	a.typeText("/link " + code)
	a.keys("Enter")
	screen := a.waitText("Link a new device: “phone”", "It must show the confirmation:", "y links it, n declines")
	m := regexp.MustCompile(`confirmation:\s+(\d{3} \d{3})`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("no confirmation on the screen:\n%s", screen)
	}
	a.saveScreen("tui-alice-link")
	a.keys("y")
	a.waitText("linked “phone”; added it to 1 conversations")
	out, err := wait()
	if err != nil {
		t.Fatalf("parley link: %v\n%s", err, out)
	}
	if !strings.Contains(out, "confirmation: "+m[1]) {
		t.Errorf("the TUI showed the confirmation %q; the new device printed:\n%s", m[1], out)
	}
	phone := c.deviceOf("phone")
	a.waitText("phone", "this device", "seen")
	a.saveScreen("tui-alice-devices")
	a.keys("Escape")
	a.typeText("/devices")
	a.keys("Enter")
	a.waitText("Your devices", "phone", "this device")
	c.run("bob", "send", "alice", "to both of alice's devices")
	if r := c.run("phone", "read", "bob"); !strings.Contains(r, "to both of alice's devices") {
		t.Errorf("the phone's read of the 1:1 (device %s):\n%s", phone, r)
	}
	a.keys("C-c")
	a.waitExit()
}
