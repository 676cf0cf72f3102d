// Boot: starts the Parley program (WebAssembly) in a worker (worker.js)
// and installs globalThis.parley, the bridge that docs/web.md describes,
// as a stand-in that passes each call to the worker; then tells app.js
// with the "parley-ready" event on document. It also registers the
// service worker. Nothing here touches keys or messages: they stay in the
// worker, and only what the bridge's calls return crosses to the page.
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

  // bridge returns the page's stand-in for the worker's bridge: the same
  // functions, each a message to the worker. The asynchronous ones return
  // the worker's answer as a Promise; a function in an options argument
  // (link's code and confirmation) is called when the worker calls it.
  function bridge(worker) {
    let next = 1;
    const calls = new Map(); // id → {resolve, reject, callbacks}
    const lines = new Map(); // conn → onLine

    worker.addEventListener("message", (ev) => {
      const m = ev.data;
      switch (m.op) {
        case "result": {
          const c = calls.get(m.id);
          if (!c) return;
          calls.delete(m.id);
          if (m.error) c.reject(Object.assign(new Error(m.error.message), m.error));
          else c.resolve(m.result);
          break;
        }
        case "callback": {
          const c = calls.get(m.id);
          const f = c && c.callbacks[m.index];
          if (f) f(...m.args);
          break;
        }
        case "line": {
          const onLine = lines.get(m.conn);
          if (onLine) onLine(m.line);
          break;
        }
      }
    });

    // call passes a call to the worker; transfer lists buffers of the
    // arguments that move to the worker rather than being copied.
    function call(method, args, transfer) {
      const id = next++;
      const callbacks = [];
      const plain = args.map((a) => {
        if (!a || typeof a !== "object" || ArrayBuffer.isView(a) || Array.isArray(a)) return a;
        const out = {};
        for (const [k, v] of Object.entries(a)) {
          if (typeof v === "function") {
            out[k] = { parleyCallback: callbacks.length };
            callbacks.push(v);
          } else out[k] = v;
        }
        return out;
      });
      return new Promise((resolve, reject) => {
        // A call that cannot cross (an argument that cannot be cloned)
        // throws here and leaves nothing waiting; the worker answers in
        // a later task, after the call is recorded.
        worker.postMessage({ op: "call", id, method, args: plain }, transfer || []);
        calls.set(id, { resolve, reject, callbacks });
      });
    }

    // stop fails the calls under way: the program stopped.
    function stop(why) {
      for (const c of calls.values()) c.reject(Object.assign(new Error("Parley stopped: " + why), { code: "stopped" }));
      calls.clear();
    }

    const api = {
      open: (opts) => call("open", [opts]),
      register: (opts) => call("register", [opts]),
      // The file's bytes move to the worker: the page reads them afresh
      // for each upload.
      upload: (params) => call("upload", [params], params && ArrayBuffer.isView(params.data) ? [params.data.buffer] : []),
      download: (id) => call("download", [id]),
      close: () => call("close", []),
      link: (opts) => call("link", [opts]),
      qr: (data) => call("qr", [data]),
      cancelLink: () => worker.postMessage({ op: "cancelLink" }),
      start: () => worker.postMessage({ op: "start" }),
      connect(onLine) {
        const conn = next++;
        lines.set(conn, onLine);
        worker.postMessage({ op: "connect", conn });
        return {
          send: (line) => worker.postMessage({ op: "send", conn, line }),
          close: () => {
            lines.delete(conn);
            worker.postMessage({ op: "close", conn });
          },
        };
      },
    };
    return { api, stop };
  }

  function load() {
    if (typeof Worker !== "function") {
      fail("this browser does not run workers.");
      return;
    }
    let worker;
    try {
      worker = new Worker("worker.js");
    } catch (err) {
      fail("starting worker.js failed (" + (err && err.message ? err.message : String(err)) + ").");
      return;
    }
    const b = bridge(worker);
    // The page compiles the program while the worker starts, and hands
    // it the compiled module. Streamed, the compilation overlaps the
    // download, and the browser can reuse compiled code: the module a
    // reload finds in the renderer's memory, and the code it keeps on
    // disk once V8 has optimized enough of the program to cache it.
    if (typeof WebAssembly !== "object" || typeof WebAssembly.compileStreaming !== "function") {
      fail("this browser does not support WebAssembly.");
      return;
    }
    WebAssembly.compileStreaming(fetch("parley.wasm")).then(
      (module) => worker.postMessage({ op: "module", module }),
      (err) => fail("loading parley.wasm failed (" + (err && err.message ? err.message : String(err)) + ")."),
    );
    worker.addEventListener("message", (ev) => {
      if (ev.data.op === "ready") {
        setStatus("Opening this browser's profile…");
        globalThis.parley = b.api;
        ready();
      } else if (ev.data.op === "failed") {
        b.stop(ev.data.why);
        fail(ev.data.why);
      }
    });
    worker.addEventListener("error", (ev) => {
      ev.preventDefault();
      const why = "the program stopped (" + (ev.message || "worker error") + ").";
      b.stop(why);
      fail(why);
    });
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
