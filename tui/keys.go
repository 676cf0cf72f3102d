package tui

import (
	tea "charm.land/bubbletea/v2"
)

// handleKey routes a key: a question first, then the reaction picker,
// an overlay, the list, a selected message, the composer.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		return tea.Quit
	}
	switch {
	case m.confirm != nil:
		return m.answer(k)
	case m.react != nil:
		return m.handleReactKey(k)
	case m.overlay == overlayHelp:
		m.overlay = overlayNone
		return nil
	case m.overlay == overlayVerify:
		return m.handleVerifyKey(k)
	case m.overlay == overlayMembers:
		return m.handleMembersKey(k)
	case m.overlay == overlayDevices:
		return m.handleDevicesKey(k)
	case m.overlay == overlayResults && m.search != nil:
		return m.handleResultsKey(k)
	case k.String() == "ctrl+s" && !m.list.filtering:
		return m.startSearch()
	case m.focus == focusList:
		return m.handleListKey(k)
	case m.conv != nil && m.conv.sel >= 0:
		return m.handleSelectKey(k)
	}
	return m.handleComposerKey(k)
}

// answer takes y for yes to the question asked; any other key says no.
func (m *Model) answer(k tea.KeyPressMsg) tea.Cmd {
	c := m.confirm
	m.confirm = nil
	if m.conv != nil {
		m.conv.sel = -1
	}
	if k.String() == "y" || k.String() == "Y" {
		return c.yes
	}
	m.setStatus("cancelled")
	return c.no
}
