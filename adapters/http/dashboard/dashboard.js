// Scribe dashboard: live session tree, worklog, health and metrics from the feed (docs/feed.md).
"use strict";

const view = {
  sessions: new Map(), // id -> status payload
  worklog: new Map(), // session id -> entries
  selected: null,
  positions: {}, // topic -> {epoch, offset}; sent back as `since` when resubscribing
  epoch: null,
  ws: null,
  nextId: 1,
};

const $ = (id) => document.getElementById(id);

// User text (names, notes, paths, errors quoting them) is only ever set as text (append,
// textContent, attributes; never innerHTML), and shown through literal(): control characters and
// bidi overrides as visible escapes, \x1b or \u202e, as the CLI shows them (engine.visible).
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
const NAMED = { "\r": "\\r" };

function literal(value) {
  return String(value).replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, literal(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : literal(child));
  return node;
}

function setStatus(id, text, kind) {
  const node = $(id);
  node.textContent = text;
  node.dataset.status = text.replace(/^health: /, "");
  node.className = `pill pill-${kind}`;
}

function send(message) {
  if (view.ws && view.ws.readyState === WebSocket.OPEN) {
    view.ws.send(JSON.stringify({ ...message, id: view.nextId++ }));
  }
}

function subscribe(topic) {
  const message = { type: "subscribe", topic };
  const since = view.positions[topic];
  if (since && since.epoch === view.epoch) message.since = since;
  send(message);
}

function connect(config) {
  setStatus("feed-status", "connecting", "off");
  const ws = new WebSocket(`${config.feed_url}?token=${encodeURIComponent(config.token)}`);
  view.ws = ws;
  ws.onmessage = (event) => handle(JSON.parse(event.data));
  ws.onclose = (event) => {
    setStatus("feed-status", "disconnected", "bad");
    $("feed-message").textContent = event.reason ? literal(`closed: ${event.reason}`) : "";
    // A fresh config each time: the feed token the page holds is short-lived.
    setTimeout(start, 1000);
  };
}

function handle(message) {
  switch (message.type) {
    case "welcome":
      view.epoch = message.epoch;
      setStatus("feed-status", "live", "ok");
      $("feed-message").textContent = "";
      for (const topic of ["sessions", "health", "metrics"]) subscribe(topic);
      if (view.selected) subscribe(`worklog:${view.selected}`);
      break;
    case "snapshot":
      view.positions[message.topic] = { epoch: message.epoch, offset: message.offset };
      if (message.topic === "sessions") view.sessions.clear();
      if (message.topic.startsWith("worklog:")) view.worklog.set(message.topic.slice(8), []);
      for (const event of message.events) apply(event, false);
      render();
      break;
    case "events":
      for (const event of message.events) apply(event, true);
      render();
      break;
    case "resync":
      subscribe(message.topic);
      break;
    case "error":
      $("feed-message").textContent = literal(`${message.code}: ${message.message}`);
      break;
    default:
      break;
  }
}

function apply(event, live) {
  if (live) view.positions[event.topic] = { epoch: view.epoch, offset: event.offset };
  if (event.topic === "sessions") {
    view.sessions.set(event.key, event.data);
  } else if (event.topic === "health") {
    renderHealth(event.data);
  } else if (event.topic === "metrics") {
    renderMetrics(event.data);
  } else if (event.topic.startsWith("worklog:")) {
    const sid = event.topic.slice(8);
    const entries = view.worklog.get(sid) || [];
    entries.push(event);
    if (entries.length > 500) entries.splice(0, entries.length - 500);
    view.worklog.set(sid, entries);
  }
}

function select(id) {
  if (view.selected === id) return;
  if (view.selected) send({ type: "unsubscribe", topic: `worklog:${view.selected}` });
  view.selected = id;
  delete view.positions[`worklog:${id}`];
  subscribe(`worklog:${id}`);
  render();
}

function render() {
  renderSessions();
  renderWorklog();
}

function renderSessions() {
  const rows = $("session-rows");
  const all = [...view.sessions.values()];
  $("session-count").textContent = all.length ? `(${all.length})` : "";
  const children = new Map();
  for (const s of all) {
    const parent = s.parent && view.sessions.has(s.parent) ? s.parent : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(s);
  }
  const out = [];
  const walk = (parent, depth) => {
    const list = (children.get(parent) || []).sort((a, b) => a.created_at - b.created_at);
    for (const s of list) {
      out.push(sessionRow(s, depth));
      walk(s.id, depth + 1);
    }
  };
  walk(null, 0);
  if (!out.length) out.push(el("tr", { class: "empty" }, el("td", { colspan: "6" }, "No sessions yet.")));
  rows.replaceChildren(...out);
}

function sessionRow(s, depth) {
  const row = el(
    "tr",
    { class: `session${s.id === view.selected ? " selected" : ""}`, dataset: { sessionId: s.id } },
    el("td", { class: "name" }, el("span", { class: "indent", style: `width:${depth * 18}px` }), depth ? "└ " : "", s.name),
    el("td", {}, el("span", { class: `pill state state-${s.state}` }, s.state)),
    el("td", {}, el("span", { class: `pill priority prio-${s.priority}` }, s.priority)),
    el("td", { class: "kind" }, s.kind),
    el("td", { class: "backlog" }, s.backlog_id ?? ""),
    el("td", { class: "id", title: s.id }, s.id.slice(0, 8)),
  );
  if (s.error) row.title = literal(s.error);
  row.addEventListener("click", () => select(s.id));
  return row;
}

function describe(data) {
  for (const key of ["summary", "message", "text", "note", "description"]) {
    if (typeof data[key] === "string") return data[key];
  }
  return JSON.stringify(data);
}

function renderWorklog() {
  const list = $("worklog");
  if (!view.selected) return;
  const session = view.sessions.get(view.selected);
  $("worklog-title").textContent = literal(session ? session.name : view.selected);
  const entries = view.worklog.get(view.selected) || [];
  if (!entries.length) {
    list.replaceChildren(el("li", { class: "empty" }, "No worklog entries yet."));
    return;
  }
  list.replaceChildren(
    ...entries.map((e) =>
      el(
        "li",
        { dataset: { offset: e.offset } },
        el("span", { class: "time" }, new Date(e.time * 1000).toLocaleTimeString()),
        e.data.kind ? `[${e.data.kind}] ` : "",
        describe(e.data),
      ),
    ),
  );
  list.scrollTop = list.scrollHeight;
}

function definitions(node, pairs) {
  node.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { dataset: { key: k } }, v)]));
}

function renderHealth(h) {
  setStatus("health-status", `health: ${h.status}`, h.status === "ok" ? "ok" : "warn");
  const lag = h.checks && h.checks.loop ? h.checks.loop.lag_ms : null;
  definitions($("health"), [
    ["status", h.status],
    ["loop lag", lag === null ? "-" : `${lag} ms`],
    ["sessions", h.sessions ? h.sessions.total : "-"],
    ["failed", h.sessions ? h.sessions.failed : "-"],
    ["problems", h.problems && h.problems.length ? h.problems.join("; ") : "none"],
  ]);
}

function renderMetrics(m) {
  const byState = Object.entries(m.sessions_by_state || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  definitions($("metrics"), [
    ["sessions", m.sessions_total],
    ["by state", byState || "-"],
    ["events/s", m.events_per_second],
    ["events", m.events_published],
    ["subscribers", m.subscribers],
  ]);
  const body = $("gates").querySelector("tbody");
  const rows = Object.entries(m.gates || {}).map(([name, g]) =>
    el("tr", {}, el("td", {}, name), el("td", {}, g.borrowed), el("td", {}, g.capacity), el("td", {}, g.waiting)),
  );
  if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "4" }, "No gate in use yet.")));
  body.replaceChildren(...rows);
}

// The feed token comes from /config.json, which answers only a browser signed in with the session
// cookie (HttpOnly: this script never sees it) that the one-time link of `scribe serve` or
// `scribe dashboard-url` set.
function start() {
  fetch("/config.json", { credentials: "same-origin", cache: "no-store" })
    .then((response) => {
      if (response.status === 401) {
        setStatus("feed-status", "signed out", "bad");
        $("feed-message").textContent =
          "not signed in: open the link `scribe serve` printed, or run `scribe dashboard-url` for a new one";
        return null;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    })
    .then((config) => {
      if (config) connect(config);
    })
    .catch((err) => {
      $("feed-message").textContent = literal(`cannot load the dashboard config: ${err}`);
      setTimeout(start, 2000);
    });
}

start();
