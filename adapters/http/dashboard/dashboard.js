// Scribe dashboard: the live feed (docs/feed.md) and the panels it drives: sessions with their
// filters, the selected session's worklog, summary and context, alerts, health and metrics, and
// the memory search. dom.js, entries.js and charts.js are loaded before this file.
"use strict";

const WORKLOG_KEPT = 500; // entries kept per session as live ones arrive
const WORKLOG_PAGE = 200; // entries per request, the first and each "load earlier"
const WORKLOG_PAGED_MAX = 5000; // entries kept per session at most, however far one pages back

const view = {
  sessions: new Map(), // id -> status payload (feed)
  details: new Map(), // id -> listed session (/sessions.json): tags, repo_path
  worklog: new Map(), // session id -> Map(key -> entry)
  worklogKept: new Map(), // session id -> how many entries it keeps (grows as one pages back)
  exhausted: new Set(), // session ids whose earliest entries are shown (or the most kept)
  alerts: new Map(), // alert name -> latest alert
  selected: null,
  tab: "worklog",
  positions: {}, // topic -> {epoch, offset}; sent back as `since` when resubscribing
  epoch: null,
  ws: null,
  nextId: 1,
  detailsTimer: null,
  summaryTimer: null,
};

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
    if (!view.sessions.has(event.key) && !view.details.has(event.key)) loadDetailsSoon();
    view.sessions.set(event.key, event.data);
  } else if (event.topic === "health") {
    if (event.key && event.key.startsWith("alert:")) noteAlert(event.data);
    else renderHealth(event.data);
  } else if (event.topic === "metrics") {
    renderMetrics(event.data);
  } else if (event.topic.startsWith("worklog:")) {
    const sid = event.topic.slice(8);
    addEntries(sid, [entryOf(event.data, event.time, event.offset)]);
    if (sid === view.selected && live) refreshSummarySoon();
  }
}

// ---- sessions and their filters ----

function loadDetailsSoon() {
  clearTimeout(view.detailsTimer);
  view.detailsTimer = setTimeout(loadDetails, 300);
}

async function loadDetails() {
  try {
    let after = null;
    for (let page = 0; page < 20; page++) {
      const answer = await getJSON("/sessions.json", { after });
      for (const s of answer.sessions) view.details.set(s.id, s);
      after = answer.next;
      if (!after) break;
    }
    renderSessions();
  } catch (err) {
    if (err.status !== 503 && err.status !== 401) $("feed-message").textContent = literal(`sessions: ${err.message}`);
  }
}

function tagsOf(s) {
  const detail = view.details.get(s.id);
  return (s.tags || (detail && detail.tags) || []).map(String);
}

function repoOf(s) {
  const detail = view.details.get(s.id);
  return detail && detail.repo_path ? String(detail.repo_path) : "";
}

function fillFilter(id, values) {
  const select = $(id);
  const chosen = select.value;
  const wanted = ["", ...[...values].sort()].join("\n");
  if ([...select.options].map((o) => o.value).join("\n") === wanted) return;
  const options = [el("option", { value: "" }, "all"), ...[...values].sort().map((v) => el("option", { value: v }, v))];
  select.replaceChildren(...options);
  select.value = [...values].includes(chosen) ? chosen : "";
}

function renderFilters(all) {
  fillFilter("filter-state", new Set(all.map((s) => s.state)));
  fillFilter("filter-tag", new Set(all.flatMap(tagsOf)));
  fillFilter("filter-repo", new Set(all.map(repoOf).filter(Boolean)));
}

function renderSessions() {
  const all = [...view.sessions.values()];
  renderFilters(all);
  const state = $("filter-state").value;
  const tag = $("filter-tag").value;
  const repo = $("filter-repo").value;
  const shown = all.filter(
    (s) => (!state || s.state === state) && (!tag || tagsOf(s).includes(tag)) && (!repo || repoOf(s) === repo),
  );
  const ids = new Set(shown.map((s) => s.id));
  $("session-count").textContent = all.length ? (shown.length === all.length ? `(${all.length})` : `(${shown.length} of ${all.length})`) : "";
  const children = new Map();
  for (const s of shown) {
    const parent = s.parent && ids.has(s.parent) ? s.parent : null;
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
  if (!out.length) {
    const text = all.length ? "No session matches the filters." : "No sessions yet.";
    out.push(el("tr", { class: "empty" }, el("td", { colspan: "6" }, text)));
  }
  $("session-rows").replaceChildren(...out);
}

function sessionRow(s, depth) {
  const repo = repoOf(s);
  const row = el(
    "tr",
    { class: `session${s.id === view.selected ? " selected" : ""}`, dataset: { sessionId: s.id } },
    el("td", { class: "name" }, el("span", { class: "indent", width: `${depth * 18}px` }), depth ? "\u2514 " : "", s.name),
    el("td", {}, el("span", { class: `pill state state-${s.state}` }, s.state)),
    el("td", {}, el("span", { class: `pill priority prio-${s.priority}` }, s.priority)),
    el("td", { class: "tags" }, ...tagsOf(s).map((t) => el("span", { class: "tag" }, t))),
    el("td", { class: "repo", title: repo }, repo.split("/").pop()),
    el("td", { class: "id", title: s.id }, s.id.slice(0, 8)),
  );
  row.title = literal([s.kind, s.backlog_id, s.error].filter(Boolean).join(" \u00b7 "));
  row.addEventListener("click", () => select(s.id));
  return row;
}

// ---- the selected session ----

function select(id) {
  if (view.selected === id) return;
  if (view.selected) send({ type: "unsubscribe", topic: `worklog:${view.selected}` });
  view.selected = id;
  delete view.positions[`worklog:${id}`];
  subscribe(`worklog:${id}`);
  render();
  loadWorklog(id);
  loadSummary();
  loadContext();
}

function addEntries(sid, entries) {
  const kept = view.worklog.get(sid) || new Map();
  for (const e of entries) {
    const key = e.seq !== null ? `s${e.seq}` : `o${e.offset}`;
    const had = kept.get(key);
    kept.set(key, had && had.offset !== undefined && e.offset === undefined ? { ...e, offset: had.offset } : e);
  }
  const most = view.worklogKept.get(sid) || WORKLOG_KEPT;
  if (kept.size > most) {
    const order = [...kept.entries()].sort((a, b) => a[1].time - b[1].time);
    for (const [key] of order.slice(0, kept.size - most)) kept.delete(key);
  }
  view.worklog.set(sid, kept);
}

function oldestSeq(sid) {
  let oldest = null;
  for (const e of (view.worklog.get(sid) || new Map()).values()) {
    if (e.seq !== null && (oldest === null || e.seq < oldest)) oldest = e.seq;
  }
  return oldest;
}

async function loadWorklog(id) {
  try {
    const answer = await getJSON("/worklog.json", { session: id, limit: WORKLOG_PAGE });
    addEntries(id, answer.entries.map((e) => entryOf(e, e.created_at, undefined)));
    if (id === view.selected) renderWorklog();
  } catch (err) {
    if (err.status !== 503 && id === view.selected) $("worklog-note").textContent = literal(`worklog: ${err.message}`);
  }
}

// Whether entries older than those shown may be stored (seqs start at 1).
function hasEarlier(id) {
  const oldest = oldestSeq(id);
  return !view.exhausted.has(id) && oldest !== null && oldest > 1;
}

function worklogNote(id) {
  const shown = (view.worklog.get(id) || new Map()).size;
  if (hasEarlier(id)) return `the newest ${shown} entries, then live`;
  if (shown >= WORKLOG_PAGED_MAX) return `${shown} entries shown, the most the page keeps; \`scribe worklog --before\` reads earlier ones`;
  return view.worklogKept.has(id) ? `all ${shown} entries` : "";
}

// The page of entries stored before the oldest one shown; the list keeps its place on screen.
async function loadEarlier() {
  const id = view.selected;
  const before = id ? oldestSeq(id) : null;
  if (before === null) return;
  const button = $("worklog-earlier");
  button.disabled = true;
  try {
    const answer = await getJSON("/worklog.json", { session: id, before, limit: WORKLOG_PAGE });
    const kept = (view.worklog.get(id) || new Map()).size;
    const most = Math.min(WORKLOG_PAGED_MAX, Math.max(WORKLOG_KEPT, kept + answer.entries.length));
    view.worklogKept.set(id, most);
    addEntries(id, answer.entries.map((e) => entryOf(e, e.created_at, undefined)));
    if (answer.entries.length < WORKLOG_PAGE || most >= WORKLOG_PAGED_MAX) view.exhausted.add(id);
    if (id === view.selected) {
      const list = $("worklog");
      const fromBottom = list.scrollHeight - list.scrollTop;
      renderWorklog(false);
      list.scrollTop = list.scrollHeight - fromBottom;
    }
  } catch (err) {
    if (id === view.selected) $("worklog-note").textContent = literal(`worklog: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function renderWorklog(toNewest = true) {
  const list = $("worklog");
  if (!view.selected) return;
  $("worklog-earlier").hidden = !hasEarlier(view.selected);
  $("worklog-note").textContent = worklogNote(view.selected);
  const session = view.sessions.get(view.selected);
  $("worklog-title").textContent = literal(session ? session.name : view.selected);
  const entries = [...(view.worklog.get(view.selected) || new Map()).values()].sort(
    (a, b) => a.time - b.time || (a.seq ?? 0) - (b.seq ?? 0),
  );
  if (!entries.length) {
    list.replaceChildren(el("li", { class: "empty" }, "No worklog entries yet."));
    return;
  }
  list.replaceChildren(...entries.map(worklogLine));
  if (toNewest) list.scrollTop = list.scrollHeight;
}

function refreshSummarySoon() {
  clearTimeout(view.summaryTimer);
  view.summaryTimer = setTimeout(loadSummary, 2000);
}

async function loadSummary() {
  const id = view.selected;
  if (!id) return;
  try {
    const answer = await getJSON("/summary.json", { session: id });
    if (id === view.selected) $("summary").replaceChildren(...summaryView(answer));
  } catch (err) {
    if (id === view.selected) $("summary").replaceChildren(el("p", { class: "error" }, `summary: ${err.message}`));
  }
}

async function loadContext() {
  const id = view.selected;
  if (!id || view.tab !== "context") return;
  const role = $("context-role").value;
  $("context").replaceChildren(el("p", { class: "muted" }, `gathering the ${role}'s context\u2026`));
  try {
    const ctx = await getJSON("/context.json", { session: id, role });
    if (id === view.selected && role === $("context-role").value) $("context").replaceChildren(...contextView(ctx));
  } catch (err) {
    if (id === view.selected) $("context").replaceChildren(el("p", { class: "error" }, `context: ${err.message}`));
  }
}

function showTab(tab) {
  view.tab = tab;
  for (const button of document.querySelectorAll("#detail-tabs [data-tab]")) {
    button.classList.toggle("active", button.dataset.tab === tab);
  }
  for (const name of ["worklog", "summary", "context"]) $(`tab-${name}`).hidden = name !== tab;
  if (tab === "context") loadContext();
  if (tab === "summary") loadSummary();
}

function render() {
  renderSessions();
  renderWorklog();
}

// ---- alerts, health, metrics ----

function noteAlert(alert) {
  if (!alert || typeof alert.name !== "string") return;
  view.alerts.set(alert.name, alert);
  renderAlerts();
}

function renderAlerts() {
  const all = [...view.alerts.values()].sort(
    (a, b) => (a.state === "firing" ? 0 : 1) - (b.state === "firing" ? 0 : 1) || (b.since || 0) - (a.since || 0),
  );
  const firing = all.filter((a) => a.state === "firing").length;
  const badge = $("alert-count");
  badge.textContent = firing ? `alerts: ${firing} firing` : "alerts: none";
  badge.dataset.firing = String(firing);
  badge.className = `pill pill-${firing ? "bad" : "ok"}`;
  $("alerts-note").textContent = all.length ? `(${firing} firing)` : "";
  if (!all.length) {
    $("alerts").replaceChildren(el("li", { class: "empty" }, "No alert has fired."));
    return;
  }
  $("alerts").replaceChildren(
    ...all.slice(0, 20).map((a) =>
      el(
        "li",
        { class: `alert alert-${a.state}`, dataset: { alert: a.name, state: a.state } },
        el("span", { class: `pill ${a.state === "firing" ? "pill-bad" : "pill-ok"}` }, a.state),
        el("b", {}, a.name),
        el("span", { class: "text" }, a.message),
        a.since ? el("span", { class: "time" }, clock(a.since)) : null,
      ),
    ),
  );
}

function renderHealth(h) {
  setStatus("health-status", `health: ${h.status}`, h.status === "ok" ? "ok" : "warn");
  const lag = h.checks && h.checks.loop ? h.checks.loop.lag_ms : null;
  // /health's firing list is the truth about what fires now (an event may have been missed).
  const firing = h.checks && h.checks.alerts ? h.checks.alerts.firing || [] : null;
  if (firing) {
    const now = new Set(firing.map((a) => a.name));
    for (const a of firing) if (!view.alerts.has(a.name) || view.alerts.get(a.name).state !== "firing") view.alerts.set(a.name, a);
    for (const [name, a] of view.alerts) if (a.state === "firing" && !now.has(name)) view.alerts.set(name, { ...a, state: "resolved" });
    renderAlerts();
  }
  const parts = Object.entries(h).filter(([k, v]) => typeof v === "string" && k !== "status");
  definitions($("health"), [
    ["status", h.status],
    ...parts,
    ["loop lag", lag === null ? "-" : `${lag} ms`],
    ["sessions", h.sessions ? h.sessions.total : "-"],
    ["failed", h.sessions ? h.sessions.failed : "-"],
    ["problems", h.problems && h.problems.length ? h.problems.join("; ") : "none"],
  ]);
}

function definitions(node, pairs) {
  node.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { dataset: { key: k } }, v)]));
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
  const rows = Object.entries(m.gates || {}).map(([name, g]) => {
    const use = g.capacity ? Math.min(1, g.borrowed / g.capacity) : 0;
    return el(
      "tr",
      { dataset: { gate: name } },
      el("td", {}, name),
      el("td", { class: "borrowed" }, g.borrowed),
      el("td", { class: "capacity" }, g.capacity),
      el("td", { class: "waiting" }, g.waiting),
      el("td", {}, el("span", { class: "bar" }, el("span", { class: `fill${g.waiting ? " full" : ""}`, width: `${Math.round(use * 100)}%` }))),
    );
  });
  if (!rows.length) rows.push(el("tr", { class: "empty" }, el("td", { colspan: "5" }, "No gate in use yet.")));
  body.replaceChildren(...rows);
}

// ---- memory search ----

async function searchMemory(event) {
  event.preventDefault();
  const query = $("memory-query").value.trim();
  if (!query) return;
  const mode = $("memory-mode").value;
  const session = $("memory-scope").value === "session" ? view.selected : null;
  const note = $("memory-note");
  const results = $("memory-results");
  note.textContent = "searching\u2026";
  results.replaceChildren();
  try {
    const answer =
      mode === "recall"
        ? await getJSON("/recall.json", { query, k: 20, session })
        : await getJSON("/rehydrate.json", { query, budget: 2000, session });
    const hits = mode === "recall" ? recallHits(answer) : rehydrateHits(answer);
    note.textContent = hits.length
      ? `${hits.length} result${hits.length === 1 ? "" : "s"}${mode === "rehydrate" ? `, ${answer.tokens} of ${answer.token_budget} tokens` : ""}`
      : "nothing found";
    note.dataset.count = String(hits.length);
    results.replaceChildren(...hits.map(memoryHit));
  } catch (err) {
    note.textContent = literal(`${mode}: ${err.message}`);
  }
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

function setup() {
  for (const id of ["filter-state", "filter-tag", "filter-repo"]) $(id).addEventListener("change", renderSessions);
  for (const button of document.querySelectorAll("#detail-tabs [data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  $("context-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadContext();
  });
  $("context-role").addEventListener("change", loadContext);
  $("worklog-earlier").addEventListener("click", loadEarlier);
  $("memory-form").addEventListener("submit", searchMemory);
  start();
  loadDetails();
  setupCharts();
}

setup();
