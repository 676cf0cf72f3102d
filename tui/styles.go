package tui

import (
	"hash/fnv"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// styles are the looks of the screen. Plain styles (NO_COLOR) set no
// colour at all, only attributes such as bold and reverse video.
type styles struct {
	plain     bool
	title     lipgloss.Style
	dim       lipgloss.Style
	selected  lipgloss.Style
	unread    lipgloss.Style
	status    lipgloss.Style
	err       lipgloss.Style
	banner    lipgloss.Style
	system    lipgloss.Style
	deleted   lipgloss.Style
	quote     lipgloss.Style
	separator lipgloss.Style
	// mention marks a message that mentions this user.
	mention lipgloss.Style
	// match marks the words a search found.
	match lipgloss.Style
	names []lipgloss.Style
}

// namePalette are the colours of sender names (ANSI 256 colours that read
// on dark and light backgrounds).
var namePalette = []string{"33", "37", "70", "130", "134", "166", "169", "172", "31", "98", "106", "161"}

func newStyles(plain bool) styles {
	s := styles{plain: plain}
	base := lipgloss.NewStyle()
	s.title = base.Bold(true)
	s.selected = base.Reverse(true)
	s.unread = base.Bold(true)
	s.status = base
	s.err = base.Bold(true)
	s.banner = base.Bold(true)
	s.system = base.Italic(true)
	s.deleted = base.Italic(true)
	s.dim = base
	s.quote = base
	s.separator = base
	s.mention = base.Bold(true)
	s.match = base.Underline(true)
	if plain {
		s.names = []lipgloss.Style{base.Bold(true)}
		return s
	}
	s.dim = base.Foreground(lipgloss.Color("245"))
	s.system = s.system.Foreground(lipgloss.Color("245"))
	s.deleted = s.deleted.Foreground(lipgloss.Color("245"))
	s.quote = base.Foreground(lipgloss.Color("245"))
	s.separator = base.Foreground(lipgloss.Color("240"))
	s.unread = s.unread.Foreground(lipgloss.Color("39"))
	s.mention = s.mention.Foreground(lipgloss.Color("16")).Background(lipgloss.Color("214"))
	s.match = base.Bold(true).Foreground(lipgloss.Color("16")).Background(lipgloss.Color("228"))
	s.err = s.err.Foreground(lipgloss.Color("196"))
	s.banner = s.banner.Foreground(lipgloss.Color("231")).Background(lipgloss.Color("160"))
	s.status = base.Background(lipgloss.Color("236")).Foreground(lipgloss.Color("252"))
	for _, c := range namePalette {
		s.names = append(s.names, base.Bold(true).Foreground(lipgloss.Color(c)))
	}
	return s
}

// name is the style of a sender's name: a colour chosen by a hash of the
// name, so that it stays the same across runs.
func (s styles) name(user string) lipgloss.Style {
	h := fnv.New32a()
	h.Write([]byte(user))
	return s.names[int(h.Sum32()%uint32(len(s.names)))]
}

// width is the width of s in cells.
func width(s string) int { return ansi.StringWidth(s) }

// fit makes s exactly w cells wide: cut with "…" when longer, padded with
// spaces when shorter.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if n := w - ansi.StringWidth(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// fitLines makes lines exactly h lines of width w.
func fitLines(lines []string, w, h int) []string {
	out := make([]string, h)
	for i := range out {
		if i < len(lines) {
			out[i] = fit(lines[i], w)
		} else {
			out[i] = strings.Repeat(" ", max(w, 0))
		}
	}
	return out
}

// wrap wraps text to width w (words, else hard breaks), one entry per
// line.
func wrap(text string, w int) []string {
	if w < 1 {
		w = 1
	}
	return strings.Split(ansi.Wrap(text, w, ""), "\n")
}

// joinColumns puts panes of equal height side by side, with sep between.
func joinColumns(sep string, panes ...[]string) []string {
	if len(panes) == 0 {
		return nil
	}
	out := make([]string, len(panes[0]))
	for i := range out {
		var b strings.Builder
		for j, p := range panes {
			if j > 0 {
				b.WriteString(sep)
			}
			if i < len(p) {
				b.WriteString(p[i])
			}
		}
		out[i] = b.String()
	}
	return out
}

// oneLine makes text from other people safe for the terminal and one
// line: control characters go (see daemonapi.Printable), newlines become
// spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(printable(s)), " ")
}
