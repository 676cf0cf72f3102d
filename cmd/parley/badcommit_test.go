package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// TestBadCommitShown: a commit this device could not process is shown as
// a clear line naming its sender (listen and the notices of one-shot
// commands); a conversation that cannot be recovered is shown with the
// way forward, without calling its members untrustworthy, and a refused
// send says so.
func TestBadCommitShown(t *testing.T) {
	bad := &client.BadCommitError{Conversation: 4, Seq: 12, User: "carol", Device: "d3", Err: errors.New("mls: process commit: path: invalid commit"), Recovery: client.RecoveryResynced}
	ev := client.Event{Kind: client.EventBadCommit, Conversation: 4, User: "carol", Device: "d3", Seq: 12, Err: bad, Error: bad.Error()}
	titleOf := func(protocol.ConversationID) string { return "team" }
	line := eventLine(ev, titleOf, "alice")
	for _, want := range []string{"***", "[team]", "WARNING", "carol (device d3)", "entry 12", "rejoined"} {
		if !strings.Contains(line, want) {
			t.Errorf("listen line %q lacks %q", line, want)
		}
	}
	if n := noticeLine(ev); !strings.Contains(n, "carol (device d3)") {
		t.Errorf("notice %q does not name the sender", n)
	}

	alarm := client.Alarm{User: "carol", Device: "d3", Unrecoverable: true, Seq: 15, Time: time.Unix(1700000000, 0),
		Reason: "this device could not process the commit that carol (device d3) sent in entry 15, and this device tried to rejoin it 5 times in the last 24h0m0s already"}
	uerr := &client.UnsafeError{Conversation: 4, Alarm: alarm}
	uev := client.Event{Kind: client.EventConversationUnsafe, Conversation: 4, User: "carol", Device: "d3", Err: uerr, Error: uerr.Error()}
	line = eventLine(uev, titleOf, "alice")
	for _, want := range []string{"***", "ALARM", "cannot be followed", "carol (device d3)", "parley chat recreate 4"} {
		if !strings.Contains(line, want) {
			t.Errorf("listen line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "Do not trust") || strings.Contains(line, "tried to add") {
		t.Errorf("listen line %q speaks of a membership change", line)
	}

	var stderr bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &stderr}
	if code := exitCode(fmt.Errorf("client: send in conversation 4: %w", uerr), e); code != exitUnsafe {
		t.Errorf("exit code %d, want %d", code, exitUnsafe)
	}
	if s := stderr.String(); !strings.Contains(s, "cannot follow") || !strings.Contains(s, "parley chat recreate 4") {
		t.Errorf("stderr %q lacks the reason and the way forward", s)
	}

	cv := &client.Conversation{ID: 4, Members: []string{"alice", "bob", "carol"}, Unsafe: &alarm}
	b, err := json.Marshal(toConversationJSON(cv, "alice", 0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"unrecoverable":true`) {
		t.Errorf("conversation JSON %s lacks unrecoverable", b)
	}
}
