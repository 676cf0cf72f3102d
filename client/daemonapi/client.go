package daemonapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// ErrNoDaemon means no daemon answers on a profile's socket.
var ErrNoDaemon = errors.New("no parley daemon runs for this profile")

// Client is a connection to a daemon. Its methods are safe for
// concurrent use; those named like the SDK's take and return the SDK's
// types, and their errors match the SDK's sentinels with errors.Is.
type Client struct {
	conn net.Conn
	wmu  sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[string]chan *Response
	// progress are the progress functions of pending calls
	// (client.WithProgress), by request id.
	progress map[string]func(client.Progress)
	err      error // why the connection ended
	done     chan struct{}

	// events are the notifications received, not yet taken by NextEvent.
	events  []*Event
	evReady chan struct{}
}

// Dial connects to the daemon of the profile in dir. It returns an error
// wrapping ErrNoDaemon when the socket does not exist or nothing answers
// on it (a daemon that was killed leaves its socket behind).
func Dial(ctx context.Context, dir string) (*Client, error) {
	path := filepath.Join(dir, SocketFile)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("daemon socket %s: %w (%v)", path, ErrNoDaemon, err)
	}
	return NewClient(nc), nil
}

// NewClient returns a Client speaking on a connection to a Server, such
// as one from PipeListener.Dial. Close closes nc.
func NewClient(nc net.Conn) *Client {
	c := &Client{conn: nc, pending: map[string]chan *Response{}, progress: map[string]func(client.Progress){}, done: make(chan struct{}), evReady: make(chan struct{}, 1)}
	go c.read()
	return c
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// read dispatches the lines from the daemon: responses to their callers,
// notifications to the event queue.
func (c *Client) read() {
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *Error          `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			c.fail(fmt.Errorf("parley daemon: bad line %s: %w", quoteStart(sc.Bytes()), err))
			return
		}
		if msg.Method == "progress" {
			var p Progress
			if err := json.Unmarshal(msg.Params, &p); err != nil {
				c.fail(fmt.Errorf("parley daemon: bad progress %s: %w", quoteStart(msg.Params), err))
				return
			}
			c.mu.Lock()
			f := c.progress[string(p.ID)]
			c.mu.Unlock()
			if f != nil {
				f(p.SDK())
			}
			continue
		}
		if msg.Method == "event" {
			var ev Event
			if err := json.Unmarshal(msg.Params, &ev); err != nil {
				c.fail(fmt.Errorf("parley daemon: bad event %s: %w", quoteStart(msg.Params), err))
				return
			}
			c.mu.Lock()
			c.events = append(c.events, &ev)
			c.mu.Unlock()
			select {
			case c.evReady <- struct{}{}:
			default:
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[string(msg.ID)]
		delete(c.pending, string(msg.ID))
		c.mu.Unlock()
		if ch != nil {
			ch <- &Response{ID: msg.ID, Result: msg.Result, Error: msg.Error}
		}
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("connection closed")
	}
	c.fail(fmt.Errorf("parley daemon: %w", err))
}

// fail ends the connection with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
		c.conn.Close()
	}
}

// Call calls a method with params (nil for none) and decodes its result
// into result (nil to drop it). A JSON-RPC error is returned as *Error.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	req := Request{JSONRPC: "2.0", Method: method}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("%s: encode params: %w", method, err)
		}
		req.Params = b
	}
	ch := make(chan *Response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	req.ID = json.RawMessage(strconv.FormatInt(c.nextID, 10))
	c.pending[string(req.ID)] = ch
	if f := client.ProgressFrom(ctx); f != nil {
		c.progress[string(req.ID)] = f
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, string(req.ID))
		delete(c.progress, string(req.ID))
		c.mu.Unlock()
	}()
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", method, err)
	}
	c.wmu.Lock()
	_, err = c.conn.Write(append(b, '\n'))
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("parley daemon: %s: %w", method, err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		select {
		case resp := <-ch:
			return decodeResult(method, resp, result)
		default:
		}
		return c.err
	case resp := <-ch:
		return decodeResult(method, resp, result)
	}
}

func decodeResult(method string, resp *Response, result any) error {
	if resp.Error != nil {
		return resp.Error
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("parley daemon: %s: decode result: %w", method, err)
	}
	return nil
}

// Subscribe asks for the client's events; NextEvent returns them.
func (c *Client) Subscribe(ctx context.Context) error {
	return c.Call(ctx, "subscribe", nil, nil)
}

// NextEvent waits for the next event of the subscription. It returns
// the connection's error once the connection ends.
func (c *Client) NextEvent(ctx context.Context) (*Event, error) {
	for {
		c.mu.Lock()
		if len(c.events) > 0 {
			ev := c.events[0]
			c.events = c.events[1:]
			c.mu.Unlock()
			return ev, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.evReady:
		case <-c.done:
		}
	}
}

// Whoami returns the profile's account.
func (c *Client) Whoami() (*client.Account, error) {
	var a Account
	if err := c.Call(context.Background(), "whoami", nil, &a); err != nil {
		return nil, err
	}
	return a.SDK()
}

// Conversations lists the profile's conversations.
func (c *Client) Conversations(ctx context.Context) ([]client.Conversation, error) {
	var r ConversationsResult
	if err := c.Call(ctx, "conversations", nil, &r); err != nil {
		return nil, err
	}
	out := make([]client.Conversation, 0, len(r.Conversations))
	for _, cv := range r.Conversations {
		out = append(out, *cv.SDK())
	}
	return out, nil
}

// Conversation returns one conversation.
func (c *Client) Conversation(ctx context.Context, conv protocol.ConversationID) (*client.Conversation, error) {
	var cv Conversation
	if err := c.Call(ctx, "conversation", ConversationParams{Conversation: int64(conv)}, &cv); err != nil {
		return nil, err
	}
	return cv.SDK(), nil
}

// History returns a conversation's history with its system lines.
func (c *Client) History(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*client.Message, error) {
	return c.entries(ctx, "history", conv, after, last)
}

// Messages returns a conversation's messages.
func (c *Client) Messages(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*client.Message, error) {
	return c.entries(ctx, "messages", conv, after, last)
}

func (c *Client) entries(ctx context.Context, method string, conv protocol.ConversationID, after int64, last int) ([]*client.Message, error) {
	var r MessagesResult
	if err := c.Call(ctx, method, HistoryParams{Conversation: int64(conv), After: after, Last: last}, &r); err != nil {
		return nil, err
	}
	return sdkMessages(method, r.Messages)
}

// sdkMessages converts the messages of a result of method.
func sdkMessages(method string, ms []*Message) ([]*client.Message, error) {
	out := make([]*client.Message, 0, len(ms))
	for _, m := range ms {
		sm, err := m.SDK()
		if err != nil {
			return nil, fmt.Errorf("parley daemon: %s: %w", method, err)
		}
		out = append(out, sm)
	}
	return out, nil
}

// Members lists the devices of a conversation.
func (c *Client) Members(ctx context.Context, conv protocol.ConversationID) ([]client.Member, error) {
	var r MembersResult
	if err := c.Call(ctx, "members", ConversationParams{Conversation: int64(conv)}, &r); err != nil {
		return nil, err
	}
	out := make([]client.Member, 0, len(r.Members))
	for _, m := range r.Members {
		out = append(out, m.SDK())
	}
	return out, nil
}

// Send sends a text message. As with the SDK, a message queued because
// the server is unreachable is returned with an error wrapping
// client.ErrServerUnreachable. Only opts.ReplyTo and opts.Mentions are
// supported.
func (c *Client) Send(ctx context.Context, conv protocol.ConversationID, text string, opts client.SendOptions) (*client.Message, error) {
	if opts.Caption != "" || opts.MediaType != "" {
		return nil, errors.New("parley daemon: send: captions and media types are for files (SendFile)")
	}
	p := SendParams{Conversation: int64(conv), Text: text}
	if opts.Mentions != nil {
		p.Mentions = &opts.Mentions
	}
	if !opts.ReplyTo.IsZero() {
		p.ReplyTo = opts.ReplyTo.String()
	}
	return c.sent(ctx, "send", p)
}

// sent calls send or send_file and converts the message sent.
func (c *Client) sent(ctx context.Context, method string, params any) (*client.Message, error) {
	var r SendResult
	if err := c.Call(ctx, method, params, &r); err != nil {
		return nil, err
	}
	if r.Message == nil {
		return nil, fmt.Errorf("parley daemon: %s: no message in the result", method)
	}
	m, err := r.Message.SDK()
	if err != nil {
		return nil, fmt.Errorf("parley daemon: %s: %w", method, err)
	}
	if r.Queued != nil {
		return m, r.Queued
	}
	return m, nil
}

// Sync fetches and applies what the server has for the device.
func (c *Client) Sync(ctx context.Context) error { return c.Call(ctx, "sync", nil, nil) }

// MarkRead marks a conversation read and sends a read receipt.
func (c *Client) MarkRead(ctx context.Context, conv protocol.ConversationID) error {
	return c.Call(ctx, "mark_read", ConversationParams{Conversation: int64(conv)}, nil)
}

// SendTyping tells the conversation's other members that this user
// started (typing true) or stopped typing; see client.Client.SendTyping.
func (c *Client) SendTyping(ctx context.Context, conv protocol.ConversationID, typing bool) error {
	return c.Call(ctx, "send_typing", TypingParams{Conversation: int64(conv), Typing: typing}, nil)
}

// MarkReadUpTo moves the read position of a conversation, without
// receipt.
func (c *Client) MarkReadUpTo(ctx context.Context, conv protocol.ConversationID, upTo int64) error {
	return c.Call(ctx, "mark_read_up_to", MarkParams{Conversation: int64(conv), Seq: upTo}, nil)
}

// MarkShown records that a conversation was shown up to seq upTo.
func (c *Client) MarkShown(ctx context.Context, conv protocol.ConversationID, upTo int64) error {
	return c.Call(ctx, "mark_shown", MarkParams{Conversation: int64(conv), Seq: upTo}, nil)
}

// Unseen returns the stored messages not shown yet, as events.
func (c *Client) Unseen(ctx context.Context) ([]client.Event, error) {
	var r EventsResult
	if err := c.Call(ctx, "unseen", nil, &r); err != nil {
		return nil, err
	}
	out := make([]client.Event, 0, len(r.Events))
	for _, ev := range r.Events {
		sev, err := ev.SDK()
		if err != nil {
			return nil, fmt.Errorf("parley daemon: unseen: %w", err)
		}
		out = append(out, sev)
	}
	return out, nil
}

// NewDirect opens the 1:1 conversation with a user.
func (c *Client) NewDirect(ctx context.Context, user string) (protocol.ConversationID, error) {
	var r NewConversationResult
	err := c.Call(ctx, "new_direct", NewDirectParams{User: user}, &r)
	return protocol.ConversationID(r.Conversation), err
}

// NewGroup creates a group with a title ("" for none) and members.
func (c *Client) NewGroup(ctx context.Context, title string, members ...string) (protocol.ConversationID, error) {
	var r NewConversationResult
	err := c.Call(ctx, "new_group", NewGroupParams{Title: title, Members: append([]string{}, members...)}, &r)
	return protocol.ConversationID(r.Conversation), err
}

// NewChannel creates a channel (only admins post) with a title and
// members.
func (c *Client) NewChannel(ctx context.Context, title string, members ...string) (protocol.ConversationID, error) {
	var r NewConversationResult
	err := c.Call(ctx, "new_channel", NewGroupParams{Title: title, Members: append([]string{}, members...)}, &r)
	return protocol.ConversationID(r.Conversation), err
}

// Add adds a user (all devices) to a conversation.
func (c *Client) Add(ctx context.Context, conv protocol.ConversationID, user string) error {
	return c.Call(ctx, "add", UserParams{Conversation: int64(conv), User: user}, nil)
}

// AddUsers adds users (all their devices) to a conversation, any number
// at once (client.Client.AddUsers); the daemon's progress reaches the
// function of client.WithProgress on ctx.
func (c *Client) AddUsers(ctx context.Context, conv protocol.ConversationID, users ...string) error {
	return c.Call(ctx, "add", UserParams{Conversation: int64(conv), Users: append([]string{}, users...)}, nil)
}

// Remove removes a user (all devices) from a conversation.
func (c *Client) Remove(ctx context.Context, conv protocol.ConversationID, user string) error {
	return c.Call(ctx, "remove", UserParams{Conversation: int64(conv), User: user}, nil)
}

// Leave leaves a conversation.
func (c *Client) Leave(ctx context.Context, conv protocol.ConversationID) error {
	return c.Call(ctx, "leave", ConversationParams{Conversation: int64(conv)}, nil)
}

// SetName renames a conversation for every member.
func (c *Client) SetName(ctx context.Context, conv protocol.ConversationID, name string) error {
	return c.Call(ctx, "set_name", TextParams{Conversation: int64(conv), Text: name}, nil)
}

// SetTopic sets a conversation's topic for every member.
func (c *Client) SetTopic(ctx context.Context, conv protocol.ConversationID, topic string) error {
	return c.Call(ctx, "set_topic", TextParams{Conversation: int64(conv), Text: topic}, nil)
}

// React adds (or with remove, removes) a reaction to a message.
func (c *Client) React(ctx context.Context, conv protocol.ConversationID, target content.MessageID, emoji string, remove bool) error {
	return c.Call(ctx, "react", TargetParams{Conversation: int64(conv), Message: target.String(), Emoji: emoji, Remove: remove}, nil)
}

// Edit replaces the text of one of this user's messages.
func (c *Client) Edit(ctx context.Context, conv protocol.ConversationID, target content.MessageID, text string) error {
	return c.Call(ctx, "edit", TargetParams{Conversation: int64(conv), Message: target.String(), Text: text}, nil)
}

// Delete deletes one of this user's messages for everyone.
func (c *Client) Delete(ctx context.Context, conv protocol.ConversationID, target content.MessageID) error {
	return c.Call(ctx, "delete", TargetParams{Conversation: int64(conv), Message: target.String()}, nil)
}

// Recreate starts a new conversation with the members of an unsafe one.
func (c *Client) Recreate(ctx context.Context, conv protocol.ConversationID) (protocol.ConversationID, error) {
	var r NewConversationResult
	err := c.Call(ctx, "recreate", ConversationParams{Conversation: int64(conv)}, &r)
	return protocol.ConversationID(r.Conversation), err
}

// SafetyNumber returns the safety number of this account and user, from
// the identity key pinned for user (pinning it on first use). Its Number
// is nil: compare a scanned code with QRPayload.
func (c *Client) SafetyNumber(ctx context.Context, user string) (*client.SafetyNumber, error) {
	return c.safetyNumber(ctx, "safety_number", user)
}

// SafetyNumberPending returns the safety number of the key that user
// presents now, when it changed or the pinned one is lost.
func (c *Client) SafetyNumberPending(ctx context.Context, user string) (*client.SafetyNumber, error) {
	return c.safetyNumber(ctx, "safety_number_pending", user)
}

func (c *Client) safetyNumber(ctx context.Context, method, user string) (*client.SafetyNumber, error) {
	var r SafetyNumber
	if err := c.Call(ctx, method, IdentityParams{User: user}, &r); err != nil {
		return nil, err
	}
	sn, err := r.SDK()
	if err != nil {
		return nil, fmt.Errorf("parley daemon: %s: %w", method, err)
	}
	return sn, nil
}

// MarkVerified records that the safety number with user was compared.
func (c *Client) MarkVerified(ctx context.Context, user string) error {
	return c.Call(ctx, "mark_verified", IdentityParams{User: user}, nil)
}

// AcknowledgeIdentity accepts the new identity key of user whose safety
// number has the given digits.
func (c *Client) AcknowledgeIdentity(ctx context.Context, user, digits string) error {
	return c.Call(ctx, "acknowledge_identity", AcknowledgeParams{User: user, Digits: digits}, nil)
}

// IdentityChanged reports whether user's identity key changed and awaits
// acknowledgement.
func (c *Client) IdentityChanged(ctx context.Context, user string) (bool, error) {
	var r IdentityChangedResult
	err := c.Call(ctx, "identity_changed", IdentityParams{User: user}, &r)
	return r.Changed, err
}

// TrustRolledBack reports whether this profile lost the identity key it
// had pinned for user.
func (c *Client) TrustRolledBack(ctx context.Context, user string) (bool, error) {
	var r TrustRolledBackResult
	err := c.Call(ctx, "trust_rolled_back", IdentityParams{User: user}, &r)
	return r.RolledBack, err
}

// SendFile sends the file at path as an attachment; the daemon reads it,
// so a relative path is made absolute here first. As with Send, a
// message queued because the server is unreachable comes with an error
// wrapping client.ErrServerUnreachable.
func (c *Client) SendFile(ctx context.Context, conv protocol.ConversationID, path string, opts client.SendOptions) (*client.Message, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("parley daemon: send file %s: %w", path, err)
	}
	p := SendFileParams{Conversation: int64(conv), Path: abs, Caption: opts.Caption, MediaType: opts.MediaType}
	if !opts.ReplyTo.IsZero() {
		p.ReplyTo = opts.ReplyTo.String()
	}
	return c.sent(ctx, "send_file", p)
}

// Download is DownloadWith without options: it never overwrites a file.
func (c *Client) Download(ctx context.Context, attachmentID, dst string) (string, error) {
	return c.DownloadWith(ctx, attachmentID, dst, client.DownloadOptions{})
}

// DownloadWith writes the attachment to dst (a file or a directory) as
// the SDK's DownloadWith does; the daemon writes it, so a relative dst
// is made absolute here first. It returns the path written.
func (c *Client) DownloadWith(ctx context.Context, attachmentID, dst string, opts client.DownloadOptions) (string, error) {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return "", fmt.Errorf("parley daemon: download attachment %s to %s: %w", attachmentID, dst, err)
	}
	var r DownloadResult
	if err := c.Call(ctx, "download", DownloadParams{Attachment: attachmentID, Dst: abs, Force: opts.Force}, &r); err != nil {
		return "", err
	}
	return r.Path, nil
}

// CreateInvite asks the server for an invite that allows uses
// registrations during ttl (whole seconds); only an administrator's
// account may. A refusal of the server matches *client.ServerError with
// errors.As.
func (c *Client) CreateInvite(ctx context.Context, uses int, ttl time.Duration) (*protocol.InviteInfo, error) {
	if uses < 1 || ttl < time.Second {
		return nil, fmt.Errorf("client: create invite: %d uses for %v: want at least 1 use and 1s", uses, ttl)
	}
	var info protocol.InviteInfo
	if err := c.Call(ctx, "create_invite", CreateInviteParams{Uses: uses, TTLSeconds: int64(ttl / time.Second)}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// InviteLink returns the pasteable link of an invite code on this
// profile's server (from whoami).
func (c *Client) InviteLink(code string) (protocol.InviteLink, error) {
	acct, err := c.Whoami()
	if err != nil {
		return protocol.InviteLink{}, err
	}
	return protocol.InviteLink{Server: acct.Server, Code: code, Fingerprint: acct.TLSFingerprint}, nil
}
