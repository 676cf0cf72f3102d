// Parley's web client: the screens on top of globalThis.parley, the
// bridge that boot.js loads (docs/web.md). The data are those of the
// daemon's JSON-RPC API (docs/daemon.md), spoken over parley.connect.
//
// Every string that comes from the network (names, message text, file
// names) reaches the page through textContent or attribute values,
// never as HTML.
"use strict";

(() => {
  const PAGE = 50; // history entries loaded at a time
  const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];
  const THUMB_MAX = 8 * 1000 * 1000; // images up to this size show inline
  const TYPING_EVERY = 3000; // ms between send_typing true
  const READ_AFTER = 500; // ms from a message in sight to its read receipt
  const LIST_SETTLE = 300; // ms without new messages before the list's counts are loaded again
  const TYPING_SHOWN = 5000; // ms a typing event is shown
  // TIMERS are the disappearing-message timers offered, in seconds.
  const TIMERS = [[0, "Off"], [300, "5 minutes"], [3600, "1 hour"], [86400, "1 day"], [604800, "1 week"], [2419200, "4 weeks"]];
  // ACTIONS are those of a conversation's policy (docs/daemon.md,
  // set_policy), with what they let one do.
  const ACTIONS = [["post", "post messages"], ["add", "add members"], ["remove", "remove members"], ["rename", "rename"],
    ["topic", "change the topic"], ["timer", "change the timer"], ["roles", "change roles and rules"]];
  const AROUND = 20; // entries loaded before a message opened from a search

  // state is everything the screens show; dom holds the elements of
  // the main screen once it is built.
  const state = {
    me: null, // Account
    rpc: null, // {call(method, params)}
    conn: "connecting", // connecting, connected, offline
    convs: new Map(), // id → Conversation
    filter: "",
    open: null, // id of the open conversation
    msgs: [], // its history entries, oldest first
    atStart: false,
    loading: false,
    members: [], // Member of the open conversation
    policy: undefined, // its Policy: null without roles, undefined until loaded
    focus: null, // id of the message opened from a search result
    find: null, // the sidebar's results: {mode ("search", "mentions"), words, results, err}
    mention: null, // the composer's @ completion: {start, options, index}
    usable: false, // the "parley-usable" mark was set
    screen: null, // null (the conversations) or "devices"
    devices: null, // the devices screen: {list, listErr, err, link}
    panel: null, // null, "members" or "verify"
    verify: null, // {user, pending, sn, err}
    reply: null, // the message replied to
    editing: null, // the message being edited
    reactFor: null, // id of the message whose emoji picker is open
    alerts: new Map(), // user → what happened to their identity key
    uploads: [], // names of the files being uploaded
    thumbs: new Map(), // attachment id → {url} | {loading} | {failed}
    typing: new Map(), // conversation id → Map user → timer
    typingSent: 0,
    stick: true, // the history shows its newest entry, and keeps it shown
    announce: "", // what the live region reads out next
    status: null, // {text, error}
    statusTimer: 0,
  };
  const dom = {};

  // ---- DOM building ----

  // h builds an element: props set attributes, "class", "testid"
  // (data-testid), "data" (dataset), "text" (textContent) and on*
  // listeners; children are nodes or strings (as text).
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "testid") el.dataset.testid = v;
      else if (k === "data") Object.assign(el.dataset, v);
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    add(el, children);
    return el;
  }

  function add(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
  }

  function button(label, testid, onclick, props) {
    return h("button", { type: "button", testid, onclick, ...props }, label);
  }

  function root() {
    return document.getElementById("app");
  }

  function show(screen) {
    root().replaceChildren(screen);
  }

  // ---- the bridge and the JSON-RPC connection ----

  // rpcError turns a JSON-RPC error object into an Error whose code is
  // the daemon's error kind (data.kind), as the bridge's rejections.
  function rpcError(e) {
    const err = new Error(e.message || "error " + e.code);
    err.code = (e.data && e.data.kind) || String(e.code);
    err.data = e.data || {};
    return err;
  }

  // connectRPC opens a JSON-RPC connection to the SDK; notifications go
  // to onNotify(method, params).
  function connectRPC(onNotify) {
    const pending = new Map();
    let next = 1;
    const conn = globalThis.parley.connect((line) => {
      let m;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.id != null && pending.has(m.id)) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) p.reject(rpcError(m.error));
        else p.resolve(m.result);
      } else if (m.method) {
        onNotify(m.method, m.params || {});
      }
    });
    return {
      call(method, params) {
        const id = next++;
        return new Promise((resolve, reject) => {
          pending.set(id, { resolve, reject });
          const req = { jsonrpc: "2.0", id, method };
          if (params) req.params = params;
          conn.send(JSON.stringify(req));
        });
      },
    };
  }

  function call(method, params) {
    return state.rpc.call(method, params);
  }

  // ---- start: open, passphrase, registration ----

  async function start() {
    let res;
    try {
      res = await globalThis.parley.open({});
    } catch (err) {
      if (err.code === "passphrase_required" || err.code === "wrong_key") {
        show(passphraseScreen());
        return;
      }
      show(fatalScreen(err));
      return;
    }
    if (!res.registered) {
      show(registerScreen());
      markUsable();
      return;
    }
    enter(res.account);
  }

  // markUsable sets the performance mark "parley-usable" once: the
  // conversation list or the registration form is on screen.
  function markUsable() {
    if (state.usable) return;
    state.usable = true;
    performance.mark("parley-usable");
  }

  function fatalScreen(err) {
    return h("div", { class: "screen center" },
      h("p", { class: "error", role: "alert", testid: "fatal" }, "Parley could not open this browser's profile: " + errText(err)));
  }

  function field(label, input) {
    return h("label", { class: "field" }, h("span", {}, label), input);
  }

  function formError() {
    return h("p", { class: "error", role: "alert", testid: "form-error", hidden: true });
  }

  function setFormError(el, err) {
    el.hidden = !err;
    el.textContent = err ? errText(err) : "";
  }

  function passphraseScreen() {
    const input = h("input", { type: "password", name: "passphrase", required: true, autocomplete: "current-password", testid: "passphrase-input" });
    const msg = formError();
    const submit = h("button", { type: "submit", class: "primary", testid: "passphrase-submit" }, "Unlock");
    const form = h("form", { class: "card", testid: "passphrase-form" },
      h("h1", {}, "Unlock Parley"),
      h("p", {}, "This browser's profile is protected with a passphrase."),
      field("Passphrase", input), msg, submit);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      try {
        const res = await globalThis.parley.open({ passphrase: input.value });
        if (!res.registered) show(registerScreen());
        else enter(res.account);
      } catch (err) {
        setFormError(msg, err.code === "wrong_key" ? "Wrong passphrase." : err);
        submit.disabled = false;
        input.select();
      }
    });
    setTimeout(() => input.focus());
    return h("div", { class: "screen center" }, form);
  }

  // inviteFromHash takes the invite link's code out of the address bar.
  function inviteFromHash() {
    const hash = location.hash.replace(/^#/, "");
    const params = new URLSearchParams(hash);
    const code = params.get("invite");
    if (!code) return "";
    history.replaceState(null, "", location.pathname + location.search);
    const fp = params.get("fp");
    return location.origin + "/#invite=" + code + (fp ? "&fp=" + fp : "");
  }

  function registerScreen() {
    const invite = h("input", { type: "text", name: "invite", required: true, autocomplete: "off", spellcheck: "false", testid: "register-invite" });
    invite.value = inviteFromHash();
    const name = h("input", { type: "text", name: "name", required: true, autocomplete: "username", autocapitalize: "none", spellcheck: "false", testid: "register-name" });
    const msg = formError();
    const submit = h("button", { type: "submit", class: "primary", testid: "register-submit" }, "Create account");
    const form = h("form", { class: "card", testid: "register-form" },
      h("h1", {}, "Welcome to Parley"),
      h("p", {}, "Messages are encrypted in this browser: keys and text never leave it. Register this browser with an invite from " + location.host + "."),
      field("Your user name", name), field("Invite link or code", invite), msg, submit,
      h("p", { class: "alt" }, "Already use Parley on another device? ",
        button("Link this browser to your account", "link-start", () => show(linkScreen()), { class: "link" })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      submit.textContent = "Registering…";
      try {
        const account = await globalThis.parley.register({ invite: invite.value.trim(), name: name.value.trim() });
        enter(account);
      } catch (err) {
        setFormError(msg, err);
        submit.disabled = false;
        submit.textContent = "Create account";
      }
    });
    setTimeout(() => (invite.value ? name : invite).focus());
    return h("div", { class: "screen center" }, form);
  }

  // linkScreen makes this browser a device of an existing account: the
  // bridge shows a code (and its QR code) for a device of the account,
  // then the confirmation both devices show; once the other device
  // accepted, the conversations.
  function linkScreen() {
    const name = h("input", { type: "text", name: "device-name", required: true, maxlength: "64", autocomplete: "off", testid: "link-name" });
    name.value = browserName();
    const msg = formError();
    const submit = h("button", { type: "submit", class: "primary", testid: "link-submit" }, "Show a link code");
    const steps = h("div", { class: "link-steps", testid: "link-steps", "aria-live": "polite", hidden: true });
    const alt = h("p", { class: "alt" }, button("Register a new account instead", "link-back", () => show(registerScreen()), { class: "link" }));
    const form = h("form", { class: "card", testid: "link-form" },
      h("h1", {}, "Link this browser"),
      h("p", {}, "This browser becomes another device of your account, with its own keys. Your conversations appear here once it is linked; earlier messages come too if you choose to send them from the other device."),
      field("Name of this browser", name), msg, submit, steps, alt);
    let cancelled = false;
    const cancel = button("Cancel", "link-cancel", () => {
      cancelled = true;
      globalThis.parley.cancelLink();
    });
    function showCode(c) {
      const qr = c.qr ? pngImage(c.qr, "QR code of the link code", "link-qr") : null;
      steps.replaceChildren(
        h("p", {}, "On a device of your account, enter this code:"),
        h("p", { class: "link-code", testid: "link-code" }, c.code),
        qr,
        h("p", { class: "muted small" }, "In a terminal: parley devices link " + c.code + ". In Parley on the web: Devices, then Link a new device. The code works until " + clock(c.expires) + "."),
        h("p", { class: "muted", testid: "link-status" }, "Waiting for your other device…"),
        h("div", { class: "row end" }, cancel));
    }
    function showConfirmation(conf) {
      const status = steps.querySelector("[data-testid=link-status]");
      const box = h("div", { class: "link-confirm" },
        h("p", {}, "Your other device shows a confirmation. Check that it is this one, then accept there:"),
        h("p", { class: "confirmation", testid: "link-confirmation" }, conf));
      if (status) status.replaceWith(box);
      else steps.prepend(box);
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      cancelled = false;
      submit.hidden = alt.hidden = true;
      name.disabled = true;
      setFormError(msg, null);
      steps.hidden = false;
      steps.replaceChildren(h("p", { class: "muted" }, "Asking " + location.host + " for a link code…"), h("div", { class: "row end" }, cancel));
      try {
        const account = await globalThis.parley.link({ name: name.value.trim(), code: showCode, confirmation: showConfirmation });
        enter(account);
      } catch (err) {
        steps.hidden = true;
        steps.replaceChildren();
        submit.hidden = alt.hidden = false;
        name.disabled = false;
        submit.textContent = "Show a new link code";
        if (!cancelled) setFormError(msg, err.code === "link_refused" ? "The link was declined on your other device. Nothing was linked." : err);
      }
    });
    setTimeout(() => name.focus());
    return h("div", { class: "screen center" }, form);
  }

  // browserName is the name this browser proposes for itself in the
  // account's device list.
  function browserName() {
    const ua = navigator.userAgent;
    const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
    const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
    return browser + (os ? " on " + os : "");
  }

  // pngImage shows PNG bytes (a QR code of the bridge).
  function pngImage(png, alt, testid) {
    const img = h("img", { class: "qr", alt, testid });
    showPNG(img, png);
    return img;
  }

  // showPNG makes img show PNG bytes, through an object URL freed once
  // the image loaded.
  function showPNG(img, png) {
    const url = URL.createObjectURL(new Blob([png], { type: "image/png" }));
    img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
    img.src = url;
  }

  // enter starts the SDK and shows the conversations.
  async function enter(account) {
    state.me = account;
    globalThis.parley.start();
    state.rpc = connectRPC(onNotify);
    const place = placeFromURL();
    buildShell();
    try {
      await call("subscribe");
      await loadConversations();
    } catch (err) {
      setStatus(err, true);
    }
    markUsable();
    if (place != null && state.convs.has(place)) openConversation(place);
  }

  // placeFromURL reads the open conversation kept in the address
  // (#c=ID), or returns null.
  function placeFromURL() {
    const c = Number(new URLSearchParams(location.hash.replace(/^#/, "")).get("c"));
    return Number.isSafeInteger(c) && c > 0 ? c : null;
  }

  // placeToURL keeps the open conversation in the address, so that a
  // reload or a bookmark reopens it.
  function placeToURL(id) {
    const hash = id != null ? "#c=" + id : "";
    if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
  }

  // ---- events ----

  function onNotify(method, params) {
    if (method === "event") onEvent(params);
    else if (method === "progress") onProgress(params);
  }

  function onProgress(p) {
    const what = { lookup: "Looking up users", claim: "Fetching keys", commit: "Adding devices", wait: "Waiting for the server" }[p.stage] || p.stage;
    setStatus(what + (p.total ? " " + p.done + "/" + p.total : "") + "…");
  }

  function onEvent(ev) {
    switch (ev.event) {
      case "connection":
        setConnection(ev.connection);
        break;
      case "message":
      case "system":
        newEntry(ev);
        break;
      case "edited":
      case "deleted":
      case "reaction":
      case "delivered":
        changedEntry(ev.message);
        break;
      case "read":
        changedEntry(ev.message);
        if (ev.conversation === state.open) loadHistory(Math.max(state.msgs.length, PAGE), "keep");
        break;
      case "expired":
        removeEntry(ev.message);
        break;
      case "typing":
        sawTyping(ev);
        break;
      case "identity_changed":
        state.alerts.set(ev.user, "changed");
        renderAlerts();
        reloadAll();
        break;
      case "conversation_unsafe":
      case "device_rejected":
      case "bad_commit":
      case "state_restored":
      case "device_revoked":
      case "error":
        setStatus(eventText(ev), true);
        reloadAll();
        if (state.screen === "devices" && ev.event.startsWith("device_")) loadDevices();
        break;
      default: // conversation_joined/left/changed, member_joined/left, overflow
        reloadAll();
    }
  }

  function eventText(ev) {
    const parts = [ev.event.replace(/_/g, " ")];
    if (ev.user) parts.push(ev.user);
    if (ev.error || ev.reason) parts.push(ev.error || ev.reason);
    return parts.join(": ");
  }

  function setConnection(c) {
    state.conn = c === "connected" ? "connected" : c === "connecting" ? "connecting" : "offline";
    renderConnection();
  }

  // newEntry shows a new message or system line.
  function newEntry(ev) {
    const m = ev.message;
    if (!m) return;
    clearTyper(m.conversation, m.sender);
    const cv = state.convs.get(m.conversation);
    if (!cv) {
      loadConversations();
      return;
    }
    const mine = m.sender === state.me.user;
    const isOpen = m.conversation === state.open;
    // The list's last load counted the message already if its answer was
    // made after the SDK stored it (the event can come after the answer:
    // messages that came while the page was closed, applied as it
    // starts); its last entry is then this one or a later one.
    const counted = cv.last && cv.last.seq >= m.seq;
    if (!counted) cv.last = m;
    // A message the person sees come into the conversation in front of
    // them is not counted unread; its receipt follows (maybeMarkRead).
    if (!counted && !mine && m.kind !== "system" && !(isOpen && visible())) cv.unread = (cv.unread || 0) + 1;
    if (isOpen) {
      upsert(m);
      trimHistory();
      later("history");
      if (!mine && m.kind !== "system") unreceipted.add(m.conversation);
      maybeMarkRead(); // read when the conversation is in sight
    }
    later("list");
    listEvents++;
    if (settleTimer) settleList(); // a burst: settle once it is over
    if (!mine && m.kind !== "system") {
      announce(m);
      notify(ev, cv);
    }
    if (m.kind === "system") refreshConversations();
  }

  // refreshConversations reloads what a system line may have changed: the
  // conversations (name, members, admin, timer) and, for the open one,
  // its policy (who may post, with it the composer) and its members. A
  // burst of system lines (coming back online) reloads once while one
  // reload runs, and once more after it.
  let refreshing = null; // the reload under way
  let refreshAgain = false;
  async function refreshConversations() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        await loadConversations();
        if (state.open != null) {
          renderComposer();
          await loadPolicy();
          if (state.panel) loadMembers();
        }
      } while (refreshAgain);
    })();
    try {
      await refreshing;
    } finally {
      refreshing = null;
    }
  }

  function changedEntry(m) {
    if (!m) return;
    const cv = state.convs.get(m.conversation);
    if (cv && cv.last && cv.last.id === m.id) {
      cv.last = m;
      later("list");
    }
    if (m.conversation === state.open && upsert(m, true)) later("history");
  }

  // later renders the list or the open history once for all the events
  // that come together. The first change after a frame is drawn at the
  // end of the task that brought it (a microtask): its scrolling then
  // happens before the browser's next frame, which dispatches the scroll
  // event and draws in one frame; drawn from an animation frame, the
  // scroll event would wait for a second one. Changes that come before
  // that frame wait for the next animation frame and are drawn together:
  // a burst of messages (coming back online) costs about one render per
  // frame, not one per message.
  const pending = new Set();
  let drewSinceFrame = false;
  function later(what) {
    if (!pending.size) {
      if (drewSinceFrame) requestAnimationFrame(flushRenders);
      else queueMicrotask(flushRenders);
    }
    pending.add(what);
  }

  // flushRenders draws the list, then the history: a history at its
  // bottom scrolls to its new end, which lays out both changes at once.
  function flushRenders() {
    if (!pending.size) return;
    if (pending.has("announce") && dom.announce) dom.announce.textContent = state.announce;
    if (pending.has("list")) renderList();
    if (pending.has("history")) renderHistory();
    pending.clear();
    if (!drewSinceFrame) {
      drewSinceFrame = true;
      requestAnimationFrame(() => { drewSinceFrame = false; });
    }
  }

  // removeEntry takes an expired message out of the view: the history,
  // the list's preview and the sidebar's results.
  function removeEntry(m) {
    if (!m) return;
    const cv = state.convs.get(m.conversation);
    if (cv && cv.last && cv.last.id === m.id) loadConversations();
    if (state.find && state.find.results && state.find.results.some((e) => e.id === m.id)) {
      state.find.results = state.find.results.filter((e) => e.id !== m.id);
      renderFind();
    }
    if (m.conversation !== state.open) return;
    state.msgs = state.msgs.filter((e) => e.id !== m.id);
    renderHistory();
  }

  // upsert puts m into the open history in order; onlyKnown leaves out
  // entries not loaded. It says whether the history changed.
  function upsert(m, onlyKnown) {
    const i = state.msgs.findIndex((e) => e.id === m.id);
    if (i >= 0) {
      state.msgs[i] = m;
      return true;
    }
    if (onlyKnown) return false;
    state.msgs.push(m);
    const n = state.msgs.length;
    if (n > 1 && state.msgs[n - 2].seq > m.seq) state.msgs.sort((a, b) => a.seq - b.seq);
    return true;
  }

  function sawTyping(ev) {
    const conv = ev.conversation;
    if (ev.user === state.me.user) return; // another device of this user
    if (!state.typing.has(conv)) state.typing.set(conv, new Map());
    const typers = state.typing.get(conv);
    clearTimeout(typers.get(ev.user));
    if (ev.typing) typers.set(ev.user, setTimeout(() => clearTyper(conv, ev.user), TYPING_SHOWN));
    else typers.delete(ev.user);
    renderTyping();
  }

  function clearTyper(conv, user) {
    const typers = state.typing.get(conv);
    if (!typers || !typers.has(user)) return;
    clearTimeout(typers.get(user));
    typers.delete(user);
    renderTyping();
  }

  // reloadAll reloads what the screen shows after a change that events
  // do not describe entry by entry.
  function reloadAll() {
    loadConversations();
    if (state.open != null) {
      loadHistory(Math.max(state.msgs.length, PAGE), "keep");
      loadPolicy();
      if (state.panel) loadMembers();
    }
  }

  // ---- notifications and announcements ----

  function visible() {
    return document.visibilityState === "visible" && document.hasFocus() && !(phone() && dom.shell.dataset.view !== "conv");
  }

  function notify(ev, cv) {
    const m = ev.message;
    if (!document.hidden || !("Notification" in globalThis) || Notification.permission !== "granted") return;
    if (ev.muted && !m.mentions_me) return;
    const n = new Notification(cv.title || "Parley", { body: m.sender + ": " + summary(m), tag: "conversation-" + cv.id });
    // The body counts the notifications the browser showed, and keeps the
    // last one's text, for the tests (docs/web.md, "Test hooks").
    n.onshow = () => {
      document.body.dataset.notifications = String(Number(document.body.dataset.notifications || 0) + 1);
      document.body.dataset.lastNotification = n.title + "\n" + n.body;
    };
    n.onclick = () => {
      window.focus();
      openConversation(cv.id);
      n.close();
    };
  }

  // announce reads a new message of the open conversation out (the live
  // region), with the next frame's drawing: changed on its own it would
  // make the browser lay the page out once more.
  function announce(m) {
    if (m.conversation !== state.open) return;
    state.announce = m.sender + ": " + summary(m);
    later("announce");
  }

  async function toggleNotifications() {
    if (!("Notification" in globalThis)) return;
    if (Notification.permission === "default") await Notification.requestPermission();
    renderBell();
    if (Notification.permission === "denied") setStatus("Notifications are blocked: allow them in the browser's site settings.");
    else if (Notification.permission === "granted") setStatus("Notifications are on while this tab is in the background; turn them off in the browser's site settings.");
  }

  // ---- loading ----

  // loadConversations shows the conversations as the SDK has them. One
  // load runs at a time: a load asked for while one is under way runs
  // once more after it (so that it sees what the asker changed), and the
  // answers are applied in the order they were asked for.
  let listLoad = null;
  let listAgain = false;
  async function loadConversations() {
    if (listLoad) {
      listAgain = true;
      return listLoad;
    }
    listLoad = (async () => {
      do {
        listAgain = false;
        await loadConversationsOnce();
      } while (listAgain);
    })();
    try {
      await listLoad;
    } finally {
      listLoad = null;
    }
  }

  // settleList loads the conversations again once messages stopped
  // coming for LIST_SETTLE ms. The list counts new messages as their
  // events come, at once; but an answer to a load and the events around
  // it can cross (a message stored while the answer was made, its event
  // counted before the answer replaced the counts), so after a load
  // during which message events came (listEvents), the counts are set
  // again from the SDK when the burst is over. A message that comes on
  // its own costs no load.
  let settleTimer = null;
  let listEvents = 0; // message events counted by the list so far
  function settleList() {
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => {
      settleTimer = null;
      loadConversations();
    }, LIST_SETTLE);
  }

  // loadConversationsOnce asks the SDK for the conversations and shows
  // them; it says why it failed in the status line.
  async function loadConversationsOnce() {
    const events = listEvents;
    let res;
    try {
      res = await call("conversations");
    } catch (err) {
      setStatus(err, true);
      return;
    }
    const prev = state.convs;
    const header = headerSig(prev.get(state.open));
    state.convs = new Map();
    for (const cv of res.conversations || []) {
      if (!cv.last && prev.has(cv.id)) cv.last = prev.get(cv.id).last;
      if (cv.id === state.open && visible()) cv.unread = 0;
      state.convs.set(cv.id, cv);
    }
    renderList();
    if (state.open != null && headerSig(state.convs.get(state.open)) !== header) renderConvHeader();
    if (listEvents !== events) settleList();
  }

  // headerSig sums up what the open conversation's header, alerts and
  // composer show of it: all of it but its last message and its count,
  // which a load after every burst of messages changes.
  function headerSig(cv) {
    return cv ? JSON.stringify(cv, (k, v) => (k === "last" || k === "unread" ? undefined : v)) : "";
  }

  // loadHistory loads the last n entries, or with around (a Message)
  // those from AROUND before it to the newest; mode "older" keeps the
  // view on what was shown, "bottom" scrolls to the newest, "focus" to
  // state.focus. After "bottom" and "focus" (a conversation opened) it
  // sets the performance mark "parley-history".
  async function loadHistory(n, mode, around) {
    const conv = state.open;
    state.loading = true;
    renderHistory();
    try {
      const from = around ? Math.max(0, around.seq - AROUND) : 0;
      const res = await call("history", around ? { conversation: conv, after: from } : { conversation: conv, last: n });
      if (conv !== state.open) return;
      // Entries whose events came while the answer was on its way stay:
      // the answer may have been made before the SDK stored them. The
      // answer is in the server's order, its pending messages last, so
      // its newest entry is the one with the highest seq, not its last.
      const msgs = res.messages || [];
      const newest = msgs.reduce((max, e) => Math.max(max, e.seq), 0);
      const came = state.msgs.filter((e) => e.seq > newest);
      state.atStart = around ? from === 0 : msgs.length < n;
      state.msgs = msgs;
      for (const e of came) upsert(e);
    } catch (err) {
      setStatus(err, true);
    } finally {
      if (conv === state.open) {
        state.loading = false;
        renderHistory(mode);
        if (mode === "bottom" || mode === "focus") performance.mark("parley-history");
      }
    }
  }

  async function loadPolicy() {
    const conv = state.open;
    let policy = null;
    try {
      policy = (await call("policy", { conversation: conv })).policy || null;
    } catch {
      // A conversation left or unsafe: shown without rules.
    }
    if (conv !== state.open) return;
    state.policy = policy;
    renderConvHeader();
    renderHistory();
    renderComposer();
    renderPanel();
  }

  // isAdmin says whether this user is an admin of the open conversation
  // (everyone is where it has no policy).
  function isAdmin() {
    return !state.policy || (state.policy.admins || []).includes(state.me.user);
  }

  // may says whether the open conversation's policy lets this user do
  // action (docs/daemon.md, set_policy).
  function may(action) {
    return isAdmin() || (state.policy.rules || {})[action] === "members";
  }

  function canPost(cv) {
    return Boolean(cv) && !cv.left && !cv.unsafe && (cv.channel ? Boolean(cv.admin) : may("post"));
  }

  function loadOlder() {
    if (state.loading || state.atStart || state.open == null) return;
    loadHistory(state.msgs.length + PAGE, "older");
  }

  async function loadMembers() {
    const conv = state.open;
    try {
      const res = await call("members", { conversation: conv });
      if (conv !== state.open) return;
      state.members = res.members || [];
      for (const mb of state.members) if (mb.identity_changed) state.alerts.set(mb.user, "changed");
      renderAlerts();
      renderPanel();
    } catch (err) {
      setStatus(err, true);
    }
  }

  // ---- conversations ----

  // openConversation shows a conversation; with at (a Message of it)
  // scrolled to that message.
  function openConversation(id, at) {
    closeDevices();
    const known = at && state.open === id && state.msgs.some((e) => e.id === at.id);
    state.focus = at ? at.id : null;
    if (state.open !== id) {
      sendTyping(false);
      state.open = id;
      state.msgs = [];
      state.atStart = false;
      state.reply = state.editing = state.reactFor = state.mention = null;
      state.members = [];
      state.policy = undefined;
      if (state.panel === "verify") state.panel = "members";
      forgetThumbs();
      dom.input.value = "";
    }
    dom.shell.dataset.view = "conv";
    renderList();
    renderConvHeader();
    renderComposer();
    renderTyping();
    renderMention();
    placeToURL(id);
    if (known) {
      renderHistory("focus");
      performance.mark("parley-history");
    } else {
      loadHistory(PAGE, at ? "focus" : "bottom", at).then(() => maybeMarkRead(true));
    }
    loadPolicy();
    if (state.panel) loadMembers();
    if (!phone() && !at) dom.input.focus();
  }

  function closeConversation() {
    placeToURL(null);
    dom.shell.dataset.view = "list";
    state.panel = null;
    renderPanel();
  }

  // maybeMarkRead marks the open conversation read when it is in sight:
  // at once when the person opened it, else within READ_AFTER of the
  // first unread message, so that a burst sends one read receipt.
  let readTimer = null;
  // unreceipted holds the conversations where messages of others came
  // while they were open and whose read receipt is not sent yet. Their
  // count does not say it: a message that came in sight is not counted
  // unread (newEntry), nor is the open conversation in sight after a
  // load of the list (loadConversationsOnce); the senders still wait for
  // the receipt.
  const unreceipted = new Set();

  function maybeMarkRead(now) {
    const cv = state.convs.get(state.open);
    if (!cv || !visible() || !(cv.unread || unreceipted.has(cv.id))) return;
    if (!now) {
      if (!readTimer) readTimer = setTimeout(() => { readTimer = null; maybeMarkRead(true); }, READ_AFTER);
      return;
    }
    cv.unread = 0;
    unreceipted.delete(cv.id);
    renderList();
    call("mark_read", { conversation: cv.id }).catch((err) => setStatus(err, true));
  }

  async function newDirect() {
    const v = await ask({ title: "New chat", testid: "new-direct-dialog", fields: [{ name: "user", label: "User name" }], submit: "Open chat" });
    if (!v) return;
    await act(async () => {
      const res = await call("new_direct", { user: v.user.trim() });
      await loadConversations();
      openConversation(res.conversation);
    });
  }

  async function newGroup() {
    const v = await ask({
      title: "New group", testid: "new-group-dialog", submit: "Create group",
      fields: [{ name: "title", label: "Title" }, { name: "members", label: "Members (user names, separated by spaces or commas)" }],
    });
    if (!v) return;
    await act(async () => {
      const res = await call("new_group", { title: v.title.trim(), members: names(v.members) });
      await loadConversations();
      openConversation(res.conversation);
    });
  }

  async function newChannel() {
    const v = await ask({
      title: "New channel", testid: "new-channel-dialog", submit: "Create channel",
      text: "Only admins (at first, you) post in a channel; members read and react.",
      fields: [{ name: "title", label: "Title" }, { name: "members", label: "Members (user names, separated by spaces or commas)", required: false }],
    });
    if (!v) return;
    await act(async () => {
      const res = await call("new_channel", { title: v.title.trim(), members: names(v.members) });
      await loadConversations();
      openConversation(res.conversation);
    });
  }

  function names(s) {
    return s.split(/[\s,]+/).map((x) => x.replace(/^@/, "")).filter(Boolean);
  }

  // act runs an action, showing its error.
  async function act(f) {
    try {
      await f();
      clearStatus();
    } catch (err) {
      if (err.code === "identity_changed" && err.data.user) {
        state.alerts.set(err.data.user, "changed");
        renderAlerts();
      }
      setStatus(err, true);
    }
  }

  // ---- sending ----

  async function submitComposer() {
    const text = dom.input.value;
    const cv = state.convs.get(state.open);
    if (!cv || !text.trim()) return;
    const editing = state.editing;
    const reply = state.reply;
    dom.input.value = "";
    state.editing = state.reply = state.mention = null;
    renderComposer();
    renderMention();
    // The message itself tells the others that this user stopped typing
    // (they clear the indicator on a message of its sender); an edit
    // does not.
    if (editing) sendTyping(false);
    else state.typingSent = 0;
    try {
      if (editing) {
        await call("edit", { conversation: cv.id, message: editing.id, text });
        return;
      }
      const params = { conversation: cv.id, text };
      if (reply) params.reply_to = reply.id;
      const res = await call("send", params);
      if (res.message && res.message.conversation === state.open) {
        upsert(res.message);
        cv.last = res.message;
        renderHistory("bottom");
        renderList();
      }
      if (res.queued) setStatus("Offline: the message is queued and will be sent when the connection is back.");
    } catch (err) {
      if (!dom.input.value) dom.input.value = text;
      state.editing = editing;
      state.reply = reply;
      renderComposer();
      act(() => Promise.reject(err));
    }
  }

  // sendTyping tells the others that this user types (at most every
  // TYPING_EVERY) or stopped; none where this user may not post (a
  // channel's members send no typing indicators).
  function sendTyping(typing) {
    if (state.open == null || !state.rpc) return;
    if (typing && !canPost(state.convs.get(state.open))) return;
    const now = Date.now();
    if (typing && now - state.typingSent < TYPING_EVERY) return;
    if (!typing && !state.typingSent) return;
    state.typingSent = typing ? now : 0;
    call("send_typing", { conversation: state.open, typing }).catch(() => {});
  }

  function onComposerKey(ev) {
    if (mentionKey(ev)) return;
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submitComposer();
    } else if (ev.key === "Escape" && (state.reply || state.editing)) {
      if (state.editing) dom.input.value = "";
      state.reply = state.editing = null;
      renderComposer();
    } else if (ev.key === "ArrowUp" && !dom.input.value) {
      const last = [...state.msgs].reverse().find(canEdit);
      if (last) {
        ev.preventDefault();
        startEdit(last);
      }
    }
  }

  function onComposerInput() {
    if (dom.input.value) sendTyping(true);
    else sendTyping(false);
    updateMention();
  }

  // ---- @ mentions in the composer ----

  // mentionAt finds the @word being typed before the caret.
  function mentionAt() {
    const t = dom.input.value.slice(0, dom.input.selectionStart);
    const m = /(?:^|\s)@([\p{L}\p{N}._-]*)$/u.exec(t);
    return m ? { start: t.length - m[1].length - 1, query: m[1].toLowerCase() } : null;
  }

  // updateMention offers the members whose names start with the @word
  // typed.
  function updateMention() {
    const at = mentionAt();
    const cv = state.convs.get(state.open);
    const options = at && cv ? (cv.members || []).filter((u) => u !== state.me.user && u.toLowerCase().startsWith(at.query)).slice(0, 8) : [];
    const prev = state.mention;
    const index = prev && prev.options.join() === options.join() ? prev.index : 0;
    state.mention = options.length ? { start: at.start, options, index } : null;
    renderMention();
  }

  // mentionKey handles ↑, ↓, Enter, Tab and Esc while members are
  // offered; it says whether it did.
  function mentionKey(ev) {
    const mt = state.mention;
    if (!mt || ev.isComposing) return false;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      mt.index = (mt.index + (ev.key === "ArrowDown" ? 1 : -1) + mt.options.length) % mt.options.length;
      renderMention();
    } else if (ev.key === "Enter" || ev.key === "Tab") {
      chooseMention(mt.options[mt.index]);
    } else if (ev.key === "Escape") {
      state.mention = null;
      renderMention();
    } else {
      return false;
    }
    ev.preventDefault();
    return true;
  }

  function chooseMention(user) {
    const mt = state.mention;
    if (!mt) return;
    const t = dom.input.value;
    const end = dom.input.selectionStart;
    dom.input.value = t.slice(0, mt.start) + "@" + user + " " + t.slice(end);
    const caret = mt.start + user.length + 2;
    dom.input.setSelectionRange(caret, caret);
    state.mention = null;
    renderMention();
    dom.input.focus();
  }

  function renderMention() {
    if (!dom.mentions) return;
    const mt = state.mention;
    dom.mentions.hidden = !mt;
    if (!mt) {
      dom.mentions.replaceChildren();
      dom.input.removeAttribute("aria-activedescendant");
      return;
    }
    dom.mentions.replaceChildren(...mt.options.map((u, i) => h("li", {
      id: "mention-" + i, role: "option", class: i === mt.index ? "active" : null, testid: "mention-option",
      data: { user: u }, "aria-selected": String(i === mt.index),
      onmousedown: (ev) => ev.preventDefault(), onclick: () => chooseMention(u),
    }, "@" + u)));
    dom.input.setAttribute("aria-activedescendant", "mention-" + mt.index);
  }

  // ---- search and mentions (the sidebar's results) ----

  function searchWords(text) {
    return text.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  }

  // find asks the daemon's search and shows what it found in the
  // sidebar instead of the list.
  async function find(mode, params, words) {
    const f = { mode, words, results: null, err: null };
    state.find = f;
    renderFind();
    try {
      f.results = (await call("search", { ...params, limit: 100 })).messages || [];
    } catch (err) {
      f.err = err;
    }
    if (state.find === f) renderFind();
  }

  function submitSearch(ev) {
    ev.preventDefault();
    const text = dom.searchInput.value.trim();
    const p = {};
    if (text) p.text = text;
    const from = dom.searchFrom.value.trim().replace(/^@/, "");
    if (from) p.from = from;
    if (dom.searchConv.value) p.conversation = Number(dom.searchConv.value);
    if (dom.searchAfter.value) p.after = new Date(dom.searchAfter.value + "T00:00:00").toISOString();
    if (dom.searchBefore.value) {
      const d = new Date(dom.searchBefore.value + "T00:00:00");
      d.setDate(d.getDate() + 1); // the day given is included
      p.before = d.toISOString();
    }
    if (!Object.keys(p).length) {
      closeFind();
      return;
    }
    find("search", p, searchWords(text));
  }

  function showMentions() {
    find("mentions", { mentions_me: true }, []);
  }

  function closeFind() {
    state.find = null;
    renderFind();
  }

  function toggleSearchFilters() {
    dom.searchFilters.hidden = !dom.searchFilters.hidden;
    dom.filtersBtn.setAttribute("aria-expanded", String(!dom.searchFilters.hidden));
    if (dom.searchFilters.hidden) return;
    const chosen = dom.searchConv.value;
    dom.searchConv.replaceChildren(h("option", { value: "" }, "All conversations"),
      ...sortedConversations().map((cv) => h("option", { value: String(cv.id), selected: String(cv.id) === chosen || null }, (cv.channel ? "# " : "") + cv.title)));
  }

  function renderFind() {
    const f = state.find;
    dom.list.hidden = dom.filter.hidden = Boolean(f);
    dom.results.hidden = !f;
    if (!f) {
      dom.results.replaceChildren();
      return;
    }
    let body;
    if (f.err) body = h("p", { class: "error pad" }, errText(f.err));
    else if (!f.results) body = h("p", { class: "muted pad" }, "Searching…");
    else if (!f.results.length) body = h("p", { class: "muted pad", testid: "search-empty" }, f.mode === "mentions" ? "No one mentioned you yet." : "No messages found.");
    else body = h("ul", { class: "result-list" }, f.results.map((m) => resultItem(m, f.words)));
    dom.results.replaceChildren(
      h("div", { class: "results-head" },
        h("h2", { testid: "results-title" }, f.mode === "mentions" ? "Mentions of you" : "Search results"),
        button("✕", "search-close", closeFind, { class: "icon", "aria-label": "Close the results" })),
      body);
  }

  function resultItem(m, words) {
    const cv = state.convs.get(m.conversation);
    return h("li", {}, h("button", {
      type: "button", class: "result", testid: "search-result", data: { conversation: String(m.conversation), id: m.id },
      onclick: () => openConversation(m.conversation, m),
    },
    h("span", { class: "result-top" },
      h("span", { class: "result-conv", testid: "result-conv" }, cv ? (cv.channel ? "# " : "") + cv.title : "Conversation " + m.conversation),
      h("time", { class: "conv-time", datetime: m.sent, title: fullTime(m.sent), testid: "result-time" }, shortTime(new Date(m.sent)))),
    h("span", { class: "result-sender", testid: "result-sender" }, m.sender === state.me.user ? "You" : m.sender),
    h("span", { class: "result-text", testid: "result-text" }, highlight(summary(m), words))));
  }

  // highlight marks the words of text that start with one of the
  // search's words (compared without case), as text nodes and <mark>s.
  function highlight(text, words) {
    if (!words.length) return [text];
    const re = new RegExp("(?<![\\p{L}\\p{N}])(?:" + words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|") + ")[\\p{L}\\p{N}]*", "giu");
    const out = [];
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (!m[0]) continue;
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(h("mark", { testid: "result-mark" }, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function startReply(m) {
    state.reply = m;
    state.editing = null;
    renderComposer();
    dom.input.focus();
  }

  function startEdit(m) {
    state.editing = m;
    state.reply = null;
    dom.input.value = m.text;
    renderComposer();
    dom.input.focus();
  }

  function canEdit(m) {
    return m.sender === state.me.user && m.kind === "text" && !m.deleted;
  }

  async function deleteMessage(m) {
    const ok = await ask({ title: "Delete message?", text: "It is deleted for everyone in the conversation.", submit: "Delete", danger: true, testid: "delete-dialog" });
    if (ok) await act(() => call("delete", { conversation: m.conversation, message: m.id }));
  }

  async function toggleReaction(m, emoji) {
    state.reactFor = null;
    const mine = (m.reactions || []).some((r) => r.user === state.me.user && r.emoji === emoji);
    const params = { conversation: m.conversation, message: m.id, emoji };
    if (mine) params.remove = true;
    renderHistory();
    await act(() => call("react", params));
  }

  // ---- files ----

  async function uploadFiles(files) {
    const conv = state.open;
    if (conv == null) return;
    for (const file of files) {
      const reply = state.reply;
      state.reply = null;
      state.uploads.push(file.name);
      renderComposer();
      try {
        const data = new Uint8Array(await file.arrayBuffer());
        const params = { conversation: conv, data, name: file.name, type: file.type || "application/octet-stream" };
        if (reply) params.reply = reply.id;
        const m = await globalThis.parley.upload(params);
        if (m && m.conversation === state.open) {
          upsert(m);
          renderHistory("bottom");
        }
      } catch (err) {
        setStatus("Sending " + file.name + ": " + errText(err), true);
      } finally {
        state.uploads.splice(state.uploads.indexOf(file.name), 1);
        renderComposer();
      }
    }
  }

  async function fetchBlob(att) {
    const f = await globalThis.parley.download(att.id);
    return new Blob([f.data], { type: f.type || att.media_type || "application/octet-stream" });
  }

  async function download(att) {
    try {
      setStatus("Downloading " + (att.file_name || "file") + "…");
      const url = URL.createObjectURL(await fetchBlob(att));
      const a = h("a", { href: url, download: att.file_name || "file", hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      clearStatus();
    } catch (err) {
      setStatus("Download: " + errText(err), true);
    }
  }

  function isImage(att) {
    return /^image\/(png|jpeg|gif|webp|avif|bmp)/.test(att.media_type || "") && att.size <= THUMB_MAX;
  }

  // loadThumb decrypts an image attachment once, and shows it in the
  // elements waiting for it.
  async function loadThumb(att) {
    if (state.thumbs.has(att.id)) return;
    state.thumbs.set(att.id, { loading: true });
    try {
      const url = URL.createObjectURL(await fetchBlob(att));
      state.thumbs.set(att.id, { url });
      for (const img of dom.history.querySelectorAll("img[data-attachment]")) {
        if (img.dataset.attachment === att.id) img.src = url;
      }
    } catch {
      state.thumbs.set(att.id, { failed: true });
    }
  }

  // forgetThumbs frees the decrypted images of the conversation left.
  function forgetThumbs() {
    for (const t of state.thumbs.values()) if (t.url) URL.revokeObjectURL(t.url);
    state.thumbs.clear();
  }

  // ---- members, verification ----

  function togglePanel() {
    state.panel = state.panel ? null : "members";
    renderPanel();
    if (state.panel) loadMembers();
  }

  async function convAction(label, method, params, dialog) {
    const cv = state.convs.get(state.open);
    if (!cv) return;
    let v = {};
    if (dialog) {
      v = await ask(dialog);
      if (!v) return;
    }
    await act(async () => {
      await call(method, { conversation: cv.id, ...params(v) });
      setStatus(label);
      await loadConversations();
      loadPolicy();
      loadMembers();
    });
  }

  function addMember() {
    convAction("Added.", "add", (v) => ({ users: names(v.users) }), {
      title: "Add members", testid: "add-dialog", submit: "Add", fields: [{ name: "users", label: "User names" }],
    });
  }

  function removeMember(user) {
    convAction(user + " removed.", "remove", () => ({ user }), {
      title: "Remove " + user + "?", text: "Their devices leave the conversation.", submit: "Remove", danger: true, testid: "remove-dialog",
    });
  }

  function rename() {
    const cv = state.convs.get(state.open);
    convAction("Renamed.", "set_name", (v) => ({ text: v.text.trim() }), {
      title: "Rename", testid: "rename-dialog", submit: "Rename", fields: [{ name: "text", label: "Name", value: cv.name || "", required: false }],
    });
  }

  function setTopic() {
    const cv = state.convs.get(state.open);
    convAction("Topic changed.", "set_topic", (v) => ({ text: v.text.trim() }), {
      title: "Topic", testid: "topic-dialog", submit: "Set topic", fields: [{ name: "text", label: "Topic", value: cv.topic || "", required: false }],
    });
  }

  // timerSelect chooses the disappearing-message timer.
  function timerSelect(cv) {
    const current = cv.timer || 0;
    const allowed = !cv.left && !cv.unsafe && may("timer");
    const options = TIMERS.some(([v]) => v === current) ? TIMERS : [...TIMERS, [current, current + " seconds"]];
    const sel = h("select", { testid: "conv-timer", disabled: !allowed || null, title: allowed ? null : "Only admins change the timer here.", "aria-describedby": allowed ? null : "timer-reason" },
      options.map(([v, label]) => h("option", { value: String(v), selected: v === current || null }, label)));
    sel.addEventListener("change", () => {
      const timer = Number(sel.value);
      convAction(timer ? "Messages now disappear after " + sel.selectedOptions[0].textContent + "." : "Messages no longer disappear.", "set_timer", () => ({ timer }));
    });
    return h("div", {},
      h("label", { class: "field inline" }, h("span", {}, "Disappearing messages"), sel),
      allowed || cv.left ? null : h("p", { class: "muted small", id: "timer-reason", testid: "timer-reason" }, "Only admins change the timer here."));
  }

  function setRole(user, role) {
    convAction(user + (role === "admin" ? " is now an admin." : " is no longer an admin."), "set_role", () => ({ user, role }));
  }

  function setRule(action, who) {
    convAction("Rules changed.", "set_policy", () => ({ rules: { [action]: who } }));
  }

  function toggleMute() {
    const cv = state.convs.get(state.open);
    convAction(cv.muted ? "Unmuted." : "Muted: only mentions notify.", "set_muted", () => ({ muted: !cv.muted }));
  }

  async function leave() {
    const cv = state.convs.get(state.open);
    const ok = await ask({ title: "Leave " + cv.title + "?", text: "You will no longer receive its messages.", submit: "Leave", danger: true, testid: "leave-dialog" });
    if (!ok) return;
    await act(async () => {
      await call("leave", { conversation: cv.id });
      await loadConversations();
    });
  }

  async function recreate() {
    await act(async () => {
      const res = await call("recreate", { conversation: state.open });
      await loadConversations();
      openConversation(res.conversation);
    });
  }

  // openVerify shows the safety number with user; pending shows the one
  // of a new identity key, to accept.
  async function openVerify(user, pending) {
    state.panel = "verify";
    state.verify = { user, pending: Boolean(pending), sn: null, err: null };
    renderPanel();
    const v = state.verify;
    try {
      if (!pending && (await call("identity_changed", { user })).changed) v.pending = true;
      v.sn = await call(v.pending ? "safety_number_pending" : "safety_number", { user });
    } catch (err) {
      v.err = err;
    }
    if (state.verify === v) renderPanel();
  }

  async function markVerified(user) {
    await act(async () => {
      await call("mark_verified", { user });
      setStatus(user + " marked verified.");
      state.alerts.delete(user);
      renderAlerts();
      loadConversations();
      openVerify(user, false);
    });
  }

  async function acceptIdentity(sn) {
    await act(async () => {
      await call("acknowledge_identity", { user: sn.user, digits: sn.digits });
      state.alerts.delete(sn.user);
      renderAlerts();
      reloadAll();
      openVerify(sn.user, false);
    });
  }

  // ---- the account's devices ----

  // openDevices shows the devices screen in place of the conversation.
  function openDevices() {
    state.screen = "devices";
    state.devices = { list: null, err: null, link: null };
    dom.shell.classList.add("show-devices");
    dom.shell.dataset.view = "devices";
    dom.devices.hidden = false;
    renderDevices();
    loadDevices();
    dom.devicesBack.focus();
  }

  function closeDevices() {
    if (state.screen !== "devices") return;
    const l = state.devices.link;
    if (l && (l.step === "waiting" || l.step === "confirm")) call("cancel_link_device").catch(() => {});
    state.screen = null;
    state.devices = null;
    dom.shell.classList.remove("show-devices");
    dom.shell.dataset.view = state.open != null ? "conv" : "list";
    dom.devices.hidden = true;
    dom.devices.replaceChildren();
  }

  async function loadDevices() {
    const d = state.devices;
    try {
      d.list = (await call("devices")).devices || [];
      d.listErr = null;
    } catch (err) {
      d.listErr = err;
    }
    if (state.devices === d) renderDevices();
  }

  function deviceLabel(d) {
    return d.name || (d.this ? "This browser" : "Unnamed device");
  }

  async function renameDevice(d) {
    const v = await ask({ title: "Rename " + deviceLabel(d), testid: "rename-device-dialog", submit: "Rename",
      fields: [{ name: "name", label: "Name", value: d.name || "", required: false }] });
    if (!v) return;
    await deviceAction(() => call("rename_device", { device: d.id, name: v.name.trim() }), "Renamed.");
  }

  async function revokeDevice(d) {
    const ok = await ask({
      title: "Revoke " + deviceLabel(d) + "?", testid: "revoke-device-dialog", submit: "Revoke", danger: true,
      text: d.this
        ? "This is this browser: it is removed from your conversations and can no longer sign in. It cannot be undone."
        : "It is removed from your conversations and can no longer sign in: do this for a lost or stolen device. It cannot be undone.",
    });
    if (!ok) return;
    await deviceAction(() => call("revoke_device", { device: d.id }), deviceLabel(d) + " revoked.");
  }

  // deviceAction runs a change of the device list and shows its outcome.
  async function deviceAction(f, done) {
    const d = state.devices;
    try {
      await f();
      d.err = null;
      setStatus(done);
    } catch (err) {
      d.err = /last active device/.test(err.message)
        ? "This is your account's last active device: revoking it would lock the account for good. Link another device first."
        : errText(err);
    }
    if (state.devices === d) loadDevices();
  }

  // The link of a new device, from this one (docs/daemon.md, "Linking a
  // device"): the code it shows, then the confirmation to compare and
  // accept or decline.
  function startLinkDevice() {
    state.devices.link = { step: "code" };
    renderDevices();
    dom.devices.querySelector("[data-testid=link-device-code]").focus();
  }

  async function submitLinkCode(code) {
    const l = { step: "waiting", code };
    state.devices.link = l;
    renderDevices();
    try {
      l.q = await call("link_device", { code });
      l.step = "confirm";
    } catch (err) {
      l.step = "error";
      l.err = err;
    }
    if (state.devices && state.devices.link === l) {
      if (l.cancelled) state.devices.link = null;
      renderDevices();
    }
  }

  async function answerLinkDevice(accept) {
    const l = state.devices.link;
    const params = { link: l.q.link, accept };
    if (accept && l.history) params.history = [...state.convs.keys()];
    l.step = accept ? "adding" : "declining";
    renderDevices();
    try {
      l.result = await call("link_device_confirm", params);
      l.step = "done";
      loadDevices();
    } catch (err) {
      l.step = "error";
      l.err = err;
      if (!accept && err.code === "link_refused") {
        l.step = "declined";
      }
    }
    if (state.devices && state.devices.link === l) renderDevices();
  }

  function cancelLinkDevice() {
    const l = state.devices.link;
    if (l && l.step === "waiting") {
      l.cancelled = true;
      call("cancel_link_device").catch(() => {});
      return;
    }
    state.devices.link = null;
    renderDevices();
  }

  function renderDevices() {
    const d = state.devices;
    if (!d) return;
    const list = d.list || [];
    const forged = list.filter((x) => x.forged);
    let body;
    if (d.listErr) body = h("p", { class: "error pad" }, errText(d.listErr));
    else if (!d.list) body = h("p", { class: "muted pad" }, "Loading…");
    else body = h("ul", { class: "device-list", testid: "device-list" }, list.map(deviceItem));
    dom.devices.replaceChildren();
    add(dom.devices, [
      h("header", { class: "bar" }, dom.devicesBack, h("div", { class: "titles" }, h("h2", {}, "Your devices")),
        d.link ? null : button("Link a new device", "link-device-open", startLinkDevice, { class: "primary" })),
      forged.length ? h("div", { class: "alert", testid: "devices-forged" },
        h("span", {}, "⚠ The server lists " + (forged.length === 1 ? "a device" : forged.length + " devices") + " for your account that none of your devices certified. Parley refuses " +
          (forged.length === 1 ? "it: it" : "them: they") + " can read nothing. Tell the server's administrator.")) : null,
      d.err ? h("p", { class: "error pad", role: "alert", testid: "devices-error" }, d.err) : null,
      d.link ? linkDeviceView(d.link) : null,
      h("div", { class: "devices-body" }, body,
        h("p", { class: "muted small pad" }, "Every device has its own keys and is a member of every conversation of your account. Revoke a device you lost: it is removed from your conversations and can no longer sign in.")),
    ]);
  }

  function deviceItem(d) {
    const st = d.forged ? "forged" : d.revoked ? "revoked" : d.disabled ? "disabled" : "active";
    const seen = d.last_seen ? shortTime(new Date(d.last_seen)) : "never";
    return h("li", { class: "device" + (d.forged ? " forged" : ""), testid: "device", data: { device: d.id, state: st, this: d.this ? "true" : "false" } },
      h("div", { class: "device-top" },
        h("strong", { class: "device-name", testid: "device-name" }, deviceLabel(d)),
        d.this ? h("span", { class: "tag ok", testid: "device-this" }, "this device") : null,
        d.forged ? h("span", { class: "tag bad", testid: "device-forged", title: "Not certified by your identity key: refused by every client" }, "forged: refused") : null,
        d.revoked ? h("span", { class: "tag warn", testid: "device-revoked" }, "revoked " + shortTime(new Date(d.revoked))) : null,
        d.disabled ? h("span", { class: "tag warn", testid: "device-disabled" }, "disabled by the administrator") : null),
      h("p", { class: "device-meta muted small" },
        h("span", { testid: "device-created", title: fullTime(d.created) }, "Added " + shortTime(new Date(d.created))),
        " · ", h("span", { testid: "device-seen", title: d.last_seen ? fullTime(d.last_seen) : null }, "last seen " + seen),
        " · ", h("span", { class: "device-id", testid: "device-id", title: d.id }, d.id.slice(0, 8) + "…")),
      st === "revoked" ? null : h("div", { class: "row" },
        d.forged ? null : button("Rename", "device-rename", () => renameDevice(d), { class: "small", data: { device: d.id } }),
        button("Revoke", "device-revoke", () => revokeDevice(d), { class: "small danger", data: { device: d.id } })));
  }

  function linkDeviceView(l) {
    const close = (label) => button(label || "Close", "link-device-close", cancelLinkDevice, { class: "small" });
    const box = h("section", { class: "link-device", testid: "link-device", data: { step: l.step }, "aria-live": "polite" }, h("h3", {}, "Link a new device"));
    switch (l.step) {
      case "code": {
        const input = h("input", { type: "text", required: true, autocomplete: "off", autocapitalize: "characters", spellcheck: "false",
          placeholder: "ABCD-EFGH-IJKL-MNOP-QRST-UVWX", "aria-label": "Link code", testid: "link-device-code" });
        const form = h("form", { class: "link-device-form", testid: "link-device-form" },
          h("p", {}, "On the new device, choose to link it to your account (parley link, or Link this browser in Parley on the web); then enter the code it shows."),
          input, h("div", { class: "row end" }, close("Cancel"), h("button", { type: "submit", class: "primary", testid: "link-device-submit" }, "Connect")));
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          if (input.value.trim()) submitLinkCode(input.value.trim());
        });
        add(box, [form]);
        break;
      }
      case "waiting":
        add(box, [h("p", { class: "muted" }, "Connecting to the new device…"), h("div", { class: "row end" }, button("Cancel", "link-device-cancel", cancelLinkDevice, { class: "small" }))]);
        break;
      case "confirm": {
        const history = h("input", { type: "checkbox", testid: "link-device-history", checked: l.history || null });
        history.addEventListener("change", () => {
          l.history = history.checked;
        });
        add(box, [
          h("p", {}, "Link " + (l.q.name ? "“" + l.q.name + "”" : "a device without a name") + " to your account? Check that it shows this confirmation:"),
          h("p", { class: "confirmation", testid: "link-device-confirmation" }, l.q.confirmation),
          h("p", { class: "muted small" }, "If it shows another one, decline: someone else may be trying to link a device."),
          h("label", { class: "check" }, history, "Also send it the history of your conversations (encrypted for it alone)"),
          h("div", { class: "row end" },
            button("Decline", "link-device-decline", () => answerLinkDevice(false), { class: "danger" }),
            button("Link it", "link-device-accept", () => answerLinkDevice(true), { class: "primary" }))]);
        break;
      }
      case "adding":
      case "declining":
        add(box, [h("p", { class: "muted" }, l.step === "adding" ? "Linking, and adding the new device to your conversations…" : "Declining…")]);
        break;
      case "done": {
        const r = l.result;
        const n = r.conversations;
        add(box, [
          h("p", { class: "ok", testid: "link-device-result" }, "✓ Linked " + (r.name || "the device") + "; added it to " + n + (n === 1 ? " conversation." : " conversations.")),
          r.history && r.history.conversations ? h("p", { testid: "link-device-history-result" }, "Sent it the history of " + r.history.conversations +
            (r.history.conversations === 1 ? " conversation (" : " conversations (") + r.history.messages + " messages).") : null,
          r.history_error ? h("p", { class: "hint" }, "The history was not sent: " + r.history_error) : null,
          r.failed && r.failed.length ? h("p", { class: "hint" }, "It could not be added to " + r.failed.length + " conversations yet; it is added to them later.") : null,
          h("div", { class: "row end" }, close())]);
        break;
      }
      case "declined":
        add(box, [h("p", { testid: "link-device-result" }, "Declined: nothing was linked."), h("div", { class: "row end" }, close())]);
        break;
      default:
        add(box, [h("p", { class: "error", testid: "link-device-error" }, errText(l.err)),
          h("div", { class: "row end" }, close(), button("Try again", "link-device-retry", startLinkDevice, { class: "small" }))]);
    }
    return box;
  }

  // ---- dialogs ----

  // ask shows a modal dialog with fields; it resolves to their values
  // (an object; {} without fields) or null when cancelled.
  function ask(opts) {
    return new Promise((resolve) => {
      const dlg = dom.dialog;
      const inputs = (opts.fields || []).map((f) => {
        const input = h("input", { type: "text", name: f.name, required: f.required !== false, autocomplete: "off", testid: "dialog-" + f.name });
        input.value = f.value || "";
        return { f, input };
      });
      const form = h("form", { method: "dialog", class: "dialog-form", testid: opts.testid },
        h("h2", {}, opts.title),
        opts.text ? h("p", {}, opts.text) : null,
        inputs.map(({ f, input }) => field(f.label, input)),
        h("div", { class: "row end" },
          h("button", { type: "button", testid: "dialog-cancel", onclick: () => dlg.close("") }, "Cancel"),
          h("button", { type: "submit", value: "ok", class: opts.danger ? "danger" : "primary", testid: "dialog-submit" }, opts.submit || "OK")));
      dlg.replaceChildren(form);
      dlg.onclose = () => {
        dlg.onclose = null;
        if (dlg.returnValue !== "ok") return resolve(null);
        const v = {};
        for (const { f, input } of inputs) v[f.name] = input.value;
        resolve(v);
      };
      dlg.returnValue = "";
      dlg.showModal();
      if (inputs.length) inputs[0].input.focus();
    });
  }

  // ---- the main screen ----

  function buildShell() {
    dom.conn = h("span", { class: "conn", testid: "connection", role: "status" });
    dom.bell = button("", "notify-toggle", toggleNotifications, { class: "icon", title: "Notifications" });
    dom.filter = h("input", { type: "search", placeholder: "Filter conversations", "aria-label": "Filter conversations", testid: "conv-filter" });
    dom.filter.addEventListener("input", () => {
      state.filter = dom.filter.value.toLowerCase();
      renderList();
    });
    dom.list = h("ul", { class: "conv-list", testid: "conv-list", "aria-label": "Conversations" });
    dom.results = h("section", { class: "results", testid: "search-results", "aria-label": "Results", hidden: true });
    const sidebar = h("aside", { class: "sidebar", "aria-label": "Conversations" },
      h("header", { class: "bar" },
        h("div", { class: "me" }, h("strong", { testid: "me" }, state.me.user), dom.conn),
        h("div", { class: "row" }, button("@", "mentions-open", showMentions, { class: "icon", title: "Mentions of you", "aria-label": "Mentions of you" }), dom.bell,
          button("💻", "devices-open", openDevices, { class: "icon", title: "Your devices", "aria-label": "Your devices" }))),
      h("div", { class: "row new-actions" },
        button("New chat", "new-direct", newDirect),
        button("New group", "new-group", newGroup),
        button("New channel", "new-channel", newChannel)),
      searchForm(), dom.filter, dom.list, dom.results);

    dom.back = button("‹", "back", closeConversation, { class: "icon back", "aria-label": "Back to conversations" });
    dom.title = h("h2", { testid: "conv-title" });
    dom.topic = h("p", { class: "topic", testid: "conv-topic" });
    dom.timer = h("span", { class: "timer-badge", testid: "conv-timer-badge", hidden: true });
    dom.membersBtn = button("Members", "members-toggle", togglePanel, { "aria-expanded": "false" });
    dom.convAlerts = h("div", { class: "conv-alerts" });
    dom.history = h("ol", { class: "history", testid: "history", "aria-label": "Messages", tabindex: "0" });
    dom.history.addEventListener("scroll", onHistoryScroll);
    dom.typing = h("p", { class: "typing", testid: "typing", "aria-live": "polite" });
    dom.uploads = h("div", { class: "uploads", testid: "upload-progress", hidden: true });
    dom.mode = h("div", { class: "mode", testid: "composer-mode", hidden: true });
    dom.input = h("textarea", { rows: "1", placeholder: "Message", "aria-label": "Message", testid: "composer-input", "aria-autocomplete": "list", "aria-controls": "mention-list" });
    dom.mentions = h("ul", { class: "mention-list", id: "mention-list", role: "listbox", "aria-label": "Members to mention", testid: "mention-list", hidden: true });
    dom.input.addEventListener("keydown", onComposerKey);
    dom.input.addEventListener("input", () => {
      onComposerInput();
      autoGrow();
    });
    dom.file = h("input", { type: "file", multiple: true, class: "sr-only", id: "file-input", testid: "file-input" });
    dom.file.addEventListener("change", () => {
      uploadFiles([...dom.file.files]);
      dom.file.value = "";
    });
    dom.fileLabel = h("label", { for: "file-input", class: "button icon", title: "Send a file", testid: "file-button" }, "📎", h("span", { class: "sr-only" }, "Send a file"));
    dom.send = h("button", { type: "submit", class: "primary", testid: "composer-send" }, "Send");
    dom.composer = h("form", { class: "composer", testid: "composer" }, dom.file, dom.fileLabel, dom.input, dom.send);
    dom.composer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      submitComposer();
    });
    dom.closed = h("p", { class: "closed", testid: "composer-closed", hidden: true });
    dom.main = h("main", { class: "conv", testid: "conversation" },
      h("header", { class: "bar" }, dom.back, h("div", { class: "titles" }, dom.title, dom.topic), dom.timer, dom.membersBtn),
      dom.convAlerts, dom.history, dom.typing, dom.uploads, dom.mode, dom.mentions, dom.composer, dom.closed);
    dom.empty = h("div", { class: "empty", testid: "no-conversation" }, h("p", {}, "Choose a conversation, or start one."));
    dom.panel = h("aside", { class: "panel", testid: "members-panel", hidden: true, "aria-label": "Conversation details" });
    dom.devices = h("section", { class: "devices", testid: "devices-view", hidden: true, "aria-label": "Your devices" });
    dom.devicesBack = button("‹", "devices-back", closeDevices, { class: "icon", "aria-label": "Back to conversations", title: "Back to conversations" });
    dom.alerts = h("div", { class: "alerts", testid: "alerts", role: "alert" });
    dom.status = h("div", { class: "status", testid: "status", role: "status", hidden: true });
    dom.announce = h("div", { class: "sr-only", "aria-live": "polite", testid: "announce" });
    dom.dialog = h("dialog", { class: "dialog", testid: "dialog" });
    dom.shell = h("div", { class: "shell", testid: "shell", data: { view: "list" } }, sidebar, dom.empty, dom.main, dom.devices, dom.panel);
    dragAndDrop(dom.main);
    new ResizeObserver(keepBottom).observe(dom.history);
    show(h("div", { class: "layout" }, dom.alerts, dom.shell, dom.status, dom.announce, dom.dialog));
    window.addEventListener("focus", () => maybeMarkRead(true));
    document.addEventListener("visibilitychange", () => maybeMarkRead(true));
    renderConnection();
    renderBell();
    renderAll();
  }

  // searchForm is the sidebar's search box, with the filter row
  // (sender, conversation, dates) behind a toggle.
  function searchForm() {
    dom.searchInput = h("input", { type: "search", placeholder: "Search messages", "aria-label": "Search messages", testid: "search-input" });
    dom.searchFrom = h("input", { type: "text", placeholder: "From", "aria-label": "From (user name)", autocapitalize: "none", spellcheck: "false", testid: "search-from" });
    dom.searchConv = h("select", { "aria-label": "In conversation", testid: "search-conv" }, h("option", { value: "" }, "All conversations"));
    dom.searchAfter = h("input", { type: "date", "aria-label": "From date", testid: "search-after" });
    dom.searchBefore = h("input", { type: "date", "aria-label": "To date", testid: "search-before" });
    dom.searchFilters = h("div", { class: "search-filters", testid: "search-filters", hidden: true },
      dom.searchFrom, dom.searchConv, h("label", {}, "from ", dom.searchAfter), h("label", {}, "to ", dom.searchBefore));
    dom.filtersBtn = button("⚙", "search-filters-toggle", toggleSearchFilters, { class: "icon", title: "Search filters", "aria-label": "Search filters", "aria-expanded": "false" });
    const form = h("form", { class: "search", role: "search", testid: "search-form" },
      h("div", { class: "row" }, dom.searchInput,
        h("button", { type: "submit", class: "icon", title: "Search", "aria-label": "Search", testid: "search-submit" }, "🔍"), dom.filtersBtn),
      dom.searchFilters);
    form.addEventListener("submit", submitSearch);
    return form;
  }

  function dragAndDrop(zone) {
    const over = (ev) => {
      if (state.open == null || ![...ev.dataTransfer.types].includes("Files")) return;
      ev.preventDefault();
      zone.classList.add("dropping");
    };
    zone.addEventListener("dragenter", over);
    zone.addEventListener("dragover", over);
    zone.addEventListener("dragleave", (ev) => {
      if (!zone.contains(ev.relatedTarget)) zone.classList.remove("dropping");
    });
    zone.addEventListener("drop", (ev) => {
      zone.classList.remove("dropping");
      if (state.open == null || !ev.dataTransfer.files.length) return;
      ev.preventDefault();
      uploadFiles([...ev.dataTransfer.files]);
    });
  }

  function renderAll() {
    renderList();
    renderConvHeader();
    renderHistory();
    renderComposer();
    renderPanel();
    renderAlerts();
  }

  function renderConnection() {
    const label = { connected: "Connected", connecting: "Connecting…", offline: "Offline" }[state.conn];
    dom.conn.dataset.state = state.conn;
    dom.conn.textContent = label;
  }

  function renderBell() {
    const perm = "Notification" in globalThis ? Notification.permission : "unsupported";
    dom.bell.hidden = perm === "unsupported";
    dom.bell.dataset.permission = perm;
    dom.bell.textContent = perm === "granted" ? "🔔" : "🔕";
    dom.bell.setAttribute("aria-label", perm === "granted" ? "Notifications on" : perm === "denied" ? "Notifications blocked" : "Turn on notifications");
    dom.bell.title = dom.bell.getAttribute("aria-label");
  }

  // ---- the list ----

  // activity is the time of a conversation's last entry (ms), worked out
  // once per entry: the list sorts by it at every render.
  const activityOf = new WeakMap(); // entry → its time
  function activity(cv) {
    const l = cv.last;
    if (!l) return 0;
    let t = activityOf.get(l);
    if (t === undefined) {
      t = Date.parse(l.received && !l.received.startsWith("0001") ? l.received : l.sent) || 0;
      activityOf.set(l, t);
    }
    return t;
  }

  function sortedConversations() {
    return [...state.convs.values()]
      .filter((cv) => !state.filter || (cv.title || "").toLowerCase().includes(state.filter))
      .sort((a, b) => activity(b) - activity(a) || b.id - a.id);
  }

  // renderList shows the conversations, most recent activity first. An
  // item is filled again only when what it shows changed (see listNode),
  // so that a new message changes one item, not the list.
  function renderList() {
    const cvs = sortedConversations();
    listDay = new Date().toDateString();
    if (!cvs.length) {
      listNodes.clear();
      dom.list.replaceChildren(h("li", { class: "muted pad", testid: "conv-empty" }, state.filter ? "No match." : "No conversations yet."));
      return;
    }
    const shown = new Set(cvs.map((cv) => cv.id));
    for (const id of listNodes.keys()) if (!shown.has(id)) listNodes.delete(id);
    reconcile(dom.list, cvs.map(listNode));
  }

  const listNodes = new Map(); // conversation id → {key, item}
  let listDay = ""; // the day of the list's render: its times depend on it

  // listNode returns the element of a conversation's item. An item is
  // made once and filled again only when what it shows is made of
  // (listKey) changed, so that a render of a long list formats only the
  // items that changed.
  function listNode(cv) {
    const key = listKey(cv);
    let c = listNodes.get(cv.id);
    if (!c) {
      c = { key: null, item: listItem(cv) };
      listNodes.set(cv.id, c);
    }
    if (!c.key || !c.key.every((v, i) => v === key[i])) {
      fillItem(c.item, cv);
      c.key = key;
    }
    return c.item.node;
  }

  // listKey is what a conversation's item is made of: a new last entry
  // is a new object (the page replaces entries, never changes them), and
  // the time shown depends on the day as well.
  function listKey(cv) {
    return [cv.id === state.open, cv.unread || 0, !!cv.muted, !!cv.channel, cv.title, cv.last,
      !!cv.unsafe, !!cv.left, cv.removed_by, listDay];
  }

  // listItem makes the elements of a conversation's item, empty;
  // fillItem shows the conversation in them.
  function listItem(cv) {
    const it = {
      avatar: h("span", { class: "avatar", "aria-hidden": "true" }),
      name: h("span", { class: "conv-name", testid: "conv-name" }),
      muted: h("span", { class: "muted", title: "Muted", "aria-label": "muted" }, "🔕"),
      time: h("span", { class: "conv-time" }),
      preview: h("span", { class: "preview", testid: "conv-preview" }),
      badge: h("span", { testid: "unread-badge" }),
    };
    it.top = h("span", { class: "conv-top" }, it.name, it.time);
    it.bottom = h("span", { class: "conv-bottom" }, it.preview);
    it.button = h("button", {
      type: "button", testid: "conv-item", data: { conversation: String(cv.id) },
      onclick: () => openConversation(cv.id),
    }, it.avatar, h("span", { class: "conv-text" }, it.top, it.bottom));
    it.node = h("li", {}, it.button);
    return it;
  }

  // fillItem shows cv in its item, changing only what differs: a new
  // message changes the item's time and preview rather than making the
  // item again (new elements that the browser styles, lays out and
  // paints anew), and a focused item keeps the focus.
  function fillItem(it, cv) {
    const active = cv.id === state.open;
    setClass(it.button, "conv-item" + (active ? " active" : "") + (cv.unread ? " unread" : ""));
    setAttr(it.button, "aria-current", active ? "true" : null);
    setText(it.avatar, initials(cv.title));
    setText(it.name, (cv.channel ? "# " : "") + cv.title);
    place(it.top, it.muted, cv.muted, it.time);
    setText(it.time, cv.last ? shortTime(new Date(activity(cv))) : "");
    setText(it.preview, preview(cv));
    if (cv.unread > 0) {
      setClass(it.badge, "badge" + (cv.muted ? " quiet" : ""));
      setAttr(it.badge, "aria-label", cv.unread + " unread");
      setText(it.badge, String(cv.unread));
    }
    place(it.bottom, it.badge, cv.unread > 0, null);
  }

  // setText, setClass and setAttr change an element only where it
  // differs; place puts el into box before next when want holds and
  // takes it out when not.
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function setClass(el, name) {
    if (el.className !== name) el.className = name;
  }
  function setAttr(el, name, value) {
    if (value == null) el.removeAttribute(name);
    else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }
  function place(box, el, want, next) {
    if (want && el.parentNode !== box) box.insertBefore(el, next);
    else if (!want && el.parentNode === box) el.remove();
  }

  function initials(title) {
    const words = (title || "?").split(/[\s,]+/).filter(Boolean);
    return words.slice(0, 2).map((w) => [...w][0].toUpperCase()).join("") || "?";
  }

  function preview(cv) {
    const l = cv.last;
    if (cv.unsafe) return "Unsafe: nothing can be sent";
    if (cv.left) return cv.removed_by ? "Removed by " + cv.removed_by : "You left";
    if (!l) return "No messages";
    if (l.kind === "system") return systemText(l);
    return (l.sender === state.me.user ? "You" : l.sender) + ": " + summary(l);
  }

  function summary(m) {
    if (m.deleted) return "message deleted";
    if (m.attachment && !m.text) return "📎 " + (m.attachment.file_name || "file");
    return m.text.replace(/\s+/g, " ");
  }

  // ---- the conversation ----

  function renderConvHeader() {
    const cv = state.convs.get(state.open);
    dom.shell.classList.toggle("has-conv", Boolean(cv));
    if (!cv) return;
    dom.title.textContent = (cv.channel ? "# " : "") + cv.title;
    dom.topic.textContent = [cv.topic || (cv.channel ? "Channel · " : "") + (cv.direct ? "Direct chat" : cv.members.length + " members"),
      cv.channel && !cv.admin ? "only admins post" : "",
      cv.muted ? "muted" : ""].filter(Boolean).join(" · ");
    dom.timer.hidden = !cv.timer;
    dom.timer.textContent = cv.timer ? "⏱ " + timerText(cv.timer) : "";
    dom.timer.title = cv.timer ? "Messages disappear " + timerText(cv.timer) + " after they are sent" : "";
    dom.membersBtn.setAttribute("aria-expanded", String(Boolean(state.panel)));
    renderAlerts();
    renderComposer();
  }

  // trimHistory keeps a history that sticks to its newest entry at most
  // 2 × PAGE entries long, dropping the oldest down to PAGE: far above
  // the view, and loaded again when the person scrolls up to them
  // (loadOlder). So a conversation left open for a long time costs the
  // same per new message as one just opened.
  function trimHistory() {
    if (!state.stick || state.loading || state.msgs.length <= 2 * PAGE) return;
    state.msgs = state.msgs.slice(-PAGE);
    state.atStart = false;
  }

  function nearBottom() {
    const b = dom.history;
    return b.scrollHeight - b.scrollTop - b.clientHeight < 60;
  }

  // onHistoryScroll follows the person's scrolling: the view stops
  // sticking to the newest entry when they scroll up away from it, and
  // sticks again when they come back down to it. A scroll down that the
  // page or the browser made (to the bottom, or to keep the entries in
  // view while content above them grew) leaves a sticking view sticking,
  // even when an image grew the history again before the scroll event
  // came.
  let lastScrollTop = 0;
  function onHistoryScroll() {
    const top = dom.history.scrollTop;
    if (top < lastScrollTop || !state.stick) state.stick = nearBottom();
    lastScrollTop = top;
    if (top < 120) loadOlder();
  }

  // keepBottom keeps the newest entry in view when content above it
  // grew (an image that loaded).
  function keepBottom() {
    if (state.stick) scrollToBottom();
  }

  function scrollToBottom() {
    dom.history.scrollTop = dom.history.scrollHeight;
  }

  // renderHistory shows the entries; mode "bottom" scrolls to the
  // newest, "older" keeps the entries shown in place after older ones
  // came in above, else the view sticks to the bottom if it was there
  // (state.stick, which follows the person's scrolling: see
  // onHistoryScroll). An entry's element is made again only when the
  // entry or what its element shows of the rest of the page changed (see
  // entryNode); the others stay in the document as they are, so a new
  // message costs one element and the layout of what changed, not the
  // whole history. The view's position is read only where it is kept, so
  // that a message added to a view at its bottom forces no layout before
  // the change.
  function renderHistory(mode) {
    if (!dom.history) return;
    const box = dom.history;
    const toBottom = mode === "bottom" || mode === "focus" || (mode !== "older" && state.stick);
    const top = toBottom ? 0 : box.scrollTop;
    const fromBottom = toBottom ? 0 : box.scrollHeight - top;
    const items = [];
    if (state.loading && !state.msgs.length) items.push(notice("Loading…"));
    else if (state.atStart) items.push(notice("Start of the conversation"));
    else if (state.loading) items.push(notice("Loading older messages…"));
    let prevDay = "";
    const seen = new Set();
    const days = new Set();
    const byID = new Map(state.msgs.map((m) => [m.id, m]));
    for (const m of state.msgs) {
      const day = dayOf(m);
      if (day !== prevDay) items.push(daySeparator(day, days));
      prevDay = day;
      items.push(entryNode(m, byID));
      seen.add(m.id);
    }
    for (const id of entryNodes.keys()) if (!seen.has(id)) entryNodes.delete(id);
    reconcile(box, items);
    const focused = mode === "focus" && state.focus ? box.querySelector(".msg.focus") : null;
    if (focused) {
      focused.scrollIntoView({ block: "center" });
      state.stick = nearBottom();
    } else if (toBottom) {
      scrollToBottom();
      state.stick = true;
    } else if (mode === "older") {
      box.scrollTop = box.scrollHeight - fromBottom;
      state.stick = nearBottom();
    } else box.scrollTop = top;
    lastScrollTop = box.scrollTop;
  }

  function systemItem(m) {
    const kind = m.system ? m.system.kind : "";
    const admin = kind === "role_changed" || kind === "policy_changed" || kind === "change_ignored";
    return h("li", { class: "system" + (admin ? " admin" : ""), testid: "system-line", data: { id: m.id, seq: String(m.seq), kind } },
      admin ? h("span", { "aria-hidden": "true" }, "🛡 ") : null,
      h("span", {}, systemText(m)), " ", h("time", { datetime: m.sent }, clock(m.sent)));
  }

  // systemText says what a system line records; the rules of a
  // policy_changed line ("ACTOR set the policy: add=members …") are
  // put in words.
  function systemText(m) {
    if (m.system && m.system.kind === "timer_changed") return m.text.replace(/ to (\d+)([smhdw])$/, (_, n, u) => " to " + unitText(Number(n), u));
    const i = m.text.indexOf(" set the policy: ");
    if (!m.system || m.system.kind !== "policy_changed" || i < 0) return m.text;
    const rules = new Map(m.text.slice(i + 17).split(" ").map((r) => r.split("=")));
    const by = { admins: [], members: [] };
    for (const [action, what] of ACTIONS) if (by[rules.get(action)]) by[rules.get(action)].push(what);
    const parts = [];
    if (by.admins.length) parts.push("only admins may " + by.admins.join(", "));
    if (by.members.length) parts.push("every member may " + by.members.join(", "));
    return m.text.slice(0, i) + " changed the rules: " + parts.join("; ");
  }

  // entryNodes keeps each shown entry's element with what it was made
  // from: the entry object (replaced on every change) and the state of
  // the page it shows (entrySig).
  const entryNodes = new Map(); // id → {m, sig, node}
  const dayNodes = new Map(); // day → separator element
  const notices = new Map(); // text → element

  function entryNode(m, byID) {
    const sig = entrySig(m, byID);
    const c = entryNodes.get(m.id);
    if (c && c.m === m && c.sig === sig) return c.node;
    const node = m.kind === "system" ? systemItem(m) : messageItem(m);
    entryNodes.set(m.id, { m, sig, node });
    return node;
  }

  // entrySig sums up what a message's element shows besides the message:
  // focus, the open reaction picker, whether this user may post, the
  // quoted message (found in byID, the shown entries by id) and an
  // image's thumbnail.
  function entrySig(m, byID) {
    if (m.kind === "system") return "";
    const cv = state.convs.get(m.conversation);
    const q = m.reply_to ? byID.get(m.reply_to) : null;
    const t = m.attachment ? state.thumbs.get(m.attachment.id) : null;
    return [m.id === state.focus, state.reactFor === m.id, canPost(cv),
      q ? q.seq + ":" + (q.text || "") + ":" + q.deleted : "", t ? t.url || (t.failed ? "failed" : "loading") : ""].join("|");
  }

  // daySeparator returns the separator of a day, kept from render to
  // render; a day that comes back in the same render (senders' clocks
  // disagree) gets another element, since an element is in one place.
  function daySeparator(day, used) {
    let el = used.has(day) ? null : dayNodes.get(day);
    if (!el) {
      el = h("li", { class: "day", role: "separator", testid: "day-separator" }, h("span", {}, day));
      if (!used.has(day)) dayNodes.set(day, el);
    }
    used.add(day);
    return el;
  }

  function notice(text) {
    let el = notices.get(text);
    if (!el) {
      el = h("li", { class: "notice" }, text);
      notices.set(text, el);
    }
    return el;
  }

  // reconcile makes box's children the elements of items, in order,
  // moving only those out of place and removing the rest. An element
  // that is no longer wanted is removed where it stands, so that one made
  // again in its place (an item whose text changed) costs one insertion,
  // not a move of every element after it. Elements are moved with
  // moveBefore where the browser has it, which keeps their state: a
  // focused conversation that a message brings to the top keeps the
  // focus.
  function reconcile(box, items) {
    const wanted = new Set(items);
    let at = box.firstChild;
    for (const el of items) {
      while (at && !wanted.has(at)) {
        const next = at.nextSibling;
        box.removeChild(at);
        at = next;
      }
      if (el === at) {
        at = at.nextSibling;
        continue;
      }
      if (el.parentNode === box && box.moveBefore) box.moveBefore(el, at);
      else box.insertBefore(el, at);
    }
    while (at) {
      const next = at.nextSibling;
      box.removeChild(at);
      at = next;
    }
  }

  function messageItem(m) {
    const mine = m.sender === state.me.user;
    return h("li", {
      class: "msg" + (mine ? " mine" : "") + (m.mentions_me ? " mention" : "") + (m.deleted ? " deleted" : "") + (m.id === state.focus ? " focus" : ""),
      testid: "message", data: { id: m.id, seq: String(m.seq), sender: m.sender },
    },
    h("div", { class: "bubble" },
      h("div", { class: "meta" },
        h("span", { class: "sender", testid: "message-sender" }, mine ? "You" : m.sender),
        h("time", { datetime: m.sent, title: fullTime(m.sent) }, clock(m.sent)),
        m.edited && !m.deleted ? h("span", { class: "edited", testid: "message-edited" }, "edited") : null,
        mine ? h("span", { class: "state state-" + m.state, testid: "message-state" }, stateText(m)) : null,
        m.expires && !m.deleted ? h("span", { class: "expires", testid: "message-expires", title: "Disappears " + fullTime(m.expires) }, "⏱ disappears in " + untilText(m.expires)) : null),
      m.reply_to && !m.deleted ? quote(m.reply_to) : null,
      body(m),
      m.attachment && !m.deleted ? attachment(m.attachment) : null,
      reactions(m)),
    m.deleted ? null : actions(m));
  }

  function stateText(m) {
    switch (m.state) {
      case "pending": return "queued";
      case "failed": return "not delivered";
      case "read": return m.read_by && m.read_by.length ? "read by " + m.read_by.join(", ") : "read";
      case "sent": return "sent";
    }
    return "";
  }

  // quoted keeps what a quote showed of each message, so that a reply
  // whose message left the page (trimHistory) keeps showing it.
  const quoted = new Map(); // id → text
  function quote(id) {
    const t = state.msgs.find((e) => e.id === id);
    if (t) quoted.set(id, (t.sender === state.me.user ? "You" : t.sender) + ": " + summary(t));
    const text = quoted.get(id) || "an earlier message";
    return h("button", {
      type: "button", class: "quote", testid: "message-quote",
      onclick: () => {
        const el = [...dom.history.children].find((c) => c.dataset.id === id);
        if (el) el.scrollIntoView({ block: "center" });
      },
    }, text);
  }

  function body(m) {
    if (m.deleted) return h("p", { class: "text deleted", testid: "message-text" }, "Message deleted");
    if (!m.text) return null;
    return h("p", { class: "text", testid: "message-text" }, m.text);
  }

  function attachment(att) {
    const name = att.file_name || "file";
    let thumb = null;
    if (isImage(att)) {
      const t = state.thumbs.get(att.id);
      if (!t) loadThumb(att);
      thumb = t && t.failed ? null : h("img", { class: "thumb", alt: name, testid: "attachment-image", data: { attachment: att.id }, src: t && t.url, onload: keepBottom });
    }
    return h("div", { class: "attachment", testid: "attachment" },
      thumb,
      h("div", { class: "file" },
        h("span", { class: "file-name", testid: "attachment-name" }, name),
        h("span", { class: "file-size" }, humanSize(att.size)),
        button("Download", "download", () => download(att), { class: "small", "aria-label": "Download " + name })));
  }

  function reactions(m) {
    const rs = m.reactions || [];
    if (!rs.length) return null;
    const counts = new Map();
    for (const r of rs) {
      const c = counts.get(r.emoji) || { n: 0, mine: false, users: [] };
      c.n++;
      c.users.push(r.user);
      if (r.user === state.me.user) c.mine = true;
      counts.set(r.emoji, c);
    }
    return h("div", { class: "reactions", testid: "reactions" },
      [...counts].map(([emoji, c]) => h("button", {
        type: "button", class: "reaction" + (c.mine ? " mine" : ""), testid: "reaction",
        data: { emoji }, "aria-pressed": String(c.mine), title: c.users.join(", "),
        onclick: () => toggleReaction(m, emoji),
      }, emoji + " " + c.n)));
  }

  function actions(m) {
    const cv = state.convs.get(m.conversation);
    const posting = canPost(cv);
    const picker = state.reactFor === m.id
      ? h("div", { class: "picker", testid: "react-picker" },
        REACTIONS.map((e) => button(e, "react-choice", () => toggleReaction(m, e), { data: { emoji: e }, "aria-label": "React " + e })))
      : null;
    return h("div", { class: "actions" },
      posting ? button("Reply", "reply", () => startReply(m), { class: "small" }) : null,
      button("React", "react", () => {
        state.reactFor = state.reactFor === m.id ? null : m.id;
        renderHistory();
      }, { class: "small", "aria-expanded": String(state.reactFor === m.id) }),
      canEdit(m) && posting ? button("Edit", "edit", () => startEdit(m), { class: "small" }) : null,
      m.sender === state.me.user ? button("Delete", "delete", () => deleteMessage(m), { class: "small danger" }) : null,
      picker);
  }

  function renderTyping() {
    if (!dom.typing) return;
    const typers = [...(state.typing.get(state.open) || new Map()).keys()];
    dom.typing.textContent = typers.length ? typers.join(", ") + (typers.length > 1 ? " are" : " is") + " typing…" : "";
  }

  function renderComposer() {
    if (!dom.composer) return;
    const cv = state.convs.get(state.open);
    let closed = "";
    if (cv && cv.left) closed = cv.removed_by ? cv.removed_by + " removed you from this conversation." : "You left this conversation.";
    else if (cv && cv.unsafe) closed = "Nothing can be sent in an unsafe conversation.";
    else if (cv && cv.channel && !cv.admin) closed = "Only admins post in this channel. You can still react to posts.";
    else if (cv && !canPost(cv)) closed = "Only admins post in this conversation. You can still react to messages.";
    dom.composer.hidden = Boolean(closed);
    dom.closed.hidden = !closed;
    dom.closed.textContent = closed;
    const m = state.editing || state.reply;
    dom.mode.hidden = !m;
    if (m) {
      const what = state.editing ? "Editing your message" : "Replying to " + (m.sender === state.me.user ? "yourself" : m.sender) + ": " + summary(m);
      dom.mode.replaceChildren(h("span", {}, what), button("Cancel", "composer-cancel", () => {
        if (state.editing) dom.input.value = "";
        state.reply = state.editing = null;
        renderComposer();
      }, { class: "small" }));
    }
    dom.send.textContent = state.editing ? "Save" : "Send";
    dom.uploads.hidden = !state.uploads.length;
    dom.uploads.replaceChildren(...state.uploads.map((n) => h("div", { class: "upload" },
      h("span", {}, "Encrypting and sending " + n + "…"), h("progress", { "aria-label": "Sending " + n }))));
    autoGrow();
  }

  // autoGrow fits the composer's height to its text, in a browser that
  // does not do it itself (CSS field-sizing): setting the height and
  // reading the text's lays the page out on every key.
  const sizesItself = globalThis.CSS && CSS.supports("field-sizing", "content");
  function autoGrow() {
    if (sizesItself) return;
    const t = dom.input;
    t.style.height = "auto";
    t.style.height = Math.min(t.scrollHeight, 200) + "px";
  }

  // ---- alerts ----

  function renderAlerts() {
    if (!dom.alerts) return;
    dom.alerts.replaceChildren(...[...state.alerts.keys()].map((user) => h("div", { class: "alert", testid: "identity-alert", data: { user } },
      h("span", {}, "⚠ " + user + "'s identity key changed. Until you compare the new safety number and accept it, conversations with " + user + " may be at risk."),
      button("Review", "identity-review", () => openVerify(user, true), { class: "small", data: { user } }))));
    const cv = state.convs.get(state.open);
    const items = [];
    if (cv && cv.unsafe) {
      const a = cv.unsafe;
      items.push(h("div", { class: "alert", testid: "unsafe-alert" },
        h("span", {}, "This conversation is unsafe: " + a.reason + (a.user ? " (" + a.user + ")" : "") + ". Nothing can be sent here."),
        button("Recreate", "conv-recreate", recreate, { class: "small" })));
    }
    if (cv && cv.unverified && cv.unverified.length && !cv.unsafe) {
      items.push(h("div", { class: "hint", testid: "unverified-hint" },
        h("span", {}, "Not verified: " + cv.unverified.join(", ") + "."),
        button("Verify", "unverified-verify", () => openVerify(cv.unverified[0], false), { class: "small link" })));
    }
    dom.convAlerts.replaceChildren(...items);
  }

  // ---- the panel ----

  function renderPanel() {
    if (!dom.panel) return;
    dom.panel.hidden = !state.panel || state.open == null;
    dom.shell.classList.toggle("with-panel", !dom.panel.hidden);
    dom.membersBtn.setAttribute("aria-expanded", String(!dom.panel.hidden));
    if (dom.panel.hidden) return;
    dom.panel.replaceChildren(...(state.panel === "verify" ? verifyView() : membersView()).filter(Boolean));
  }

  function panelHead(title, back) {
    return h("header", { class: "bar" },
      back ? button("‹", "panel-back", back, { class: "icon", "aria-label": "Back" }) : null,
      h("h2", {}, title),
      button("✕", "panel-close", togglePanel, { class: "icon", "aria-label": "Close" }));
  }

  function membersView() {
    const cv = state.convs.get(state.open);
    if (!cv) return [];
    const users = new Map();
    for (const mb of state.members) {
      const u = users.get(mb.user) || { user: mb.user, devices: 0, self: false, verified: true, changed: false };
      u.devices++;
      u.self = u.self || mb.self;
      u.verified = u.verified && mb.verified;
      u.changed = u.changed || mb.identity_changed;
      users.set(mb.user, u);
    }
    const group = !cv.left && !cv.direct && !cv.unsafe;
    const roles = group && state.policy !== undefined && may("roles");
    return [
      panelHead("Members"),
      h("div", { class: "panel-actions" },
        group && may("add") ? button("Add member", "member-add", addMember) : null,
        group && may("rename") ? button("Rename", "conv-rename", rename) : null,
        group && may("topic") ? button("Topic", "conv-topic-edit", setTopic) : null,
        button(cv.muted ? "Unmute" : "Mute", "conv-mute", toggleMute, { "aria-pressed": String(Boolean(cv.muted)) }),
        !cv.left ? button("Leave", "conv-leave", leave, { class: "danger" }) : null,
        timerSelect(cv)),
      group ? reservedHint() : null,
      h("ul", { class: "members", testid: "member-list" },
        [...users.values()].map((u) => memberItem(u, group && may("remove") && u.user !== state.me.user, roles))),
      cv.direct ? null : policyView(cv, roles),
    ];
  }

  // reservedHint says what the policy keeps from this user.
  function reservedHint() {
    if (isAdmin()) return null;
    const kept = ACTIONS.filter(([a]) => !may(a)).map(([, what]) => what);
    return kept.length ? h("p", { class: "hint", testid: "policy-hint" }, "Only admins may " + kept.join(", ") + " here.") : null;
  }

  // policyView shows who may do what: a choice per action for those who
  // may change the rules, else the rules as text.
  function policyView(cv, editable) {
    const p = state.policy;
    if (p === undefined) return null;
    const rows = ACTIONS.map(([action, what]) => {
      const who = p ? (p.rules || {})[action] || "members" : "members";
      const value = editable
        ? h("select", { testid: "policy-rule", data: { action }, "aria-label": "Who may " + what,
          onchange: (ev) => setRule(action, ev.target.value) },
        h("option", { value: "members", selected: who === "members" || null }, "Every member"),
        h("option", { value: "admins", selected: who === "admins" || null }, "Admins"))
        : h("span", { testid: "policy-value", data: { action, who } }, who === "admins" ? "Admins" : "Every member");
      return h("div", { class: "rule" }, h("dt", {}, what[0].toUpperCase() + what.slice(1)), h("dd", {}, value));
    });
    return h("section", { class: "policy", testid: "policy", "aria-label": "Rules" },
      h("h3", {}, "Who may"),
      p ? null : h("p", { class: "muted small" }, "No roles yet: every member may do everything."),
      h("dl", {}, rows));
  }

  function memberItem(u, removable, roles) {
    const isMe = u.user === state.me.user;
    let mark = null;
    if (u.changed) mark = h("span", { class: "tag bad", testid: "member-changed" }, "identity changed");
    else if (!isMe && !u.verified) mark = h("span", { class: "tag warn", testid: "member-unverified" }, "unverified");
    else if (!isMe) mark = h("span", { class: "tag ok", testid: "member-verified" }, "✓ verified");
    const admin = Boolean(state.policy) && (state.policy.admins || []).includes(u.user);
    return h("li", { class: "member", testid: "member", data: { user: u.user, role: admin ? "admin" : "member" } },
      h("div", { class: "member-name" },
        h("strong", {}, isMe ? u.user + " (you)" : u.user),
        admin ? h("span", { class: "tag admin", testid: "member-admin" }, "admin") : null,
        h("span", { class: "muted" }, u.devices + (u.devices === 1 ? " device" : " devices")),
        mark),
      h("div", { class: "row" },
        roles && !isMe ? button(admin ? "Make member" : "Make admin", "member-role", () => setRole(u.user, admin ? "member" : "admin"),
          { class: "small", data: { user: u.user, role: admin ? "member" : "admin" } }) : null,
        isMe ? null : button("Safety number", "member-verify", () => openVerify(u.user, u.changed), { class: "small", data: { user: u.user } }),
        removable ? button("Remove", "member-remove", () => removeMember(u.user), { class: "small danger", data: { user: u.user } }) : null));
  }

  function verifyView() {
    const v = state.verify;
    const out = [panelHead("Safety number", () => {
      state.panel = "members";
      renderPanel();
      loadMembers();
    })];
    const box = h("div", { class: "verify", testid: "verify-view", data: { user: v.user } });
    out.push(box);
    if (v.err) {
      add(box, [h("p", { class: "error" }, errText(v.err))]);
      return out;
    }
    if (!v.sn) {
      add(box, [h("p", { class: "muted" }, "Loading…")]);
      return out;
    }
    const sn = v.sn;
    add(box, [
      v.pending
        ? h("p", { class: "alert" }, sn.user + "'s identity key changed. Compare this new safety number with " + sn.user + " in person or on a call, then accept it.")
        : h("p", {}, "Compare these digits with " + sn.user + " in person or on a call, or scan the code on their device."),
      h("div", { class: "digits", testid: "safety-digits", "aria-label": "Safety number" },
        (sn.groups || []).map((g) => h("span", { testid: "safety-group" }, g))),
      qrImage(sn),
      v.pending
        ? button("Accept new key", "identity-accept", () => acceptIdentity(sn), { class: "primary" })
        : sn.verified
          ? h("p", { class: "ok", testid: "verified" }, "✓ " + sn.user + " is verified")
          : button("Mark verified", "verify-mark", () => markVerified(sn.user), { class: "primary" }),
    ]);
    return out;
  }

  // hexBytes decodes a hex string, or returns null.
  function hexBytes(hex) {
    if (typeof hex !== "string" || !/^(?:[0-9a-f]{2})+$/i.test(hex)) return null;
    return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
  }

  // qrImage shows the QR code of a safety number once the bridge drew it
  // (parley.qr answers with a Promise); it goes away if none comes.
  function qrImage(sn) {
    const payload = hexBytes(sn.qr_payload);
    if (!payload || typeof globalThis.parley.qr !== "function") return null;
    const img = h("img", { class: "qr", alt: "QR code of the safety number", testid: "safety-qr" });
    // The QR code carries the payload's bytes, which another device's
    // scanner compares (the qr field is the code drawn for a terminal).
    Promise.resolve().then(() => globalThis.parley.qr(payload)).then((png) => {
      if (!png) throw new Error("no QR code");
      showPNG(img, png);
    }).catch(() => img.remove());
    return img;
  }

  // ---- status line ----

  function setStatus(what, error) {
    clearTimeout(state.statusTimer);
    state.status = { text: typeof what === "string" ? what : errText(what), error: Boolean(error) };
    if (!dom.status) return;
    dom.status.hidden = false;
    dom.status.textContent = state.status.text;
    dom.status.classList.toggle("error", state.status.error);
    dom.status.setAttribute("role", error ? "alert" : "status");
    state.statusTimer = setTimeout(clearStatus, error ? 10000 : 4000);
  }

  function clearStatus() {
    clearTimeout(state.statusTimer);
    state.status = null;
    if (dom.status) dom.status.hidden = true;
  }

  function errText(err) {
    if (!err) return "";
    if (typeof err === "string") return err;
    return err.message || String(err);
  }

  // ---- formatting ----

  // phone says whether the screen is a phone's (one column): asked on
  // every message (visible), so the query is made once.
  const phoneQuery = window.matchMedia("(max-width: 700px)");
  function phone() {
    return phoneQuery.matches;
  }

  // formats are made once: making an Intl formatter (what
  // toLocaleString does on every call) costs far more than using one.
  const formats = {
    clock: new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" }),
    day: new Intl.DateTimeFormat([], { weekday: "long", day: "numeric", month: "long", year: "numeric" }),
    weekday: new Intl.DateTimeFormat([], { weekday: "short" }),
    dayMonth: new Intl.DateTimeFormat([], { day: "numeric", month: "short" }),
    date: new Intl.DateTimeFormat(),
    full: new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "medium" }),
  };

  function clock(t) {
    return formats.clock.format(new Date(t));
  }

  // fullTime is a time with its date, for titles.
  function fullTime(t) {
    return formats.full.format(new Date(t));
  }

  // dayOf names the day of an entry; the names are kept, since every
  // render of the history asks for each entry's.
  const dayNames = new Map(); // sent → day
  function dayOf(m) {
    let day = dayNames.get(m.sent);
    if (day === undefined) {
      if (dayNames.size > 10000) dayNames.clear();
      day = formats.day.format(new Date(m.sent));
      dayNames.set(m.sent, day);
    }
    return day;
  }

  function shortTime(d) {
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return clock(d);
    if (now - d < 6 * 24 * 3600 * 1000 && d < now) return formats.weekday.format(d);
    if (d.getFullYear() === now.getFullYear()) return formats.dayMonth.format(d);
    return formats.date.format(d);
  }

  // unitText reads a timer of the daemon's system lines ("1d", "90m").
  function unitText(n, unit) {
    const name = { s: "second", m: "minute", h: "hour", d: "day", w: "week" }[unit];
    return n + " " + name + (n === 1 ? "" : "s");
  }

  function timerText(seconds) {
    const t = TIMERS.find(([v]) => v === seconds);
    return t ? t[1] : durationText(seconds * 1000);
  }

  // untilText says how long until t: "3 hours", "less than a minute".
  function untilText(t) {
    return durationText(Date.parse(t) - Date.now());
  }

  // durationText names a duration in its largest unit, rounded: a
  // message of a one-day timer sent a moment ago disappears "in 1 day",
  // not "in 23 hours".
  function durationText(ms) {
    const min = Math.round(ms / 60000);
    if (min < 1) return "less than a minute";
    for (const [n, unit] of [[10080, "week"], [1440, "day"], [60, "hour"], [1, "minute"]]) {
      if (min >= n) {
        const k = Math.round(min / n);
        return k + " " + unit + (k === 1 ? "" : "s");
      }
    }
    return min + " minutes";
  }

  function humanSize(n) {
    if (n < 1000) return n + " B";
    const units = "kMGTPE";
    let i = -1;
    do {
      n /= 1000;
      i++;
    } while (n >= 1000 && i < units.length - 1);
    return n.toFixed(1) + " " + units[i] + "B";
  }

  // ---- boot ----

  function whenReady() {
    if (globalThis.parley) {
      start();
      return;
    }
    document.addEventListener("parley-ready", start, { once: true });
  }

  window.addEventListener("resize", () => {
    if (dom.shell && !phone() && state.open != null) maybeMarkRead(true);
  });
  whenReady();
})();
