package tui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// listState is the conversation list: every conversation sorted by
// activity, those matching the filter shown, one selected.
type listState struct {
	all []client.Conversation
	// loaded is set once the daemon listed the conversations.
	loaded    bool
	filter    string
	filtering bool // keys go to the filter
	cursor    int  // index into visible()
	// chosen is set once the user moved the cursor or opened a
	// conversation; until then the cursor stays on the most recent.
	chosen bool
	offset int // first visible row
	// lastTried are the conversations whose latest entry was loaded
	// because the list lacked it.
	lastTried map[protocol.ConversationID]bool
	// touched is Model.changes when an event last changed the list, or
	// named a conversation it lacks; asked, when a load was last asked.
	touched, asked uint64
}

// activity is when a conversation last changed: its latest entry, else
// its creation.
func activity(cv *client.Conversation) time.Time {
	if l := cv.Last; l != nil {
		if !l.Received.IsZero() {
			return l.Received
		}
		return l.Sent
	}
	return cv.Created
}

// sortByActivity sorts the most recently active first.
func sortByActivity(cvs []client.Conversation) {
	slices.SortStableFunc(cvs, func(a, b client.Conversation) int {
		if c := activity(&b).Compare(activity(&a)); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
}

// setConversations replaces the list, keeping the selected conversation
// selected.
func (m *Model) setConversations(cvs []client.Conversation) tea.Cmd {
	sel := m.selectedConv()
	prev := map[protocol.ConversationID]*client.Message{}
	for _, cv := range m.list.all {
		prev[cv.ID] = cv.Last
	}
	m.list.all, m.list.loaded = slices.Clone(cvs), true
	for i := range m.list.all {
		if m.list.all[i].Last == nil {
			m.list.all[i].Last = prev[m.list.all[i].ID]
		}
		if m.conv != nil && m.list.all[i].ID == m.conv.id {
			m.list.all[i].Unread = 0
		}
		m.observe(m.list.all[i].Last)
	}
	sortByActivity(m.list.all)
	m.keepSelection(sel)
	return m.loadMissingLast()
}

// lastMsg is the latest entry of a conversation listed without one.
type lastMsg struct {
	conv protocol.ConversationID
	msg  *client.Message
}

// loadMissingLast loads, once per conversation, the latest entry of
// those listed without one (a daemon whose store does not fill
// Conversation.Last).
func (m *Model) loadMissingLast() tea.Cmd {
	var cmds []tea.Cmd
	b, ctx := m.b, m.ctx
	for _, cv := range m.list.all {
		if cv.Last != nil || m.list.lastTried[cv.ID] {
			continue
		}
		if m.list.lastTried == nil {
			m.list.lastTried = map[protocol.ConversationID]bool{}
		}
		m.list.lastTried[cv.ID] = true
		id := cv.ID
		cmds = append(cmds, func() tea.Msg {
			h, err := b.History(ctx, id, 0, 1)
			if err != nil || len(h) == 0 {
				return nil
			}
			return lastMsg{id, h[len(h)-1]}
		})
	}
	return tea.Batch(cmds...)
}

// applyLast shows the latest entry that loadMissingLast found.
func (m *Model) applyLast(msg lastMsg) {
	if cv := m.findConv(msg.conv); cv != nil && cv.Last == nil {
		sel := m.selectedConv()
		cv.Last = msg.msg
		m.observe(msg.msg)
		sortByActivity(m.list.all)
		m.keepSelection(sel)
	}
}

// keepSelection keeps the cursor on conversation sel after the list
// changed order, once the user chose one; before, on the most recent.
func (m *Model) keepSelection(sel protocol.ConversationID) {
	if !m.list.chosen {
		m.list.cursor = 0
		return
	}
	m.selectConv(sel)
}

// listLoaded says whether the first screen is complete: the account
// and the conversation list have come from the daemon.
func (m *Model) listLoaded() bool {
	return m.list.loaded && m.self != ""
}

// visible returns the conversations that match the filter.
func (m *Model) visible() []*client.Conversation {
	var out []*client.Conversation
	f := strings.ToLower(m.list.filter)
	for i := range m.list.all {
		cv := &m.list.all[i]
		if f == "" || strings.Contains(strings.ToLower(m.title(cv)), f) {
			out = append(out, cv)
		}
	}
	return out
}

// selectedConv returns the id of the selected conversation (0 for none).
func (m *Model) selectedConv() protocol.ConversationID {
	vis := m.visible()
	if m.list.cursor >= 0 && m.list.cursor < len(vis) {
		return vis[m.list.cursor].ID
	}
	return 0
}

// selectConv moves the cursor to conversation id, or keeps it in range.
func (m *Model) selectConv(id protocol.ConversationID) {
	vis := m.visible()
	for i, cv := range vis {
		if cv.ID == id {
			m.list.cursor = i
			return
		}
	}
	m.list.cursor = min(max(m.list.cursor, 0), max(len(vis)-1, 0))
}

// findConv returns the listed conversation id, or nil.
func (m *Model) findConv(id protocol.ConversationID) *client.Conversation {
	for i := range m.list.all {
		if m.list.all[i].ID == id {
			return &m.list.all[i]
		}
	}
	return nil
}

// title names a conversation.
func (m *Model) title(cv *client.Conversation) string {
	return oneLine(daemonapi.Title(cv, m.self))
}

// handleListKey handles a key while the list has the focus.
func (m *Model) handleListKey(k tea.KeyPressMsg) tea.Cmd {
	if m.list.filtering {
		return m.handleFilterKey(k)
	}
	switch k.String() {
	case "up", "k", "down", "j", "home", "g", "end", "G", "enter", "right", "l":
		m.list.chosen = true
	}
	switch k.String() {
	case "up", "k":
		m.moveCursor(-1)
	case "down", "j":
		m.moveCursor(1)
	case "home", "g":
		m.list.cursor = 0
	case "end", "G":
		m.list.cursor = max(len(m.visible())-1, 0)
	case "/", "ctrl+f":
		m.list.filtering = true
	case "enter", "right", "l":
		if id := m.selectedConv(); id != 0 {
			return m.openConversation(id)
		}
	case "tab":
		if m.conv != nil {
			m.setFocus(focusComposer)
		}
	case "n":
		m.setFocus(focusComposer)
		m.composer.SetValue("/new ")
	case "q":
		return tea.Quit
	case "?":
		m.overlay = overlayHelp
	}
	return nil
}

// handleFilterKey edits the filter: typing narrows the list, Enter
// opens the selected conversation and clears the filter, Esc clears it.
func (m *Model) handleFilterKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc":
		m.list.filter, m.list.filtering = "", false
	case "enter":
		// The filter finds one conversation to open; the whole list
		// comes back, so that activity elsewhere stays in sight.
		id := m.selectedConv()
		m.list.filter, m.list.filtering = "", false
		if id != 0 {
			m.selectConv(id)
			return m.openConversation(id)
		}
		return nil
	case "backspace":
		if r := []rune(m.list.filter); len(r) > 0 {
			m.list.filter = string(r[:len(r)-1])
		}
	case "up":
		m.moveCursor(-1)
	case "down":
		m.moveCursor(1)
	default:
		if k.Text != "" {
			m.list.filter += k.Text
		}
	}
	m.selectConv(m.selectedConv())
	return nil
}

func (m *Model) moveCursor(d int) {
	n := len(m.visible())
	m.list.cursor = min(max(m.list.cursor+d, 0), max(n-1, 0))
}

// listWidth is the width of the list pane beside a conversation.
func (m *Model) listWidth() int {
	return min(max(m.width/3, 20), 32)
}

// viewList renders the list pane: a header (or the filter), then two
// rows per conversation.
func (m *Model) viewList(w, h int) []string {
	head := m.st.title.Render("Conversations")
	if m.list.filtering || m.list.filter != "" {
		head = "Filter: " + m.list.filter
		if m.list.filtering {
			head += "▏"
		}
	}
	lines := []string{head}
	vis := m.visible()
	if len(vis) == 0 {
		lines = append(lines, m.st.dim.Render(m.emptyListText()))
		return fitLines(lines, w, h)
	}
	rows := max((h-1)/2, 1)
	m.list.offset = min(max(m.list.offset, m.list.cursor-rows+1), m.list.cursor)
	for i := m.list.offset; i < len(vis) && i < m.list.offset+rows; i++ {
		lines = append(lines, m.viewListItem(vis[i], w, i == m.list.cursor)...)
	}
	return fitLines(lines, w, h)
}

func (m *Model) emptyListText() string {
	switch {
	case m.list.filter != "":
		return "no match"
	case !m.list.loaded:
		return "loading…"
	}
	return "no conversations (n: new)"
}

// viewListItem renders one conversation: marker, title, unread count and
// time; then the preview of its latest entry.
func (m *Model) viewListItem(cv *client.Conversation, w int, selected bool) []string {
	marker := "  "
	if selected {
		marker = "▸ "
	}
	if m.conv != nil && m.conv.id == cv.ID {
		marker = string([]rune(marker)[0]) + "•"
	}
	right := ""
	if cv.Last != nil {
		right = m.shortTime(activity(cv))
	}
	if cv.Unread > 0 {
		right = m.unreadStyle(cv).Render("("+strconv.Itoa(cv.Unread)+")") + " " + right
	}
	if cv.Muted {
		right = strings.TrimSpace(mutedMark + " " + right)
	}
	title := m.title(cv)
	if cv.Channel {
		title = channelMark + title
	}
	if unreadLoud(cv) {
		title = m.st.unread.Render(title)
	}
	tw := w - 2 - width(right) - 1
	top := marker + fit(title, max(tw, 1)) + " " + right
	if selected && m.focus == focusList {
		top = m.st.selected.Render(fit(top, w))
	}
	bottom := "    " + m.st.dim.Render(m.preview(cv))
	return []string{top, bottom}
}

// preview is one line about a conversation's latest entry.
func (m *Model) preview(cv *client.Conversation) string {
	l := cv.Last
	switch {
	case cv.Unsafe != nil:
		return "unsafe: nothing can be sent"
	case cv.Left:
		return "you left"
	case l == nil:
		return "no messages"
	case l.System != nil:
		return oneLine(daemonapi.SystemText(l, m.self))
	}
	who := l.Sender
	if who == m.self {
		who = "you"
	}
	return who + ": " + m.summary(l)
}

// summary is a message's text in one line, or what stands for it.
func (m *Model) summary(msg *client.Message) string {
	switch {
	case msg.Deleted:
		return "message deleted"
	case msg.Attachment != nil && msg.Text == "":
		return "[file] " + oneLine(msg.Attachment.FileName)
	}
	return oneLine(msg.Text)
}

// shortTime shows t as a time today, a weekday this week, else a date.
func (m *Model) shortTime(t time.Time) string {
	now := m.now()
	t = t.In(now.Location())
	switch {
	case sameDay(t, now):
		return t.Format("15:04")
	case now.Sub(t) < 6*24*time.Hour && t.Before(now):
		return t.Format("Mon")
	case t.Year() == now.Year():
		return t.Format("Jan 2")
	}
	return t.Format("2006-01-02")
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}
