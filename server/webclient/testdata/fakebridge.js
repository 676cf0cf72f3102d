// A fake of globalThis.parley (docs/web.md, "The bridge") for developing
// and testing the page without the WebAssembly program: everything in
// memory, five canned conversations (one with a long history, a channel
// where alice only reads, a group where she is no admin), sent messages
// echoed as events, the roles and policies of docs/daemon.md enforced.
// The page's query string picks a start: ?fake=register (not
// registered), ?fake=passphrase (the passphrase is "secret"),
// ?fake=identity (carol's identity key changes after the start),
// ?fake=many (300 more 1:1 conversations, each with one message).
// globalThis.parleyFake lets a test make things happen: expire(conv,
// seq), typing(conv, user, typing), sentTyping (the send_typing calls
// made), acceptLink() and declineLink() (the other device's answer to
// parley.link), incoming(conv, text) (a message of bob's comes in),
// holdHistory(), historyHeld() and releaseHistory() (the next history
// answer waits, as it was when asked, until released).
// alice has four devices (one revoked, one forged); the
// link_device methods accept any code but one starting with "wrong".
// Never served by parleyd.
"use strict";

(() => {
  const mode = new URLSearchParams(location.search).get("fake") || "";
  const me = "alice";
  const account = (user) => ({
    user, address: user + "@" + location.host, device: "50611ef0b0bc6935bb08f5f753e5cd01",
    server: location.origin, server_name: location.host, identity_key: "ab".repeat(32), fingerprint: "cd".repeat(32), profile: "indexeddb",
  });
  let registered = mode !== "register";
  let unlocked = mode !== "passphrase";
  let self = account(me);
  const listeners = [];
  let idn = 1;
  const hex = (n) => (n++).toString(16).padStart(32, "0");
  const now = Date.now();
  const at = (minutesAgo) => new Date(now - minutesAgo * 60000).toISOString();

  function msg(conv, seq, sender, text, minutesAgo, extra) {
    return {
      conversation: conv, seq, id: hex(conv * 1000 + seq), sender, sender_device: "d-" + sender,
      sent: at(minutesAgo), received: at(minutesAgo), server_seq: seq, kind: "text", text,
      edited: false, deleted: false, reactions: [], read_by: [], state: sender === me ? "read" : "received", ...extra,
    };
  }
  function system(conv, seq, sender, text, kind, users, minutesAgo, extra) {
    return { ...msg(conv, seq, sender, text, minutesAgo), kind: "system", state: "received", system: { kind, actor: sender, users, ...extra } };
  }
  const ACTIONS = ["add", "remove", "rename", "topic", "roles", "post", "timer"];
  // rules gives every action to members but those listed.
  function rules(...adminOnly) {
    return Object.fromEntries(ACTIONS.map((a) => [a, adminOnly.includes(a) ? "admins" : "members"]));
  }
  const TIMER_NAMES = { 300: "5m", 3600: "1h", 86400: "1d", 604800: "1w", 2419200: "4w" };
  const timerName = (s) => (s ? TIMER_NAMES[s] || s + "s" : "off");

  const convs = new Map([
    [1, { id: 1, title: "Design team", name: "Design team", topic: "Pixels and pull requests", direct: false, members: ["alice", "bob", "carol"], left: false, epoch: 4, unread: 0, unverified: ["carol"], admin: true }],
    [3, { id: 3, title: "Archive", name: "Archive", direct: false, members: ["alice", "bob"], left: false, epoch: 2, unread: 0, unverified: [], admin: true }],
    [2, { id: 2, title: "bob", direct: true, members: ["alice", "bob"], left: false, epoch: 1, unread: 2, unverified: ["bob"], admin: true }],
    [4, { id: 4, title: "Announcements", name: "Announcements", direct: false, channel: true, members: ["alice", "bob", "dave"], left: false, epoch: 3, unread: 0, unverified: ["dave"], timer: 86400 }],
    [5, { id: 5, title: "Book club", name: "Book club", direct: false, members: ["alice", "carol", "erin"], left: false, epoch: 2, unread: 0, unverified: ["erin"] }],
  ]);
  // policies are those of conversations with roles (not the 1:1 one).
  const policies = new Map([
    [1, { admins: ["alice"], rules: rules("remove", "roles") }],
    [3, { admins: ["alice"], rules: rules("remove", "roles") }],
    [4, { admins: ["bob"], rules: rules("add", "remove", "rename", "topic", "roles", "post") }],
    [5, { admins: ["carol"], rules: rules("remove", "roles", "timer") }],
  ]);
  const inDay = (minutesAgo) => new Date(now - minutesAgo * 60000 + 86400000).toISOString();
  const history = new Map([
    [1, [
      system(1, 1, "alice", "alice added bob, carol", "added", ["bob", "carol"], 1600),
      system(1, 2, "alice", 'alice named the conversation "Design team"', "renamed", [], 1599),
      msg(1, 3, "bob", "Morning! I pushed the new icons to the branch.", 1500),
      msg(1, 4, "carol", "Nice. The 192px one looks blurry on my phone though.", 1490, { reactions: [{ user: "alice", emoji: "👍" }, { user: "bob", emoji: "👍" }] }),
      msg(1, 5, "alice", "I'll re-export it from the SVG.", 1480, { edited: true, edited_at: at(1479), read_by: ["bob", "carol"] }),
      msg(1, 6, "bob", "", 60, { kind: "attachment", text: "", attachment: { id: "a1".repeat(32), size: 2048, media_type: "image/png", file_name: "icon-preview.png" } }),
      msg(1, 7, "carol", "<b>not bold</b> & a very long line that should wrap nicely within the bubble without overflowing the layout at all, even on narrow screens", 50, { reply_to: hex(1006) }),
      msg(1, 8, "bob", "", 40, { deleted: true }),
      msg(1, 9, "alice", "Here is the spec", 30, { kind: "attachment", attachment: { id: "b2".repeat(32), size: 1534000, media_type: "application/pdf", file_name: "spec.pdf" }, state: "sent" }),
      msg(1, 10, "carol", "@alice can you check the contrast?", 5, { mentions: ["alice"], mentions_me: true }),
    ]],
    [2, [
      msg(2, 1, "bob", "Are you around later?", 20),
      msg(2, 2, "bob", "Lunch at 12?", 19),
    ]],
    [3, Array.from({ length: 120 }, (_, i) => msg(3, i + 1, i % 2 ? "bob" : "alice", "archived message " + (i + 1), 20000 - i))],
    [4, [
      system(4, 1, "bob", "bob added alice, dave", "added", ["alice", "dave"], 400),
      system(4, 2, "bob", "bob set disappearing messages to 1d", "timer_changed", [], 399, { timer: "1d", previous: "off" }),
      msg(4, 3, "bob", "The server moves to the new rack on Friday.", 300, { expires: inDay(300) }),
      msg(4, 4, "bob", "Expect ten minutes of downtime around noon.", 200, { expires: inDay(200), reactions: [{ user: "dave", emoji: "👍" }] }),
    ]],
    [5, [
      system(5, 1, "carol", "carol added alice, erin", "added", ["alice", "erin"], 3000),
      system(5, 2, "carol", "carol made erin an admin", "role_changed", ["erin"], 2999),
      system(5, 3, "carol", "carol set the policy: add=members remove=admins rename=members topic=members roles=admins post=members timer=admins", "policy_changed", [], 2998),
      system(5, 4, "carol", "carol made erin a member (no longer admin)", "role_changed", ["erin"], 2997),
      msg(5, 5, "carol", "Next book: the budget of a small town, chapter one.", 2990),
      msg(5, 6, "erin", "@alice did you finish the budget chapter?", 2980, { mentions: ["alice"], mentions_me: true }),
    ]],
  ]);
  for (const [id, h] of history) convs.get(id).last = h[h.length - 1];
  if (mode === "many") {
    for (let i = 0; i < 300; i++) {
      const id = 100 + i, user = "user" + i;
      convs.set(id, { id, title: user, direct: true, members: ["alice", user], left: false, epoch: 1, unread: i % 3, unverified: [user], admin: true });
      history.set(id, [msg(id, 1, user, "hello from " + user, 60 * 24 * (i % 10) + i)]);
      convs.get(id).last = history.get(id)[0];
    }
  }

  // devices are alice's: this browser, a laptop, a phone revoked, and
  // one the server lists that none of hers certified.
  const devices = [
    { id: "50611ef0b0bc6935bb08f5f753e5cd01", name: "Chrome on Linux", created: at(60 * 24 * 40), last_seen: at(0), this: true },
    { id: "7ac3d2e1f0a9b8c7d6e5f4a3b2c1d0e9", name: "laptop", created: at(60 * 24 * 90), last_seen: at(35) },
    { id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", name: "old phone", created: at(60 * 24 * 300), last_seen: at(60 * 24 * 20), revoked: at(60 * 24 * 19) },
    { id: "deadbeefdeadbeefdeadbeefdeadbeef", created: at(60 * 3), forged: true },
  ];
  // link is the link of a new device in progress (link_device).
  let link = null;
  // linking is this browser's own link in progress (parley.link).
  let linking = null;
  const verified = new Set();
  const sentTyping = [];
  const pendingIdentity = new Set();

  function emit(ev) {
    const line = JSON.stringify({ jsonrpc: "2.0", method: "event", params: { time: new Date().toISOString(), ...ev } });
    for (const l of listeners) setTimeout(() => l(line), 0);
  }
  function fail(kind, message, data) {
    const err = new Error(message);
    err.code = kind;
    err.data = data;
    return err;
  }
  function conv(id) {
    const c = convs.get(id);
    if (!c) throw fail("unknown_conversation", "client: conversation " + id + ": unknown conversation");
    return c;
  }
  function find(convID, id) {
    const m = (history.get(convID) || []).find((e) => e.id === id);
    if (!m) throw fail("unknown_message", "unknown message " + id);
    return m;
  }
  function append(c, m) {
    const h = history.get(c) || [];
    m.seq = h.length ? h[h.length - 1].seq + 1 : 1;
    h.push(m);
    history.set(c, h);
    convs.get(c).last = m;
    return m;
  }
  function newMessage(c, sender, text, extra) {
    const m = msg(c, 0, sender, text, 0, { id: hex(idn++ + 900000), state: sender === me ? "sent" : "received", ...extra });
    if (m.mentions && m.mentions.includes(me) && sender !== me) m.mentions_me = true;
    return append(c, withExpiry(convs.get(c), m));
  }
  function digits(user) {
    let s = "";
    for (let i = 0; s.length < 60; i++) s += String((user.charCodeAt(i % user.length) * (i + 7) + (pendingIdentity.has(user) ? 3 : 0)) % 100000).padStart(5, "0");
    return s.slice(0, 60);
  }
  function safety(user) {
    const d = digits(user);
    return { user, digits: d, groups: d.match(/.{5}/g), qr: "QR:" + d, qr_payload: "00" + d, verified: verified.has(user) };
  }
  function members(c) {
    return conv(c).members.flatMap((u) => [{ user: u, device: "d-" + u, self: u === me, verified: u === me || verified.has(u), identity_changed: pendingIdentity.has(u) }]);
  }
  function echo(c, text) {
    const other = conv(c).members.find((u) => u !== me) || "bob";
    setTimeout(() => emit({ event: "typing", conversation: c, user: other, device: "d-" + other, typing: true }), 200);
    setTimeout(() => emit({ event: "message", conversation: c, message: newMessage(c, other, "echo: " + text) }), 700);
  }
  function markRead(c) {
    for (const m of history.get(c) || []) {
      if (m.sender === me && m.state === "sent") {
        m.state = "read";
        m.read_by = conv(c).members.filter((u) => u !== me);
      }
    }
  }
  function changeMembers(c, text, kind, users) {
    const s = append(c, { ...system(c, 0, me, text, kind, users, 0), id: hex(idn++ + 800000) });
    emit({ event: "system", conversation: c, message: s });
    emit({ event: "conversation_changed", conversation: c });
  }

  // view is the Conversation of the API: admin where this user may do
  // what the policy reserves to admins (always without a policy).
  function view(c) {
    const pol = policies.get(c.id);
    return { ...c, admin: !pol || pol.admins.includes(me) || undefined };
  }
  function policyFor(c) {
    if (!policies.has(c.id)) policies.set(c.id, { admins: [me], rules: rules("remove", "roles") });
    return policies.get(c.id);
  }
  // check refuses what the conversation's policy reserves to admins.
  function check(c, action, what) {
    const pol = policies.get(c.id);
    if (!pol || pol.admins.includes(me) || pol.rules[action] === "members") return;
    throw fail("not_permitted", "client: " + what + ": policy violation: " + me + " may not: only admins may (" + action + "=admins)");
  }
  // mentionsOf reads the @name words of members, as the sender's client does.
  function mentionsOf(c, text) {
    const named = [...text.matchAll(/(?:^|\s)@([a-z0-9._-]+)/g)].map((x) => x[1]).filter((u) => c.members.includes(u));
    return named.length ? { mentions: [...new Set(named)] } : {};
  }
  function withExpiry(c, m) {
    if (c.timer) m.expires = new Date(Date.parse(m.sent) + c.timer * 1000).toISOString();
    return m;
  }

  const methods = {
    whoami: () => self,
    subscribe: () => {
      setTimeout(() => emit({ event: "connection", connection: "connecting" }), 10);
      setTimeout(() => emit({ event: "connection", connection: "connected" }), 120);
      if (mode === "identity") {
        setTimeout(() => {
          pendingIdentity.add("carol");
          emit({ event: "identity_changed", user: "carol" });
        }, 200);
      }
      return { ok: true };
    },
    conversations: () => ({ conversations: [...convs.values()].map(view) }),
    conversation: (p) => view(conv(p.conversation)),
    history: (p) => {
      let h = history.get(conv(p.conversation).id) || [];
      if (p.after) h = h.filter((m) => m.seq > p.after);
      const answer = { messages: p.last ? h.slice(-p.last) : h.slice() };
      if (!holdHistory) return answer;
      holdHistory = false;
      return new Promise((resolve) => { releaseHistory = () => resolve(answer); });
    },
    policy: (p) => {
      const pol = policies.get(conv(p.conversation).id);
      return { policy: pol ? { admins: [...pol.admins].sort(), rules: { ...pol.rules }, timer: conv(p.conversation).timer || 0 } : null };
    },
    set_role: (p) => {
      const c = conv(p.conversation);
      check(c, "roles", "change roles");
      if (!c.members.includes(p.user)) throw fail("not_member", p.user + " is not a member");
      const pol = policyFor(c);
      const was = pol.admins.includes(p.user);
      if (p.role === "member" && was && pol.admins.length === 1) throw fail("failure", "the last admin cannot be demoted");
      pol.admins = p.role === "admin" ? [...new Set([...pol.admins, p.user])] : pol.admins.filter((u) => u !== p.user);
      if (was !== (p.role === "admin")) {
        changeMembers(c.id, me + " made " + p.user + (p.role === "admin" ? " an admin" : " a member (no longer admin)"), "role_changed", [p.user]);
      }
      return { ok: true };
    },
    set_policy: (p) => {
      const c = conv(p.conversation);
      check(c, "roles", "change the policy");
      const pol = policyFor(c);
      Object.assign(pol.rules, p.rules);
      if (c.channel && pol.rules.post === "members") c.channel = undefined;
      changeMembers(c.id, me + " set the policy: " + ACTIONS.map((a) => a + "=" + pol.rules[a]).join(" "), "policy_changed", []);
      return { ok: true };
    },
    search: (p) => {
      const words = (p.text || "").toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
      const hit = (m) => {
        const have = m.text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
        return words.every((w, i) => have.some((x) => (i === words.length - 1 ? x.startsWith(w) : x === w)));
      };
      const all = [...history.values()].flat().filter((m) => m.kind !== "system" && !m.deleted && m.text &&
        (!p.conversation || m.conversation === p.conversation) && (!p.from || m.sender === p.from) &&
        (!p.after || m.sent >= p.after) && (!p.before || m.sent < p.before) && (!p.mentions_me || m.mentions_me) && hit(m));
      all.sort((a, b) => b.sent.localeCompare(a.sent));
      return { messages: all.slice(0, p.limit || 100) };
    },
    members: (p) => ({ members: members(p.conversation) }),
    send: (p) => {
      const c = conv(p.conversation).id;
      check(conv(c), "post", "post in conversation " + c);
      const m = newMessage(c, me, p.text, { ...mentionsOf(conv(c), p.text), ...(p.reply_to ? { reply_to: p.reply_to } : {}) });
      emit({ event: "message", conversation: c, message: m });
      setTimeout(() => {
        m.state = "read";
        m.read_by = conv(c).members.filter((u) => u !== me);
        emit({ event: "read", conversation: c, user: m.read_by[0], message: m });
      }, 400);
      echo(c, p.text);
      return { message: m };
    },
    react: (p) => {
      const m = find(p.conversation, p.message);
      m.reactions = m.reactions.filter((r) => !(r.user === me && r.emoji === p.emoji));
      if (!p.remove) m.reactions.push({ user: me, emoji: p.emoji });
      emit({ event: "reaction", conversation: p.conversation, user: me, message: m });
      return { ok: true };
    },
    edit: (p) => {
      const m = find(p.conversation, p.message);
      Object.assign(m, { text: p.text, edited: true, edited_at: new Date().toISOString() });
      emit({ event: "edited", conversation: p.conversation, message: m });
      return { ok: true };
    },
    delete: (p) => {
      const m = find(p.conversation, p.message);
      Object.assign(m, { text: "", deleted: true, reactions: [] });
      emit({ event: "deleted", conversation: p.conversation, message: m });
      return { ok: true };
    },
    mark_read: (p) => {
      conv(p.conversation).unread = 0;
      markRead(p.conversation);
      return { ok: true };
    },
    send_typing: (p) => {
      sentTyping.push({ conversation: p.conversation, typing: p.typing });
      return { ok: true };
    },
    new_direct: (p) => {
      for (const c of convs.values()) if (c.direct && c.members.includes(p.user)) return { conversation: c.id };
      const id = convs.size + 1;
      convs.set(id, { id, title: p.user, direct: true, members: [me, p.user], left: false, epoch: 1, unread: 0, unverified: [p.user], admin: true });
      return { conversation: id };
    },
    new_group: (p, channel) => {
      const id = Math.max(...convs.keys()) + 1;
      convs.set(id, { id, title: p.title || p.members.join(", "), name: p.title, direct: false, members: [me, ...p.members], left: false, epoch: 1, unread: 0, unverified: p.members, channel: channel || undefined });
      policies.set(id, { admins: [me], rules: channel ? rules("add", "remove", "rename", "topic", "roles", "post") : rules("remove", "roles") });
      append(id, { ...system(id, 0, me, "alice added " + p.members.join(", "), "added", p.members, 0), id: hex(idn++ + 700000) });
      return { conversation: id };
    },
    new_channel: (p) => methods.new_group(p, true),
    add: (p) => {
      const c = conv(p.conversation);
      check(c, "add", "add members");
      const users = p.users || [p.user];
      c.members.push(...users.filter((u) => !c.members.includes(u)));
      changeMembers(c.id, "alice added " + users.join(", "), "added", users);
      return { ok: true };
    },
    remove: (p) => {
      const c = conv(p.conversation);
      check(c, "remove", "remove members");
      c.members = c.members.filter((u) => u !== p.user);
      changeMembers(c.id, "alice removed " + p.user, "removed", [p.user]);
      return { ok: true };
    },
    leave: (p) => {
      conv(p.conversation).left = true;
      emit({ event: "conversation_left", conversation: p.conversation });
      return { ok: true };
    },
    set_name: (p) => {
      const c = conv(p.conversation);
      check(c, "rename", "rename");
      c.name = c.title = p.text;
      changeMembers(c.id, 'alice renamed the conversation to "' + p.text + '"', "renamed", []);
      return { ok: true };
    },
    set_topic: (p) => {
      check(conv(p.conversation), "topic", "change the topic");
      conv(p.conversation).topic = p.text;
      changeMembers(p.conversation, 'alice set the topic to "' + p.text + '"', "topic_changed", []);
      return { ok: true };
    },
    set_timer: (p) => {
      const c = conv(p.conversation);
      check(c, "timer", "change the timer");
      const previous = timerName(c.timer);
      c.timer = p.timer || undefined;
      if (c.direct && !policies.has(c.id)) policies.set(c.id, { admins: [...c.members], rules: rules("remove", "roles") });
      const text = p.timer ? "alice set disappearing messages to " + timerName(p.timer) : "alice turned disappearing messages off";
      const s = append(c.id, { ...system(c.id, 0, me, text, "timer_changed", [], 0, { timer: timerName(p.timer), previous }), id: hex(idn++ + 800000) });
      emit({ event: "system", conversation: c.id, message: s });
      emit({ event: "conversation_changed", conversation: c.id });
      return { ok: true };
    },
    set_muted: (p) => {
      conv(p.conversation).muted = p.muted || undefined;
      return { ok: true };
    },
    safety_number: (p) => safety(p.user),
    identity_changed: (p) => ({ changed: pendingIdentity.has(p.user) }),
    safety_number_pending: (p) => {
      if (!pendingIdentity.has(p.user)) throw fail("failure", "no identity change is pending");
      return safety(p.user);
    },
    acknowledge_identity: (p) => {
      if (p.digits !== digits(p.user)) throw fail("identity_changed", "wrong digits", { user: p.user });
      pendingIdentity.delete(p.user);
      verified.delete(p.user);
      return { ok: true };
    },
    mark_verified: (p) => {
      verified.add(p.user);
      for (const c of convs.values()) c.unverified = c.unverified.filter((u) => u !== p.user);
      return { ok: true };
    },
    devices: () => ({ devices: devices.map((d) => ({ ...d })) }),
    rename_device: (p) => {
      const d = devices.find((x) => x.id === p.device);
      if (!d) throw fail("failure", "client: rename device: not a device of alice");
      d.name = p.name || undefined;
      return { ok: true };
    },
    revoke_device: (p) => {
      const d = devices.find((x) => x.id === p.device);
      if (!d) throw fail("failure", "client: revoke device " + p.device + ": the server lists no such device of alice");
      const others = devices.filter((x) => x !== d && !x.revoked && !x.forged && !x.disabled).length;
      if (!others && !p.force) throw fail("failure", "client: revoke device " + d.id + ": this is the account's last active device: revoking it locks the account for good (force it to revoke anyway)");
      d.revoked = new Date().toISOString();
      emit({ event: "device_revoked", user: me, device: d.id });
      return { ok: true };
    },
    // link_device takes any code but "WRONG…", which fails its check as
    // a wrong code does.
    link_device: (p) => {
      if (link) throw fail("link_in_progress", "link_device: a device link is in progress already on this profile: finish or cancel it first");
      if (/^wrong/i.test(p.code)) {
        return delay(400).then(() => {
          throw fail("link_tampered", "client: link a device: the linking channel failed its check: the code is wrong, or the server tampered with the exchange; nothing was linked");
        });
      }
      const l = { link: hex(idn++ + 900000), confirmation: "493 018", device: hex(idn++ + 910000), name: "phone" };
      link = l;
      return delay(400).then(() => {
        if (link !== l) throw fail("failure", "client: link a device: context canceled");
        return l;
      });
    },
    link_device_confirm: (p) => {
      const l = link;
      if (!l || l.link !== p.link) throw { code: -32602, message: "invalid params: link: no link waits for an answer on this connection" };
      link = null;
      if (!p.accept) throw fail("link_refused", "client: link a device: the link was declined on the existing device");
      return delay(600).then(() => {
        devices.push({ id: l.device, name: l.name, created: new Date().toISOString(), last_seen: new Date().toISOString() });
        const sent = (p.history || []).filter((id) => history.has(id));
        const count = { conversations: sent.length, messages: sent.reduce((n, id) => n + history.get(id).length, 0) };
        return { device: l.device, name: l.name, conversations: convs.size, failed: [], history: count };
      });
    },
    cancel_link_device: () => {
      const ok = Boolean(link);
      link = null;
      return { ok };
    },
    recreate: (p) => methods.new_group({ title: conv(p.conversation).title, members: conv(p.conversation).members.filter((u) => u !== me) }),
  };

  function handle(line, onLine) {
    const req = JSON.parse(line);
    const reply = (body) => {
      if (req.id != null) setTimeout(() => onLine(JSON.stringify({ jsonrpc: "2.0", id: req.id, ...body })), 5);
    };
    const f = methods[req.method];
    if (!f) return reply({ error: { code: -32601, message: "method not found: " + req.method } });
    const failed = (err) => {
      if (typeof err.code === "number") return reply({ error: err });
      reply({ error: { code: -32000, message: err.message, data: { kind: err.code || "failure", ...(err.data || {}) } } });
    };
    let result;
    try {
      result = f(req.params || {});
    } catch (err) {
      return failed(err);
    }
    Promise.resolve(result).then((r) => reply({ result: r }), failed);
  }

  function delay(ms) {
    return new Promise((r) => setTimeout(r, ms));
  }

  // A PNG of a pattern standing in for the QR code.
  function png(text) {
    const n = 29;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = n;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, n, n);
    ctx.fillStyle = "#000";
    let x = 7;
    for (let i = 0; i < n * n; i++) {
      x = (x * 31 + text.charCodeAt(i % text.length)) % 9973;
      if (x % 2) ctx.fillRect(i % n, Math.floor(i / n), 1, 1);
    }
    for (const [cx, cy] of [[0, 0], [n - 7, 0], [0, n - 7]]) {
      ctx.fillRect(cx, cy, 7, 7);
      ctx.fillStyle = "#fff";
      ctx.fillRect(cx + 1, cy + 1, 5, 5);
      ctx.fillStyle = "#000";
      ctx.fillRect(cx + 2, cy + 2, 3, 3);
    }
    const b64 = canvas.toDataURL("image/png").split(",")[1];
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }

  const files = new Map([
    ["a1".repeat(32), { name: "icon-preview.png", type: "image/png", make: () => png("icon preview") }],
    ["b2".repeat(32), { name: "spec.pdf", type: "application/pdf", make: () => new TextEncoder().encode("%PDF-1.4 fake\n") }],
  ]);

  // holdHistory makes the next history answer wait, as it was when
  // asked, until releaseHistory: events can overtake it.
  let holdHistory = false;
  let releaseHistory = null;

  globalThis.parleyFake = {
    sentTyping,
    holdHistory() {
      holdHistory = true;
      return true;
    },
    historyHeld() {
      return releaseHistory !== null;
    },
    releaseHistory() {
      if (!releaseHistory) return false;
      releaseHistory();
      releaseHistory = null;
      return true;
    },
    incoming(c, text) {
      emit({ event: "message", conversation: c, message: newMessage(c, "bob", text) });
      return true;
    },
    // expire erases a message as the timer does: gone from the history,
    // an expired event with its tombstone.
    expire(c, seq) {
      const h = history.get(c) || [];
      const i = h.findIndex((m) => m.seq === seq);
      if (i < 0) return false;
      const [m] = h.splice(i, 1);
      convs.get(c).last = h[h.length - 1];
      emit({ event: "expired", conversation: c, message: { ...m, text: "", attachment: undefined, reactions: [], expired: true } });
      return true;
    },
    // acceptLink and declineLink answer this browser's parley.link as
    // the other device of the account would.
    acceptLink() {
      if (!linking) return false;
      linking.accept();
      return true;
    },
    declineLink() {
      if (!linking) return false;
      linking.decline();
      return true;
    },
    typing(c, user, typing) {
      emit({ event: "typing", conversation: c, user, device: "d-" + user, typing: typing || undefined });
    },
  };

  globalThis.parley = {
    open: async ({ passphrase } = {}) => {
      if (!unlocked) {
        if (passphrase === undefined) throw fail("passphrase_required", "the store needs a passphrase");
        if (passphrase !== "secret") throw fail("wrong_key", "wrong passphrase");
        unlocked = true;
      }
      return { registered, account: registered ? self : null };
    },
    register: async ({ invite, name }) => {
      if (!invite) throw fail("failure", "an invite is needed");
      if (!/^[a-z0-9._-]+$/.test(name)) throw fail("failure", "server refused (400 bad_request): invalid user name");
      registered = true;
      self = account(name);
      return self;
    },
    link: ({ name, code, confirmation }) => new Promise((resolve, reject) => {
      if (linking) throw fail("failure", "parley: link: this browser is being linked already");
      const l = {};
      linking = l;
      const end = () => {
        clearTimeout(l.t1);
        clearTimeout(l.t2);
        if (linking === l) linking = null;
      };
      l.accept = () => {
        end();
        registered = true;
        self = account(me);
        resolve(self);
      };
      l.decline = () => {
        end();
        reject(fail("link_refused", "client: link a device at " + location.origin + ": the link was declined on the existing device"));
      };
      l.cancel = () => {
        end();
        reject(fail("failure", "client: link a device at " + location.origin + ": context canceled"));
      };
      l.t1 = setTimeout(() => {
        const c = "K7QD-M2XF-9PLA-4RTE-YB6W-HNC3";
        code({ code: c, qr_payload: "parley-link:1:" + c.replace(/-/g, "") + ":fakekey", expires: new Date(Date.now() + 600000).toISOString(), qr: png(c), name });
      }, 300);
      l.t2 = setTimeout(() => confirmation("493 018"), 900);
    }),
    cancelLink: () => {
      if (linking) linking.cancel();
    },
    start: () => undefined,
    connect: (onLine) => {
      listeners.push(onLine);
      return { send: (line) => handle(line, onLine), close: () => listeners.splice(listeners.indexOf(onLine), 1) };
    },
    upload: async ({ conversation, data, name, type, reply }) => {
      await new Promise((r) => setTimeout(r, 600));
      const id = Array.from({ length: 64 }, (_, i) => "0123456789abcdef"[(i * 7 + files.size) % 16]).join("");
      const copy = new Uint8Array(data);
      files.set(id, { name, type, make: () => copy });
      const m = newMessage(conversation, me, "", { kind: "attachment", attachment: { id, size: data.length, media_type: type, file_name: name }, ...(reply ? { reply_to: reply } : {}) });
      emit({ event: "message", conversation, message: m });
      return m;
    },
    download: async (id) => {
      const f = files.get(id);
      if (!f) throw fail("unknown_attachment", "unknown attachment " + id);
      return { data: f.make(), name: f.name, type: f.type };
    },
    qr: (data) => png(typeof data === "string" ? data : String.fromCharCode(...data)),
    close: () => undefined,
  };
})();
