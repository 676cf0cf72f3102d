package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
)

// TestMessageLineDate checks that a message's line shows the date when
// the message is not from today.
func TestMessageLineDate(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 30, 0, 0, time.Local)
	old := timeNow
	timeNow = func() time.Time { return now }
	t.Cleanup(func() { timeNow = old })
	for _, c := range []struct {
		sent time.Time
		want string
	}{
		{time.Date(2026, 3, 10, 0, 5, 0, 0, time.Local), " 00:05 alice: "},
		{time.Date(2026, 3, 9, 23, 59, 0, 0, time.Local), " Mar 9 23:59 alice: "},
		{time.Date(2026, 3, 11, 8, 0, 0, 0, time.Local), " Mar 11 08:00 alice: "},
		{time.Date(2025, 3, 10, 9, 30, 0, 0, time.Local), " 2025-03-10 09:30 alice: "},
	} {
		m := &client.Message{Sender: "alice", Sent: c.sent, Text: "hi"}
		if got := messageLine(m); !strings.Contains(got, c.want) {
			t.Errorf("sent %v, now %v: %q, want %q in it", c.sent, now, got, c.want)
		}
	}
}

// TestPassphrasePrompt checks that a profile encrypted with a passphrase
// asks for it on the terminal when PARLEY_PASSPHRASE is unset, and that
// without a terminal it says how to give it.
func TestPassphrasePrompt(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "p")
	vars := map[string]string{"PARLEY_PASSPHRASE": "correct horse"}
	var stderr bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: func(k string) string { return vars[k] }, dir: dir}
	s, err := e.open(ctx, openOptions{create: true})
	if err != nil {
		t.Fatal(err)
	}
	s.close()
	if _, err := os.Stat(filepath.Join(dir, client.StoreFile)); err != nil {
		t.Fatalf("no store after open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, keyFileName)); err == nil {
		t.Fatal("a passphrase profile has a key file")
	}
	delete(vars, "PARLEY_PASSPHRASE")

	// No terminal: the error names PARLEY_PASSPHRASE.
	if _, err := e.open(ctx, openOptions{}); !errors.Is(err, errNoPassphrase) || !strings.Contains(errorText(err), "PARLEY_PASSPHRASE") {
		t.Fatalf("open without passphrase or terminal: %v", err)
	}

	// The terminal gives it.
	var prompts []string
	answer := "correct horse"
	e.readPassword = func(prompt string) ([]byte, error) {
		prompts = append(prompts, prompt)
		return []byte(answer), nil
	}
	s, err = e.open(ctx, openOptions{})
	if err != nil {
		t.Fatalf("open with the passphrase from the terminal: %v", err)
	}
	s.close()
	if len(prompts) != 1 || !strings.Contains(prompts[0], dir) {
		t.Errorf("prompts %q, want one naming %s", prompts, dir)
	}

	// A wrong one is refused; the environment wins over the terminal.
	answer = "wrong"
	if _, err := e.open(ctx, openOptions{}); err == nil {
		t.Error("open with a wrong passphrase succeeded")
	} else if code, _ := classify(err); code != exitProfile {
		t.Errorf("open with a wrong passphrase: %v (exit code %d, want %d)", err, code, exitProfile)
	}
	vars["PARLEY_PASSPHRASE"] = "correct horse"
	s, err = e.open(ctx, openOptions{})
	if err != nil {
		t.Fatalf("open with PARLEY_PASSPHRASE and a terminal: %v", err)
	}
	s.close()
	if len(prompts) != 2 {
		t.Errorf("%d prompts, want 2: PARLEY_PASSPHRASE must not prompt", len(prompts))
	}
}

// errorText is an error with its hint.
func errorText(err error) string {
	var h *hintError
	if errors.As(err, &h) {
		return err.Error() + " " + h.hint
	}
	return err.Error()
}
