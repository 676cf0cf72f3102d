//go:build js && wasm

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall/js"

	"github.com/parley-chat/parley/client/daemonapi"
)

// The helpers of this file bridge Go and JavaScript. A js.Func callback
// runs on the JavaScript event loop and must never wait for it: the
// bridge's functions start a goroutine and return a Promise, and Go code
// waits for JavaScript Promises and IndexedDB requests only in
// goroutines, through channels that the callbacks fill without blocking.

// outcome is the value or error of an awaited JavaScript operation.
type outcome struct {
	v   js.Value
	err error
}

// promise returns a Promise settled by f, which runs in a goroutine: it
// resolves with f's value (converted by js.ValueOf) or rejects with
// jsError of f's error.
func promise(f func() (any, error)) js.Value {
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	defer executor.Release() // the executor runs within the constructor
	return js.Global().Get("Promise").New(executor)
}

// arg returns args[i], or undefined.
func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// codedError is an error of the bridge with its own code.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// Codes of the bridge's own errors, besides the daemon API's kinds.
const (
	codePassphraseRequired = "passphrase_required"
	codeInvalidParams      = "invalid_params"
	codeNotOpen            = "not_open"
)

// invalid is the error of an argument from the page that does not fit.
func invalid(format string, args ...any) error {
	return &codedError{code: codeInvalidParams, err: fmt.Errorf("parley: "+format, args...)}
}

// jsError converts an error to a JavaScript Error whose code is the
// daemon API's kind of the error (or the bridge's own code) and whose
// data, when the kind has details (the user of identity_changed, the
// server's answer…), is the daemon API's error data.
func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	var ce *codedError
	if errors.As(err, &ce) {
		e.Set("code", ce.code)
		return e
	}
	de := daemonapi.ErrorOf(err)
	if de.Data == nil { // an error of the API itself, such as bad params
		e.Set("code", codeInvalidParams)
		return e
	}
	e.Set("code", de.Data.Kind)
	if d := *de.Data; d.Status != 0 || d.Server != nil || d.User != "" || d.Alarm != nil {
		if v, err := toJS(d); err == nil {
			e.Set("data", v)
		}
	}
	return e
}

// toJS converts v to JavaScript through its JSON encoding, so that the
// page sees the daemon API's schema.
func toJS(v any) (js.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return js.Undefined(), fmt.Errorf("parley: encode %T: %v", v, err)
	}
	return js.Global().Get("JSON").Call("parse", string(b)), nil
}

// bytesFromJS copies a Uint8Array.
func bytesFromJS(v js.Value) ([]byte, error) {
	if !v.InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, errors.New("not a Uint8Array")
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// bytesToJS copies b into a new Uint8Array.
func bytesToJS(b []byte) js.Value {
	v := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(v, b)
	return v
}

// field returns the property name of an options object, undefined when
// the object is not one.
func field(obj js.Value, name string) js.Value {
	if obj.Type() != js.TypeObject {
		return js.Undefined()
	}
	return obj.Get(name)
}

// optString returns a string property, "" when undefined or null.
func optString(obj js.Value, name string) (string, error) {
	v := field(obj, name)
	switch v.Type() {
	case js.TypeUndefined, js.TypeNull:
		return "", nil
	case js.TypeString:
		return v.String(), nil
	}
	return "", invalid("%s: want a string", name)
}
