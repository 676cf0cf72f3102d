package tui

import (
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

// eventMsg is one event of the daemon; eventErrMsg ends them;
// subscribedMsg says that the events flow.
type (
	eventMsg      struct{ ev *daemonapi.Event }
	eventErrMsg   struct{ err error }
	subscribedMsg struct{}
)

// subscribe asks the daemon for events. What the screen shows is loaded
// once they flow (subscribed), so that nothing recorded in between is
// missed: it is in what is loaded, or comes as an event.
func (m *Model) subscribe() tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		if err := b.Subscribe(ctx); err != nil {
			return eventErrMsg{err}
		}
		return subscribedMsg{}
	}
}

// subscribed loads what the screen shows and waits for the first event.
func (m *Model) subscribed() tea.Cmd {
	return tea.Batch(m.reload(), m.nextEvent())
}

// nextEvent waits for the next event.
func (m *Model) nextEvent() tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		ev, err := b.NextEvent(ctx)
		if err != nil {
			return eventErrMsg{err}
		}
		return eventMsg{ev}
	}
}

// handleEvent applies an event and waits for the next one.
func (m *Model) handleEvent(ev *daemonapi.Event) tea.Cmd {
	cmd := m.applyEvent(ev)
	if m.listen {
		return tea.Batch(cmd, m.nextEvent())
	}
	return cmd
}

// applyEvent applies an event to what the screen shows.
func (m *Model) applyEvent(dev *daemonapi.Event) tea.Cmd {
	ev, err := dev.SDK()
	if err != nil {
		return nil // an event kind newer than this client
	}
	switch ev.Kind {
	case client.EventConnection:
		m.setConn(ev.Connection)
	case client.EventTyping:
		return m.sawTyping(ev)
	case client.EventSystem:
		if ev.Message != nil && ev.Message.System != nil && ev.Message.System.Kind == client.SystemTimerChanged {
			return tea.Batch(m.newEntry(ev.Message), m.reload()) // the header shows the timer
		}
		return m.newEntry(ev.Message)
	case client.EventMessage:
		return m.newEntry(ev.Message)
	case client.EventExpired:
		return m.reload() // the history leaves expired messages out
	case client.EventRead:
		m.changedEntry(ev.Message)
		if m.conv != nil && m.conv.id == ev.Conversation {
			// A receipt covers the earlier messages too.
			return m.loadHistory(m.conv.id, len(m.conv.msgs), false)
		}
	case client.EventEdited, client.EventDeleted, client.EventReaction, client.EventDelivered:
		m.changedEntry(ev.Message)
	case client.EventIdentityChanged:
		m.changedKeys[ev.User] = true
		m.setError("%s's identity key changed: compare safety numbers (/verify %s)", ev.User, ev.User)
		return m.reload()
	case client.EventConversationUnsafe:
		m.setError("conversation %d is unsafe: %s", ev.Conversation, ev.Error)
		return m.reload()
	case client.EventConversationJoined, client.EventConversationLeft, client.EventConversationChanged,
		client.EventMemberJoined, client.EventMemberLeft, client.EventOverflow:
		return m.reload()
	case client.EventError, client.EventDeviceRejected, client.EventBadCommit, client.EventStateRestored, client.EventDeviceRevoked:
		m.setError("%s: %s", ev.Kind, ev.Error+ev.Reason)
		return m.reload()
	}
	return nil
}

// setConn records the connection state.
func (m *Model) setConn(s client.ConnState) {
	m.conn, m.connKnown = s, true
	if s == client.Connected {
		m.everOnline = true
	}
}

// newEntry shows a new message or system line: in the open
// conversation, which is then read, or as an unread one in the list.
func (m *Model) newEntry(e *client.Message) tea.Cmd {
	if e == nil {
		return nil
	}
	m.observe(e)
	m.clearTyper(e.Conversation, e.Sender) // their message ends their typing
	open := m.conv != nil && m.conv.id == e.Conversation
	if open {
		m.upsert(e)
	}
	m.list.touched = m.touch()
	if m.findConv(e.Conversation) == nil {
		return m.loadConversations()
	}
	m.touchList(e, !open && e.System == nil && e.Sender != m.self)
	if !open {
		return nil
	}
	b, ctx, id, seq := m.b, m.ctx, e.Conversation, e.Seq
	return func() tea.Msg {
		return doneMsg{err: wrapErr("mark read", b.MarkReadUpTo(ctx, id, seq))}
	}
}

// changedEntry shows a change of an entry (edit, deletion, reaction,
// read receipt, delivery).
func (m *Model) changedEntry(e *client.Message) {
	if e == nil {
		return
	}
	m.observe(e)
	m.upsert(e)
	if cv := m.findConv(e.Conversation); cv != nil && cv.Last != nil && cv.Last.ID == e.ID {
		cv.Last = e
		m.list.touched = m.touch()
	}
}

// touchList makes e the latest entry of its conversation in the list,
// counting it unread when unread is set.
func (m *Model) touchList(e *client.Message, unread bool) {
	cv := m.findConv(e.Conversation)
	if cv == nil {
		return
	}
	sel := m.selectedConv()
	cv.Last = e
	if unread {
		cv.Unread++
	}
	sortByActivity(m.list.all)
	m.keepSelection(sel)
}

// reconnectMsg is the result of an attempt to reach the daemon again.
type reconnectMsg struct {
	b   Backend
	err error
}

// Reconnection backs off from the first to the longest pause between
// attempts.
const (
	firstRetry = 250 * time.Millisecond
	maxRetry   = 5 * time.Second
)

// lostDaemon handles the end of the events: the daemon is gone. With a
// way to reconnect, it tries at once.
func (m *Model) lostDaemon(err error) tea.Cmd {
	m.daemonLost = true
	if m.reconnect == nil || m.ctx.Err() != nil {
		m.setError("parley daemon: %v", err)
		return nil
	}
	m.setError("parley daemon: %v; starting it again", err)
	m.retry = firstRetry
	return m.tryReconnect()
}

// tryReconnect asks for a new Backend.
func (m *Model) tryReconnect() tea.Cmd {
	f, ctx := m.reconnect, m.ctx
	return func() tea.Msg {
		b, err := f(ctx)
		return reconnectMsg{b, err}
	}
}

// reconnected switches to the new Backend and reloads everything shown
// (what arrived meanwhile is in the reloaded history, once), or tries
// again after a pause.
func (m *Model) reconnected(msg reconnectMsg) tea.Cmd {
	if msg.err != nil {
		if m.ctx.Err() != nil {
			return nil
		}
		m.setError("parley daemon: %v; trying again in %v", msg.err, m.retry)
		wait, next := m.retry, m.tryReconnect()
		m.retry = min(2*m.retry, maxRetry)
		return tea.Tick(wait, func(time.Time) tea.Msg { return next() })
	}
	m.b, m.daemonLost, m.connKnown = msg.b, false, false
	m.setStatus("parley daemon is back")
	if m.listen {
		return m.subscribe() // then reloads
	}
	return m.reload()
}
