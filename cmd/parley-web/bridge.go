//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"syscall/js"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/client/kvstore"
	"github.com/parley-chat/parley/protocol"
)

// storeDB is the IndexedDB database of the store (client/kvstore).
const storeDB = "parley"

// bridge is globalThis.parley: at most one open profile at a time.
type bridge struct {
	log *slog.Logger

	mu sync.Mutex
	s  *session // the open profile, nil when closed
	// opening is set while open runs, so that a second open fails
	// rather than races it.
	opening bool
	// cancelLink ends the link under way (link.go); nil when none runs.
	cancelLink context.CancelFunc
}

// session is an open profile: the client, the daemon API server that
// connect's connections reach, and the sync loop once started.
type session struct {
	c      *client.Client
	ln     *daemonapi.PipeListener
	unlock func()
	// ctx ends with close: the server, the sync loop and the page's
	// connections stop.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// started is set once start ran the sync loop.
	started bool
}

// object returns the bridge's JavaScript object. Its functions are never
// released: they live as long as the page.
func (b *bridge) object() js.Value {
	o := js.Global().Get("Object").New()
	async := func(name string, f func(args []js.Value) (any, error)) {
		o.Set(name, js.FuncOf(func(_ js.Value, args []js.Value) any {
			return promise(func() (any, error) { return f(args) })
		}))
	}
	async("open", b.open)
	async("register", b.register)
	async("upload", b.upload)
	async("download", b.download)
	async("close", b.close)
	async("link", b.link)
	o.Set("cancelLink", js.FuncOf(b.stopLink))
	o.Set("start", js.FuncOf(b.start))
	o.Set("connect", js.FuncOf(b.connect))
	o.Set("qr", js.FuncOf(b.qr))
	return o
}

// origin is the page's origin, the server's URL.
func origin() string {
	return js.Global().Get("location").Get("origin").String()
}

// session returns the open profile.
func (b *bridge) session() (*session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s == nil {
		return nil, &codedError{code: codeNotOpen, err: errors.New("parley: no profile is open: call parley.open first")}
	}
	return b.s, nil
}

// open implements parley.open({passphrase}).
func (b *bridge) open(args []js.Value) (any, error) {
	pass, err := optString(arg(args, 0), "passphrase")
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.s != nil || b.opening {
		b.mu.Unlock()
		return nil, errors.New("parley: open: the profile is open already")
	}
	b.opening = true
	b.mu.Unlock()
	s, err := b.openSession([]byte(pass))
	b.mu.Lock()
	b.s, b.opening = s, false
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := map[string]any{"registered": false, "account": nil}
	if a, err := s.c.Whoami(); err == nil {
		acct, err := toJS(daemonapi.NewAccount(a, ""))
		if err != nil {
			return nil, err
		}
		res["registered"], res["account"] = true, acct
	}
	return res, nil
}

// openSession locks the profile, opens its store and client and starts
// the daemon API server.
func (b *bridge) openSession(passphrase []byte) (*session, error) {
	ctx := context.Background()
	unlock, err := lockProfile()
	if err != nil {
		return nil, err
	}
	key, err := storeKey(passphrase)
	if err != nil {
		unlock()
		return nil, err
	}
	backend, err := kvstore.OpenIndexedDB(ctx, storeDB)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("parley: open the store: %w", err)
	}
	st, err := kvstore.Open(ctx, backend, key)
	clear(key)
	if err != nil {
		backend.Close()
		unlock()
		return nil, fmt.Errorf("parley: open the store: %w", err)
	}
	// The browser makes the requests (fetch) and checks the server's
	// certificate: no TLS settings, and the server is the page's origin.
	c, err := client.Open(ctx, client.Config{Store: st, ServerURL: origin(), Logger: b.log})
	if err != nil {
		st.Close()
		unlock()
		return nil, err
	}
	s := &session{c: c, ln: daemonapi.NewPipeListener(), unlock: unlock}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	srv := daemonapi.NewServer(c, "", b.log)
	s.wg.Go(func() {
		if err := srv.Serve(s.ctx, s.ln); err != nil {
			b.log.Error("daemon API stopped", "err", err)
		}
	})
	return s, nil
}

// register implements parley.register({invite, name}).
func (b *bridge) register(args []js.Value) (any, error) {
	s, err := b.session()
	if err != nil {
		return nil, err
	}
	invite, err := optString(arg(args, 0), "invite")
	if err != nil {
		return nil, err
	}
	name, err := optString(arg(args, 0), "name")
	if err != nil {
		return nil, err
	}
	code, err := inviteCode(invite, origin())
	if err != nil {
		return nil, err
	}
	a, err := s.c.Register(context.Background(), origin(), code, name)
	if err != nil {
		return nil, err
	}
	return toJS(daemonapi.NewAccount(a, ""))
}

// inviteCode returns the code of an invite link or bare code. A link must
// name the page's origin: the server is always the page's.
func inviteCode(invite, origin string) (string, error) {
	invite = strings.TrimSpace(invite)
	if !strings.Contains(invite, "#") {
		return invite, nil
	}
	l, err := protocol.ParseInviteLink(invite)
	if err != nil {
		return "", invalid("invite: %v", err)
	}
	if !strings.EqualFold(strings.TrimRight(l.Server, "/"), origin) {
		return "", invalid("invite: the link is for %s, and this page is %s: open the link itself", l.Server, origin)
	}
	return l.Code, nil
}

// start implements parley.start(): the sync loop runs until close.
func (b *bridge) start(js.Value, []js.Value) any {
	s, err := b.session()
	if err != nil {
		b.log.Error("parley.start", "err", err)
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.started {
		return nil
	}
	s.started = true
	s.wg.Go(func() {
		if err := s.c.Run(s.ctx); err != nil && s.ctx.Err() == nil {
			b.log.Error("sync loop stopped", "err", err)
		}
	})
	return nil
}

// upload implements parley.upload({conversation, data, name, type,
// reply}).
func (b *bridge) upload(args []js.Value) (any, error) {
	s, err := b.session()
	if err != nil {
		return nil, err
	}
	o := arg(args, 0)
	cv := field(o, "conversation")
	if cv.Type() != js.TypeNumber || cv.Float() < 1 || cv.Float() > 1<<53 || cv.Float() != math.Trunc(cv.Float()) {
		return nil, invalid("upload: conversation: want a conversation number")
	}
	data, err := bytesFromJS(field(o, "data"))
	if err != nil {
		return nil, invalid("upload: data: %v", err)
	}
	name, err := optString(o, "name")
	if err != nil {
		return nil, err
	}
	var opts client.SendOptions
	if opts.MediaType, err = optString(o, "type"); err != nil {
		return nil, err
	}
	reply, err := optString(o, "reply")
	if err != nil {
		return nil, err
	}
	if reply != "" {
		if opts.ReplyTo, err = content.ParseMessageID(reply); err != nil {
			return nil, invalid("upload: reply %q: want a full message id (32 hex digits)", reply)
		}
	}
	msg, err := s.c.SendData(s.ctx, protocol.ConversationID(cv.Int()), bytes.NewReader(data), name, opts)
	// A message queued because the server is unreachable is sent when
	// the connection is back: the page shows it pending.
	if err != nil && (msg == nil || msg.State != client.Pending || !errors.Is(err, client.ErrServerUnreachable)) {
		return nil, err
	}
	return toJS(daemonapi.NewMessage(msg))
}

// download implements parley.download(attachmentID).
func (b *bridge) download(args []js.Value) (any, error) {
	s, err := b.session()
	if err != nil {
		return nil, err
	}
	id := arg(args, 0)
	if id.Type() != js.TypeString || id.String() == "" {
		return nil, invalid("download: want an attachment id")
	}
	var buf bytes.Buffer
	a, err := s.c.DownloadData(s.ctx, id.String(), &buf)
	if err != nil {
		return nil, err // what buf holds is not checked: dropped
	}
	// The name is the sender's: made safe, as a file name the page may
	// offer to save under.
	name := client.SafeFileName(a.FileName, "attachment")
	return map[string]any{"data": bytesToJS(buf.Bytes()), "name": name, "type": a.MediaType}, nil
}

// qr implements parley.qr(data): the PNG of the QR code of a string or
// of the bytes of a Uint8Array (a safety number's qr_payload, decoded),
// or null when data cannot be encoded.
func (b *bridge) qr(_ js.Value, args []js.Value) any {
	v := arg(args, 0)
	var data []byte
	switch {
	case v.Type() == js.TypeString:
		data = []byte(v.String())
	case v.InstanceOf(js.Global().Get("Uint8Array")):
		data, _ = bytesFromJS(v)
	default:
		b.log.Error("parley.qr: want a string or a Uint8Array")
		return nil
	}
	png, err := qrPNG(data)
	if err != nil {
		b.log.Error("parley.qr", "err", err)
		return nil
	}
	return bytesToJS(png)
}

// close implements parley.close(): it stops the sync loop, the server
// and the page's connections, closes the client and its store and
// releases the profile.
func (b *bridge) close([]js.Value) (any, error) {
	b.mu.Lock()
	s := b.s
	b.s = nil
	b.mu.Unlock()
	if s == nil {
		return nil, nil
	}
	s.cancel()
	s.wg.Wait()
	err := s.c.Close()
	s.unlock()
	if err != nil {
		return nil, fmt.Errorf("parley: close: %w", err)
	}
	return nil, nil
}
