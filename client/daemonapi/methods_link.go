package daemonapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// Linking a new device from the daemon (parley devices link, the web
// client's devices screen, the TUI's /link) is a question to the user in
// the middle of client.Client.LinkDevice: the two sides' confirmations
// must match before anything is sent. So it takes two calls:
// link_device opens the linking channel with the code and answers once
// the new device said who it is, with the confirmation to compare;
// link_device_confirm gives the user's answer and returns the linked
// device (or the refusal). cancel_link_device ends a link at any step.
//
// One link runs at a time per daemon. It belongs to the connection that
// started it: only that connection answers or cancels it, and it is
// cancelled when that connection closes. A question left unanswered for
// LinkConfirmWait declines the link.

// LinkConfirmWait is how long a link waits for link_device_confirm
// before it declines.
const LinkConfirmWait = 5 * time.Minute

// ErrLinkInProgress means a link runs already on this daemon.
var ErrLinkInProgress = errors.New("a device link is in progress already on this profile: finish or cancel it first")

func init() {
	for name, m := range map[string]method{
		"link_device":         linkDevice,
		"link_device_confirm": linkDeviceConfirm,
		"cancel_link_device":  cancelLinkDevice,
	} {
		methods[name] = m
	}
}

// The params and results of the link methods.
type (
	// LinkDeviceParams is the code that the new device shows (typed, in
	// any case and with any dashes or spaces, or its QR payload).
	LinkDeviceParams struct {
		Code string `json:"code"`
	}
	// LinkDeviceResult is the question of a link: the link's id, the
	// confirmation (which must equal the one the new device shows), and
	// the new device's id and name.
	LinkDeviceResult struct {
		Link         string `json:"link"`
		Confirmation string `json:"confirmation"`
		Device       string `json:"device"`
		Name         string `json:"name,omitempty"`
	}
	// LinkConfirmParams answers a link's question; History, when
	// accepted, names the conversations whose history the new device
	// receives (client.LinkDeviceOptions.History; none: no history).
	LinkConfirmParams struct {
		Link    string                    `json:"link"`
		Accept  bool                      `json:"accept"`
		History []protocol.ConversationID `json:"history,omitempty"`
	}
	// LinkedDeviceResult is a device linked (client.LinkedDevice): how
	// many conversations it was added to, those where it failed
	// (add_own_devices adds it later), what the history sent to it holds
	// and, when none was sent though some was picked, why.
	LinkedDeviceResult struct {
		Device        string                    `json:"device"`
		Name          string                    `json:"name,omitempty"`
		Conversations int                       `json:"conversations"`
		Failed        []protocol.ConversationID `json:"failed"`
		History       client.HistoryCount       `json:"history"`
		HistoryError  string                    `json:"history_error,omitempty"`
	}
)

// pendingLink is the link in progress of a Server: a goroutine running
// client.Client.LinkDevice, whose question is passed to the connection
// that started it and whose answer comes back from it.
type pendingLink struct {
	id   string
	conn *conn
	// ctx is the link's, cancelled by cancel, cancel_link_device and
	// the end of the connection.
	ctx    context.Context
	cancel context.CancelFunc
	// request receives the question once the channel is up; answer the
	// user's answer. Both hold one value.
	request chan client.LinkRequest
	answer  chan bool
	// outcome receives LinkDevice's result, for the one call that
	// waits for it; finished is closed once the goroutine ended.
	outcome  chan linkOutcome
	finished chan struct{}

	mu       sync.Mutex
	answered bool
	// progress is where the progress of adding the new device goes: the
	// progress function of link_device_confirm's request.
	progress func(client.Progress)
	// history are the conversations whose history the new device
	// receives, from link_device_confirm.
	history []protocol.ConversationID
}

// pickedHistory returns the conversations of the answer.
func (l *pendingLink) pickedHistory() []protocol.ConversationID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.history
}

type linkOutcome struct {
	dev *client.LinkedDevice
	err error
}

// report passes the progress of LinkDevice to the confirming request.
func (l *pendingLink) report(p client.Progress) {
	l.mu.Lock()
	f := l.progress
	l.mu.Unlock()
	if f != nil {
		f(p)
	}
}

// startLink starts a link with code for connection c, unless one runs;
// a link that was cancelled (its connection closed) is waited for, as
// it only tells the new device it ended. ctx is the connection's: the
// link ends with it.
func (s *Server) startLink(ctx context.Context, c *conn, code string) (*pendingLink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.link != nil {
		old := s.link
		if old.ctx.Err() == nil {
			return nil, fmt.Errorf("link_device: %w", ErrLinkInProgress)
		}
		s.mu.Unlock()
		select {
		case <-old.finished:
		case <-ctx.Done():
		}
		s.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.link == old {
			s.link = nil
		}
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	l := &pendingLink{id: hex.EncodeToString(raw), conn: c, request: make(chan client.LinkRequest, 1), answer: make(chan bool, 1),
		outcome: make(chan linkOutcome, 1), finished: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(client.WithProgress(ctx, l.report))
	s.link = l
	c.writers.Go(func() { s.runLink(l, code) })
	return l, nil
}

// runLink runs LinkDevice for l and publishes its outcome.
func (s *Server) runLink(l *pendingLink, code string) {
	defer close(l.finished)
	defer l.cancel()
	ctx, wait := l.ctx, s.confirmWait
	timedOut := false
	confirm := func(r client.LinkRequest) bool {
		l.request <- r
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case ok := <-l.answer:
			return ok
		case <-ctx.Done():
			return false
		case <-timer.C:
			timedOut = true
			return false
		}
	}
	dev, err := s.c.LinkDeviceWith(ctx, code, client.LinkDeviceOptions{Confirm: confirm, History: l.pickedHistory})
	if timedOut {
		err = fmt.Errorf("link_device: no answer within %v: %w", wait, err)
	}
	l.outcome <- linkOutcome{dev, err}
	s.mu.Lock()
	if s.link == l {
		s.link = nil
	}
	s.mu.Unlock()
	if err != nil {
		// Only the kind: the error may quote the code, which is secret.
		s.logger.Info("daemon: device link ended", "kind", kindOf(err))
	}
}

// connLink returns the link of connection c named id ("" for any).
func (s *Server) connLink(c *conn, id string) *pendingLink {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.link; l != nil && l.conn == c && (id == "" || l.id == id) {
		return l
	}
	return nil
}

func linkDevice(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p LinkDeviceParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Code) == "" {
		return nil, invalidParams("code: want the link code the new device shows")
	}
	l, err := s.startLink(ctx, c, p.Code)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-l.request:
		return LinkDeviceResult{Link: l.id, Confirmation: r.Confirmation, Device: string(r.Device), Name: r.Name}, nil
	case o := <-l.outcome:
		return nil, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func linkDeviceConfirm(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p LinkConfirmParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	l := s.connLink(c, p.Link)
	if l == nil || p.Link == "" {
		return nil, invalidParams("link: no link %.40q waits for an answer on this connection", p.Link)
	}
	l.mu.Lock()
	if l.answered {
		l.mu.Unlock()
		return nil, invalidParams("link: link %s was answered already", l.id)
	}
	l.answered, l.progress = true, client.ProgressFrom(ctx)
	if p.Accept {
		l.history = p.History
	}
	l.mu.Unlock()
	l.answer <- p.Accept
	select {
	case o := <-l.outcome:
		if o.err != nil {
			return nil, o.err
		}
		return LinkedDeviceResult{Device: string(o.dev.Device), Name: o.dev.Name, Conversations: o.dev.Conversations,
			Failed: append([]protocol.ConversationID{}, o.dev.Failed...), History: o.dev.History, HistoryError: o.dev.HistoryError}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func cancelLinkDevice(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	l := s.connLink(c, "")
	if l == nil {
		return OK{false}, nil
	}
	l.cancel()
	select {
	case <-l.finished:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return OK{true}, nil
}

// LinkQuestion is a link waiting for the user's answer: its id and what
// to ask (StartLinkDevice).
type LinkQuestion struct {
	Link string
	client.LinkRequest
}

// StartLinkDevice opens the linking channel with the device that shows
// code (link_device) and returns the question to ask the user; answer it
// with AnswerLinkDevice, on the same Client.
func (c *Client) StartLinkDevice(ctx context.Context, code string) (*LinkQuestion, error) {
	var q LinkDeviceResult
	if err := c.Call(ctx, "link_device", LinkDeviceParams{Code: code}, &q); err != nil {
		c.cancelLink(ctx)
		return nil, err
	}
	return &LinkQuestion{Link: q.Link, LinkRequest: client.LinkRequest{Confirmation: q.Confirmation, Device: protocol.DeviceID(q.Device), Name: q.Name}}, nil
}

// AnswerLinkDevice accepts or declines the link named link
// (link_device_confirm), with the conversations whose history the new
// device receives, and returns the device linked; declined, the error
// matches client.ErrLinkRefused.
func (c *Client) AnswerLinkDevice(ctx context.Context, link string, accept bool, history []protocol.ConversationID) (*client.LinkedDevice, error) {
	var r LinkedDeviceResult
	if err := c.Call(ctx, "link_device_confirm", LinkConfirmParams{Link: link, Accept: accept, History: history}, &r); err != nil {
		c.cancelLink(ctx)
		return nil, err
	}
	return &client.LinkedDevice{Device: protocol.DeviceID(r.Device), Name: r.Name, Conversations: r.Conversations, Failed: r.Failed,
		History: r.History, HistoryError: r.HistoryError}, nil
}

// CancelLinkDevice ends this connection's link, if any
// (cancel_link_device).
func (c *Client) CancelLinkDevice(ctx context.Context) error {
	return c.Call(ctx, "cancel_link_device", nil, nil)
}

// LinkDevice links the device that shows code to the account through
// the daemon, as client.Client.LinkDevice does: it asks confirm with the
// confirmation to compare (false, or a nil confirm, declines) and
// returns the device linked. When ctx ends first, the link is cancelled.
func (c *Client) LinkDevice(ctx context.Context, code string, confirm func(client.LinkRequest) bool) (*client.LinkedDevice, error) {
	return c.LinkDeviceWith(ctx, code, client.LinkDeviceOptions{Confirm: confirm})
}

// LinkDeviceWith is LinkDevice with options, as
// client.Client.LinkDeviceWith: opts.History, called once the user
// accepted, picks the conversations whose history the new device
// receives.
func (c *Client) LinkDeviceWith(ctx context.Context, code string, opts client.LinkDeviceOptions) (*client.LinkedDevice, error) {
	q, err := c.StartLinkDevice(ctx, code)
	if err != nil {
		return nil, err
	}
	accept := opts.Confirm != nil && opts.Confirm(q.LinkRequest)
	var history []protocol.ConversationID
	if accept && opts.History != nil {
		history = opts.History()
	}
	return c.AnswerLinkDevice(ctx, q.Link, accept, history)
}

// cancelLink cancels this connection's link after ctx ended (best
// effort: closing the connection cancels it too).
func (c *Client) cancelLink(ctx context.Context) {
	if ctx.Err() == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	c.CancelLinkDevice(cctx)
}
