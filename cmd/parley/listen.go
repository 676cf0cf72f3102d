package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

func cmdListen(ctx context.Context, e *env, args []string) error {
	fs := e.flags("listen", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{ownEvents: true})
	if err != nil {
		return err
	}
	defer s.c.Close()
	self := s.self()
	titles := map[protocol.ConversationID]string{}
	titleOf := func(conv protocol.ConversationID) string {
		if t, ok := titles[conv]; ok {
			return t
		}
		cv, err := s.c.Conversation(ctx, conv)
		if err != nil {
			return fmt.Sprint(conv)
		}
		t := title(cv, self)
		titles[conv] = t
		return t
	}
	// shown is how far each conversation was printed, in this run.
	shown := map[protocol.ConversationID]int64{}
	show := func(ev client.Event) error {
		switch ev.Kind {
		case client.EventConversationChanged, client.EventConversationJoined, client.EventSystem:
			delete(titles, ev.Conversation) // its name or members changed
		}
		if e.json {
			out := eventJSON{Event: ev.Kind.String(), Time: ev.Time.UTC(), Conversation: int64(ev.Conversation),
				User: ev.User, Device: string(ev.Device), Error: ev.Error, Reason: ev.Reason}
			if ev.Message != nil {
				out.Message = toMessageJSON(ev.Message)
			}
			if ev.Kind == client.EventConnection {
				out.Connection = ev.Connection.String()
			}
			var bc *client.BadCommitError
			if ev.Kind == client.EventBadCommit && errors.As(ev.Err, &bc) {
				out.Seq, out.Recovery = ev.Seq, bc.Recovery.String()
			}
			b, err := json.Marshal(out)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			return err
		}
		if line := eventLine(ev, titleOf, self); line != "" {
			w := e.stdout
			if ev.Kind == client.EventConnection || ev.Kind == client.EventError {
				w = e.stderr
			}
			if _, err := fmt.Fprintln(w, line); err != nil {
				return err
			}
		}
		return nil
	}
	print := func(ev client.Event) error {
		msg := (ev.Kind == client.EventMessage || ev.Kind == client.EventSystem) && ev.Message != nil
		if msg && ev.Message.Seq <= shown[ev.Conversation] {
			return nil
		}
		if err := show(ev); err != nil {
			return err
		}
		if !msg {
			return nil
		}
		// Recorded right after it is printed, by one write to the
		// profile's shown file that never waits for the store: a kill
		// between the two writes prints this one message again on the
		// next start (client.MarkShown); recording first would instead
		// lose its display.
		shown[ev.Conversation] = ev.Message.Seq
		return s.c.MarkShown(ctx, ev.Conversation, ev.Message.Seq)
	}
	// Messages stored by an earlier run (or a sync) but never printed,
	// because it was killed or stopped before their events were read.
	unseen, err := s.c.Unseen(ctx)
	if err != nil {
		return err
	}
	for _, ev := range unseen {
		if err := print(ev); err != nil {
			return err
		}
	}
	runErr := make(chan error, 1)
	go func() { runErr <- s.c.Run(ctx) }()
	events := s.c.Events()
	for {
		select {
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return err
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Kind == client.EventOverflow {
				// Events were dropped: print the messages among them.
				unseen, err := s.c.Unseen(ctx)
				if err != nil {
					return err
				}
				for _, ev := range unseen {
					if err := print(ev); err != nil {
						return err
					}
				}
				continue
			}
			if err := print(ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// eventLine formats an event for people ("" to skip it); self is this
// profile's user. Changes of membership, name and topic are shown by
// their system lines (EventSystem), not by the events that report them
// one device at a time.
func eventLine(ev client.Event, titleOf func(protocol.ConversationID) string, self string) string {
	at := ""
	if ev.Conversation != 0 {
		at = "[" + titleOf(ev.Conversation) + "] "
	}
	switch ev.Kind {
	case client.EventMessage:
		return at + messageLine(ev.Message)
	case client.EventEdited:
		return at + "edited: " + messageLine(ev.Message)
	case client.EventDeleted:
		return at + "deleted: " + messageLine(ev.Message)
	case client.EventReaction:
		return at + "reaction: " + messageLine(ev.Message)
	case client.EventRead:
		if ev.Message == nil {
			return at + ev.User + " read your messages"
		}
		return fmt.Sprintf("%s%s read up to %s", at, ev.User, shortID(ev.Message.ID.String()))
	case client.EventDelivered:
		if ev.Message == nil || ev.Message.System != nil {
			return ""
		}
		// This device's queued message reached the server.
		return at + "sent: " + messageLine(ev.Message)
	case client.EventSystem:
		return at + systemLine(ev.Message, self)
	case client.EventIdentityChanged:
		return "*** " + noticeLine(ev) + " ***"
	case client.EventDeviceRejected:
		return "*** " + noticeLine(ev) + " ***"
	case client.EventConversationUnsafe, client.EventBadCommit:
		return "*** " + at + noticeLine(ev) + " ***"
	case client.EventStateRestored:
		return "*** " + at + noticeLine(ev) + " ***"
	case client.EventDeviceRevoked:
		return fmt.Sprintf("%sremoved %s's device %s: %s", at, ev.User, ev.Device, ev.Reason)
	case client.EventConnection:
		if ev.Error != "" && !errors.Is(ev.Err, context.Canceled) {
			return fmt.Sprintf("parley: %s (%s)", ev.Connection, ev.Error)
		}
		return "parley: " + ev.Connection.String()
	case client.EventError:
		return "parley: warning: " + ev.Error
	}
	return ""
}
