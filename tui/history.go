package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
)

// rendered is the history as lines, with the first line of each entry.
type rendered struct {
	lines []string
	start []int // start[i] is the first line of entry i
}

// historyLines renders the loaded history at width w: the start of the
// conversation (or that older entries load), day separators, entries.
// The slices of the result are reused by the next call.
func (m *Model) historyLines(w int) rendered {
	var r rendered
	c := m.conv
	if c == nil {
		return r
	}
	r.lines, r.start = c.cache.buf.lines[:0], c.cache.buf.start[:0]
	defer func() { c.cache.buf = r }()
	if c.atStart && c.loaded {
		r.lines = append(r.lines, m.st.dim.Render(center("start of the conversation", w)))
	} else if c.loading {
		r.lines = append(r.lines, m.st.dim.Render(center("loading…", w)))
	}
	loc := m.loc()
	c.cache.reset(w, m.self, loc, len(c.msgs))
	for i, e := range c.msgs {
		if i == 0 || !sameDay(c.msgs[i-1].Sent.In(loc), e.Sent.In(loc)) {
			r.lines = append(r.lines, m.st.separator.Render(center(" "+m.day(e)+" ", w, '─')))
		}
		r.start = append(r.start, len(r.lines))
		if i == c.sel {
			r.lines = append(r.lines, m.entryLines(e, w, true)...)
			continue
		}
		r.lines = append(r.lines, c.cache.lines(i, e, func() []string { return m.entryLines(e, w, false) })...)
	}
	return r
}

// entryCache keeps the rendered lines of the entries of the open
// conversation, so that a frame renders only the entries that are new or
// changed, not the whole loaded history. An entry is rendered from its
// message, the width, this user's name, the clock's location and the
// message it replies to (the quote). Messages are never changed in
// place: a change (an edit, a reaction, a receipt, a reload) puts a new
// *client.Message at the entry's index, so a rendering is used while
// the index holds the message it was made from, at the same width, user
// and location; and the renderings that quote a message are dropped when
// that message changes or arrives (forgetQuotes). The selected entry is
// never cached.
type entryCache struct {
	width   int
	self    string
	loc     *time.Location
	entries []cachedEntry // by index in convState.msgs
	// buf is the last frame's history, whose slices the next one
	// reuses: a frame would otherwise allocate them anew for every
	// line of the loaded history.
	buf rendered
}

type cachedEntry struct {
	msg   *client.Message
	lines []string
}

// reset drops everything rendered for another width, user or location,
// and sizes the cache to n entries.
func (ec *entryCache) reset(w int, self string, loc *time.Location, n int) {
	if ec.width != w || ec.self != self || ec.loc != loc {
		*ec = entryCache{width: w, self: self, loc: loc, buf: ec.buf}
	}
	if len(ec.entries) > n {
		ec.entries = ec.entries[:n]
	}
	for len(ec.entries) < n {
		ec.entries = append(ec.entries, cachedEntry{})
	}
}

// lines returns the lines of entry i, e, rendering them with render
// unless the cache holds them.
func (ec *entryCache) lines(i int, e *client.Message, render func() []string) []string {
	ce := &ec.entries[i]
	if ce.msg != e || ce.lines == nil {
		ce.msg, ce.lines = e, render()
	}
	return ce.lines
}

// forgetQuotes drops the renderings of the entries that reply to id,
// since their quote shows that message.
func (c *convState) forgetQuotes(id content.MessageID) {
	if id.IsZero() {
		return
	}
	for i, e := range c.msgs {
		if e.ReplyTo == id && i < len(c.cache.entries) {
			c.cache.entries[i] = cachedEntry{}
		}
	}
}

// day names the day of an entry, for the separators.
func (m *Model) day(e *client.Message) string {
	return e.Sent.In(m.loc()).Format("Monday, 2 January 2006")
}

// center centres s in w cells, padded with pad (default space).
func center(s string, w int, pad ...rune) string {
	p := ' '
	if len(pad) > 0 {
		p = pad[0]
	}
	n := w - width(s)
	if n <= 0 {
		return s
	}
	return strings.Repeat(string(p), n/2) + s + strings.Repeat(string(p), n-n/2)
}

// entryLines renders one history entry: a system line, or a message's
// header, quote, body, attachment and reactions.
func (m *Model) entryLines(e *client.Message, w int, selected bool) []string {
	gutter := " "
	mentioned := e.MentionsMe && !e.Deleted && e.System == nil
	switch {
	case selected:
		gutter = "▸"
	case mentioned:
		gutter = m.st.mention.Render("@")
	}
	if e.System != nil {
		text := "· " + daemonapi.SystemText(e, m.self) + "  " + m.clock(e)
		return prefix(gutter+" ", wrap(printable(text), w-2), m.st.system)
	}
	head := m.clock(e) + " " + m.st.name(e.Sender).Render(oneLine(e.Sender))
	if s := m.stateText(e); s != "" {
		head += " " + m.st.dim.Render(s)
	}
	if mentioned {
		head += " " + m.st.mention.Render("@you")
	}
	if selected {
		head = m.st.selected.Render(head)
	}
	lines := []string{gutter + head}
	lines = append(lines, m.bodyLines(e, w-3)...)
	return lines
}

// bodyLines are the lines under a message's header, indented.
func (m *Model) bodyLines(e *client.Message, w int) []string {
	var body []string
	if !e.ReplyTo.IsZero() && !e.Deleted {
		body = append(body, m.st.quote.Render(fit("┃ "+m.quoteOf(e.ReplyTo), w)))
	}
	if e.Deleted {
		body = append(body, m.st.deleted.Render("message deleted"))
		return prefix("   ", body)
	}
	text := printable(e.Text)
	if !e.Edited.IsZero() {
		text += " " + m.st.dim.Render("(edited)")
	}
	if strings.TrimSpace(e.Text) != "" || !e.Edited.IsZero() {
		body = append(body, wrap(text, w)...)
	}
	if a := e.Attachment; a != nil {
		body = append(body, "[file] "+oneLine(fileName(a))+" ("+humanSize(a.Size)+")")
	}
	if r := reactionsText(e.Reactions); r != "" {
		body = append(body, r)
	}
	return prefix("   ", body)
}

// quoteOf is a snippet of the replied-to message.
func (m *Model) quoteOf(id content.MessageID) string {
	t := m.conv.find(id)
	if t == nil {
		return "(earlier message)"
	}
	return oneLine(t.Sender) + ": " + m.summary(t)
}

// stateText says how far one of this user's messages got.
func (m *Model) stateText(e *client.Message) string {
	if e.Sender != m.self {
		return ""
	}
	switch e.State {
	case client.Pending:
		return "queued"
	case client.Failed:
		return "not delivered"
	case client.Read:
		if len(e.ReadBy) > 0 {
			return "read by " + oneLine(strings.Join(e.ReadBy, ", "))
		}
		return "read"
	case client.Sent:
		return "sent"
	}
	return ""
}

// clock is the time of an entry.
func (m *Model) clock(e *client.Message) string {
	return e.Sent.In(m.loc()).Format("15:04")
}

// loc is the location of the clock, in which times are shown.
func (m *Model) loc() *time.Location { return m.now().Location() }

// reactionsText counts the reactions by emoji, in order of first use.
func reactionsText(rs []client.Reaction) string {
	var order []string
	count := map[string]int{}
	for _, r := range rs {
		e := oneLine(r.Emoji)
		if count[e] == 0 {
			order = append(order, e)
		}
		count[e]++
	}
	var parts []string
	for _, e := range order {
		parts = append(parts, fmt.Sprintf("%s %d", e, count[e]))
	}
	return strings.Join(parts, "  ")
}

// fileName is an attachment's name, or "file" without one.
func fileName(a *client.Attachment) string {
	if a.FileName == "" {
		return "file"
	}
	return a.FileName
}

// humanSize shows a size in B, kB, MB, GB (powers of 1000).
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// prefix puts p before each line, rendered with style st when given.
func prefix(p string, lines []string, st ...lipgloss.Style) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(st) > 0 {
			l = st[0].Render(l)
		}
		out[i] = p + l
	}
	return out
}
