//go:build js && wasm

package main

import (
	"fmt"
	"syscall/js"

	"github.com/parley-chat/parley/client"
)

// profileLock names the Web Lock that an open profile holds: one tab or
// window at a time may use the origin's profile, as one process may use
// a profile directory (client.ErrProfileBusy), since each keeps MLS state
// in memory and two would fork it.
const profileLock = "parley-profile"

// lockProfile takes the profile's Web Lock without waiting and returns
// its release. It fails with an error wrapping client.ErrProfileBusy
// when another tab holds it. A browser without Web Locks is not locked.
func lockProfile() (release func(), err error) {
	locks := js.Global().Get("navigator").Get("locks")
	if locks.IsUndefined() {
		return func() {}, nil
	}
	got := make(chan js.Value, 1) // the Promise's resolve, or undefined
	cb := js.FuncOf(func(_ js.Value, args []js.Value) any {
		if l := arg(args, 0); l.IsNull() || l.IsUndefined() {
			got <- js.Undefined()
			return nil
		}
		// The lock is held until the Promise returned here settles.
		var resolve js.Value
		exec := js.FuncOf(func(_ js.Value, a []js.Value) any {
			resolve = a[0]
			return nil
		})
		p := js.Global().Get("Promise").New(exec)
		exec.Release()
		got <- resolve
		return p
	})
	defer cb.Release()
	locks.Call("request", profileLock, map[string]any{"ifAvailable": true}, cb)
	resolve := <-got
	if resolve.IsUndefined() {
		return nil, fmt.Errorf("parley: open: %w (in another tab or window)", client.ErrProfileBusy)
	}
	return func() { resolve.Invoke() }, nil
}
