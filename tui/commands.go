package tui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/protocol"
)

// slashCommand is one of the composer's / commands.
type slashCommand struct {
	name, args, summary string
	// needsConv says the command acts on the open conversation.
	needsConv bool
	// min is the least number of arguments.
	min int
	run func(m *Model, args []string, rest string) tea.Cmd
}

// slashCommands lists the commands in the order /help shows them.
var slashCommands []slashCommand

func init() {
	slashCommands = []slashCommand{
		{"new", "USER", "open the 1:1 conversation with a user", false, 1, cmdNew},
		{"group", "TITLE USER...", "create a group", false, 2, cmdGroup},
		{"channel", "TITLE [USER...]", "create a channel (only admins post)", false, 1, cmdChannel},
		{"add", "USER", "add a user to this conversation", true, 1, cmdAdd},
		{"remove", "USER", "remove a user from this conversation", true, 1, cmdRemove},
		{"leave", "", "leave this conversation", true, 0, cmdLeave},
		{"rename", "NAME", "rename this conversation for everyone", true, 1, cmdRename},
		{"topic", "TEXT", "set the topic for everyone", true, 0, cmdTopic},
		{"timer", "off|5m|1h|1d|1w", "set the disappearing-message timer for everyone", true, 1, cmdTimer},
		{"file", "PATH", "send a file", true, 1, cmdFile},
		{"save", "[DIR]", "save the file of the selected message", true, 0, cmdSave},
		{"verify", "USER", "show the safety number with a user", false, 1, cmdVerify},
		{"members", "", "show the members and their devices", true, 0, cmdMembers},
		{"role", "USER admin|member", "make a user an admin or a plain member", true, 2, cmdRole},
		{"policy", "", "show who may do what here", true, 0, cmdPolicy},
		{"search", "WORDS [from:USER] [in:CONV]", "find messages (Ctrl-S)", false, 1, cmdSearch},
		{"mentions", "", "list the messages that mention you", false, 0, cmdMentions},
		{"mute", "", "mute this conversation (mentions still show)", true, 0, cmdMute},
		{"unmute", "", "unmute this conversation", true, 0, cmdUnmute},
		{"devices", "", "list your account's devices (x revokes one)", false, 0, cmdDevices},
		{"link", "CODE", "link the new device that shows CODE (parley link on it)", false, 1, cmdLink},
		{"help", "", "show keys and commands", false, 0, cmdHelp},
	}
}

// runCommand runs a line that starts with "/".
func (m *Model) runCommand(line string) tea.Cmd {
	fields := strings.Fields(strings.TrimPrefix(line, "/"))
	if len(fields) == 0 {
		return nil
	}
	name, args := fields[0], fields[1:]
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "/")), name))
	for _, c := range slashCommands {
		if c.name != name {
			continue
		}
		switch {
		case len(args) < c.min:
			m.setError("usage: /%s %s", c.name, c.args)
			return nil
		case c.needsConv && m.conv == nil:
			m.setError("/%s: open a conversation first", c.name)
			return nil
		}
		return c.run(m, args, rest)
	}
	m.setError("unknown command /%s (see /help)", name)
	return nil
}

// convCall runs an action on the open conversation and reloads it.
func (m *Model) convCall(text string, f func(ctx context.Context, conv protocol.ConversationID) error) tea.Cmd {
	conv := m.conv.id
	return m.call(text, true, func(ctx context.Context) error { return f(ctx, conv) })
}

// opened returns a command that opens the conversation that f creates.
func (m *Model) opened(f func(ctx context.Context) (protocol.ConversationID, error)) tea.Cmd {
	ctx := m.ctx
	return func() tea.Msg {
		id, err := f(ctx)
		return openMsg{id, err}
	}
}

func cmdNew(m *Model, args []string, _ string) tea.Cmd {
	user := strings.TrimPrefix(args[0], "@")
	return m.opened(func(ctx context.Context) (protocol.ConversationID, error) {
		id, err := m.b.NewDirect(ctx, user)
		if err != nil {
			return 0, fmt.Errorf("new %s: %w", user, err)
		}
		return id, nil
	})
}

func cmdGroup(m *Model, args []string, _ string) tea.Cmd {
	title, users := args[0], args[1:]
	return m.opened(func(ctx context.Context) (protocol.ConversationID, error) {
		id, err := m.b.NewGroup(ctx, title, users...)
		if err != nil {
			return 0, fmt.Errorf("group %s: %w", title, err)
		}
		return id, nil
	})
}

func cmdAdd(m *Model, args []string, _ string) tea.Cmd {
	user := strings.TrimPrefix(args[0], "@")
	return m.convCall("added "+user, func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("add "+user, m.b.Add(ctx, conv, user))
	})
}

func cmdRemove(m *Model, args []string, _ string) tea.Cmd {
	user := strings.TrimPrefix(args[0], "@")
	return m.convCall("removed "+user, func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("remove "+user, m.b.Remove(ctx, conv, user))
	})
}

func cmdLeave(m *Model, _ []string, _ string) tea.Cmd {
	m.confirm = &confirmState{prompt: "Leave this conversation? (y/n)", yes: m.convCall("left the conversation", func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("leave", m.b.Leave(ctx, conv))
	})}
	return nil
}

func cmdRename(m *Model, _ []string, rest string) tea.Cmd {
	return m.convCall("renamed", func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("rename", m.b.SetName(ctx, conv, rest))
	})
}

func cmdTopic(m *Model, _ []string, rest string) tea.Cmd {
	return m.convCall("topic set", func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("topic", m.b.SetTopic(ctx, conv, rest))
	})
}

func cmdTimer(m *Model, args []string, _ string) tea.Cmd {
	d, err := protocol.ParseTimer(args[0])
	if err != nil {
		m.setError("/timer: %v", err)
		return nil
	}
	return m.convCall("timer set to "+protocol.FormatTimer(d), func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("timer", m.b.SetTimer(ctx, conv, d))
	})
}

func cmdFile(m *Model, _ []string, rest string) tea.Cmd {
	conv, path, opts := m.conv.id, rest, m.takeReply()
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		msg, err := b.SendFile(ctx, conv, path, opts)
		return sentMsg{msg, wrapErr("file "+path, err)}
	}
}

func cmdSave(m *Model, args []string, _ string) tea.Cmd {
	dir := "."
	if len(args) > 0 {
		dir = args[0]
	}
	return m.saveAttachment(dir)
}

// saveAttachment downloads the file of the selected message into dir.
func (m *Model) saveAttachment(dir string) tea.Cmd {
	e := m.selected()
	if e == nil || e.Attachment == nil || e.Deleted {
		m.setError("select a message with a file first (Up, or Ctrl-Up)")
		return nil
	}
	id, b, ctx := e.Attachment.ID, m.b, m.ctx
	return func() tea.Msg {
		path, err := b.Download(ctx, id, dir)
		if err != nil {
			return doneMsg{err: fmt.Errorf("save %s: %w", id, err)}
		}
		return doneMsg{text: "saved " + path}
	}
}

func cmdVerify(m *Model, args []string, _ string) tea.Cmd {
	return m.openVerify(strings.TrimPrefix(args[0], "@"))
}

func cmdMembers(m *Model, _ []string, _ string) tea.Cmd {
	m.overlay = overlayMembers
	m.members.cursor = 0
	return tea.Batch(m.loadMembers(m.conv.id), m.loadPolicy(m.conv.id))
}

func cmdHelp(m *Model, _ []string, _ string) tea.Cmd {
	m.overlay = overlayHelp
	return nil
}

// wrapErr names the operation of an error; nil stays nil.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
