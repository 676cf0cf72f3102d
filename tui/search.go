package tui

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// searchState is the overlay of search results (/search, /mentions):
// the messages found, newest first, one selected.
type searchState struct {
	title string
	q     client.SearchQuery
	terms [][]rune // the words of q.Text in lower case, to highlight
	// gen tells the answer of the latest search from older ones.
	gen     int
	results []*client.Message
	done    bool
	failed  bool
	cursor  int
	offset  int // first result shown
}

// searchMsg is the answer to a search.
type searchMsg struct {
	gen     int
	results []*client.Message
	err     error
}

// jumpMsg is the history of a conversation opened at one of its
// messages (Enter on a search result).
type jumpMsg struct {
	history historyMsg
	target  content.MessageID
}

// searchContext is how many entries older than a search result are
// loaded with it, at least.
const searchContext = 20

// startSearch puts /search in the message field (Ctrl-S).
func (m *Model) startSearch() tea.Cmd {
	m.overlay = overlayNone
	if m.conv != nil {
		m.conv.sel = -1
	}
	m.setFocus(focusComposer)
	m.composer.SetValue("/search ")
	m.composer.CursorEnd()
	m.status = ""
	return nil
}

func cmdSearch(m *Model, args []string, _ string) tea.Cmd {
	q := client.SearchQuery{}
	var words []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "from:") && len(a) > len("from:"):
			q.From = strings.TrimPrefix(strings.TrimPrefix(a, "from:"), "@")
		case strings.HasPrefix(a, "in:") && len(a) > len("in:"):
			id, err := m.resolveConv(strings.TrimPrefix(a, "in:"))
			if err != nil {
				m.setError("/search: %v", err)
				return nil
			}
			q.In = id
		default:
			words = append(words, a)
		}
	}
	q.Text = strings.Join(words, " ")
	return m.runSearch("Search: "+strings.Join(args, " "), q)
}

func cmdMentions(m *Model, _ []string, _ string) tea.Cmd {
	return m.runSearch("Messages that mention you", client.SearchQuery{MentionsMe: true})
}

// resolveConv finds the conversation that in: names: its number, or its
// title (whole, else the only one that contains it; case ignored).
func (m *Model) resolveConv(name string) (protocol.ConversationID, error) {
	if n, err := strconv.ParseInt(name, 10, 64); err == nil && m.findConv(protocol.ConversationID(n)) != nil {
		return protocol.ConversationID(n), nil
	}
	want := strings.ToLower(name)
	var partial []protocol.ConversationID
	for i := range m.list.all {
		cv := &m.list.all[i]
		t := strings.ToLower(m.title(cv))
		if t == want {
			return cv.ID, nil
		}
		if strings.Contains(t, want) {
			partial = append(partial, cv.ID)
		}
	}
	switch len(partial) {
	case 1:
		return partial[0], nil
	case 0:
		return 0, fmt.Errorf("no conversation %q", oneLine(name))
	}
	return 0, fmt.Errorf("%q names %d conversations", oneLine(name), len(partial))
}

// runSearch opens the results overlay and searches in a command.
func (m *Model) runSearch(title string, q client.SearchQuery) tea.Cmd {
	gen := 1
	if m.search != nil {
		gen = m.search.gen + 1
	}
	m.search = &searchState{title: oneLine(title), q: q, terms: highlightTerms(q.Text), gen: gen}
	m.overlay = overlayResults
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		rs, err := b.Search(ctx, q)
		return searchMsg{gen, rs, wrapErr("search", err)}
	}
}

// applySearch shows the answer of the latest search.
func (m *Model) applySearch(msg searchMsg) {
	s := m.search
	if s == nil || s.gen != msg.gen {
		return
	}
	s.done = true
	if msg.err != nil {
		s.failed = true
		m.setError("%v", msg.err)
		return
	}
	s.results = msg.results
}

// handleResultsKey moves in the results; Enter opens the conversation at
// the selected message, Esc closes.
func (m *Model) handleResultsKey(k tea.KeyPressMsg) tea.Cmd {
	s := m.search
	switch k.String() {
	case "esc", "q":
		m.overlay = overlayNone
	case "up", "k":
		s.cursor = max(s.cursor-1, 0)
	case "down", "j":
		s.cursor = min(s.cursor+1, max(len(s.results)-1, 0))
	case "home", "g":
		s.cursor = 0
	case "end", "G":
		s.cursor = max(len(s.results)-1, 0)
	case "enter":
		if s.cursor < len(s.results) {
			return m.openAt(s.results[s.cursor])
		}
	case "f1", "?":
		m.overlay = overlayHelp
	}
	return nil
}

// openAt opens the conversation of msg with enough history loaded to
// show msg, and selects it.
func (m *Model) openAt(msg *client.Message) tea.Cmd {
	m.overlay = overlayNone
	id, seq, target, page := msg.Conversation, msg.Seq, msg.ID, m.page
	m.list.chosen = true
	b, ctx, at := m.b, m.ctx, m.changes
	load := func() tea.Msg {
		// The entries from msg on, to know how many to load.
		newer, err := b.History(ctx, id, max(seq-1, 0), 0)
		if err != nil {
			return jumpMsg{historyMsg{conv: id, at: at, err: err}, target}
		}
		msgs, err := b.History(ctx, id, 0, max(len(newer)+searchContext, page))
		return jumpMsg{historyMsg{conv: id, msgs: msgs, at: at, err: err}, target}
	}
	return m.openConversationWith(id, load)
}

// applyJump shows the history loaded by openAt and selects its message.
// A stale load is asked for again without the jump.
func (m *Model) applyJump(msg jumpMsg) tea.Cmd {
	if m.staleHistory(msg.history) {
		return m.applyHistory(msg.history)
	}
	m.applyHistory(msg.history)
	c := m.conv
	if c == nil || c.id != msg.history.conv || msg.history.err != nil {
		return nil
	}
	if i := c.indexOf(msg.target); i >= 0 {
		c.sel, c.scroll = i, 0
		m.status = "" // the status line shows selectHint
		return nil
	}
	m.setError("that message is no longer in the history")
	return nil
}

// viewResults renders the search results: for each, the conversation,
// the sender and the time, then the text with the words found
// highlighted.
func (m *Model) viewResults(w, h int) []string {
	s := m.search
	lines := []string{m.st.title.Render(s.title)}
	switch {
	case !s.done:
		lines = append(lines, m.st.dim.Render("searching…"))
		return fitLines(lines, w, h)
	case s.failed:
		lines = append(lines, m.st.err.Render("search failed")+m.st.dim.Render(" · esc close"))
		return fitLines(lines, w, h)
	case len(s.results) == 0:
		lines = append(lines, "no messages match", m.st.dim.Render("esc close"))
		return fitLines(lines, w, h)
	}
	n := len(s.results)
	count := strconv.Itoa(n) + " messages"
	if n == 1 {
		count = "1 message"
	}
	lines = append(lines, m.st.dim.Render(count+" · ↑/↓ move · Enter open · Esc close"))
	rows := max((h-len(lines))/2, 1)
	s.cursor = min(max(s.cursor, 0), n-1)
	s.offset = min(max(s.offset, s.cursor-rows+1), s.cursor)
	for i := s.offset; i < n && i < s.offset+rows; i++ {
		lines = append(lines, m.resultLines(s.results[i], w, i == s.cursor)...)
	}
	return fitLines(lines, w, h)
}

// resultLines renders one result in two lines.
func (m *Model) resultLines(r *client.Message, w int, selected bool) []string {
	marker := "  "
	if selected {
		marker = "▸ "
	}
	title := "conversation " + strconv.FormatInt(int64(r.Conversation), 10)
	if cv := m.findConv(r.Conversation); cv != nil {
		title = m.title(cv)
	}
	when := m.shortTime(r.Sent)
	if !sameDay(r.Sent.In(m.loc()), m.now()) {
		when += " " + m.clock(r)
	}
	right := m.st.name(r.Sender).Render(oneLine(r.Sender)) + " · " + when
	if r.MentionsMe {
		right += " " + m.st.mention.Render("@you")
	}
	top := marker + fit(m.st.title.Render(title), max(min(width(title), w-2-width(right)-3), 1)) + " · " + right
	if selected {
		top = m.st.selected.Render(fit(top, w))
	}
	return []string{top, "    " + m.highlight(m.summary(r), m.search.terms, w-4)}
}

// highlightTerms are the words of a query in lower case, as search
// compares them.
func highlightTerms(text string) [][]rune {
	var out [][]rune
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return !isWordRune(r) }) {
		out = append(out, []rune(strings.ToLower(f)))
	}
	return out
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// highlight renders text (one line, made printable) with the beginnings
// of its words that match terms in the match style, cut to the w cells
// around the first match.
func (m *Model) highlight(text string, terms [][]rune, w int) string {
	rs := []rune(text)
	marks := make([]bool, len(rs))
	first := -1
	for i := 0; i < len(rs); {
		if !isWordRune(rs[i]) {
			i++
			continue
		}
		j := i
		for j < len(rs) && isWordRune(rs[j]) {
			j++
		}
		if n := matchLen(rs[i:j], terms); n > 0 {
			for k := i; k < i+n; k++ {
				marks[k] = true
			}
			if first < 0 {
				first = i
			}
		}
		i = j
	}
	start := 0
	if first > 0 && width(string(rs[:first])) > w*2/3 {
		// Show the first match with some text before it.
		start = first
		for start > 0 && width(string(rs[start-1:first])) <= w/3 {
			start--
		}
	}
	var b strings.Builder
	if start > 0 {
		b.WriteString("…")
	}
	for i := start; i < len(rs); {
		j := i
		for j < len(rs) && marks[j] == marks[i] {
			j++
		}
		if marks[i] {
			b.WriteString(m.st.match.Render(string(rs[i:j])))
		} else {
			b.WriteString(string(rs[i:j]))
		}
		i = j
	}
	return fit(b.String(), max(w, 1))
}

// matchLen is how many runes at the start of word match a term (the
// longest), 0 for none.
func matchLen(word []rune, terms [][]rune) int {
	best := 0
	for _, t := range terms {
		if len(t) == 0 || len(t) > len(word) {
			continue
		}
		ok := true
		for k, r := range t {
			if unicode.ToLower(word[k]) != r {
				ok = false
				break
			}
		}
		if ok {
			best = max(best, len(t))
		}
	}
	return best
}
