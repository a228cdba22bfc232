// A realistic host session against `statusd mcp`, driven by the official TypeScript MCP SDK client
// (what Claude Code and Claude Desktop are built on). Run by tests/interop/test_typescript_client.py:
//
//   node session.mjs PYTHON SOCKET ARCHIVABLE BEADS RECORDS
//
// PYTHON runs `-m statusd.cli mcp --socket SOCKET` (the bridge); ARCHIVABLE is how many items the
// store holds that trigger_archiving would archive (the long call this session cancels); BEADS is a
// beads issues.jsonl of RECORDS records (one tombstone in every hundred) that import_tasks reads.
// Prints one line per check; exits non-zero with the failed check's message.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  CallToolResultSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
  LoggingMessageNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [python, socket, archivableText, beadsPath, recordsText] = process.argv.slice(2);
const archivable = Number(archivableText);
const records = Number(recordsText);
const bridge = { command: python, args: ["-m", "statusd.cli", "mcp", "--socket", socket], stderr: "inherit" };
const WAIT_MS = 20_000;

function check(name) {
  console.log(`ok - ${name}`);
}

function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A host built on an older SDK offers an older protocol version: rewrite the offer on its way out.
class PinnedVersionTransport extends StdioClientTransport {
  constructor(params, version) {
    super(params);
    this.offered = version;
    this.negotiated = undefined;
    // Record the version the server settles on, from its initialize result.
    Object.defineProperty(this, "onmessage", {
      get: () => this._hostOnMessage,
      set: (handler) => {
        this._hostOnMessage = (message, ...rest) => {
          if (message?.result?.protocolVersion && message?.result?.serverInfo) {
            this.negotiated = message.result.protocolVersion;
          }
          handler?.(message, ...rest);
        };
      },
    });
  }

  async send(message, options) {
    if (message.method === "initialize" && this.offered) {
      message = { ...message, params: { ...message.params, protocolVersion: this.offered } };
    }
    return super.send(message, options);
  }
}

async function connect(name, version) {
  const transport = new PinnedVersionTransport(bridge, version);
  const client = new Client({ name, version: "1.0.0" }, { capabilities: {} });
  const errors = [];
  client.onerror = (error) => errors.push(String(error?.message ?? error));
  await client.connect(transport);
  return { client, transport, errors };
}

function structured(result) {
  assert.equal(result.isError, false, `tool error: ${JSON.stringify(result.structuredContent)}`);
  return result.structuredContent;
}

async function expectProtocolError(promise, code, what) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof McpError, `${what}: expected an McpError, got ${error}`);
    assert.equal(error.code, code, `${what}: code ${error.code} (${error.message})`);
    return error;
  }
  assert.fail(`${what}: answered without an error`);
}

// Raw stdio to the bridge, for what no SDK client can send: unreadable lines, odd ids, batches.
async function rawSession(version, lines) {
  const child = spawn(bridge.command, bridge.args, { stdio: ["pipe", "pipe", "inherit"] });
  const answers = [];
  const waiting = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    const parsed = JSON.parse(line);
    const next = waiting.shift();
    if (next) next(parsed);
    else answers.push(parsed);
  });
  const read = () =>
    within(
      new Promise((resolve) => (answers.length ? resolve(answers.shift()) : waiting.push(resolve))),
      "a raw answer",
    );
  const send = (text) => child.stdin.write(text + "\n");
  send(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: version, capabilities: {}, clientInfo: { name: "raw-host", version: "1" } },
    }),
  );
  const init = await read();
  send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
  const out = [];
  for (const line of lines) {
    send(line);
    out.push(await read());
  }
  child.stdin.end();
  await new Promise((resolve) => child.on("exit", resolve));
  return { init, out };
}

async function main() {
  // --- initialize on a new and an old protocol version --------------------------------------------
  const host = await connect("ts-host", undefined); // the SDK's own latest offer
  const old = await connect("ts-old-host", "2024-11-05");
  assert.equal(host.client.getServerVersion()?.name, "statusd");
  assert.equal(host.transport.negotiated, "2025-11-25");
  assert.equal(old.transport.negotiated, "2024-11-05");
  const caps = host.client.getServerCapabilities();
  assert.ok(caps.tools && caps.resources?.subscribe && caps.prompts && caps.logging && caps.completions);
  check("initialize on 2025-11-25 and 2024-11-05; tools, resources (subscribe), prompts, logging, completions");

  // --- tools/list with annotations ------------------------------------------------------------------
  const { tools } = await host.client.listTools();
  assert.ok(tools.length >= 25, `only ${tools.length} tools`);
  for (const tool of tools) {
    const a = tool.annotations;
    assert.ok(a, `${tool.name} has no annotations`);
    for (const key of ["readOnlyHint", "destructiveHint", "idempotentHint"]) {
      assert.equal(typeof a[key], "boolean", `${tool.name}.${key}`);
    }
    assert.equal(a.openWorldHint, false, tool.name);
    assert.ok(a.title, `${tool.name} has no title`);
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t.annotations]));
  assert.equal(byName.query_vendor_status.readOnlyHint, true);
  assert.equal(byName.generate_full_status.readOnlyHint, true);
  assert.equal(byName.create_work_item.readOnlyHint, false);
  assert.equal(byName.update_work_item.destructiveHint, true);
  const oldTools = await old.client.listTools();
  assert.equal(oldTools.tools.length, tools.length);
  check(`tools/list: ${tools.length} tools, every one annotated (old and new session)`);

  // --- reads and writes from both sessions ------------------------------------------------------------
  const item = structured(
    await host.client.callTool({ name: "create_work_item", arguments: { item_type: "task", title: "Interop task" } }),
  );
  const listed = structured(
    await old.client.callTool({ name: "list_work_items", arguments: { text: "Interop task" } }),
  );
  assert.deepEqual(
    listed.items.map((i) => i.id),
    [item.id],
  );
  const updated = structured(
    await old.client.callTool({
      name: "update_work_item",
      arguments: { id: item.id, version: item.version, status: "blocked" },
    }),
  );
  assert.equal(updated.version, item.version + 1);
  assert.equal(updated.updated_by, "ts-old-host");
  check("writes and reads across the two sessions; the declared client name is the actor");

  // --- resources and a subscription fed by another client's write ----------------------------------------
  const { resources } = await host.client.listResources();
  assert.deepEqual(resources.map((r) => r.uri).sort(), ["statusd://status", "statusd://status.json"]);
  const { resourceTemplates } = await host.client.listResourceTemplates();
  assert.deepEqual(
    resourceTemplates.map((t) => t.uriTemplate).sort(),
    ["statusd://vendors/{name}", "statusd://work-items/{id}"],
  );
  const doc = await host.client.readResource({ uri: "statusd://status" });
  assert.equal(doc.contents[0].mimeType, "text/markdown");
  assert.match(doc.contents[0].text, /^# Project Status$/m);
  const one = await host.client.readResource({ uri: `statusd://work-items/${item.id}` });
  assert.equal(JSON.parse(one.contents[0].text).id, item.id);

  const updates = [];
  let heard;
  const notified = new Promise((resolve) => (heard = resolve));
  host.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updates.push(n.params.uri);
    heard();
  });
  await host.client.subscribeResource({ uri: "statusd://status" });
  structured(await old.client.callTool({ name: "create_vendor", arguments: { name: "Interop Vendor" } }));
  await within(notified, "notifications/resources/updated after another client's write");
  assert.equal(updates[0], "statusd://status");
  await host.client.unsubscribeResource({ uri: "statusd://status" });
  check("resources, templates, reads; subscribed to statusd://status and notified of another client's write");

  // --- a prompt and a completion ----------------------------------------------------------------------------
  const { prompts } = await host.client.listPrompts();
  assert.deepEqual(prompts.map((p) => p.name).sort(), ["handoff", "next_work"]);
  const handoff = await host.client.getPrompt({ name: "handoff", arguments: { work_item_id: item.id.slice(0, 8) } });
  assert.ok(handoff.messages[0].content.text.includes(item.id));
  const completed = await host.client.complete({
    ref: { type: "ref/resource", uri: "statusd://work-items/{id}" },
    argument: { name: "id", value: item.id.slice(0, 6) },
  });
  assert.ok(completed.completion.values.includes(item.id), JSON.stringify(completed));
  const vendors = await host.client.complete({
    ref: { type: "ref/prompt", name: "next_work" },
    argument: { name: "vendor", value: "interop" },
  });
  assert.deepEqual(vendors.completion.values, ["Interop Vendor"]);
  await host.client.setLoggingLevel("info");
  host.client.setNotificationHandler(LoggingMessageNotificationSchema, () => {});
  check("prompts/get handoff; completion of an id prefix and a vendor name; logging/setLevel");

  // --- cancel a long call (with progress) ---------------------------------------------------------------------
  const controller = new AbortController();
  let progressed;
  const firstProgress = new Promise((resolve) => (progressed = resolve));
  const progress = [];
  const call = host.client.callTool({ name: "trigger_archiving", arguments: {} }, CallToolResultSchema, {
    signal: controller.signal,
    onprogress: (p) => {
      progress.push(p);
      progressed();
    },
  });
  await within(firstProgress, "the first progress notification of trigger_archiving");
  controller.abort("the user pressed stop");
  await assert.rejects(call);
  assert.ok(progress[0].total === archivable && progress[0].progress < archivable, JSON.stringify(progress[0]));
  // The daemon stops between batches; a ping round trip later, count what was archived.
  await host.client.ping();
  const archived = structured(
    await old.client.callTool({ name: "query_archived_work_items", arguments: { limit: 1 } }),
  ).total_count;
  assert.ok(archived < archivable, `${archived} of ${archivable} archived: the cancelled call ran to the end`);
  await host.client.ping();
  const lateAnswers = host.errors.filter((e) => e.includes("unknown message ID"));
  assert.deepEqual(lateAnswers, [], "the cancelled call was answered anyway");
  check(`trigger_archiving reported progress, was cancelled after ${archived}/${archivable} and never answered`);

  // --- an import with progress, to the end --------------------------------------------------------------------
  const steps = [];
  const imported = structured(
    await within(
      host.client.callTool(
        { name: "import_tasks", arguments: { source: "beads", path: beadsPath } },
        CallToolResultSchema,
        { onprogress: (p) => steps.push(p), timeout: 120_000 },
      ),
      "import_tasks",
      120_000,
    ),
  );
  const tombstones = Math.floor(records / 100);
  assert.equal(imported.records_read, records, JSON.stringify(imported));
  assert.deepEqual([imported.created, imported.skipped, imported.updated], [records - tombstones, tombstones, 0]);
  assert.ok(steps.length >= 2, `${steps.length} progress notifications`);
  for (let i = 1; i < steps.length; i++) {
    assert.ok(steps[i].progress >= steps[i - 1].progress, JSON.stringify(steps.slice(i - 1, i + 1)));
  }
  const last = steps[steps.length - 1];
  assert.equal(last.progress, last.total, JSON.stringify(last));
  const again = structured(
    await host.client.callTool({ name: "import_tasks", arguments: { source: "beads", path: beadsPath } }),
  );
  assert.deepEqual([again.created, again.updated, again.unchanged], [0, 0, records - tombstones]);
  check(`import_tasks: ${imported.created} created, ${imported.skipped} skipped, ${steps.length} progress notifications; re-import unchanged`);

  // --- protocol errors the SDK client can provoke ------------------------------------------------------------
  await expectProtocolError(host.client.callTool({ name: "no_such_tool", arguments: {} }), -32602, "unknown tool");
  await expectProtocolError(host.client.listTools({ cursor: "bogus" }), -32602, "invalid tools/list cursor");
  await expectProtocolError(
    host.client.readResource({ uri: "statusd://work-items/00000000-0000-4000-8000-000000000000" }),
    -32002,
    "missing resource",
  );
  await expectProtocolError(host.client.getPrompt({ name: "no_such_prompt" }), -32602, "unknown prompt");
  check("unknown tool, invalid cursor, unknown prompt: -32602; missing resource: -32002");

  // --- protocol errors only a raw host can send --------------------------------------------------------------
  const modern = await rawSession("2025-06-18", [
    "[]",
    '{"jsonrpc":"2.0","id":{"no":"objects"},"method":"ping"}',
    "{this is not json",
    '[{"jsonrpc":"2.0","id":5,"method":"ping"}]',
  ]);
  assert.equal(modern.init.result.protocolVersion, "2025-06-18");
  const [empty, objectId, unreadable, refusedBatch] = modern.out;
  assert.deepEqual([empty.id, empty.error.code], [null, -32600]);
  assert.deepEqual([objectId.id, objectId.error.code], [null, -32600]);
  assert.deepEqual([unreadable.id, unreadable.error.code], [null, -32700]);
  assert.deepEqual([refusedBatch.id, refusedBatch.error.code], [null, -32600]);
  const batched = await rawSession("2025-03-26", [
    '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sync_status","arguments":{}}}]',
  ]);
  assert.equal(batched.init.result.protocolVersion, "2025-03-26");
  const batch = batched.out[0];
  assert.ok(Array.isArray(batch), JSON.stringify(batch));
  assert.deepEqual(batch.map((a) => a.id).sort(), [1, 2]);
  check("[] / object id / unreadable JSON answered with id null; batch refused on 2025-06-18, served on 2025-03-26");

  await host.client.close();
  await old.client.close();
  const unexpected = [...host.errors, ...old.errors].filter(
    (e) => !e.includes("progress notification for an unknown token"),
  );
  assert.deepEqual(unexpected, [], "client errors during the session");
  check("session closed cleanly");
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`not ok - ${error?.stack ?? error}`);
    process.exit(1);
  },
);
