//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

// Linking this browser to an existing account (docs/web.md,
// parley.link): the bridge runs client.Client.Link with the page's
// origin as the server and calls the page back with the code to show
// and then the confirmation to compare; a device of the account
// completes the link (parley devices link CODE, or the devices screen
// of another browser).

// link implements parley.link({name, code, confirmation}): code and
// confirmation are the page's callbacks.
func (b *bridge) link(args []js.Value) (any, error) {
	s, err := b.session()
	if err != nil {
		return nil, err
	}
	o := arg(args, 0)
	name, err := optString(o, "name")
	if err != nil {
		return nil, err
	}
	onCode, onConfirmation := field(o, "code"), field(o, "confirmation")
	for what, f := range map[string]js.Value{"code": onCode, "confirmation": onConfirmation} {
		if f.Type() != js.TypeFunction && !f.IsUndefined() && !f.IsNull() {
			return nil, invalid("link: %s: want a function", what)
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	b.mu.Lock()
	if b.cancelLink != nil {
		b.mu.Unlock()
		return nil, errors.New("parley: link: this browser is being linked already")
	}
	b.cancelLink = cancel
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.cancelLink = nil
		b.mu.Unlock()
	}()
	a, err := s.c.Link(ctx, origin(), client.LinkOptions{
		DeviceName: name,
		Code: func(lc client.LinkCode) {
			code := map[string]any{"code": lc.Code, "qr_payload": lc.QRPayload, "expires": lc.Expires.UTC().Format(time.RFC3339)}
			if png, err := qrPNG([]byte(lc.QRPayload)); err == nil {
				code["qr"] = bytesToJS(png)
			}
			b.callback("link: code", onCode, code)
		},
		Confirmation: func(conf string) { b.callback("link: confirmation", onConfirmation, conf) },
	})
	if err != nil {
		return nil, err
	}
	return toJS(daemonapi.NewAccount(a, ""))
}

// stopLink implements parley.cancelLink(): the link under way ends (its
// Promise rejects) and the mailbox at the server is deleted.
func (b *bridge) stopLink(js.Value, []js.Value) any {
	b.mu.Lock()
	cancel := b.cancelLink
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// callback calls a function of the page, if it is one, with args; what
// it throws is logged, not raised in Go.
func (b *bridge) callback(what string, f js.Value, args ...any) {
	if f.Type() != js.TypeFunction {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("parley: the page's callback failed", "callback", what, "err", fmt.Sprint(r))
		}
	}()
	f.Invoke(args...)
}

// qrPNG draws the QR code of data as a PNG at 8 pixels per module.
func qrPNG(data []byte) ([]byte, error) {
	q, err := qrcode.New(string(data), qrcode.Medium)
	if err != nil {
		return nil, err
	}
	return q.PNG(-8) // 8 pixels per module: sharp at any scale
}
