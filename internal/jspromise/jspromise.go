//go:build js

// Package jspromise waits for JavaScript Promises from Go compiled to
// WebAssembly, for the browser's client (the SDK's transport and the
// program's bridge). A js.Func callback runs on the JavaScript event loop
// and must never wait for it: Await must be called in a goroutine that
// is not a callback's, and its callbacks only fill a channel.
package jspromise

import (
	"errors"
	"fmt"
	"syscall/js"
)

// Await waits for the Promise p and returns its value, or its rejection
// as an error (Error).
func Await(p js.Value) (js.Value, error) {
	type outcome struct {
		v   js.Value
		err error
	}
	ch := make(chan outcome, 1)
	ok := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- outcome{v: arg(args)}
		return nil
	})
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- outcome{err: Error(arg(args))}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	p.Call("then", ok, fail)
	r := <-ch
	return r.v, r.err
}

// Error converts a JavaScript exception or rejection to an error that
// keeps its name and message ("NotAllowedError: …").
func Error(v js.Value) error {
	if v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString {
		if name := v.Get("name"); name.Type() == js.TypeString {
			return fmt.Errorf("%s: %s", name.String(), v.Get("message").String())
		}
		return errors.New(v.Get("message").String())
	}
	return fmt.Errorf("javascript: %s", js.Global().Get("String").Invoke(v).String())
}

// arg returns the first argument of a callback, or undefined.
func arg(args []js.Value) js.Value {
	if len(args) > 0 {
		return args[0]
	}
	return js.Undefined()
}
