//go:build js && wasm

// Command parley-web is Parley's web client in the browser, compiled to
// WebAssembly (GOOS=js GOARCH=wasm): it opens the profile of the page's
// origin from IndexedDB, runs the client SDK on it and offers it to the
// page as globalThis.parley, the bridge that docs/web.md describes. Every
// cryptographic operation runs here, so keys and plaintext stay in the
// browser; the page only draws.
package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"syscall/js"
)

func main() {
	debug.SetGCPercent(400)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := &bridge{log: logger}
	js.Global().Set("parley", b.object())
	if ready := js.Global().Get("onParleyReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // the bridge's functions run until the page goes away
}
