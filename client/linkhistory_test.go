package client_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/profilegen"
	"github.com/parley-chat/parley/protocol"
)

// linkWithHistory links a new device (through url and fp) to existing's
// account, sending it the history of convs, and returns the device and
// what its Link returned.
func linkWithHistory(t *testing.T, url, fp string, existing *device, name string, convs []protocol.ConversationID) (*device, *client.LinkedDevice, error) {
	t.Helper()
	d, code, _, res := startLink(t, url, fp, name)
	linked, err := existing.c.LinkDeviceWith(context.Background(), code, client.LinkDeviceOptions{
		Confirm: func(client.LinkRequest) bool { return true },
		History: func() []protocol.ConversationID { return convs },
	})
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return d, linked, (<-res).err
}

// messageView is what a person sees of a message, for comparing
// histories across devices.
func messageView(m *client.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %q", m.Sender, m.Text)
	if m.Deleted {
		b.WriteString(" deleted")
	}
	if !m.Edited.IsZero() {
		b.WriteString(" edited")
	}
	for _, r := range m.Reactions {
		fmt.Fprintf(&b, " %s:%s", r.User, r.Emoji)
	}
	if m.Attachment != nil {
		fmt.Fprintf(&b, " file %s", m.Attachment.FileName)
	}
	return b.String()
}

// userMessages returns the views of the messages (not system lines) of
// conv on d, in order.
func userMessages(t *testing.T, d *device, conv protocol.ConversationID) []string {
	t.Helper()
	ms, err := d.c.Messages(context.Background(), conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if m.System == nil {
			out = append(out, messageView(m))
		}
	}
	return out
}

// TestLinkHistory: a device linked with the history of alice's two
// conversations shows them as her laptop does — messages, edits,
// deletions, reactions, an attachment it can download — before the
// messages sent after it joined, with what the laptop read counted as
// read. The transfer is cut (the server stops serving the parts after
// the first): Link fails, the device is linked all the same, and the
// next Sync goes on from the part it stopped at, storing nothing twice.
func TestLinkHistory(t *testing.T) {
	defer client.SetHistoryPartBytesForTest(512)()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	laptop, bob := register(t, s, "alice"), register(t, s, "bob")
	laptop.start()
	bob.start()
	team, err := laptop.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := laptop.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var teamTexts []string
	for i := range 12 {
		text := fmt.Sprintf("team message %d with some words to fill a part", i)
		from := laptop
		if i%2 == 1 {
			from = bob
		}
		if _, err := from.c.Send(ctx, team, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		teamTexts = append(teamTexts, text)
	}
	edited, err := laptop.c.Send(ctx, direct, "helo", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := laptop.c.Send(ctx, direct, "wrong chat", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	file := bytes.Repeat([]byte("plan "), 1000)
	if _, err := laptop.c.SendData(ctx, direct, bytes.NewReader(file), "plan.txt", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := laptop.c.Edit(ctx, direct, edited.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := laptop.c.Delete(ctx, direct, gone.ID); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(team, teamTexts...)
	bob.waitTexts(direct, "hello", "", "")
	if err := bob.c.React(ctx, direct, edited.ID, "👍", false); err != nil {
		t.Fatal(err)
	}
	laptop.waitTexts(team, teamTexts...)
	waitFor(t, "the reaction on the laptop", func() bool {
		return strings.Contains(strings.Join(userMessages(t, laptop, direct), "\n"), "bob:👍")
	})
	if err := laptop.c.MarkRead(ctx, team); err != nil {
		t.Fatal(err)
	}

	// The phone fetches the manifest and the first part, then the server
	// stops serving attachments.
	var fetched atomic.Int32
	var cut atomic.Bool
	cut.Store(true)
	p.refuse(func(path string) bool {
		if !strings.HasPrefix(path, "/v1/attachments/") {
			return false
		}
		return fetched.Add(1) > 2 && cut.Load()
	})
	phone, linked, err := linkWithHistory(t, p.srv.URL, p.fp, laptop, "phone", []protocol.ConversationID{team, direct})
	if err == nil {
		t.Fatal("Link succeeded while the server refused the history's parts")
	}
	if linked.History.Conversations != 2 || linked.History.Messages < 15 || linked.HistoryError != "" {
		t.Errorf("history sent: %+v (%q)", linked.History, linked.HistoryError)
	}
	if got := phone.texts(team); len(got) >= len(teamTexts) {
		t.Errorf("the phone holds %d entries of the team after the cut, want fewer than %d", len(got), len(teamTexts))
	}
	cut.Store(false)
	if err := phone.c.Sync(ctx); err != nil {
		t.Fatalf("sync after the cut: %v", err)
	}
	for _, conv := range []protocol.ConversationID{team, direct} {
		want, got := userMessages(t, laptop, conv), userMessages(t, phone, conv)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("conversation %d on the phone:\n%s\nwant (the laptop's):\n%s", conv, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	cv, err := phone.c.Conversation(ctx, team)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Name != "team" || cv.Unread != 0 {
		t.Errorf("the team on the phone: name %q, %d unread, want team and 0", cv.Name, cv.Unread)
	}
	if ev, err := phone.c.Unseen(ctx); err != nil || len(ev) != 0 {
		t.Errorf("the imported history is reported as unseen: %d events, %v", len(ev), err)
	}
	ms, err := phone.c.Messages(ctx, direct, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, m := range ms {
		if m.Attachment != nil {
			if _, err := phone.c.DownloadData(ctx, m.Attachment.ID, &got); err != nil {
				t.Fatalf("download the attachment of the history: %v", err)
			}
		}
	}
	if !bytes.Equal(got.Bytes(), file) {
		t.Errorf("the attachment downloaded on the phone has %d bytes, want the %d sent", got.Len(), len(file))
	}

	// What comes after the link comes after the history, once.
	phone.start()
	if _, err := bob.c.Send(ctx, team, "after the link", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message after the link on the phone", func() bool {
		got := phone.texts(team)
		return len(got) > 0 && got[len(got)-1] == "after the link"
	})
	msgs := userMessages(t, phone, team)
	if len(msgs) != len(teamTexts)+1 || msgs[len(msgs)-1] != `bob: "after the link"` {
		t.Errorf("the team on the phone after a new message:\n%s", strings.Join(msgs, "\n"))
	}
	waitFor(t, "one unread on the phone", func() bool {
		cv, err := phone.c.Conversation(ctx, team)
		return err == nil && cv.Unread == 1
	})
}

// TestLinkHistoryTenThousand: linking a device with the history of a
// profile of 10,000 messages in 20 conversations; the time from the start
// of LinkDevice to the new device's Link returning (history imported) is
// logged (docs/performance.md, "Linking a device").
func TestLinkHistoryTenThousand(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("10,000 messages")
	}
	ctx := context.Background()
	s := newServer(t)
	laptop := register(t, s, "alice")
	dir := laptop.dir
	laptop.close()
	const entries = 10_000
	if _, err := profilegen.Fill(ctx, profilegen.Config{Dir: dir, Passphrase: []byte("correct horse alice"), KDF: fastKDF,
		Conversations: 20, Entries: entries, Peers: 10}); err != nil {
		t.Fatal(err)
	}
	laptop = openDevice(t, s, dir, "alice")
	cvs, err := laptop.c.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var convs []protocol.ConversationID
	for _, cv := range cvs {
		convs = append(convs, cv.ID)
	}
	start := time.Now()
	phone, linked, err := linkWithHistory(t, s.url, s.fingerprint, laptop, "phone", convs)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("linked a device with the history of %d conversations (%d messages) in %v",
		linked.History.Conversations, linked.History.Messages, took.Round(time.Millisecond))
	for _, line := range strings.Split(phone.logs.String(), "\n") {
		if strings.Contains(line, "history imported") {
			t.Log(line)
		}
	}
	if linked.History.Conversations != len(convs) || linked.History.Messages < entries*9/10 {
		t.Errorf("history sent: %+v (%q)", linked.History, linked.HistoryError)
	}
	n := 0
	for _, conv := range convs {
		ms, err := phone.c.History(ctx, conv, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		n += len(ms)
	}
	if n != linked.History.Messages {
		t.Errorf("the phone holds %d messages, %d were sent", n, linked.History.Messages)
	}
	// The aim is 10 s on an idle machine; the bound leaves room for a
	// loaded one.
	if took > 2*time.Minute && !raceEnabled {
		t.Errorf("linking with a history of %d messages took %v, want well under 10s on an idle machine", entries, took)
	}
}
