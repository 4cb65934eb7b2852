// A feed client on Node's `ws`: subscribe, receive, disconnect, resume from `since`.
//
// usage: node feed_resume.mjs URL TOKEN TOPIC FIRST TOTAL
// Talks to the test over JSON lines: prints {"event": "subscribed"} once subscribed, then
// {"event": "phase1", ...} after FIRST events and a clean close; waits for a "resume" line on
// stdin; reconnects (token in the query this time) with since={epoch, offset} and prints
// {"event": "done", ...} after TOTAL events in all.
import { WebSocket } from "ws";
import { createInterface } from "node:readline";

const [url, token, topic, firstArg, totalArg] = process.argv.slice(2);
const first = Number(firstArg);
const total = Number(totalArg);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));

function session(wsUrl, options, since, want, onSubscribed) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, options);
    const got = [];
    let epoch = null;
    let recovered = null;
    ws.on("error", reject);
    ws.on("message", (raw, isBinary) => {
      if (isBinary) return reject(new Error("binary frame from the server"));
      const msg = JSON.parse(raw.toString());
      if (msg.type === "welcome") {
        epoch = msg.epoch;
        const sub = { type: "subscribe", topic, id: 1 };
        if (since) sub.since = since;
        ws.send(JSON.stringify(sub));
      } else if (msg.type === "subscribed") {
        recovered = msg.recovered;
        onSubscribed();
      } else if (msg.type === "events") {
        for (const e of msg.events) if (e.topic === topic) got.push(e);
        if (got.length >= want) ws.close(1000, "done");
      } else if (msg.type === "error") {
        reject(new Error(`server error ${msg.code}: ${msg.message}`));
      }
    });
    ws.on("close", (code) => resolve({ got, epoch, recovered, code }));
  });
}

try {
  const one = await session(
    url,
    { headers: { Authorization: `Bearer ${token}` } },
    null,
    first,
    () => say({ event: "subscribed" }),
  );
  const last = one.got[one.got.length - 1];
  say({ event: "phase1", epoch: one.epoch, offset: last.offset, offsets: one.got.map((e) => e.offset), code: one.code });
  await nextLine();
  const two = await session(
    `${url}?token=${encodeURIComponent(token)}`,
    {},
    { epoch: one.epoch, offset: last.offset },
    total - one.got.length,
    () => {},
  );
  say({
    event: "done",
    recovered: two.recovered,
    offsets: two.got.map((e) => e.offset),
    values: [...one.got, ...two.got].map((e) => e.data.i),
    code: two.code,
  });
  process.exit(0);
} catch (err) {
  say({ event: "error", message: String(err) });
  process.exit(1);
}
