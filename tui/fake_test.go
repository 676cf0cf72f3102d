package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// fakeBackend is a profile held in memory; it records the changes asked
// of it.
type fakeBackend struct {
	mu       sync.Mutex
	self     string
	convs    []client.Conversation
	history  map[protocol.ConversationID][]*client.Message
	members  map[protocol.ConversationID][]client.Member
	events   []*daemonapi.Event
	calls    []string // "method args", in order
	sent     []client.SendOptions
	verified []string
	histLast []int // the last argument of each History call
	queries  []client.SearchQuery
	// found is the answer to every search; searchErr fails it.
	found     []*client.Message
	searchErr error
	nextSeq   int64
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// called says whether a call was recorded.
func (f *fakeBackend) called(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.calls, call)
}

func (f *fakeBackend) Whoami() (*client.Account, error) {
	return &client.Account{User: f.self, Device: "D1"}, nil
}

func (f *fakeBackend) Conversations(context.Context) ([]client.Conversation, error) {
	f.record("conversations")
	return slices.Clone(f.convs), nil
}

func (f *fakeBackend) Conversation(_ context.Context, id protocol.ConversationID) (*client.Conversation, error) {
	for _, cv := range f.convs {
		if cv.ID == id {
			return &cv, nil
		}
	}
	return nil, client.ErrUnknownConversation
}

func (f *fakeBackend) History(_ context.Context, id protocol.ConversationID, after int64, last int) ([]*client.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.histLast = append(f.histLast, last)
	h := f.history[id]
	if last > 0 {
		return slices.Clone(h[max(len(h)-last, 0):]), nil
	}
	var out []*client.Message
	for _, e := range h {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeBackend) Members(_ context.Context, id protocol.ConversationID) ([]client.Member, error) {
	return f.members[id], nil
}

func (f *fakeBackend) Send(_ context.Context, conv protocol.ConversationID, text string, opts client.SendOptions) (*client.Message, error) {
	f.record("send %d %s", conv, text)
	f.mu.Lock()
	f.sent = append(f.sent, opts)
	f.nextSeq++
	m := &client.Message{Conversation: conv, Seq: 1000 + f.nextSeq, ID: content.MessageID{0xf0, byte(f.nextSeq)}, Sender: f.self,
		Sent: testNow, Received: testNow, Kind: content.KindText, Text: text, ReplyTo: opts.ReplyTo, State: client.Sent}
	f.mu.Unlock()
	return m, nil
}

func (f *fakeBackend) SendFile(_ context.Context, conv protocol.ConversationID, path string, opts client.SendOptions) (*client.Message, error) {
	f.record("send_file %d %s", conv, path)
	return nil, errors.New("no such file")
}

func (f *fakeBackend) Download(_ context.Context, id, dst string) (string, error) {
	f.record("download %s %s", id, dst)
	return dst + "/report.pdf", nil
}

func (f *fakeBackend) React(_ context.Context, conv protocol.ConversationID, target content.MessageID, emoji string, remove bool) error {
	f.record("react %d %s %s %v", conv, target, emoji, remove)
	return nil
}

func (f *fakeBackend) Edit(_ context.Context, conv protocol.ConversationID, target content.MessageID, text string) error {
	f.record("edit %d %s %s", conv, target, text)
	return nil
}

func (f *fakeBackend) Delete(_ context.Context, conv protocol.ConversationID, target content.MessageID) error {
	f.record("delete %d %s", conv, target)
	return nil
}

func (f *fakeBackend) MarkRead(_ context.Context, conv protocol.ConversationID) error {
	f.record("mark_read %d", conv)
	return nil
}

func (f *fakeBackend) MarkReadUpTo(_ context.Context, conv protocol.ConversationID, upTo int64) error {
	f.record("mark_read_up_to %d %d", conv, upTo)
	return nil
}

func (f *fakeBackend) NewDirect(_ context.Context, user string) (protocol.ConversationID, error) {
	f.record("new_direct %s", user)
	return 3, nil
}

func (f *fakeBackend) NewGroup(_ context.Context, title string, members ...string) (protocol.ConversationID, error) {
	f.record("new_group %s %s", title, strings.Join(members, ","))
	return 2, nil
}

func (f *fakeBackend) Add(_ context.Context, conv protocol.ConversationID, user string) error {
	f.record("add %d %s", conv, user)
	return nil
}

func (f *fakeBackend) Remove(_ context.Context, conv protocol.ConversationID, user string) error {
	f.record("remove %d %s", conv, user)
	return client.ErrNotMember
}

func (f *fakeBackend) Leave(_ context.Context, conv protocol.ConversationID) error {
	f.record("leave %d", conv)
	return nil
}

func (f *fakeBackend) SetName(_ context.Context, conv protocol.ConversationID, name string) error {
	f.record("set_name %d %s", conv, name)
	return nil
}

func (f *fakeBackend) SetTopic(_ context.Context, conv protocol.ConversationID, topic string) error {
	f.record("set_topic %d %s", conv, topic)
	return nil
}

func (f *fakeBackend) SetTimer(_ context.Context, conv protocol.ConversationID, d time.Duration) error {
	f.record("set_timer %d %v", conv, d)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.convs {
		if f.convs[i].ID == conv {
			f.convs[i].Timer = d
		}
	}
	return nil
}

func (f *fakeBackend) SafetyNumber(_ context.Context, user string) (*client.SafetyNumber, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var groups []string
	for i := range 12 {
		groups = append(groups, fmt.Sprintf("%05d", (11111*(i%9+1)+i)%100000))
	}
	qr := strings.Repeat("█▀▀▀▀▀█ ▄ █▀▀▀▀▀█\n", 4)
	return &client.SafetyNumber{User: user, Digits: strings.Join(groups, ""), Groups: groups, QR: qr,
		Verified: slices.Contains(f.verified, user)}, nil
}

func (f *fakeBackend) SendTyping(_ context.Context, conv protocol.ConversationID, typing bool) error {
	f.record("typing %d %v", conv, typing)
	return nil
}

// typingCalls returns the recorded typing indicators, in order.
func (f *fakeBackend) typingCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "typing ") {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeBackend) MarkVerified(_ context.Context, user string) error {
	f.record("mark_verified %s", user)
	f.mu.Lock()
	f.verified = append(f.verified, user)
	f.mu.Unlock()
	return nil
}

func (f *fakeBackend) Search(_ context.Context, q client.SearchQuery) ([]*client.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.searchErr != nil {
		return nil, f.searchErr
	}
	return slices.Clone(f.found), nil
}

func (f *fakeBackend) SetMuted(_ context.Context, conv protocol.ConversationID, muted bool) error {
	f.record("set_muted %d %v", conv, muted)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.convs {
		if f.convs[i].ID == conv {
			f.convs[i].Muted = muted
		}
	}
	return nil
}

func (f *fakeBackend) Subscribe(context.Context) error {
	f.record("subscribe")
	return nil
}

func (f *fakeBackend) NextEvent(ctx context.Context) (*daemonapi.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return nil, errors.New("fake: no more events")
	}
	ev := f.events[0]
	f.events = f.events[1:]
	return ev, nil
}

// testNow is the fixed time of the tests: Thursday 5 March 2026, 14:30
// UTC.
var testNow = time.Date(2026, 3, 5, 14, 30, 0, 0, time.UTC)

func at(day, hour, minute int) time.Time {
	return time.Date(2026, 3, day, hour, minute, 0, 0, time.UTC)
}

func mid(n byte) content.MessageID { return content.MessageID{n} }

// newFake returns alice's profile: a 1:1 with bob (a full history), the
// group Project, a 1:1 with carol and an empty group.
func newFake() *fakeBackend {
	msg := func(seq int64, sender string, t time.Time, text string) *client.Message {
		st := client.Received
		if sender == "alice" {
			st = client.Sent
		}
		return &client.Message{Conversation: 1, Seq: seq, ID: mid(byte(seq)), Sender: sender, Sent: t, Received: t,
			Kind: content.KindText, Text: text, State: st}
	}
	h1 := []*client.Message{
		msg(1, "bob", at(4, 18, 2), "Are we still on for the review tomorrow?"),
		msg(2, "alice", at(4, 18, 5), "Yes, 10:00 in the small room."),
		msg(3, "bob", at(5, 9, 15), "Here are the slides."),
		msg(4, "alice", at(5, 9, 20), "Thanks, I will read them before lunch and come back with comments on the budget part."),
		msg(5, "bob", at(5, 9, 30), "oops, wrong file"),
		{Conversation: 1, Seq: 6, ID: mid(6), Sender: "alice", Sent: at(5, 10, 0), Received: at(5, 10, 0),
			System: &client.System{Kind: client.SystemAdded, Users: []string{"carol"}}},
		msg(7, "bob", at(5, 14, 20), "Perfect"),
	}
	h1[2].Kind, h1[2].Text = content.KindAttachment, ""
	h1[2].Attachment = &client.Attachment{ID: "a1b2", Size: 12345, MediaType: "application/pdf", FileName: "report.pdf"}
	h1[3].Edited, h1[3].State, h1[3].ReadBy = at(5, 9, 21), client.Read, []string{"bob"}
	h1[3].Reactions = []client.Reaction{{User: "bob", Emoji: "👍"}, {User: "carol", Emoji: "👍"}, {User: "bob", Emoji: "🎉"}}
	h1[4].Deleted, h1[4].Text = true, ""
	h1[6].ReplyTo = mid(4)
	carolLast := &client.Message{Conversation: 3, Seq: 1, ID: mid(0x31), Sender: "carol", Sent: at(1, 8, 0), Received: at(1, 8, 0), Kind: content.KindText, Text: "hi alice!", State: client.Received}
	projLast := &client.Message{Conversation: 2, Seq: 4, ID: mid(0x24), Sender: "alice", Sent: at(5, 9, 12), Received: at(5, 9, 12), Kind: content.KindText, Text: "ship it", State: client.Pending}
	return &fakeBackend{
		self: "alice",
		convs: []client.Conversation{
			{ID: 2, Name: "Project", Topic: "launch", Members: []string{"alice", "bob", "carol"}, Last: projLast, Unverified: []string{"carol"}},
			{ID: 1, Direct: true, Members: []string{"alice", "bob"}, Unread: 2, Last: h1[6]},
			{ID: 3, Direct: true, Members: []string{"alice", "carol"}, Unread: 1, Last: carolLast},
			{ID: 4, Name: "Empty", Members: []string{"alice", "dave"}, Created: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		},
		history: map[protocol.ConversationID][]*client.Message{1: h1, 2: {projLast}, 3: {carolLast}},
		members: map[protocol.ConversationID][]client.Member{
			1: {{User: "alice", Device: "D1", Self: true, Verified: true}, {User: "bob", Device: "B1", Verified: true}},
			2: {{User: "alice", Device: "D1", Self: true, Verified: true}, {User: "bob", Device: "B1", Verified: true}, {User: "carol", Device: "C1"}},
		},
	}
}

// policies are the conversations' policies (none: no roles).
var fakePolicies = map[protocol.ConversationID]*protocol.Policy{2: protocol.DefaultPolicy("alice")}

func (f *fakeBackend) Policy(_ context.Context, conv protocol.ConversationID) (*protocol.Policy, error) {
	f.record("policy %d", conv)
	return fakePolicies[conv], nil
}

func (f *fakeBackend) SetRole(_ context.Context, conv protocol.ConversationID, user string, admin bool) error {
	f.record("set_role %d %s %v", conv, user, admin)
	return nil
}

func (f *fakeBackend) NewChannel(_ context.Context, title string, members ...string) (protocol.ConversationID, error) {
	f.record("new_channel %s %s", title, strings.Join(members, ","))
	return 2, nil
}

// fakeDevices are alice's: this one, a laptop, a revoked phone and one
// the server lists that none of hers certified.
var fakeDevices = []client.OwnDevice{
	{ID: "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1", Name: "desktop", Created: at(1, 9, 0), LastSeen: testNow, This: true},
	{ID: "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2", Name: "laptop", Created: at(2, 9, 0), LastSeen: at(5, 8, 0)},
	{ID: "b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3", Name: "old phone", Created: at(1, 10, 0), Revoked: at(3, 12, 0)},
	{ID: "f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4", Created: at(5, 13, 0), Forged: true},
}

func (f *fakeBackend) Devices(context.Context) ([]client.OwnDevice, error) {
	f.record("devices")
	return slices.Clone(fakeDevices), nil
}

func (f *fakeBackend) RevokeOwnDevice(_ context.Context, device protocol.DeviceID, force bool) error {
	f.record("revoke_device %s %v", device, force)
	if device == fakeDevices[0].ID {
		return fmt.Errorf("client: revoke device %s: %w", device, client.ErrLastDevice)
	}
	return nil
}

// StartLinkDevice takes the code "GOOD-CODE"; any other fails its check.
func (f *fakeBackend) StartLinkDevice(_ context.Context, code string) (*daemonapi.LinkQuestion, error) {
	f.record("link_device %s", code)
	if code != "GOOD-CODE" {
		return nil, fmt.Errorf("client: link a device: %w", client.ErrLinkTampered)
	}
	return &daemonapi.LinkQuestion{Link: "L1", LinkRequest: client.LinkRequest{Confirmation: "493 018", Device: "c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5", Name: "tablet"}}, nil
}

func (f *fakeBackend) AnswerLinkDevice(_ context.Context, link string, accept bool, _ []protocol.ConversationID) (*client.LinkedDevice, error) {
	f.record("link_device_confirm %s %v", link, accept)
	if !accept {
		return nil, fmt.Errorf("client: link a device: %w", client.ErrLinkRefused)
	}
	return &client.LinkedDevice{Device: "c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5", Name: "tablet", Conversations: 3}, nil
}
