package tui

import (
	"slices"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// narrowWidth is the width below which one pane shows at a time.
const narrowWidth = 70

// View renders the screen on the alternate screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "parley"
	return v
}

// render draws the screen: the panes, then the status line.
func (m *Model) render() string {
	h := m.height - 1
	if h < 1 {
		return m.viewStatus(m.width)
	}
	var main []string
	switch {
	case m.overlay == overlayHelp:
		main = m.viewHelp(m.width, h)
	case m.narrow() && m.focus == focusList && m.overlay == overlayNone:
		main = m.viewList(m.width, h)
	case m.narrow():
		main = m.viewRight(m.width, h)
	default:
		lw := m.listWidth()
		sep := m.st.separator.Render("│")
		main = joinColumns(sep, m.viewList(lw, h), m.viewRight(m.width-lw-1, h))
	}
	return strings.Join(append(main, m.viewStatus(m.width)), "\n")
}

func (m *Model) narrow() bool { return m.width < narrowWidth }

// layout sizes the composer after a resize.
func (m *Model) layout() {
	m.composer.SetWidth(max(m.convWidth(), 4))
}

// convWidth is the width of the conversation pane.
func (m *Model) convWidth() int {
	if m.narrow() {
		return m.width
	}
	return m.width - m.listWidth() - 1
}

// convAreas returns the number of banner lines and the height of the
// history in the conversation pane.
func (m *Model) convAreas() (banners, history int) {
	banners = len(m.bannerLines(m.convWidth()))
	h := max(m.height-1, 1)
	return banners, max(h-1-banners-1-composerHeight, 1)
}

// viewRight renders the pane beside the list: an overlay, or the open
// conversation.
func (m *Model) viewRight(w, h int) []string {
	switch {
	case m.overlay == overlayVerify && m.verify != nil:
		return m.viewVerify(w, h)
	case m.overlay == overlayMembers:
		return m.viewMembers(w, h)
	case m.overlay == overlayDevices:
		return m.viewDevices(w, h)
	case m.overlay == overlayResults && m.search != nil:
		return m.viewResults(w, h)
	case m.conv == nil:
		return m.viewNoConversation(w, h)
	}
	return m.viewConversation(w, h)
}

// viewNoConversation says how to open a conversation, above the
// composer (for commands such as /new).
func (m *Model) viewNoConversation(w, h int) []string {
	lines := append([]string{""}, prefix(" ", wrap("Select a conversation (Enter), or start one: /new USER", w-1), m.st.dim)...)
	composer := m.composerLines(w)
	lines = fitLines(lines, w, max(h-len(composer), 0))
	return fitLines(append(lines, composer...), w, h)
}

// viewConversation renders the header, banners, history and composer.
func (m *Model) viewConversation(w, h int) []string {
	lines := []string{m.header()}
	for _, b := range m.bannerLines(w) {
		lines = append(lines, m.st.banner.Render(fit(b, w)))
	}
	_, hh := m.convAreas()
	lines = append(lines, m.historyWindow(w, hh)...)
	lines = append(lines, m.composerLines(w)...)
	return fitLines(lines, w, h)
}

// header names the open conversation, with its topic and the members not
// verified.
func (m *Model) header() string {
	cv := m.conv.cv
	if cv == nil {
		return m.st.title.Render("conversation " + strconv.FormatInt(int64(m.conv.id), 10))
	}
	s := m.st.title.Render(m.title(cv))
	if cv.Topic != "" {
		s += " — " + oneLine(cv.Topic)
	}
	if n := len(cv.Members); !cv.Direct && n > 0 {
		s += m.st.dim.Render(" · " + strconv.Itoa(n) + " members")
	}
	if len(cv.Unverified) > 0 {
		s += m.st.dim.Render(" · unverified: " + oneLine(strings.Join(cv.Unverified, ", ")))
	}
	if cv.Timer > 0 {
		s += m.st.dim.Render(" · ⏱ " + protocol.FormatTimer(cv.Timer))
	}
	return s
}

// banners are the loud warnings of the open conversation: an unsafe
// conversation, changed identity keys, a conversation left.
func (m *Model) banners() []string {
	if m.conv == nil {
		return nil
	}
	var out []string
	cv := m.conv.cv
	if cv != nil && cv.Unsafe != nil {
		out = append(out, "⚠ Unsafe conversation: "+oneLine(cv.Unsafe.Reason)+". Nothing more can be sent here.")
	}
	for _, u := range m.changedUsers() {
		out = append(out, "⚠ "+oneLine(u)+"'s identity key changed. Compare safety numbers: /verify "+oneLine(u))
	}
	if cv != nil && cv.Left {
		out = append(out, "You are no longer a member of this conversation.")
	}
	return out
}

// bannerLines are the banners wrapped to width w.
func (m *Model) bannerLines(w int) []string {
	var out []string
	for _, b := range m.banners() {
		out = append(out, wrap(b, w)...)
	}
	return out
}

// changedUsers are the members of the open conversation whose identity
// key changed.
func (m *Model) changedUsers() []string {
	var out []string
	for _, mb := range m.conv.members {
		if (mb.IdentityChanged || m.changedKeys[mb.User]) && !mb.Self && !slices.Contains(out, mb.User) {
			out = append(out, mb.User)
		}
	}
	if cv := m.conv.cv; cv != nil {
		for _, u := range cv.Members {
			if m.changedKeys[u] && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// historyWindow is the part of the history shown in h lines, at the
// bottom unless scrolled, with the selected entry in view.
func (m *Model) historyWindow(w, h int) []string {
	c := m.conv
	if !c.loaded {
		return fitLines([]string{m.st.dim.Render("loading…")}, w, h)
	}
	r := m.historyLines(w)
	total := len(r.lines)
	if c.sel >= 0 && c.sel < len(r.start) {
		m.revealSelected(r, h)
	}
	c.scroll = min(max(c.scroll, 0), max(total-h, 0))
	end := total - c.scroll
	start := max(end-h, 0)
	window := r.lines[start:end]
	pad := make([]string, h-len(window))
	return fitLines(append(pad, window...), w, h)
}

// revealSelected scrolls so that the selected entry is in view.
func (m *Model) revealSelected(r rendered, h int) {
	c := m.conv
	total := len(r.lines)
	first := r.start[c.sel]
	last := total - 1
	if c.sel+1 < len(r.start) {
		last = r.start[c.sel+1] - 1
	}
	end := total - c.scroll // one past the last shown line
	switch {
	case last >= end:
		c.scroll = total - 1 - last
	case first < end-h:
		c.scroll = total - first - h
	}
}

// viewStatus renders the status line: connection, a message or a
// question, and the key for help.
func (m *Model) viewStatus(w int) string {
	left := " " + m.connText() + " "
	right := " F1 help "
	mid := m.status
	switch {
	case m.confirm != nil:
		mid = m.confirm.prompt
	case m.react != nil:
		mid = m.reactPrompt()
	case m.list.filtering:
		mid = "type to filter · Enter open · Esc clear"
	case mid == "" && m.conv != nil && m.conv.sel >= 0:
		mid = selectHint
	}
	if m.statusErr && m.confirm == nil && m.react == nil {
		mid = m.st.err.Render(mid)
	}
	line := fit(left+"│ "+mid, max(w-width(right), 0)) + right
	return m.st.status.Render(fit(line, w))
}

// connText says whether the daemon reaches the server, and how many of
// this user's messages wait to be sent.
func (m *Model) connText() string {
	var s string
	switch {
	case m.daemonLost:
		s = "✕ daemon gone"
	case !m.connKnown:
		s = "● daemon"
	case m.conn == client.Connected:
		s = "● connected"
	case m.conn == client.Connecting && m.everOnline:
		s = "◌ reconnecting"
	case m.conn == client.Connecting:
		s = "◌ connecting"
	default:
		s = "○ offline"
	}
	if n := len(m.pending); n > 0 {
		s += " · " + strconv.Itoa(n) + " queued"
	}
	return s
}
