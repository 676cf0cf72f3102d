package daemonapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// TestMessageRoundTrip: what the CLI prints from a message that came
// through the socket is what it prints from the SDK's: the JSON of
// NewMessage(m.SDK()) is that of NewMessage(m).
func TestMessageRoundTrip(t *testing.T) {
	sent := time.Date(2026, 12, 6, 4, 13, 41, 358000000, time.UTC)
	id, _ := content.ParseMessageID("db1494c1d30674ca8e0ac3612b56ea0f")
	reply, _ := content.ParseMessageID("ed4eeb39000000000000000000000001")
	base := client.Message{Conversation: 7, Seq: 3, ID: id, Sender: "alice", SenderDevice: "50611ef0",
		Sent: sent, Received: sent.Add(time.Second), ServerSeq: 4}
	text := base
	text.Kind, text.Text, text.ReplyTo, text.State = content.KindText, "hi", reply, client.Read
	text.Edited, text.ReadBy = sent.Add(time.Minute), []string{"bob"}
	text.Reactions = []client.Reaction{{User: "bob", Emoji: "👍"}}
	text.Mentions, text.MentionsMe = []string{"alice", "bob"}, true
	file := base
	file.Kind, file.Text, file.State = content.KindAttachment, "caption", client.Pending
	file.Attachment = &client.Attachment{ID: "blob1", Size: 2048, MediaType: "image/png", FileName: "a.png"}
	deleted := base
	deleted.Kind, deleted.Deleted, deleted.State = content.KindText, true, client.Failed
	renamed := base
	renamed.System = &client.System{Kind: client.SystemRenamed, Value: "crew", Previous: "team"}
	topic := base
	topic.System = &client.System{Kind: client.SystemTopicChanged, Value: "plans"}
	removed := base
	removed.System = &client.System{Kind: client.SystemDeviceRemoved, Users: []string{"bob"}, Devices: []protocol.DeviceID{"d1", "d2"}}
	timed := text
	timed.Expires = sent.Add(time.Hour)
	expired := base
	expired.Kind, expired.Expires, expired.Expired = content.KindText, sent.Add(5*time.Minute), true
	timer := base
	timer.System = &client.System{Kind: client.SystemTimerChanged, Value: "1h", Previous: "off"}
	for _, m := range []client.Message{text, file, deleted, renamed, topic, removed, timed, expired, timer} {
		want := NewMessage(&m)
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var wire Message
		if err := json.Unmarshal(b, &wire); err != nil {
			t.Fatal(err)
		}
		back, err := wire.SDK()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got := NewMessage(back); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s\ngave %+v", b, got)
		}
		if m.System != nil {
			for _, self := range []string{"alice", "bob"} {
				if got, want := SystemText(back, self), SystemText(&m, self); got != want {
					t.Errorf("system line for %s: %q came back as %q", self, want, got)
				}
			}
		}
	}
}

// TestConversationRoundTrip: a conversation keeps its latest history
// entry (a message or a system line) through the socket, and one with
// an empty history has none ("last" absent).
func TestConversationRoundTrip(t *testing.T) {
	sent := time.Date(2026, 12, 6, 4, 13, 41, 358000000, time.UTC)
	id, _ := content.ParseMessageID("db1494c1d30674ca8e0ac3612b56ea0f")
	text := &client.Message{Conversation: 7, Seq: 12, ID: id, Sender: "bob", SenderDevice: "50611ef0",
		Sent: sent, Received: sent.Add(time.Second), ServerSeq: 40, Kind: content.KindText, Text: "see you"}
	system := *text
	system.Kind, system.Text, system.System = 0, "", &client.System{Kind: client.SystemAdded, Users: []string{"carol"}}
	deleted := *text
	deleted.Text, deleted.Deleted = "", true
	for _, last := range []*client.Message{text, &system, &deleted, nil} {
		cv := &client.Conversation{ID: 7, Name: "team", Members: []string{"alice", "bob"}, Epoch: 3, Unread: 2, Last: last, Muted: last == nil}
		want := NewConversation(cv, "alice", cv.Unread)
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["last"]; ok != (last != nil) {
			t.Errorf("%s: field last present %v, want %v", b, ok, last != nil)
		}
		var wire Conversation
		if err := json.Unmarshal(b, &wire); err != nil {
			t.Fatal(err)
		}
		back := wire.SDK()
		if (back.Last == nil) != (last == nil) {
			t.Fatalf("%s: Last came back as %+v", b, back.Last)
		}
		if got := NewConversation(back, "alice", back.Unread); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s\ngave %+v (last %+v)", b, got, got.Last)
		}
		if last != nil && (back.Last.Seq != last.Seq || back.Last.ID != last.ID || back.Last.Text != last.Text || back.Last.Deleted != last.Deleted || (back.Last.System == nil) != (last.System == nil)) {
			t.Errorf("Last %+v came back as %+v", last, back.Last)
		}
	}
}

// TestEventRoundTrip: an event keeps its kind, connection state and
// message through the socket.
func TestEventRoundTrip(t *testing.T) {
	for _, ev := range []client.Event{
		{Kind: client.EventConnection, Connection: client.Connected, Time: time.Unix(1, 0).UTC()},
		{Kind: client.EventIdentityChanged, User: "bob", Time: time.Unix(2, 0).UTC(), Conversation: 3},
		{Kind: client.EventOverflow, Time: time.Unix(3, 0).UTC()},
		{Kind: client.EventReaction, User: "bob", Time: time.Unix(4, 0).UTC(), Conversation: 3, Muted: true},
	} {
		back, err := NewEvent(ev).SDK()
		if err != nil {
			t.Fatal(err)
		}
		if back.Kind != ev.Kind || back.Connection != ev.Connection || back.User != ev.User || back.Conversation != ev.Conversation || !back.Time.Equal(ev.Time) ||
			back.Muted != ev.Muted {
			t.Errorf("event %+v came back as %+v", ev, back)
		}
	}
	if _, err := (&Event{Event: "no_such_event"}).SDK(); err == nil {
		t.Error("an unknown event kind was accepted")
	}
}

// TestSubscriberOverflow: a subscriber that does not keep up loses
// events, and is told how many by one overflow event.
func TestSubscriberOverflow(t *testing.T) {
	sub := &subscriber{ch: make(chan client.Event, 2)}
	for i := range 5 {
		sub.offer(client.Event{Kind: client.EventMessage, Seq: uint64(i)})
	}
	if first := <-sub.ch; first.Seq != 0 {
		t.Fatalf("first event %+v", first)
	}
	sub.offer(client.Event{Kind: client.EventMessage, Seq: 5})
	if second := <-sub.ch; second.Seq != 1 {
		t.Fatalf("second event %+v", second)
	}
	if over := <-sub.ch; over.Kind != client.EventOverflow || over.Dropped != 3 {
		t.Fatalf("after 3 dropped events: %+v, want an overflow of 3", over)
	}
	sub.offer(client.Event{Kind: client.EventMessage, Seq: 6})
	if over := <-sub.ch; over.Kind != client.EventOverflow || over.Dropped != 1 {
		t.Fatalf("after 1 more dropped event: %+v, want an overflow of 1", over)
	}
	if next := <-sub.ch; next.Seq != 6 {
		t.Fatalf("after the overflow: %+v", next)
	}
}
