package tui

import (
	"errors"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// The account's devices (/devices) and linking a new one (/link CODE):
// the link's question (the confirmation the new device must show) is
// asked with y/n, as the daemon's link_device and link_device_confirm
// take it (docs/daemon.md, "Linking a device").

// devicesState is the devices overlay.
type devicesState struct {
	list   []client.OwnDevice
	err    error
	loaded bool
	cursor int
	// question is the link waiting for the user's answer, shown above
	// the list.
	question *daemonapi.LinkQuestion
}

type (
	devicesMsg struct {
		list []client.OwnDevice
		err  error
	}
	linkAskMsg struct {
		q   *daemonapi.LinkQuestion
		err error
	}
	linkedMsg struct {
		dev      *client.LinkedDevice
		declined bool
		err      error
	}
)

func cmdDevices(m *Model, _ []string, _ string) tea.Cmd {
	m.openDevices()
	return m.loadDevices()
}

// cmdLink links the device that shows the code: the daemon opens the
// channel, then the user compares the confirmation and answers y or n.
func cmdLink(m *Model, args []string, _ string) tea.Cmd {
	if m.devices.question != nil {
		m.setError("/link: a link waits for your answer already")
		return nil
	}
	code := strings.Join(args, "")
	m.openDevices()
	m.setStatus("linking: connecting to the new device…")
	b, ctx := m.b, m.ctx
	return tea.Batch(m.loadDevices(), func() tea.Msg {
		q, err := b.StartLinkDevice(ctx, code)
		return linkAskMsg{q, err}
	})
}

// openDevices shows the devices overlay.
func (m *Model) openDevices() {
	m.overlay = overlayDevices
	m.devices.cursor = 0
}

func (m *Model) loadDevices() tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		ds, err := b.Devices(ctx)
		return devicesMsg{ds, err}
	}
}

func (m *Model) applyDevices(msg devicesMsg) {
	m.devices.list, m.devices.err, m.devices.loaded = msg.list, msg.err, true
	m.devices.cursor = min(m.devices.cursor, max(len(msg.list)-1, 0))
}

// applyLinkAsk asks the link's question.
func (m *Model) applyLinkAsk(msg linkAskMsg) {
	if msg.err != nil {
		m.setError("link: %v", msg.err)
		return
	}
	q := msg.q
	m.devices.question = q
	m.confirm = &confirmState{
		prompt: fmt.Sprintf("Does the new device %s show %s? y links it, n declines", deviceLabel(q.Name, q.Device), q.Confirmation),
		yes:    m.answerLink(q.Link, true),
		no:     m.answerLink(q.Link, false),
	}
}

// answerLink answers the link's question.
func (m *Model) answerLink(link string, accept bool) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		dev, err := b.AnswerLinkDevice(ctx, link, accept, nil)
		return linkedMsg{dev: dev, declined: !accept, err: err}
	}
}

func (m *Model) applyLinked(msg linkedMsg) tea.Cmd {
	m.devices.question = nil
	switch {
	case msg.declined && (msg.err == nil || errors.Is(msg.err, client.ErrLinkRefused)):
		m.setStatus("declined: nothing was linked")
		return nil
	case msg.err != nil:
		m.setError("link: %v", msg.err)
		return nil
	}
	d := msg.dev
	m.setStatus("linked %s; added it to %d conversations", deviceLabel(d.Name, d.Device), d.Conversations)
	if len(d.Failed) > 0 {
		m.setStatus("linked %s; added it to %d conversations, not yet to %d (they follow)", deviceLabel(d.Name, d.Device), d.Conversations, len(d.Failed))
	}
	return m.loadDevices()
}

// deviceLabel names a device: its name, else its short id.
func deviceLabel(name string, id protocol.DeviceID) string {
	if name != "" {
		return "“" + oneLine(name) + "”"
	}
	return shortDevice(id)
}

func shortDevice(id protocol.DeviceID) string {
	s := oneLine(string(id))
	if len(s) > 8 {
		s = s[:8] + "…"
	}
	return s
}

// handleDevicesKey moves in the devices overlay; x revokes the selected
// device (after y), Esc closes.
func (m *Model) handleDevicesKey(k tea.KeyPressMsg) tea.Cmd {
	n := len(m.devices.list)
	switch k.String() {
	case "esc", "q":
		m.overlay = overlayNone
	case "up", "k":
		m.devices.cursor = max(m.devices.cursor-1, 0)
	case "down", "j":
		m.devices.cursor = min(m.devices.cursor+1, max(n-1, 0))
	case "x":
		if m.devices.cursor >= n {
			return nil
		}
		d := m.devices.list[m.devices.cursor]
		if !d.Revoked.IsZero() {
			m.setError("%s is revoked already", deviceLabel(d.Name, d.ID))
			return nil
		}
		what := "Revoke " + deviceLabel(d.Name, d.ID) + "? It leaves your conversations and can no longer sign in (y/n)"
		if d.This {
			what = "Revoke this device? It leaves your conversations and can no longer sign in (y/n)"
		}
		b, ctx, id := m.b, m.ctx, d.ID
		m.confirm = &confirmState{prompt: what, yes: func() tea.Msg {
			if err := b.RevokeOwnDevice(ctx, id, false); err != nil {
				if errors.Is(err, client.ErrLastDevice) {
					err = errors.New("your last active device: link another first")
				}
				return doneMsg{err: wrapErr("revoke", err)}
			}
			return devicesRevokedMsg{device: id}
		}}
	case "r":
		return m.loadDevices()
	}
	return nil
}

// devicesRevokedMsg reports a device revoked from the overlay.
type devicesRevokedMsg struct{ device protocol.DeviceID }

// viewDevices lists the account's devices, with the link waiting for an
// answer above them.
func (m *Model) viewDevices(w, h int) []string {
	lines := []string{m.st.title.Render("Your devices"), ""}
	if q := m.devices.question; q != nil {
		lines = append(lines, m.st.title.Render("Link a new device: "+deviceLabel(q.Name, q.Device)),
			"  It must show the confirmation:  "+m.st.title.Render(q.Confirmation),
			"  y links it to your account · n declines", "")
	}
	switch {
	case m.devices.err != nil:
		lines = append(lines, m.st.err.Render(fmt.Sprintf("devices: %v", m.devices.err)))
	case !m.devices.loaded:
		lines = append(lines, "loading…")
	}
	forged := 0
	for i, d := range m.devices.list {
		line := "  " + fit(deviceName(d), 16) + "  " + m.deviceState(d)
		if i == m.devices.cursor {
			line = "▸" + line[1:]
		}
		lines = append(lines, line)
		if d.Forged {
			forged++
		}
	}
	if forged > 0 {
		lines = append(lines, "")
		lines = append(lines, wrap(m.st.err.Render(fmt.Sprintf("⚠ The server lists %d device(s) for your account that none of your devices certified. They are refused: tell the server's administrator.", forged)), w)...)
	}
	lines = append(lines, "", m.st.dim.Render("↑/↓ move · x revoke · /link CODE links a new device · esc close"))
	return fitLines(lines, w, h)
}

func deviceName(d client.OwnDevice) string {
	if d.Name != "" {
		return oneLine(d.Name)
	}
	return "(" + shortDevice(d.ID) + ")"
}

// deviceState says whether a device is this one, revoked or forged, when
// it was added and last seen.
func (m *Model) deviceState(d client.OwnDevice) string {
	var parts []string
	switch {
	case d.Forged:
		return m.st.err.Render("FORGED: none of your devices certified it; refused")
	case !d.Revoked.IsZero():
		parts = append(parts, "revoked "+m.shortTime(d.Revoked))
	case d.Disabled:
		parts = append(parts, "disabled by the administrator")
	case d.This:
		parts = append(parts, "this device")
	}
	parts = append(parts, "added "+m.shortTime(d.Created))
	if !d.LastSeen.IsZero() {
		parts = append(parts, "seen "+m.shortTime(d.LastSeen))
	}
	return strings.Join(parts, " · ")
}
