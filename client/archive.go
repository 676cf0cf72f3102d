package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"

	"github.com/parley-chat/parley/client/archive"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// A device's history leaves it as an archive (package client/archive):
// to a device being linked (linkhistory.go) and into a backup. It holds
// the conversations' metadata and messages as this device stores them —
// reactions, edits, deletions, read receipts, attachments' keys inside
// their content — and nothing of MLS: the device that reads it has its
// own leaves and keys.

// HistoryCount is what a history archive holds.
type HistoryCount = archive.Count

// historyPage is how many messages exportHistory reads per transaction,
// and importHistory writes per transaction.
const historyPage = 1000

// exportHistory writes the history of the conversations convs (every
// conversation of this device when nil) to w as an archive.
func (c *Client) exportHistory(ctx context.Context, w io.Writer, convs []protocol.ConversationID) (HistoryCount, error) {
	aw := archive.NewWriter(w)
	err := c.walkHistory(ctx, convs, func(cv *archive.Conversation, page []store.Message) error {
		if cv != nil {
			return aw.Conversation(cv)
		}
		for i := range page {
			if err := aw.Message(&page[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = aw.Close()
	}
	if err != nil {
		return aw.Count(), fmt.Errorf("client: export history: %w", err)
	}
	return aw.Count(), nil
}

// walkHistory calls fn with each conversation of convs (every one when
// nil) that this device knows, in order of id, then with its messages a
// page at a time (cv nil). It leaves out what a history must not carry:
// messages still being sent (they arrive by themselves) and messages that
// expired or are past their expiry.
func (c *Client) walkHistory(ctx context.Context, convs []protocol.ConversationID, fn func(cv *archive.Conversation, page []store.Message) error) error {
	var all []store.Conversation
	if err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		all, err = tx.Conversations()
		return err
	}); err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b store.Conversation) int { return cmp.Compare(a.ID, b.ID) })
	now := c.cfg.Now()
	for i := range all {
		cv := &all[i]
		if convs != nil && !slices.Contains(convs, cv.ID) {
			continue
		}
		var read int64
		if err := c.st.View(ctx, func(tx store.Tx) error {
			var err error
			read, err = marker(tx, readSetting(cv.ID))
			return err
		}); err != nil {
			return err
		}
		ac := &archive.Conversation{ID: cv.ID, GroupID: cv.GroupID, Direct: cv.Direct, Name: cv.Name, Topic: cv.Topic,
			Members: cv.Members, Left: cv.Left, Created: cv.Created, ReadSeq: read}
		if err := fn(ac, nil); err != nil {
			return err
		}
		for after := int64(0); ; {
			if err := ctx.Err(); err != nil {
				return err
			}
			var page []store.Message
			if err := c.st.View(ctx, func(tx store.Tx) error {
				var err error
				page, err = tx.Messages(cv.ID, after, historyPage)
				return err
			}); err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			after = page[len(page)-1].Seq
			page = slices.DeleteFunc(page, func(m store.Message) bool {
				return m.State == store.Pending || m.Expired || (!m.Expires.IsZero() && !m.Expires.After(now))
			})
			if err := fn(nil, page); err != nil {
				return err
			}
		}
	}
	return nil
}

// importHistory reads an archive from r into the store: the conversations
// this device does not know yet (without a group: the device joins them
// afterwards) and their messages, after those it holds (a message it
// already holds, by id, is left as it is). It must run before this device
// joins the conversations, for their history to come first. Messages are
// read as far as the archive's read positions say, and none is reported
// as new (Unseen). A conversation this device knows under another MLS
// group keeps its history; the archive's is left out.
func (c *Client) importHistory(ctx context.Context, r io.Reader) (HistoryCount, error) {
	ar, err := archive.NewReader(r)
	if err != nil {
		return HistoryCount{}, fmt.Errorf("client: import history: %w", err)
	}
	im := &historyImport{c: c}
	for {
		rec, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return im.count, fmt.Errorf("client: import history: %w", err)
		}
		if rec.Conversation != nil {
			err = im.conversation(ctx, rec.Conversation)
		} else {
			err = im.message(ctx, ar.Conversation(), rec.Message)
		}
		if err != nil {
			return im.count, fmt.Errorf("client: import history: %w", err)
		}
	}
	if err := im.flush(ctx); err != nil {
		return im.count, fmt.Errorf("client: import history: %w", err)
	}
	return im.count, nil
}

// historyImport is an import in progress: the messages not yet written,
// and where the current conversation stands.
type historyImport struct {
	c     *Client
	count HistoryCount
	conv  *archive.Conversation
	skip  bool // the current conversation's messages are left out
	batch []*store.Message
}

// conversation starts the records of cv: it writes the conversation
// unless this device knows it already.
func (im *historyImport) conversation(ctx context.Context, cv *archive.Conversation) error {
	if err := im.flush(ctx); err != nil {
		return err
	}
	im.conv, im.skip = cv, false
	return im.c.st.Update(ctx, func(tx store.Tx) error {
		old, err := tx.Conversation(cv.ID)
		switch {
		case err == nil:
			if string(old.GroupID) != string(cv.GroupID) {
				im.skip = true
				im.c.log.Warn("history not imported: conversation known under another group", "conversation", cv.ID)
			}
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := checkArchivedConversation(cv); err != nil {
			return err
		}
		im.count.Conversations++
		return tx.PutConversation(&store.Conversation{ID: cv.ID, GroupID: cv.GroupID, Direct: cv.Direct,
			Name: cv.Name, Topic: cv.Topic, Members: cv.Members, Left: cv.Left, Created: cv.Created})
	})
}

// message queues m, a message of cv.
func (im *historyImport) message(ctx context.Context, cv *archive.Conversation, m *store.Message) error {
	if im.skip || m.State == store.Pending || m.Expired {
		return nil
	}
	if err := checkArchivedMessage(m); err != nil {
		return fmt.Errorf("message %x of conversation %d: %w", m.ID, cv.ID, err)
	}
	im.batch = append(im.batch, m)
	if len(im.batch) >= historyPage {
		return im.flush(ctx)
	}
	return nil
}

// flush writes the queued messages, and moves the read and shown
// positions of their conversation over them.
func (im *historyImport) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	cv, batch := im.conv, im.batch
	im.batch = nil
	var added []*store.Message
	err := im.c.st.Update(ctx, func(tx store.Tx) error {
		added = added[:0]
		var read, last int64
		for _, m := range batch {
			orig := m.Seq
			m.Seq = 0
			ok, err := tx.AddMessage(m)
			if err != nil {
				return fmt.Errorf("message %x of conversation %d: %w", m.ID, cv.ID, err)
			}
			if !ok {
				continue
			}
			added = append(added, m)
			last = m.Seq
			if orig <= cv.ReadSeq {
				read = m.Seq
			}
		}
		if err := advanceMarker(tx, readSetting(cv.ID), read); err != nil {
			return err
		}
		return advanceMarker(tx, shownSetting(cv.ID), last)
	})
	if err != nil {
		return err
	}
	im.count.Messages += len(added)
	if im.c.idx.active() {
		for _, m := range added {
			v := viewMessage(m)
			setMentionsMe(v, im.c.selfUser())
			im.c.idx.update(v)
		}
	}
	return nil
}

// checkArchivedConversation checks the metadata of a conversation read
// from an archive against the bounds of the content it came from.
func checkArchivedConversation(cv *archive.Conversation) error {
	switch {
	case len(cv.Name) > content.MaxNameSize || !utf8.ValidString(cv.Name):
		return fmt.Errorf("%w: conversation %d: name of %d bytes", archive.ErrMalformed, cv.ID, len(cv.Name))
	case len(cv.Topic) > content.MaxTopicSize || !utf8.ValidString(cv.Topic):
		return fmt.Errorf("%w: conversation %d: topic of %d bytes", archive.ErrMalformed, cv.ID, len(cv.Topic))
	}
	for _, u := range cv.Members {
		if !protocol.ValidUserName(u) {
			return fmt.Errorf("%w: conversation %d: member name %.64q", archive.ErrMalformed, cv.ID, u)
		}
	}
	return nil
}

// checkArchivedMessage checks a message read from an archive: names and
// sizes within what a received message may hold.
func checkArchivedMessage(m *store.Message) error {
	switch {
	case m.Sender != "" && !protocol.ValidUserName(m.Sender):
		return fmt.Errorf("%w: sender %.64q", archive.ErrMalformed, m.Sender)
	case m.SenderDevice != "" && !protocol.ValidDeviceID(m.SenderDevice):
		return fmt.Errorf("%w: sender device %.64q", archive.ErrMalformed, m.SenderDevice)
	case len(m.Content) > content.MaxEncodedSize:
		return fmt.Errorf("%w: content of %d bytes exceeds %d", archive.ErrMalformed, len(m.Content), content.MaxEncodedSize)
	case len(m.Text) > content.MaxTextSize || !utf8.ValidString(m.Text):
		return fmt.Errorf("%w: text of %d bytes", archive.ErrMalformed, len(m.Text))
	case m.State > store.Failed:
		return fmt.Errorf("%w: delivery state %d", archive.ErrMalformed, m.State)
	}
	return nil
}
