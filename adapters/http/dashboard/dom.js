// Scribe dashboard: building the page's DOM from data, and the signed-in JSON routes.
"use strict";

const $ = (id) => document.getElementById(id);

// User text (names, notes, paths, commit subjects, memory, errors quoting them) is only ever set
// as text (append, textContent, attributes; never innerHTML), and shown through literal():
// control characters and bidi overrides as visible escapes, \x1b or \u202e, as the CLI shows them
// (engine.visible).
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
    else if (key === "width") node.style.width = value;
    else node.setAttribute(key, literal(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : literal(child));
  }
  return node;
}

// Any JSON value as plain text for people: strings as they are, lists one item per line,
// objects as "key: value" (never JSON syntax).
function plain(value, depth = 0) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "object") return String(value);
  const pad = "  ".repeat(depth);
  if (Array.isArray(value)) return value.map((v) => `${pad}- ${plain(v, depth + 1).trimStart()}`).join("\n");
  return Object.entries(value)
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => (typeof v === "object" ? `${pad}${k}:\n${plain(v, depth + 1)}` : `${pad}${k}: ${v}`))
    .join("\n");
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

class HttpError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${body.message}` : `HTTP ${status}`);
    this.status = status;
  }
}

// GET a signed-in JSON route; rejects with HttpError (its message the server's) when not 200.
async function getJSON(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  const response = await fetch(text ? `${path}?${text}` : path, { credentials: "same-origin", cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}
