package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parley-chat/parley/client/archive"
	"github.com/parley-chat/parley/client/attach"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// History at link time (docs/protocol.md, "History on a linked device").
// Once the new device is a member of the account's conversations, the
// existing device writes the history of the conversations the user
// picked as an archive cut into parts of about historyPartBytes, seals
// each part as an attachment (a fresh key each, package attach) and
// uploads it, then uploads a manifest listing the parts with their keys,
// sealed the same way. The manifest's id, hash and key travel in E4,
// inside the linking channel: the server holds only ciphertext, and only
// the new device can open it. The new device keeps the manifest and how
// far it got in its store, and imports the parts in order before it
// applies anything else from the server (Sync and Run resume it first):
// an import cut by a crash or a lost connection goes on from the part it
// stopped in, and a part imported twice adds nothing twice (messages are
// stored once by id).

// historyPartBytes is the size of the archive parts a history is cut
// into, before padding and encryption (a variable for tests).
var historyPartBytes = 1 << 20

// maxHistoryPartBytes bounds a part's ciphertext the new device accepts.
const maxHistoryPartBytes = 64 << 20

// maxHistoryParts bounds the parts of one manifest.
const maxHistoryParts = 1 << 16

// linkHistoryTTL is how long the server keeps a history's parts (or its
// retention, when shorter): the new device has that long to finish.
const linkHistoryTTL = 7 * 24 * time.Hour

// settingLinkHistory holds a history import in progress.
const settingLinkHistory = "link_history"

// historyBlob names a sealed blob of a history: a part or the manifest.
type historyBlob struct {
	ID   string `json:"id"`
	Key  []byte `json:"key"`
	Hash []byte `json:"hash"`
	Size int64  `json:"size"`
}

// historyManifest lists a history's parts in order.
type historyManifest struct {
	Parts []historyBlob `json:"parts"`
	Count HistoryCount  `json:"count"`
}

// historyImportState is the new device's progress, kept in its store.
type historyImportState struct {
	// Manifest points to the manifest until it is downloaded; then
	// Parts holds it.
	Manifest historyBlob      `json:"manifest"`
	Parts    *historyManifest `json:"parts,omitempty"`
	// Next is the first part not yet imported.
	Next int `json:"next"`
}

// sendHistory uploads the history of convs for a device being linked and
// returns the sealed manifest's blob.
func (c *Client) sendHistory(ctx context.Context, convs []protocol.ConversationID) (*historyBlob, HistoryCount, error) {
	ttl, err := c.attachmentTTL(ctx, linkHistoryTTL)
	if err != nil {
		return nil, HistoryCount{}, err
	}
	var (
		man  historyManifest
		buf  bytes.Buffer
		aw   *archive.Writer
		conv *archive.Conversation
	)
	flush := func() error {
		if aw == nil {
			return nil
		}
		if err := aw.Close(); err != nil {
			return err
		}
		b, err := c.uploadSealed(ctx, buf.Bytes(), ttl)
		if err != nil {
			return fmt.Errorf("upload history part %d: %w", len(man.Parts)+1, err)
		}
		man.Parts = append(man.Parts, *b)
		man.Count.Messages += aw.Count().Messages
		aw = nil
		buf.Reset()
		return nil
	}
	// open starts a part (again) with the current conversation.
	open := func() error {
		if aw != nil {
			return nil
		}
		aw = archive.NewWriter(&buf)
		return aw.Conversation(conv)
	}
	err = c.walkHistory(ctx, convs, func(cv *archive.Conversation, page []store.Message) error {
		if cv != nil {
			conv = cv
			man.Count.Conversations++
			if aw == nil {
				return open()
			}
			return aw.Conversation(cv)
		}
		for i := range page {
			if err := open(); err != nil {
				return err
			}
			if err := aw.Message(&page[i]); err != nil {
				return err
			}
			if buf.Len() >= historyPartBytes {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, man.Count, err
	}
	b, err := json.Marshal(man)
	if err != nil {
		return nil, man.Count, err
	}
	blob, err := c.uploadSealed(ctx, b, ttl)
	if err != nil {
		return nil, man.Count, fmt.Errorf("upload the history's manifest: %w", err)
	}
	return blob, man.Count, nil
}

// uploadSealed encrypts b as an attachment and uploads it.
func (c *Client) uploadSealed(ctx context.Context, b []byte, ttl time.Duration) (*historyBlob, error) {
	var sp memSpool
	key, hash, size, err := attach.Encrypt(&sp, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	body, _ := sp.rewind()
	info, err := c.uploadAttachment(ctx, body, ttl)
	if err != nil {
		return nil, err
	}
	if info.ID != hash.String() || info.Size != size {
		return nil, fmt.Errorf("server stored %s (%d bytes), expected %s (%d bytes)", info.ID, info.Size, hash, size)
	}
	return &historyBlob{ID: info.ID, Key: key[:], Hash: hash[:], Size: size}, nil
}

// errHistoryLost marks a failure that trying again cannot mend: the
// server no longer has a part, or what it has is not what was sent.
var errHistoryLost = errors.New("the history sent at link time cannot be imported")

// fetchSealed downloads and decrypts a blob of a history.
func (c *Client) fetchSealed(ctx context.Context, b historyBlob) ([]byte, error) {
	if len(b.Key) != attach.KeySize || len(b.Hash) != len(attach.Hash{}) || b.Size < 0 || b.Size > maxHistoryPartBytes {
		return nil, fmt.Errorf("%w: blob %.70q is malformed", errHistoryLost, b.ID)
	}
	var resp *response
	for attempt := 0; ; attempt++ {
		var err error
		if resp, err = c.request(ctx, "GET", "/v1/attachments/"+b.ID, true, nil, ""); err != nil {
			return nil, err
		}
		if resp.StatusCode == statusOK {
			break
		}
		err = decodeResponse(resp, nil)
		if _, ok := isCode(err, protocol.CodeUnauthorized); ok && attempt == 0 {
			c.dropToken() // a session the server forgot: authenticate again
			continue
		}
		if _, gone := isCode(err, protocol.CodeNotFound); gone {
			return nil, fmt.Errorf("%w: blob %s: %v", errHistoryLost, b.ID, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	err := attach.Decrypt(&out, io.LimitReader(resp.Body, maxHistoryPartBytes+1), attach.Key(b.Key), attach.Hash(b.Hash))
	if errors.Is(err, attach.ErrCorrupt) || errors.Is(err, attach.ErrHashMismatch) {
		return nil, fmt.Errorf("%w: blob %s: %v", errHistoryLost, b.ID, err)
	}
	if err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// startHistoryImport records the manifest a linked device received, for
// resumeHistory.
func (c *Client) startHistoryImport(ctx context.Context, man historyBlob) error {
	b, err := json.Marshal(historyImportState{Manifest: man})
	if err != nil {
		return err
	}
	return c.st.Update(ctx, func(tx store.Tx) error { return tx.SetSetting(settingLinkHistory, b) })
}

// resumeHistory imports what is left of a history received at link time,
// if any. A history that cannot be imported (errHistoryLost) is given up
// and reported as an EventError; any other failure is returned, and the
// next call goes on from where this one stopped.
func (c *Client) resumeHistory(ctx context.Context) error {
	c.historyMu.Lock()
	defer c.historyMu.Unlock()
	var st historyImportState
	err := c.st.View(ctx, func(tx store.Tx) error {
		b, err := tx.Setting(settingLinkHistory)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return store.ErrNotFound // done before
		}
		if json.Unmarshal(b, &st) != nil {
			return fmt.Errorf("%w: its progress record is malformed", errHistoryLost)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = c.importHistoryParts(ctx, &st)
	}
	if errors.Is(err, errHistoryLost) || errors.Is(err, archive.ErrMalformed) {
		c.log.Warn("history of the linked device given up", "err", err)
		c.ev.push(Event{Kind: EventError, Err: fmt.Errorf("client: import history: %w", err)})
		err = nil
	}
	if err != nil {
		return fmt.Errorf("import history: %w", err)
	}
	// An empty value marks the import done (settings are not deleted).
	return c.st.Update(ctx, func(tx store.Tx) error { return tx.SetSetting(settingLinkHistory, nil) })
}

// importHistoryParts imports the parts of st from st.Next on, recording
// its progress after each.
func (c *Client) importHistoryParts(ctx context.Context, st *historyImportState) error {
	if st.Parts == nil {
		b, err := c.fetchSealed(ctx, st.Manifest)
		if err != nil {
			return err
		}
		var man historyManifest
		if err := json.Unmarshal(b, &man); err != nil || len(man.Parts) > maxHistoryParts {
			return fmt.Errorf("%w: its manifest is malformed", errHistoryLost)
		}
		st.Parts = &man
		if err := c.saveHistoryImport(ctx, st); err != nil {
			return err
		}
	}
	start := time.Now()
	for st.Next < len(st.Parts.Parts) {
		b, err := c.fetchSealed(ctx, st.Parts.Parts[st.Next])
		if err != nil {
			return fmt.Errorf("part %d of %d: %w", st.Next+1, len(st.Parts.Parts), err)
		}
		if _, err := c.importHistory(ctx, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("part %d of %d: %w", st.Next+1, len(st.Parts.Parts), err)
		}
		st.Next++
		if err := c.saveHistoryImport(ctx, st); err != nil {
			return err
		}
	}
	c.log.Info("history imported", "conversations", st.Parts.Count.Conversations, "messages", st.Parts.Count.Messages,
		"parts", len(st.Parts.Parts), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Client) saveHistoryImport(ctx context.Context, st *historyImportState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return c.st.Update(ctx, func(tx store.Tx) error { return tx.SetSetting(settingLinkHistory, b) })
}
