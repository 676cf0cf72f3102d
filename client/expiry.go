package client

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Disappearing messages. A conversation's policy carries a timer
// (protocol.Policy.Timer). A text or attachment message received or sent
// while the timer is on expires at its sent time (no later than this
// device received it) plus the timer in force when this device processed
// it, which, the server's log being ordered, is the timer of the epoch it
// was sent in. On expiry this device erases the message's text, content
// (with its attachment's key and metadata), reactions and receipts,
// keeping a tombstone (store.Message.Expired) so that the entry is
// never stored again when replayed; a message already expired when it
// arrives is stored as a tombstone at once. Client.Run expires messages
// on time; ExpireMessages does it on demand. docs/content.md,
// "Disappearing messages".

// timerLocked returns the disappearing-message timer of conv's current
// epoch, 0 when off. c.mu is held.
func (c *Client) timerLocked(conv protocol.ConversationID) time.Duration {
	g := c.groups[conv]
	if g == nil {
		return 0
	}
	p, err := policyOf(g.Extensions())
	if err != nil || p == nil {
		return 0
	}
	return p.Timer
}

// attachmentTTL returns the lifetime an attachment sent under timer asks
// the server for: the timer, but no longer than the server's retention
// (which bounds a lifetime, and keeps nothing longer anyway); 0 when the
// timer is off.
func (c *Client) attachmentTTL(ctx context.Context, timer time.Duration) (time.Duration, error) {
	if timer <= 0 {
		return 0, nil
	}
	retention, err := c.serverRetention(ctx)
	if err != nil {
		return 0, err
	}
	if retention > 0 && timer > retention {
		timer = retention
	}
	return max(timer.Truncate(time.Second), time.Second), nil
}

// serverRetention returns the server's retention (0: none), asked of the
// server once and then remembered.
func (c *Client) serverRetention(ctx context.Context) (time.Duration, error) {
	if r := c.retention.Load(); r != nil {
		return *r, nil
	}
	var info protocol.ServerInfo
	if err := c.call(ctx, "GET", "/v1/info", false, nil, &info); err != nil {
		return 0, fmt.Errorf("server retention: %w", err)
	}
	var r time.Duration
	if s := info.Limits.RetentionSeconds; s > 0 && s <= math.MaxInt64/int64(time.Second) {
		r = time.Duration(s) * time.Second
	}
	c.retention.Store(&r)
	return r, nil
}

// expiryOf returns when a message sent at sent and received at received
// expires under timer: a sent time in the future counts as received.
func expiryOf(sent, received time.Time, timer time.Duration) time.Time {
	if sent.IsZero() || sent.After(received) {
		sent = received
	}
	return sent.Add(timer)
}

// Timer returns the disappearing-message timer of a conversation: 0 when
// off (or when it has no policy).
func (c *Client) Timer(ctx context.Context, conv protocol.ConversationID) (time.Duration, error) {
	p, err := c.Policy(ctx, conv)
	if err != nil || p == nil {
		return 0, err
	}
	return p.Timer, nil
}

// ExpireMessages erases every message whose expiry is at or before
// Config.Now, reports each as EventExpired, and returns how many it
// erased. Client.Run calls it when the next message is due.
func (c *Client) ExpireMessages(ctx context.Context) (int, error) {
	now := c.cfg.Now()
	var gone []*store.Message
	err := c.st.Update(ctx, func(tx store.Tx) error {
		gone = gone[:0]
		due, err := tx.ExpiredBy(now)
		if err != nil {
			return err
		}
		for _, k := range due {
			m, err := tx.ExpireMessage(protocol.ConversationID(k[0]), k[1])
			if err != nil {
				return err
			}
			if m != nil {
				gone = append(gone, m)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("client: expire messages: %w", err)
	}
	for _, m := range gone {
		c.ev.push(Event{Kind: EventExpired, Conversation: m.Conversation, Message: viewMessage(m)})
	}
	return len(gone), nil
}

// wakeExpiry tells the expiry loop that a message with an expiry was
// stored.
func (c *Client) wakeExpiry() {
	select {
	case c.expiryWake <- struct{}{}:
	default:
	}
}

// maxExpiryWait bounds how long the expiry loop sleeps without looking
// again, so that a wall clock that jumps is followed.
const maxExpiryWait = time.Minute

// runExpiry expires messages on time until ctx ends: it sleeps until the
// next expiry (by Config.Now), or until woken by a newly stored one.
func (c *Client) runExpiry(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.expiryWake:
		case <-t.C:
			if _, err := c.ExpireMessages(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("expire messages", "err", err)
			}
		}
		wait := maxExpiryWait
		err := c.st.View(ctx, func(tx store.Tx) error {
			at, ok, err := tx.NextExpiry()
			if ok {
				wait = min(wait, max(0, at.Sub(c.cfg.Now())))
			}
			return err
		})
		if err != nil && ctx.Err() == nil {
			c.log.Warn("next expiry", "err", err)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}
