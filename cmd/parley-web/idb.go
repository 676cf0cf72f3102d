//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"syscall/js"

	"github.com/parley-chat/parley/internal/jspromise"
)

// request waits for an IndexedDB request to succeed or fail, in a
// goroutine that is not a callback's, and returns its result.
func request(req js.Value) (js.Value, error) {
	ch := make(chan outcome, 1)
	ok := js.FuncOf(func(js.Value, []js.Value) any {
		ch <- outcome{v: req.Get("result")}
		return nil
	})
	fail := js.FuncOf(func(js.Value, []js.Value) any {
		ch <- outcome{err: domError(req.Get("error"))}
		return nil
	})
	defer ok.Release()
	defer fail.Release()
	req.Set("onsuccess", ok)
	req.Set("onerror", fail)
	r := <-ch
	req.Set("onsuccess", js.Null())
	req.Set("onerror", js.Null())
	return r.v, r.err
}

// domError converts a DOMException (or null) to an error.
func domError(v js.Value) error {
	if v.IsNull() || v.IsUndefined() {
		return errors.New("unknown IndexedDB error")
	}
	return jspromise.Error(v)
}

// openDB opens the IndexedDB database name at version 1, creating the
// object store of the name objects when the database is new.
func openDB(name, objects string) (js.Value, error) {
	idb := js.Global().Get("indexedDB")
	if idb.IsUndefined() || idb.IsNull() {
		return js.Value{}, fmt.Errorf("indexeddb %s: not available in this browser", name)
	}
	req := idb.Call("open", name, 1)
	// onupgradeneeded runs before onsuccess, within the versionchange
	// transaction, and does not wait.
	upgrade := js.FuncOf(func(js.Value, []js.Value) any {
		req.Get("result").Call("createObjectStore", objects)
		return nil
	})
	defer upgrade.Release()
	req.Set("onupgradeneeded", upgrade)
	db, err := request(req)
	req.Set("onupgradeneeded", js.Null())
	if err != nil {
		return js.Value{}, fmt.Errorf("indexeddb %s: open: %w", name, err)
	}
	return db, nil
}

// idbGet reads the value of key in the object store objects of db;
// undefined if there is none.
func idbGet(db js.Value, objects, key string) (js.Value, error) {
	tx := db.Call("transaction", objects, "readonly")
	return request(tx.Call("objectStore", objects).Call("get", key))
}

// idbAdd stores v under key in the object store objects of db, unless
// the key holds a value already, and waits until the transaction is
// durable.
func idbAdd(db js.Value, objects, key string, v js.Value) error {
	tx := db.Call("transaction", objects, "readwrite")
	done := txDone(tx)
	if _, err := request(tx.Call("objectStore", objects).Call("add", v, key)); err != nil {
		<-done
		return err
	}
	return <-done
}

// txDone returns a channel that receives the outcome of a transaction:
// nil once it committed, else why it failed or was aborted.
func txDone(tx js.Value) <-chan error {
	ch := make(chan error, 1)
	var complete, fail js.Func
	finish := func(err error) {
		select {
		case ch <- err:
		default: // an error followed by the abort it causes
		}
		tx.Set("oncomplete", js.Null())
		tx.Set("onerror", js.Null())
		tx.Set("onabort", js.Null())
		complete.Release()
		fail.Release()
	}
	complete = js.FuncOf(func(js.Value, []js.Value) any {
		finish(nil)
		return nil
	})
	fail = js.FuncOf(func(js.Value, []js.Value) any {
		finish(fmt.Errorf("transaction aborted: %w", domError(tx.Get("error"))))
		return nil
	})
	tx.Set("oncomplete", complete)
	tx.Set("onerror", fail)
	tx.Set("onabort", fail)
	return ch
}
