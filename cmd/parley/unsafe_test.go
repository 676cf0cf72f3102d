package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// TestUnsafeShown: the alarm of an unsafe conversation is printed loudly
// with the way forward (listen and the notices of one-shot commands), a
// refused send exits with 10 and the hint, and the conversation's JSON
// carries the alarm.
func TestUnsafeShown(t *testing.T) {
	alarm := client.Alarm{User: "eve", Device: "d1", Reason: "an external join by eve, who is not a member, without an invite", Seq: 7, Time: time.Unix(1700000000, 0)}
	uerr := &client.UnsafeError{Conversation: 4, Alarm: alarm}
	ev := client.Event{Kind: client.EventConversationUnsafe, Conversation: 4, User: "eve", Device: "d1", Err: uerr, Error: uerr.Error()}

	line := eventLine(ev, func(protocol.ConversationID) string { return "bob" }, "alice")
	for _, want := range []string{"***", "[bob]", "ALARM", "tried to add eve (device d1)", "parley chat recreate 4"} {
		if !strings.Contains(line, want) {
			t.Errorf("listen line %q lacks %q", line, want)
		}
	}
	if n := noticeLine(ev); !strings.Contains(n, "ALARM") || !strings.Contains(n, "parley chat recreate 4") {
		t.Errorf("notice %q", n)
	}

	var stderr bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &stderr}
	if code := exitCode(fmt.Errorf("client: send in conversation 4: %w", uerr), e); code != exitUnsafe {
		t.Errorf("exit code %d, want %d", code, exitUnsafe)
	}
	if !strings.Contains(stderr.String(), "parley chat recreate 4") {
		t.Errorf("stderr %q lacks the way forward", stderr.String())
	}

	cv := &client.Conversation{ID: 4, Direct: true, Members: []string{"alice", "bob"}, Unsafe: &alarm}
	b, err := json.Marshal(toConversationJSON(cv, "alice", 0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"unsafe":{"user":"eve","device":"d1"`) {
		t.Errorf("conversation JSON %s lacks the alarm", b)
	}
}
