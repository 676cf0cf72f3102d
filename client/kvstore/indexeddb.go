//go:build js && wasm

package kvstore

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"
)

// The IndexedDB backend keeps the records in the object store "records"
// of one database, each value a Uint8Array under its record key. Load
// reads them all in one read-only transaction; Commit writes them in one
// read-write transaction with strict durability and returns once its
// complete event fired, when the browser has written them to disk.
//
// Go code waits for IndexedDB's events on channels: the js.Func
// callbacks only send what they saw, without blocking, since a callback
// that blocked would stop the event loop the wait depends on.

const objectStore = "records"

// idbBackend is a [Backend] on an IndexedDB database.
type idbBackend struct {
	name string
	db   js.Value
}

// OpenIndexedDB opens (creating it if needed) the IndexedDB database name
// of the page's origin as a [Backend].
func OpenIndexedDB(ctx context.Context, name string) (Backend, error) {
	var db js.Value
	err := catch(func() error {
		factory := js.Global().Get("indexedDB")
		if !factory.Truthy() {
			return errors.New("IndexedDB is not available")
		}
		req := factory.Call("open", name, 1)
		upgrade := js.FuncOf(func(js.Value, []js.Value) any {
			// Runs in the version change transaction: it must create
			// the object store now, and does not block.
			d := req.Get("result")
			if !d.Get("objectStoreNames").Call("contains", objectStore).Bool() {
				d.Call("createObjectStore", objectStore)
			}
			return nil
		})
		defer upgrade.Release()
		req.Set("onupgradeneeded", upgrade)
		defer req.Set("onupgradeneeded", js.Null())
		r, err := await(ctx, req)
		if err != nil {
			return err
		}
		db = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kvstore: open IndexedDB %q: %w", name, err)
	}
	return &idbBackend{name: name, db: db}, nil
}

// DeleteIndexedDB deletes the IndexedDB database name with its records.
func DeleteIndexedDB(ctx context.Context, name string) error {
	err := catch(func() error {
		_, err := await(ctx, js.Global().Get("indexedDB").Call("deleteDatabase", name))
		return err
	})
	if err != nil {
		return fmt.Errorf("kvstore: delete IndexedDB %q: %w", name, err)
	}
	return nil
}

// Load reads every record in one read-only transaction.
func (b *idbBackend) Load(ctx context.Context) (map[string][]byte, error) {
	var out map[string][]byte
	err := catch(func() error {
		st := b.db.Call("transaction", objectStore, "readonly").Call("objectStore", objectStore)
		// Both requests are made before waiting, so that they run in
		// the same transaction and see the same records.
		keysW, valuesW := watch(st.Call("getAllKeys")), watch(st.Call("getAll"))
		keys, kerr := keysW.wait(ctx)
		values, verr := valuesW.wait(ctx)
		if err := errors.Join(kerr, verr); err != nil {
			return err
		}
		n := keys.Length()
		if values.Length() != n {
			return fmt.Errorf("%d keys but %d values", n, values.Length())
		}
		out = make(map[string][]byte, n)
		u8 := js.Global().Get("Uint8Array")
		for i := range n {
			k, v := keys.Index(i), values.Index(i)
			if k.Type() != js.TypeString || !v.InstanceOf(u8) {
				return fmt.Errorf("record %d: key of type %s or value not a Uint8Array", i, k.Type())
			}
			buf := make([]byte, v.Length())
			js.CopyBytesToGo(buf, v)
			out[k.String()] = buf
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kvstore: IndexedDB %q: load: %w", b.name, err)
	}
	return out, nil
}

// Commit writes puts and deletes in one read-write transaction and
// returns when it completed (nil) or aborted (an error, nothing written).
// If ctx ends first, the transaction is aborted if it still can be, and
// Commit still reports what happened.
func (b *idbBackend) Commit(ctx context.Context, puts map[string][]byte, deletes []string) error {
	err := catch(func() error {
		opts := js.Global().Get("Object").New()
		opts.Set("durability", "strict")
		tx := b.db.Call("transaction", objectStore, "readwrite", opts)
		done := make(chan error, 1)
		send := func(err error) {
			select {
			case done <- err:
			default:
			}
		}
		complete := js.FuncOf(func(js.Value, []js.Value) any { send(nil); return nil })
		abort := js.FuncOf(func(js.Value, []js.Value) any {
			send(fmt.Errorf("transaction aborted: %w", domError(tx.Get("error"))))
			return nil
		})
		tx.Set("oncomplete", complete)
		tx.Set("onabort", abort)
		defer func() {
			tx.Set("oncomplete", js.Null())
			tx.Set("onabort", js.Null())
			complete.Release()
			abort.Release()
		}()
		if err := catch(func() error {
			st := tx.Call("objectStore", objectStore)
			u8 := js.Global().Get("Uint8Array")
			for k, v := range puts {
				a := u8.New(len(v))
				js.CopyBytesToJS(a, v)
				st.Call("put", a, k)
			}
			for _, k := range deletes {
				st.Call("delete", k)
			}
			if tx.Get("commit").Type() == js.TypeFunction {
				tx.Call("commit")
			}
			return nil
		}); err != nil {
			catch(func() error { tx.Call("abort"); return nil })
			<-done
			return err
		}
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			catch(func() error { tx.Call("abort"); return nil }) // throws once it completed
			return <-done
		}
	})
	if err != nil {
		return fmt.Errorf("kvstore: IndexedDB %q: commit: %w", b.name, err)
	}
	return nil
}

// Close closes the database connection.
func (b *idbBackend) Close() error {
	return catch(func() error { b.db.Call("close"); return nil })
}

// result is what a request's callback saw.
type result struct {
	v   js.Value
	err error
}

// watcher holds the handlers installed on an IDBRequest, which send its
// outcome on ch.
type watcher struct {
	req              js.Value
	ch               chan result
	success, failure js.Func
}

// watch installs handlers on an IDBRequest; wait collects its outcome.
func watch(req js.Value) *watcher {
	w := &watcher{req: req, ch: make(chan result, 1)}
	send := func(r result) {
		select {
		case w.ch <- r:
		default:
		}
	}
	w.success = js.FuncOf(func(js.Value, []js.Value) any { send(result{v: req.Get("result")}); return nil })
	w.failure = js.FuncOf(func(js.Value, []js.Value) any { send(result{err: domError(req.Get("error"))}); return nil })
	req.Set("onsuccess", w.success)
	req.Set("onerror", w.failure)
	return w
}

// wait waits for the outcome of the request, or the end of ctx, and
// removes the handlers.
func (w *watcher) wait(ctx context.Context) (js.Value, error) {
	var r result
	select {
	case r = <-w.ch:
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	w.req.Set("onsuccess", js.Null())
	w.req.Set("onerror", js.Null())
	w.success.Release()
	w.failure.Release()
	return r.v, r.err
}

// await watches a request and waits for it.
func await(ctx context.Context, req js.Value) (js.Value, error) {
	return watch(req).wait(ctx)
}

// domError turns a DOMException (or null) into an error.
func domError(e js.Value) error {
	if e.IsNull() || e.IsUndefined() {
		return errors.New("unknown IndexedDB error")
	}
	return fmt.Errorf("%s: %s", e.Get("name").String(), e.Get("message").String())
}

// catch runs f, turning an exception thrown by a JavaScript call into an
// error.
func catch(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if je, ok := p.(js.Error); ok {
				err = fmt.Errorf("%s", je.Error())
				return
			}
			panic(p)
		}
	}()
	return f()
}
