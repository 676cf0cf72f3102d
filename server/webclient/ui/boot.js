// Boot: loads the Parley program (WebAssembly), which installs
// globalThis.parley (docs/web.md, "The bridge"), then tells app.js
// with the "parley-ready" event on document. It also registers the
// service worker. Nothing here touches keys or messages.
"use strict";

(() => {
  const status = () => document.getElementById("boot-status");

  function setStatus(text, failed) {
    const el = status();
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", Boolean(failed));
    if (failed) el.setAttribute("role", "alert");
  }

  function fail(why) {
    globalThis.parleyBootError = why;
    setStatus("Parley could not start: " + why + " Reload the page to try again.", true);
    document.dispatchEvent(new CustomEvent("parley-failed", { detail: why }));
  }

  function ready() {
    globalThis.parleyReady = true;
    document.dispatchEvent(new Event("parley-ready"));
  }

  async function load() {
    if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiateStreaming !== "function") {
      fail("this browser does not support WebAssembly.");
      return;
    }
    if (typeof globalThis.Go !== "function") {
      fail("wasm_exec.js did not load.");
      return;
    }
    const go = new globalThis.Go();
    globalThis.onParleyReady = ready;
    let result;
    try {
      result = await WebAssembly.instantiateStreaming(fetch("parley.wasm"), go.importObject);
    } catch (err) {
      fail("loading parley.wasm failed (" + (err && err.message ? err.message : String(err)) + ").");
      return;
    }
    setStatus("Opening this browser's profile…");
    go.run(result.instance).then(
      () => { if (!globalThis.parleyReady) fail("the program exited."); },
      (err) => fail("the program stopped (" + (err && err.message ? err.message : String(err)) + ")."),
    );
  }

  function registerWorker() {
    if (!("serviceWorker" in navigator) || !globalThis.isSecureContext) return;
    navigator.serviceWorker.register("/sw.js").catch(() => {
      // Offline start is a convenience: the page works without it.
    });
  }

  registerWorker();
  load();
})();
