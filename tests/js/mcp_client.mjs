// An MCP client on Node's official SDK (@modelcontextprotocol/sdk), over stdio or streamable HTTP.
//
// usage: node mcp_client.mjs SCENARIO stdio COMMAND [ARG...]
//        node mcp_client.mjs SCENARIO http URL [HEADERS]
// SCENARIO is a JSON list of steps, run in order:
//   {"op": "tools"}                                  the tools listed (all pages)
//   {"op": "call", "name": N, "arguments": {...}}    a tool call
//   {"op": "read", "uri": U}                         a resource read
//   {"op": "templates"}                              the resource templates listed
//   {"op": "subscribe", "uri": U}                    resources/subscribe
//   {"op": "updated", "uri": U, "timeout": S}        wait (at most S seconds) for resources/updated of U
// HEADERS is a JSON object of request headers (e.g. Authorization), sent with every HTTP request.
// The stdio server gets this process's whole environment.
// Prints one JSON line per step on stdout: {"op", ...the answer} or {"op", "error": {code, message}};
// a failed connection prints {"op": "connect", "error": ...} and ends with status 2. Status 0 otherwise.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [scenarioArg, kind, target, ...rest] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const failure = (err) => ({ code: err?.code ?? null, name: err?.name ?? null, message: String(err?.message ?? err) });

function transport() {
  if (kind === "stdio") {
    return new StdioClientTransport({ command: target, args: rest, env: { ...process.env }, stderr: "inherit" });
  }
  if (kind === "http") {
    const headers = rest.length ? JSON.parse(rest[0]) : {};
    return new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  }
  throw new Error(`unknown transport ${kind}: stdio or http`);
}

// URIs of resources/updated notifications, and who waits for which.
const updated = new Set();
const waiters = new Map();
function waitUpdated(uri, seconds) {
  if (updated.has(uri)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no resources/updated for ${uri} in ${seconds} s`)), seconds * 1000);
    waiters.set(uri, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function listTools(client) {
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  return tools;
}

async function step(client, s) {
  switch (s.op) {
    case "tools":
      return { tools: await listTools(client) };
    case "call": {
      const r = await client.callTool({ name: s.name, arguments: s.arguments ?? {} });
      const text = (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
      return { isError: r.isError === true, text, structured: r.structuredContent ?? null };
    }
    case "read":
      return { contents: (await client.readResource({ uri: s.uri })).contents };
    case "templates":
      return { templates: (await client.listResourceTemplates()).resourceTemplates };
    case "subscribe":
      await client.subscribeResource({ uri: s.uri });
      return { uri: s.uri };
    case "updated":
      await waitUpdated(s.uri, s.timeout ?? 60);
      return { uri: s.uri };
    default:
      throw new Error(`unknown step ${s.op}`);
  }
}

async function main() {
  const scenario = JSON.parse(scenarioArg);
  const client = new Client({ name: "scribe-node-test-client", version: "1.0.0" });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updated.add(n.params.uri);
    waiters.get(n.params.uri)?.();
  });
  try {
    await client.connect(transport());
  } catch (err) {
    say({ op: "connect", error: failure(err) });
    return 2;
  }
  say({ op: "connect", server: client.getServerVersion(), protocol: client.transport?.protocolVersion ?? null,
        capabilities: client.getServerCapabilities() });
  for (const s of scenario) {
    try {
      say({ op: s.op, ...(await step(client, s)) });
    } catch (err) {
      say({ op: s.op, error: failure(err) });
    }
  }
  await client.close();
  return 0;
}

process.exitCode = await main();
