package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

func cmdListen(ctx context.Context, e *env, args []string) error {
	fs := e.flags("listen", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{ownEvents: true, routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	if s.daemon != nil {
		// Subscribed before the unseen messages are listed, so that
		// none falls between the two; print skips those shown.
		if err := s.daemon.Subscribe(ctx); err != nil {
			return err
		}
	}
	self := s.self()
	titles := map[protocol.ConversationID]string{}
	titleOf := func(conv protocol.ConversationID) string {
		if t, ok := titles[conv]; ok {
			return t
		}
		cv, err := s.api.Conversation(ctx, conv)
		if err != nil {
			return fmt.Sprint(conv)
		}
		t := title(cv, self)
		titles[conv] = t
		return t
	}
	// shown is how far each conversation was printed, in this run.
	shown := map[protocol.ConversationID]int64{}
	// show prints an event; wire, when not nil, is the daemon's JSON of
	// it, printed as it came (it carries what ev cannot, such as the
	// recovery of a bad commit).
	show := func(ev client.Event, wire *eventJSON) error {
		switch ev.Kind {
		case client.EventConversationChanged, client.EventConversationJoined, client.EventSystem:
			delete(titles, ev.Conversation) // its name or members changed
		}
		if e.json {
			out := wire
			if out == nil {
				out = daemonapi.NewEvent(ev)
			}
			b, err := json.Marshal(out)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			return err
		}
		if mutedQuiet(ev) {
			return nil
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
	print := func(ev client.Event, wire *eventJSON) error {
		msg := (ev.Kind == client.EventMessage || ev.Kind == client.EventSystem) && ev.Message != nil
		if msg && ev.Message.Seq <= shown[ev.Conversation] {
			return nil
		}
		if err := show(ev, wire); err != nil {
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
		return s.api.MarkShown(ctx, ev.Conversation, ev.Message.Seq)
	}
	// Messages stored by an earlier run (or a sync) but never printed,
	// because it was killed or stopped before their events were read.
	printUnseen := func() error {
		unseen, err := s.api.Unseen(ctx)
		if err != nil {
			return err
		}
		for _, ev := range unseen {
			if err := print(ev, nil); err != nil {
				return err
			}
		}
		return nil
	}
	if err := printUnseen(); err != nil {
		return err
	}
	if s.daemon != nil {
		return listenDaemon(ctx, s.daemon, print, printUnseen)
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
				if err := printUnseen(); err != nil {
					return err
				}
				continue
			}
			if err := print(ev, nil); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// listenDaemon prints the events of a daemon's subscription until ctx
// is done or the daemon stops.
func listenDaemon(ctx context.Context, dc *daemonapi.Client, print func(client.Event, *eventJSON) error, printUnseen func() error) error {
	for {
		wire, err := dc.NextEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return fmt.Errorf("listen: %w", err)
		}
		ev, err := wire.SDK()
		if err != nil {
			return fmt.Errorf("listen: event from the daemon: %w", err)
		}
		if ev.Kind == client.EventOverflow {
			err = printUnseen()
		} else {
			err = print(ev, wire)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
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
		if ev.Message.MentionsMe {
			return at + "mentions you: " + messageLine(ev.Message)
		}
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

// mutedQuiet reports whether the text output of listen leaves out an
// event: the message events (new, edited, deleted, reactions, receipts,
// deliveries) of a conversation muted on this device, except a new
// message that mentions this user. --json prints every event, with
// "muted":true, for scripts to decide.
func mutedQuiet(ev client.Event) bool {
	if !ev.Muted {
		return false
	}
	switch ev.Kind {
	case client.EventMessage:
		return ev.Message == nil || !ev.Message.MentionsMe
	case client.EventEdited, client.EventDeleted, client.EventReaction, client.EventRead, client.EventDelivered:
		return true
	}
	return false
}
