package tui

import (
	"fmt"
	"strings"
)

// helpKeys are the keys that help lists: key, then what it does.
var helpKeys = [][2]string{
	{"Tab", "switch between the list and the conversation"},
	{"↑/↓ Enter", "list: move, open a conversation"},
	{"/ or Ctrl-F", "list: filter by name (Esc clears)"},
	{"n", "list: new 1:1 conversation"},
	{"Enter", "send the message"},
	{"Alt-Enter Ctrl-J", "new line in the message"},
	{"↑ (empty) Ctrl-↑", "select a message; ↑/↓ move, Esc done"},
	{"r e d + s v", "selected: reply edit delete react save verify"},
	{"PgUp/PgDn", "scroll; older history loads at the top"},
	{"Esc", "cancel a reply or an edit; back to the list"},
	{"Ctrl-S", "search messages (/search); ↑/↓ Enter open, Esc close"},
	{"F1, ? (list)", "this help (any key closes it)"},
	{"q Ctrl-C", "quit (the daemon keeps running)"},
}

// viewHelp renders the keys and the / commands.
func (m *Model) viewHelp(w, h int) []string {
	lines := []string{m.st.title.Render("parley tui — keys"), ""}
	for _, k := range helpKeys {
		lines = append(lines, fmt.Sprintf("  %-17s %s", k[0], k[1]))
	}
	lines = append(lines, "", m.st.title.Render("Commands (type them in the message field)"))
	if len(lines)+len(slashCommands) <= h {
		for _, c := range slashCommands {
			lines = append(lines, fmt.Sprintf("  %-17s %s", "/"+c.name+" "+c.args, c.summary))
		}
		return fitLines(lines, w, h)
	}
	var names []string
	for _, c := range slashCommands {
		names = append(names, strings.TrimSpace("/"+c.name+" "+c.args))
	}
	lines = append(lines, prefix("  ", wrap(strings.Join(names, " · "), w-2))...)
	return fitLines(lines, w, h)
}
