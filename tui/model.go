// Package tui is parley's full-screen terminal client (parley tui): a
// conversation list, the open conversation with its composer, safety
// numbers and members, drawn with Bubble Tea. It never opens a profile
// itself: it works through a Backend, the profile's daemon in parley tui,
// and follows the daemon's events.
//
// The model does no I/O in Update: every call to the Backend runs in a
// tea.Cmd whose result comes back as a message, and the events arrive
// one per message from a command that is armed again after each one.
// Rendering takes the time from an injected clock.
package tui

import (
	"context"
	"fmt"
	"time"

	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// printable makes text that other people chose safe for the terminal.
var printable = daemonapi.Printable

// Options configure a Model.
type Options struct {
	// Context bounds the Backend calls; nil means context.Background.
	Context context.Context
	// Now is the clock for rendering times; nil means time.Now. Times are
	// shown in the location of the times it returns.
	Now func() time.Time
	// Plain drops all colours (NO_COLOR).
	Plain bool
	// HistoryPage is how many entries a conversation loads at a time
	// (default 100).
	HistoryPage int
	// Reconnect, when set, is called after the Backend's events ended
	// (the daemon exited or was killed) for a new Backend (a daemon
	// started again); the model then subscribes and reloads what it
	// shows. Without it the model stays on the lost Backend.
	Reconnect func(ctx context.Context) (Backend, error)
}

// focus says which part of the screen takes the keys.
type focus int

const (
	focusList focus = iota
	focusComposer
)

// overlay is a view that covers the conversation pane.
type overlay int

const (
	overlayNone overlay = iota
	overlayHelp
	overlayVerify
	overlayMembers
	overlayResults // search results (search.go)
	overlayDevices // the account's devices (devices.go)
)

// Model is the state of the terminal client; it implements tea.Model.
type Model struct {
	ctx    context.Context
	b      Backend
	now    func() time.Time
	st     styles
	page   int
	listen bool // whether to read events (tests inject them instead)

	width, height int
	self          string

	focus   focus
	overlay overlay

	// changes counts the changes made to what was loaded (events, sent
	// messages). A load asked for before a change to what it loads is
	// stale: it is dropped, and asked for again unless a newer load is
	// under way (list.touched, convState.touched).
	changes uint64

	list     listState
	conv     *convState
	composer textarea.Model
	replyTo  *client.Message
	editing  *client.Message
	confirm  *confirmState
	react    *reactState
	verify   *verifyState
	// verifyWidth is the width the safety number is drawn in.
	verifyWidth int
	members     membersState
	search      *searchState
	devices     devicesState

	conn       client.ConnState
	connKnown  bool
	everOnline bool
	daemonLost bool
	reconnect  func(ctx context.Context) (Backend, error)
	// retry is the pause before the next attempt to reconnect.
	retry       time.Duration
	pending     map[content.MessageID]bool
	changedKeys map[string]bool // users whose identity key changed (events)

	status    string
	statusErr bool

	typing typingState
	tick   tickFunc // tea.Tick
}

// confirmState is a question waiting for y or n; no, when set, runs on
// any other key.
type confirmState struct {
	prompt string
	yes    tea.Cmd
	no     tea.Cmd
}

// New returns the model of a terminal client working through b.
func New(b Backend, o Options) *Model {
	m := &Model{ctx: o.Context, b: b, now: o.Now, st: newStyles(o.Plain), page: o.HistoryPage, listen: true, reconnect: o.Reconnect,
		width: 80, height: 24, pending: map[content.MessageID]bool{}, changedKeys: map[string]bool{}, tick: tea.Tick}
	if m.ctx == nil {
		m.ctx = context.Background()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.page <= 0 {
		m.page = 100
	}
	m.composer = newComposer(o.Plain)
	m.layout()
	return m
}

// Init loads the account and the conversations and starts reading
// events.
func (m *Model) Init() tea.Cmd {
	if m.listen {
		return tea.Batch(m.loadWhoami(), m.subscribe()) // loads once subscribed
	}
	return tea.Batch(m.loadWhoami(), m.loadConversations())
}

// The results of the Backend's calls.
type (
	whoamiMsg struct {
		acct *client.Account
		err  error
	}
	convsMsg struct {
		convs []client.Conversation
		at    uint64 // Model.changes when it was asked
		err   error
	}
	historyMsg struct {
		conv  protocol.ConversationID
		msgs  []*client.Message
		older bool   // a longer page that includes older entries
		at    uint64 // Model.changes when it was asked
		err   error
	}
	convMsg struct {
		cv  *client.Conversation
		err error
	}
	membersMsg struct {
		conv    protocol.ConversationID
		members []client.Member
		err     error
	}
	sentMsg struct {
		msg *client.Message
		err error
	}
	openMsg struct {
		conv protocol.ConversationID
		err  error
	}
	// doneMsg ends an action: its status text, or its error.
	doneMsg struct {
		text   string
		err    error
		reload bool // reload the conversations and the open one
	}
)

// Update applies a message to the model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		before := m.composer.Value()
		return m, tea.Batch(m.updateComposer(msg), m.composerTyped(before))
	case typingExpiredMsg:
		m.expireTyping()
		return m, nil
	case eventMsg:
		return m, m.handleEvent(msg.ev)
	case eventErrMsg:
		return m, m.lostDaemon(msg.err)
	case reconnectMsg:
		return m, m.reconnected(msg)
	case subscribedMsg:
		return m, m.subscribed()
	}
	return m, m.handleResult(msg)
}

// handleResult applies the result of a Backend call.
func (m *Model) handleResult(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case whoamiMsg:
		if msg.err != nil {
			m.setError("whoami: %v", msg.err)
			return nil
		}
		m.self = msg.acct.User
	case convsMsg:
		if msg.err != nil {
			m.setError("conversations: %v", msg.err)
			return nil
		}
		if msg.at < m.list.touched { // an event came after it was asked
			if m.list.asked < m.list.touched {
				return m.loadConversations()
			}
			return nil
		}
		return m.setConversations(msg.convs)
	case lastMsg:
		m.applyLast(msg)
	case historyMsg:
		return m.applyHistory(msg)
	case convMsg:
		if msg.err == nil && m.conv != nil && msg.cv.ID == m.conv.id {
			m.conv.cv = msg.cv
		}
	case membersMsg:
		m.applyMembers(msg)
	case policyMsg:
		m.applyPolicy(msg, false)
	case shownPolicyMsg:
		m.applyPolicy(msg.policyMsg, true)
	case sentMsg:
		return m.applySent(msg)
	case openMsg:
		if msg.err != nil {
			m.setError("%v", msg.err)
			return nil
		}
		return tea.Batch(m.loadConversations(), m.openConversation(msg.conv))
	case safetyMsg:
		return m.applySafety(msg)
	case searchMsg:
		m.applySearch(msg)
	case jumpMsg:
		return m.applyJump(msg)
	case doneMsg:
		return m.applyDone(msg)
	case devicesMsg:
		m.applyDevices(msg)
	case linkAskMsg:
		m.applyLinkAsk(msg)
	case linkedMsg:
		return m.applyLinked(msg)
	case devicesRevokedMsg:
		m.setStatus("revoked %s", shortDevice(msg.device))
		return m.loadDevices()
	default:
		return m.updateComposer(msg)
	}
	return nil
}

func (m *Model) applyDone(msg doneMsg) tea.Cmd {
	if msg.err != nil {
		m.setError("%v", msg.err)
		return nil
	}
	if msg.text != "" {
		m.setStatus("%s", msg.text)
	}
	if !msg.reload {
		return nil
	}
	return m.reload()
}

// reload loads the conversations again, and the open one with its
// history and members.
func (m *Model) reload() tea.Cmd {
	cmds := []tea.Cmd{m.loadConversations()}
	if m.conv != nil {
		cmds = append(cmds, m.loadConversation(m.conv.id), m.loadHistory(m.conv.id, len(m.conv.msgs), false), m.loadMembers(m.conv.id))
	}
	return tea.Batch(cmds...)
}

// call runs a Backend action in a command; text is its status on
// success.
func (m *Model) call(text string, reload bool, f func(ctx context.Context) error) tea.Cmd {
	ctx := m.ctx
	return func() tea.Msg {
		return doneMsg{text: text, err: f(ctx), reload: reload}
	}
}

func (m *Model) loadWhoami() tea.Cmd {
	b := m.b
	return func() tea.Msg {
		a, err := b.Whoami()
		return whoamiMsg{a, err}
	}
}

// touch counts a change to what was loaded, and returns its number.
func (m *Model) touch() uint64 {
	m.changes++
	return m.changes
}

func (m *Model) loadConversations() tea.Cmd {
	b, ctx, at := m.b, m.ctx, m.changes
	m.list.asked = at
	return func() tea.Msg {
		cvs, err := b.Conversations(ctx)
		return convsMsg{cvs, at, err}
	}
}

func (m *Model) loadConversation(id protocol.ConversationID) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		cv, err := b.Conversation(ctx, id)
		return convMsg{cv, err}
	}
}

// loadHistory loads the last n entries (at least a page); older says
// they are to include entries older than those shown.
func (m *Model) loadHistory(id protocol.ConversationID, n int, older bool) tea.Cmd {
	b, ctx, at := m.b, m.ctx, m.changes
	n = max(n, m.page)
	if m.conv != nil && m.conv.id == id {
		m.conv.asked = at
	}
	return func() tea.Msg {
		msgs, err := b.History(ctx, id, 0, n)
		return historyMsg{id, msgs, older, at, err}
	}
}

func (m *Model) loadMembers(id protocol.ConversationID) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		ms, err := b.Members(ctx, id)
		return membersMsg{id, ms, err}
	}
}

// setStatus shows a message in the status line.
func (m *Model) setStatus(format string, args ...any) {
	m.status, m.statusErr = oneLine(fmt.Sprintf(format, args...)), false
}

// setError shows an error in the status line.
func (m *Model) setError(format string, args ...any) {
	m.status, m.statusErr = oneLine(fmt.Sprintf(format, args...)), true
}

// observe tracks the delivery state of own messages, for the count of
// queued ones.
func (m *Model) observe(msg *client.Message) {
	if msg == nil || msg.ID.IsZero() {
		return
	}
	if msg.State == client.Pending {
		m.pending[msg.ID] = true
	} else {
		delete(m.pending, msg.ID)
	}
}
