//go:build js && wasm

package main

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"syscall/js"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/internal/jspromise"
)

// The store key is 32 random bytes made on the first open. It is kept in
// the IndexedDB database keysDB, sealed with AES-GCM by a WebCrypto key
// that is not extractable: the browser keeps that key's bytes out of
// reach of every script, the page's included, so a copy of the origin's
// IndexedDB files alone does not open the store. With a passphrase, the
// store key is first sealed with XChaCha20-Poly1305 under a key derived
// from the passphrase with Argon2id, so that the browser profile alone
// does not open it either.
//
// This is done from Go with syscall/js rather than in a JavaScript file
// of the page, so that the bridge stays one program with one contract
// (docs/web.md) and the store key never reaches the page's scripts.

// keysDB and keysObjects name the database and object store of the key
// record, keyRecord its key.
const (
	keysDB      = "parley-keys"
	keysObjects = "keys"
	keyRecord   = "store"
)

// sealAD is the associated data of both seals of the store key.
const sealAD = "parley web store key v1"

// maxKDFMemoryKiB bounds Argon2id's memory: WebAssembly memory is
// limited, and the page must stay responsive on phones.
const maxKDFMemoryKiB = 64 << 10

// errPassphraseRequired is the error of opening a store sealed with a
// passphrase without one.
var errPassphraseRequired = &codedError{code: codePassphraseRequired,
	err: errors.New("parley: open: this profile is protected by a passphrase")}

// kdfParams are the Argon2id parameters of a new passphrase.
func kdfParams() store.KDFParams {
	p := store.DefaultKDFParams()
	p.MemoryKiB = min(p.MemoryKiB, maxKDFMemoryKiB)
	return p
}

// storeKey returns the store key of this origin's profile, making and
// keeping one on first use (sealed with passphrase if it is not empty).
// A key sealed with a passphrase needs that passphrase: without one the
// error is errPassphraseRequired, with another it wraps
// store.ErrWrongKey; a passphrase given for a key sealed without one is
// refused too (wrong_key), rather than silently not protecting it.
func storeKey(passphrase []byte) ([]byte, error) {
	db, err := openDB(keysDB, keysObjects)
	if err != nil {
		return nil, err
	}
	defer db.Call("close")
	rec, err := idbGet(db, keysObjects, keyRecord)
	if err != nil {
		return nil, fmt.Errorf("parley: read the store key: %w", err)
	}
	if rec.IsUndefined() {
		return newStoreKey(db, passphrase)
	}
	return openStoreKey(rec, passphrase)
}

// newStoreKey makes a store key and its record.
func newStoreKey(db js.Value, passphrase []byte) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	inner := key
	rec := js.Global().Get("Object").New()
	rec.Set("version", 1)
	if len(passphrase) > 0 {
		p := kdfParams()
		salt := make([]byte, 16)
		rand.Read(salt)
		sealed, err := sealWithPassphrase(key, passphrase, salt, p)
		if err != nil {
			return nil, err
		}
		inner = sealed
		rec.Set("salt", bytesToJS(salt))
		rec.Set("time", p.Time)
		rec.Set("memory", p.MemoryKiB)
		rec.Set("threads", p.Threads)
	}
	subtle := js.Global().Get("crypto").Get("subtle")
	if subtle.IsUndefined() {
		return nil, errors.New("parley: WebCrypto is not available (the page needs a secure context: https or localhost)")
	}
	wrap, err := jspromise.Await(subtle.Call("generateKey",
		map[string]any{"name": "AES-GCM", "length": 256}, false, []any{"encrypt", "decrypt"}))
	if err != nil {
		return nil, fmt.Errorf("parley: make the wrapping key: %w", err)
	}
	iv := make([]byte, 12)
	rand.Read(iv)
	ct, err := jspromise.Await(subtle.Call("encrypt", gcmParams(iv), wrap, bytesToJS(inner)))
	if err != nil {
		return nil, fmt.Errorf("parley: wrap the store key: %w", err)
	}
	rec.Set("wrap", wrap)
	rec.Set("iv", bytesToJS(iv))
	rec.Set("sealed", js.Global().Get("Uint8Array").New(ct))
	if err := idbAdd(db, keysObjects, keyRecord, rec); err != nil {
		return nil, fmt.Errorf("parley: keep the store key: %w", err)
	}
	return key, nil
}

// openStoreKey unwraps the store key of a record. A record that is not
// what newStoreKey writes is refused with what is wrong with it, never
// with a panic (syscall/js panics on a field of the wrong type).
func openStoreKey(rec js.Value, passphrase []byte) ([]byte, error) {
	if rec.Type() != js.TypeObject {
		return nil, damagedKey("a %s, not an object", rec.Type())
	}
	if v := rec.Get("version"); v.Type() != js.TypeNumber || v.Int() != 1 {
		return nil, damagedKey("version %s, want 1", v.Type())
	}
	iv, err := bytesFromJS(rec.Get("iv"))
	if err != nil || len(iv) != 12 {
		return nil, damagedKey("iv of %d bytes (%v), want 12", len(iv), err)
	}
	sealed, err := bytesFromJS(rec.Get("sealed"))
	if err != nil {
		return nil, damagedKey("sealed key: %v", err)
	}
	wrap := rec.Get("wrap")
	if !wrap.InstanceOf(js.Global().Get("CryptoKey")) {
		return nil, damagedKey("the wrapping key is a %s, not a CryptoKey", wrap.Type())
	}
	pt, err := jspromise.Await(js.Global().Get("crypto").Get("subtle").Call("decrypt", gcmParams(iv), wrap, bytesToJS(sealed)))
	if err != nil {
		return nil, fmt.Errorf("parley: unwrap the store key: %w", err)
	}
	inner, _ := bytesFromJS(js.Global().Get("Uint8Array").New(pt))
	salt := rec.Get("salt")
	if salt.IsUndefined() {
		if len(passphrase) > 0 {
			return nil, fmt.Errorf("parley: open: %w: this profile has no passphrase", store.ErrWrongKey)
		}
		if len(inner) != 32 {
			return nil, damagedKey("the key unwrapped is %d bytes, want 32", len(inner))
		}
		return inner, nil
	}
	if len(passphrase) == 0 {
		return nil, errPassphraseRequired
	}
	s, err := bytesFromJS(salt)
	if err != nil {
		return nil, damagedKey("salt: %v", err)
	}
	var p store.KDFParams
	for _, f := range []struct {
		name string
		max  int
		set  func(int)
	}{
		{"time", 1 << 30, func(v int) { p.Time = uint32(v) }},
		{"memory", 1 << 30, func(v int) { p.MemoryKiB = uint32(v) }},
		{"threads", 255, func(v int) { p.Threads = uint8(v) }},
	} {
		v := rec.Get(f.name)
		if v.Type() != js.TypeNumber || v.Int() < 0 || v.Int() > f.max {
			return nil, damagedKey("argon2id %s is not a number from 0 to %d", f.name, f.max)
		}
		f.set(v.Int())
	}
	if err := p.Validate(); err != nil || p.MemoryKiB > maxKDFMemoryKiB {
		return nil, damagedKey("%v (memory at most %d KiB)", err, maxKDFMemoryKiB)
	}
	return openWithPassphrase(inner, passphrase, s, p)
}

// damagedKey is the error of a damaged store key record.
func damagedKey(format string, args ...any) error {
	return fmt.Errorf("parley: read the store key: damaged record: "+format, args...)
}

// gcmParams are the AES-GCM parameters of the wrap.
func gcmParams(iv []byte) map[string]any {
	return map[string]any{"name": "AES-GCM", "iv": bytesToJS(iv), "additionalData": bytesToJS([]byte(sealAD))}
}

// passphraseAEAD derives the passphrase's AEAD.
func passphraseAEAD(passphrase, salt []byte, p store.KDFParams) (cipher.AEAD, error) {
	k := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	return chacha20poly1305.NewX(k)
}

// sealWithPassphrase seals key under passphrase: nonce, then ciphertext.
func sealWithPassphrase(key, passphrase, salt []byte, p store.KDFParams) ([]byte, error) {
	aead, err := passphraseAEAD(passphrase, salt, p)
	if err != nil {
		return nil, fmt.Errorf("parley: seal the store key: %v", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(key)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, key, []byte(sealAD)), nil
}

// openWithPassphrase opens the seal of sealWithPassphrase.
func openWithPassphrase(sealed, passphrase, salt []byte, p store.KDFParams) ([]byte, error) {
	aead, err := passphraseAEAD(passphrase, salt, p)
	if err != nil {
		return nil, fmt.Errorf("parley: open the store key: %v", err)
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return nil, damagedKey("the passphrase's seal is %d bytes, shorter than its nonce", len(sealed))
	}
	key, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(sealAD))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("parley: open: %w", store.ErrWrongKey)
	}
	return key, nil
}
