package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// deviceOf returns the device id of a profile (whoami --json).
func (c *cli) deviceOf(profile string) string {
	c.t.Helper()
	var a struct {
		Device string `json:"device"`
	}
	if err := json.Unmarshal([]byte(c.run(profile, "--json", "whoami")), &a); err != nil {
		c.t.Fatal(err)
	}
	return a.Device
}

// startLinkCLI starts 'parley link' for a new profile and returns the code
// it prints and a function waiting for its end (its output, its error).
func (c *cli) startLinkCLI(profile string) (string, func() (string, error)) {
	c.t.Helper()
	cmd := c.command(profile, "link", "--server", c.srv.URL, "--fingerprint", c.srv.Fingerprint, "--name", profile, "--no-qr")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	rd := bufio.NewReader(out)
	var all strings.Builder
	for {
		line, err := rd.ReadString('\n')
		all.WriteString(line)
		if code, ok := strings.CutPrefix(line, "link code: "); ok {
			return strings.TrimSpace(code), func() (string, error) {
				rest := new(strings.Builder)
				bufio.NewReader(rd).WriteTo(rest)
				err := cmd.Wait()
				return all.String() + rest.String() + stderr.String(), err
			}
		}
		if err != nil {
			cmd.Wait()
			c.t.Fatalf("parley link: no code: %q %s", all.String(), stderr.String())
		}
	}
}

// linkConfirmation is the confirmation in the output of parley link or
// parley devices link: the 7 characters after "confirmation: ".
func linkConfirmation(s string) string {
	_, after, ok := strings.Cut(s, "confirmation: ")
	if !ok || len(after) < 7 {
		return ""
	}
	return after[:7]
}

// linkPhoneWithHistory links a new profile "phone" to alice's account
// with 'parley devices link CODE --yes --history all' (alice is in one
// conversation) and checks both commands' output and that they showed
// the same confirmation.
func (c *cli) linkPhoneWithHistory() {
	c.t.Helper()
	code, wait := c.startLinkCLI("phone")
	linkOut := c.run("alice", "devices", "link", code, "--yes", "--history", "all")
	out, err := wait()
	if err != nil {
		c.t.Fatalf("parley link: %v\n%s", err, out)
	}
	if !strings.Contains(out, "linked alice@") || !strings.Contains(linkOut, "added it to 1 conversations") ||
		!strings.Contains(linkOut, "sent it the history of 1 conversations (") {
		c.t.Errorf("link output %q, devices link output %q", out, linkOut)
	}
	if a, b := linkConfirmation(out), linkConfirmation(linkOut); a == "" || a != b {
		c.t.Errorf("confirmations %q and %q", a, b)
	}
}

// TestCLILink: 'parley link' on a new profile and 'parley devices link
// CODE --yes --history all' on alice's laptop link a phone, which then
// reads the group with the message sent before it joined; 'parley
// devices' lists both; declining at the prompt links nothing; revoking
// the phone works, the last device needs --force.
func TestCLILink(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("alice", "group", "create", "team", "--members", "bob")
	c.run("alice", "send", "team", "before the phone")

	c.linkPhoneWithHistory()
	if r := c.run("bob", "read", "team"); !strings.Contains(r, "alice added a device ("+c.deviceOf("phone")+")") {
		t.Errorf("bob's history has no line for the phone:\n%s", r)
	}
	c.run("bob", "send", "team", "hello both")
	if h := c.read("phone", "team").messages(); len(h) != 2 || h[0].Text != "before the phone" || h[1].Text != "hello both" {
		t.Errorf("the phone's history (sent at link time, then received): %+v", h)
	}
	list := c.run("phone", "devices")
	phone, laptop := c.deviceOf("phone"), c.deviceOf("alice")
	if !strings.Contains(list, phone) || !strings.Contains(list, laptop) || !strings.Contains(list, "(this device)") {
		t.Errorf("devices:\n%s", list)
	}
	// The same through the phone's daemon.
	d := c.startDaemon("phone")
	if viaDaemon := c.run("phone", "devices"); viaDaemon != list {
		t.Errorf("devices through the daemon:\n%s\nwithout:\n%s", viaDaemon, list)
	}
	d.cmd.Process.Signal(os.Interrupt)
	d.wait(t)

	// Declined at the prompt.
	code, wait := c.startLinkCLI("tablet")
	cmd := c.command("alice", "devices", "link", code)
	cmd.Stdin = strings.NewReader("n\n")
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("declined link succeeded: %s", b)
	}
	if out, err := wait(); err == nil {
		t.Errorf("the tablet linked after a refusal: %s", out)
	}

	c.run("alice", "devices", "rename", phone, "old", "phone")
	c.run("alice", "devices", "revoke", phone)
	if b, err := c.command("alice", "devices", "revoke", laptop).CombinedOutput(); err == nil || !strings.Contains(string(b), "last active device") {
		t.Errorf("revoking the last device: %v %s", err, b)
	}
	if list := c.run("alice", "devices"); !strings.Contains(list, "old phone") || !strings.Contains(list, "revoked") {
		t.Errorf("devices after the revocation:\n%s", list)
	}
}

// TestCLILinkThroughDaemon: while alice's daemon holds her profile,
// 'parley devices link CODE --history all' links through it
// (link_device and link_device_confirm, with the history) with the same
// output and confirmation; declined
// at the prompt, nothing is linked and the command fails with
// link_refused.
func TestCLILinkThroughDaemon(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("alice", "chat", "new", "bob")
	d := c.startDaemon("alice")
	defer func() {
		d.cmd.Process.Signal(os.Interrupt)
		d.wait(t)
	}()

	c.linkPhoneWithHistory()
	if list := c.run("alice", "devices"); !strings.Contains(list, c.deviceOf("phone")) {
		t.Errorf("devices through the daemon:\n%s", list)
	}

	code, wait := c.startLinkCLI("tablet")
	cmd := c.command("alice", "--json", "devices", "link", code)
	cmd.Stdin = strings.NewReader("n\n")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), `"code":"link_refused"`) {
		t.Errorf("declined link through the daemon: %v %s", err, b)
	}
	if out, err := wait(); err == nil {
		t.Errorf("the tablet linked after a refusal: %s", out)
	}
}
