// Worker: runs the Parley program (WebAssembly) off the page's thread.
// The program installs its bridge (docs/web.md, "The bridge") here, in
// the worker; boot.js gives the page a stand-in for it that passes every
// call over postMessage. So decryption, the store (IndexedDB) and the
// network run beside the page, which only draws: a burst of messages
// does not hold up the page's input and rendering.
//
// Messages from the page: {op: "call", id, method, args} (an answer
// {op: "result", id, result} or {op: "result", id, error} follows; a
// function in an options argument is passed as {parleyCallback: i} and
// called back with {op: "callback", id, index, args}); {op: "start"},
// {op: "cancelLink"}; {op: "connect", conn}, {op: "send", conn, line},
// {op: "close", conn} (the connection's lines come back as {op: "line",
// conn, line}); first of all {op: "module", module}, the program that
// the page compiled. To the page: {op: "ready"} once the bridge is there,
// {op: "failed", why} if the program could not start.
"use strict";

(() => {
  const METHODS = new Set(["open", "register", "upload", "download", "close", "link", "qr"]);
  const conns = new Map(); // conn → the bridge's connection
  const early = []; // what the page sent before the bridge was there
  let bridge = null;

  function failed(why) {
    postMessage({ op: "failed", why });
  }

  // errorData is what the page needs of an error: an Error loses its own
  // fields (the bridge's code and data) when it is cloned.
  function errorData(err) {
    if (!err || typeof err !== "object") return { message: String(err) };
    const out = { name: err.name, message: err.message };
    for (const k of Object.keys(err)) {
      try {
        out[k] = structuredClone(err[k]);
      } catch {
        // A field that cannot cross to the page is left out.
      }
    }
    return out;
  }

  // withCallbacks turns the page's stand-ins for functions in an options
  // object back into functions that call the page.
  function withCallbacks(arg, id) {
    if (!arg || typeof arg !== "object" || ArrayBuffer.isView(arg) || Array.isArray(arg)) return arg;
    const out = {};
    for (const [k, v] of Object.entries(arg)) {
      if (v && typeof v === "object" && Number.isInteger(v.parleyCallback)) {
        const index = v.parleyCallback;
        out[k] = (...args) => postMessage({ op: "callback", id, index, args });
      } else out[k] = v;
    }
    return out;
  }

  // transferables lists the buffers of a result that can move to the
  // page instead of being copied (a downloaded file).
  function transferables(result) {
    if (result && typeof result === "object" && ArrayBuffer.isView(result.data)) return [result.data.buffer];
    return [];
  }

  async function call(m) {
    try {
      if (!METHODS.has(m.method)) throw new Error("parley: no method " + m.method);
      const result = await bridge[m.method](...m.args.map((a) => withCallbacks(a, m.id)));
      postMessage({ op: "result", id: m.id, result }, transferables(result));
    } catch (err) {
      postMessage({ op: "result", id: m.id, error: errorData(err) });
    }
  }

  function handle(m) {
    switch (m.op) {
      case "call":
        call(m);
        break;
      case "start":
        bridge.start();
        break;
      case "cancelLink":
        bridge.cancelLink();
        break;
      case "connect":
        conns.set(m.conn, bridge.connect((line) => postMessage({ op: "line", conn: m.conn, line })));
        break;
      case "send":
        if (conns.has(m.conn)) conns.get(m.conn).send(m.line);
        break;
      case "close":
        if (conns.has(m.conn)) conns.get(m.conn).close();
        conns.delete(m.conn);
        break;
    }
  }

  // The page compiles the program and sends it: {op: "module", module}.
  let gotModule;
  const module = new Promise((resolve) => { gotModule = resolve; });

  self.onmessage = (ev) => {
    if (ev.data.op === "module") gotModule(ev.data.module);
    else if (bridge) handle(ev.data);
    else early.push(ev.data);
  };

  self.onParleyReady = () => {
    bridge = self.parley;
    postMessage({ op: "ready" });
    for (const m of early.splice(0)) handle(m);
  };

  async function load() {
    try {
      importScripts("wasm_exec.js");
    } catch {
      failed("wasm_exec.js did not load.");
      return;
    }
    const go = new self.Go();
    let instance;
    try {
      instance = await WebAssembly.instantiate(await module, go.importObject);
    } catch (err) {
      failed("starting parley.wasm failed (" + (err && err.message ? err.message : String(err)) + ").");
      return;
    }
    go.run(instance).then(
      () => { if (!bridge) failed("the program exited."); },
      (err) => failed("the program stopped (" + (err && err.message ? err.message : String(err)) + ")."),
    );
  }

  load();
})();
