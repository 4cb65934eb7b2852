// Scribe dashboard: worklog entries, summaries, contexts and memory hits as readable text.
"use strict";

const LISTED = 12;

function names(list) {
  const items = (list || []).map(String);
  const shown = items.slice(0, LISTED).join(", ");
  return items.length > LISTED ? `${shown} and ${items.length - LISTED} more` : shown;
}

function firstLine(text, limit = 300) {
  const line = String(text ?? "").trim().split("\n")[0];
  return line.length > limit ? `${line.slice(0, limit - 1)}\u2026` : line;
}

// An entry of the feed or of /worklog.json: {seq, kind, created_at, payload}; events published
// without a payload carry their fields at the top.
function entryOf(data, time, offset) {
  const payload = data.payload && typeof data.payload === "object" ? data.payload : data;
  return {
    seq: typeof data.seq === "number" ? data.seq : null,
    kind: String(data.kind || payload.kind || "event"),
    time: typeof data.created_at === "number" ? data.created_at : time,
    payload,
    offset,
  };
}

const SENTENCES = {
  session_start: (p) =>
    `session started${p.branch ? ` on ${p.branch}` : ""}${p.head ? ` at ${String(p.head).slice(0, 8)}` : ""}`,
  session_stop: (p) =>
    `session stopped (${String(p.reason || "requested").replaceAll("_", " ")})${p.detail ? `: ${firstLine(p.detail)}` : ""}`,
  files: (p) => {
    const parts = ["created", "modified", "deleted"].filter((k) => p[k] && p[k].length).map((k) => `${k} ${names(p[k])}`);
    const moved = (p.moved || []).filter((pair) => pair.length === 2);
    if (moved.length) parts.push(`moved ${moved.slice(0, LISTED).map(([a, b]) => `${a} \u2192 ${b}`).join(", ")}`);
    return parts.length ? parts.join("; ") : "files: no change";
  },
  commit: (p) => {
    const files = p.files || [];
    const n = files.length ? ` (${files.length} file${files.length === 1 ? "" : "s"})` : "";
    return `commit ${String(p.hash || "").slice(0, 8)} ${firstLine(p.subject || "")}${n}`;
  },
  branch_switch: (p) => `branch switch ${p.from || "(detached)"} \u2192 ${p.to || "(detached)"}`,
  push: (p) => `pushed ${p.branch || "HEAD"} to ${p.upstream || "?"}`,
  note: (p) => `note: ${firstLine(p.text ?? p.summary ?? p.message ?? "")}`,
  tool: (p) => {
    const paths = (p.paths || []).filter((x) => typeof x === "string");
    const what = paths.length ? names(paths) : firstLine(p.input || "", 160);
    const agent = p.agent ? ` by ${p.agent}` : "";
    return `tool ${p.tool || "?"}${agent}${what ? `: ${what}` : ""}${p.ok === false ? " (failed)" : ""}`;
  },
};

function sentence(entry) {
  const p = entry.payload;
  const known = SENTENCES[entry.kind];
  if (known) return known(p);
  for (const key of ["summary", "message", "text", "description"]) {
    if (typeof p[key] === "string") return `${entry.kind}: ${firstLine(p[key])}`;
  }
  const fields = Object.entries(p)
    .filter(([k, v]) => k !== "kind" && v !== null && typeof v !== "object")
    .map(([k, v]) => `${k} ${v}`);
  return fields.length ? `${entry.kind}: ${fields.join(", ")}` : entry.kind;
}

function worklogLine(entry) {
  const dataset = { kind: entry.kind };
  if (entry.seq !== null) dataset.seq = entry.seq;
  if (entry.offset !== null && entry.offset !== undefined) dataset.offset = entry.offset;
  return el(
    "li",
    { dataset, title: entry.kind === "note" ? String(entry.payload.text ?? entry.payload.summary ?? "") : "" },
    el("span", { class: "time" }, clock(entry.time)),
    el("span", { class: `kind kind-${entry.kind}` }, entry.kind.replaceAll("_", " ")),
    el("span", { class: "text" }, sentence(entry)),
  );
}

const SUMMARY_PARTS = [
  ["key_ideas", "Key ideas"],
  ["decisions", "Decisions"],
  ["progress", "Progress"],
  ["next_steps", "Next steps"],
  ["files_modified", "Files modified"],
];

function summaryView(answer) {
  const s = answer && answer.summary;
  if (!s) return [el("p", { class: "muted" }, "No summary yet: one is written as the worklog grows.")];
  const out = [el("p", { class: "muted", dataset: { version: s.version } }, `version ${s.version}${s.final ? ", final" : ""} \u00b7 ${clock(s.created_at)}`)];
  for (const [key, title] of SUMMARY_PARTS) {
    const items = s[key] || [];
    if (!items.length) continue;
    out.push(el("h3", {}, title), el("ul", { class: `summary-${key}` }, ...items.map((x) => el("li", {}, plain(x)))));
  }
  if (out.length === 1) out.push(el("p", { class: "muted" }, "The summary is empty so far."));
  return out;
}

function contextView(ctx) {
  const sources = Object.entries(ctx.sources || {});
  const head = el("p", { class: "muted" }, `${ctx.role}: ${sources.length} sources${ctx.from_cache ? ", from the cache" : ""}`);
  if (!sources.length) return [head];
  return [
    head,
    ...sources.map(([name, r]) =>
      el(
        "details",
        { class: `source status-${r.status}`, dataset: { source: name }, open: "" },
        el("summary", {}, el("b", {}, name), " ", el("span", { class: "muted" }, r.status)),
        r.error ? el("p", { class: "error" }, r.error) : null,
        el("pre", {}, plain(r.value) || "(empty)"),
      ),
    ),
  ];
}

function recallHits(answer) {
  return (answer.hits || []).map((h) => ({
    citation: `${h.kind}:${h.id}`,
    kind: h.kind,
    where: h.session_id ? `session ${h.session_id}` : "",
    text: h.text,
    score: h.score,
  }));
}

function rehydrateHits(answer) {
  return (answer.items || []).map((item) => ({
    citation: item.citation,
    kind: item.source,
    where: item.pinned ? "pinned" : `${item.tokens} tokens`,
    text: item.text,
    score: item.score,
  }));
}

function memoryHit(hit) {
  return el(
    "li",
    { class: "hit", dataset: { citation: hit.citation } },
    el("span", { class: "citation" }, `[${hit.citation}]`),
    el("span", { class: `kind kind-${hit.kind}` }, hit.kind),
    hit.where ? el("span", { class: "muted" }, hit.where) : null,
    el("div", { class: "text" }, hit.text),
  );
}
