package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
)

// verifyState is the safety number view of one user.
type verifyState struct {
	user string
	sn   *client.SafetyNumber
	err  error
}

// membersState is the member panel.
type membersState struct {
	cursor int
}

type safetyMsg struct {
	user   string
	sn     *client.SafetyNumber
	err    error
	marked bool // the user was just marked verified
}

// markVerified marks user verified, then shows the safety number again.
func (m *Model) markVerified(user string) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		if err := b.MarkVerified(ctx, user); err != nil {
			return doneMsg{err: wrapErr("verify "+user, err)}
		}
		sn, err := b.SafetyNumber(ctx, user)
		return safetyMsg{user, sn, err, true}
	}
}

// openVerify shows the safety number with user.
func (m *Model) openVerify(user string) tea.Cmd {
	m.overlay = overlayVerify
	m.verify = &verifyState{user: user}
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		sn, err := b.SafetyNumber(ctx, user)
		return safetyMsg{user: user, sn: sn, err: err}
	}
}

func (m *Model) applySafety(msg safetyMsg) tea.Cmd {
	if msg.marked {
		m.setStatus("%s marked verified", oneLine(msg.user))
		delete(m.changedKeys, msg.user) // the members, reloaded, say whether it still stands
	}
	if m.verify != nil && m.verify.user == msg.user {
		m.verify.sn, m.verify.err = msg.sn, msg.err
	}
	if msg.marked {
		return m.reload()
	}
	return nil
}

// handleVerifyKey: m marks the user verified, Esc closes.
func (m *Model) handleVerifyKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc", "q":
		m.overlay, m.verify = overlayNone, nil
	case "m":
		if m.verify.sn == nil {
			return nil
		}
		return m.markVerified(m.verify.user)
	}
	return nil
}

// viewVerify renders the safety number: its 12 groups of 5 digits in 3
// rows, the verification state, and the QR code when it fits.
func (m *Model) viewVerify(w, h int) []string {
	v := m.verify
	m.verifyWidth = w
	lines := []string{m.st.title.Render("Safety number with " + oneLine(v.user)), ""}
	switch {
	case v.err != nil:
		lines = append(lines, m.st.err.Render(fmt.Sprintf("safety number: %v", v.err)))
	case v.sn == nil:
		lines = append(lines, "loading…")
	default:
		lines = append(lines, m.safetyLines(v.sn, h-len(lines))...)
	}
	return fitLines(lines, w, h)
}

func (m *Model) safetyLines(sn *client.SafetyNumber, h int) []string {
	var lines []string
	for i := 0; i < len(sn.Groups); i += 4 {
		lines = append(lines, "  "+strings.Join(sn.Groups[i:min(i+4, len(sn.Groups))], "  "))
	}
	state := []string{m.st.err.Render("not verified:") + " compare these digits with " + oneLine(sn.User) + " in person or on a call, then press m"}
	if sn.Verified {
		state = []string{"✓ verified"}
	}
	lines = append(lines, "")
	lines = append(lines, wrap(state[0], m.verifyWidth)...)
	lines = append(lines, "esc close")
	qr := strings.Split(strings.TrimRight(sn.QR, "\n"), "\n")
	switch {
	case sn.QR == "":
	case len(lines)+1+len(qr) <= h:
		lines = append(append(lines, ""), qr...)
	default:
		lines = append(lines, m.st.dim.Render("(enlarge the window to show the QR code)"))
	}
	return lines
}

// handleMembersKey moves in the member panel; v shows the selected
// member's safety number, Esc closes.
func (m *Model) handleMembersKey(k tea.KeyPressMsg) tea.Cmd {
	n := 0
	if m.conv != nil {
		n = len(m.conv.members)
	}
	switch k.String() {
	case "esc", "q":
		m.overlay = overlayNone
	case "up", "k":
		m.members.cursor = max(m.members.cursor-1, 0)
	case "down", "j":
		m.members.cursor = min(m.members.cursor+1, max(n-1, 0))
	case "v", "enter":
		if m.members.cursor < n {
			if mb := m.conv.members[m.members.cursor]; !mb.Self {
				return m.openVerify(mb.User)
			}
		}
	}
	return nil
}

// viewMembers lists the devices of the open conversation with their
// verification state.
func (m *Model) viewMembers(w, h int) []string {
	lines := []string{m.st.title.Render("Members"), ""}
	if m.conv == nil {
		return fitLines(lines, w, h)
	}
	for i, mb := range m.conv.members {
		line := "  " + m.st.name(mb.User).Render(oneLine(mb.User)) + m.adminMark(mb.User) + "  device " + oneLine(string(mb.Device)) + "  " + m.memberState(mb)
		if i == m.members.cursor {
			line = "▸" + line[1:]
		}
		lines = append(lines, line)
	}
	lines = append(lines, "", m.st.dim.Render("v verify · esc close"))
	return fitLines(lines, w, h)
}

func (m *Model) memberState(mb client.Member) string {
	switch {
	case mb.Self:
		return "this device"
	case mb.IdentityChanged || m.changedKeys[mb.User]:
		return m.st.err.Render("identity key changed!")
	case mb.Verified:
		return "✓ verified"
	}
	return "not verified"
}
