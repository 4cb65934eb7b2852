// Load clients for bench/feed.py: many websocket clients in one Node process (Node's `ws`, from
// tests/js/node_modules), driven over JSON lines on stdin/stdout.
//
// Each event's data carries `t`, the publisher's CLOCK_MONOTONIC time in seconds (Python's
// time.monotonic()); process.hrtime reads the same clock, so `now - t` is the delivery latency.
//
// Commands: {"op":"connect","url","token","n","topic","mode":"feed"|"naive","stalled":bool,"filler"}
//           {"op":"reset"}  {"op":"collect","expect":N,"timeout":s}  {"op":"close"}
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { createInterface } from "node:readline";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tests", "js", "package.json"));
const WebSocket = require("ws");

const now = () => Number(process.hrtime.bigint()) / 1e9;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

let clients = [];

function makeClient(url, token, topics, mode) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, maxPayload: 64 * 1024 * 1024 });
    const c = { ws, count: 0, lat: [], last: 0, stalled: false };
    let snapshots = 0;
    ws.on("error", reject);
    ws.on("message", (raw) => {
      const t = now();
      const msg = JSON.parse(raw.toString());
      if (mode === "naive") {
        if (msg.type === "welcome") return resolve(c);
        c.count += 1;
        c.lat.push(t - msg.data.t);
        c.last = t;
        return;
      }
      if (msg.type === "welcome") {
        for (const topic of topics) ws.send(JSON.stringify({ type: "subscribe", topic }));
      } else if (msg.type === "snapshot") {
        snapshots += 1;
        if (snapshots === topics.length) resolve(c);
      } else if (msg.type === "events") {
        for (const e of msg.events) {
          if (e.topic !== topics[0]) continue;
          c.count += 1;
          c.lat.push(t - e.data.t);
        }
        c.last = t;
      }
    });
    c.closed = new Promise((done) => ws.on("close", done));
  });
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function collect(expect, timeout) {
  const active = clients.filter((c) => !c.stalled);
  const deadline = now() + timeout;
  while (active.some((c) => c.count < expect) && now() < deadline) {
    await new Promise((r) => setTimeout(r, 2));
  }
  const lat = [];
  for (const c of active) for (const x of c.lat) lat.push(x);
  lat.sort((a, b) => a - b);
  return {
    complete: active.every((c) => c.count >= expect),
    counts_min: Math.min(...active.map((c) => c.count)),
    done_at: Math.max(...active.map((c) => c.last)),
    samples: lat.length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    max: lat.length ? lat[lat.length - 1] : null,
  };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const cmd = JSON.parse(line);
  try {
    if (cmd.op === "connect") {
      const made = [];
      for (let i = 0; i < cmd.n; i++) made.push(makeClient(cmd.url, cmd.token, [cmd.topic], cmd.mode));
      clients = await Promise.all(made);
      if (cmd.stalled) {
        // One more client that also takes a filler topic, then stops reading its socket: the test
        // publishes filler until the server's sends to it block.
        const s = await makeClient(cmd.url, cmd.token, [cmd.topic, cmd.filler], cmd.mode);
        s.stalled = true;
        s.ws.pause();
        clients.push(s);
      }
      say({ ok: "connected", n: clients.length });
    } else if (cmd.op === "reset") {
      for (const c of clients) {
        c.count = 0;
        c.lat = [];
        c.last = 0;
      }
      say({ ok: "reset" });
    } else if (cmd.op === "collect") {
      say(await collect(cmd.expect, cmd.timeout));
    } else if (cmd.op === "close") {
      for (const c of clients) c.ws.terminate();
      await Promise.all(clients.map((c) => c.closed));
      clients = [];
      say({ ok: "closed" });
    }
  } catch (err) {
    say({ error: String(err) });
  }
}
