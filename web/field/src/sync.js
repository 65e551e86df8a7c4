// Enrolment and sync with the server, exactly as the CLI field client does them (src/field.rs): the same
// endpoints, the same CBOR messages (client-core/src/protocol.rs, docs/sync-protocol.md), gzip bodies, the
// server-assigned actor id, and visits of an earlier enrolment carried over to the new one.
import { encode, decode } from "cborg";
import { bytesToHex, headsBytes, changesSince, unconfirmedVisits } from "./grid.js";

const PROTOCOL_VERSION = 1;

/** Why a call failed: `unreachable` (no network, server down) or refused with the server's words. */
export class CallError extends Error {
  constructor(message, { unreachable = false, status = 0, code = "" } = {}) {
    super(message);
    this.unreachable = unreachable;
    this.status = status;
    this.code = code;
  }
}

async function call(path, init) {
  let resp;
  try {
    resp = await fetch(path, { ...init, cache: "no-store" });
  } catch (e) {
    throw new CallError(String(e?.message || e), { unreachable: true });
  }
  if (resp.ok) return resp;
  let code = "http_error";
  let message = `HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    code = body?.error?.code || code;
    message = body?.error?.message || message;
  } catch {
    // not a JSON error body: keep the status line
  }
  throw new CallError(message, { status: resp.status, code });
}

async function gzip(bytes) {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Enrols this phone (POST /api/v1/devices). Another user cannot enrol a phone that still holds someone's
 * unsynced visits; the same user's unsynced visits are set aside durably and recorded again under the new
 * enrolment at the next sync, since the server accepts only the new actor's changes.
 */
export async function enrol(state, { username, password, deviceName }) {
  await state.whenLoaded();
  const old = state.device;
  const pending = old ? state.pendingCount() : 0;
  if (old && pending > 0 && old.username !== username) {
    throw new CallError(`this phone holds ${pending} unsynced visits by ${old.username}; sync them first`);
  }
  // Task sign-fors and outcomes are not carried over (the CLI does that): they must reach the server first.
  const taskPending = old ? [...state.tasks.keys()].filter((id) => state.hasUnconfirmed("task", id)).length : 0;
  if (taskPending > 0) throw new CallError(`this phone holds unsynced records of ${taskPending} urgent tasks; sync them first`);
  const resp = await call("/api/v1/devices", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password, device_name: deviceName }),
  });
  const reply = await resp.json();
  if (!/^[0-9a-f]+$/.test(reply.actor || "")) throw new CallError("the server sent an invalid actor id");
  const carried = [...state.carried];
  if (old) {
    for (const [grid, entry] of state.grids) {
      for (const visit of unconfirmedVisits(entry.doc, entry.record.confirmed, old.device_id)) carried.push({ grid, visit });
    }
  }
  await state.saveCarried(carried);
  for (const grid of [...state.grids.keys()]) await state.drop("grid", grid);
  for (const task of [...state.tasks.keys()]) await state.drop("task", task);
  await state.saveDevice({
    server: location.origin,
    username: reply.username,
    team: reply.team ?? null,
    device_id: reply.device_id,
    actor: reply.actor,
    token: reply.token,
    last_sync: null,
  });
  state.changed();
}

/** The push for every document of one kind the phone holds: its changes after what the server confirmed. */
function pushes(state, kind, resendAll, tally) {
  return [...state.docs(kind)].map(([id, entry]) => {
    const since = resendAll.has(`${kind}:${id}`) ? [] : entry.record.confirmed;
    const changes = changesSince(entry.doc, since);
    tally.sent += changes.length;
    return { [kind]: id, have: headsBytes(entry.doc), changes };
  });
}

/**
 * One sync: push every grid's and task's unconfirmed changes, take in what the server sends. Resolves with a
 * tally. Normally one round trip; another to send the sign-for (签收) of tasks that just arrived, when the server
 * asked for a document's whole history, or to send visits carried over from an earlier enrolment once their
 * grids are here.
 */
export async function sync(state) {
  await state.whenLoaded();
  const tally = { sent: 0, stored: 0, received: 0, newGrids: [], removed: [], newTasks: 0, signed: 0 };
  let resendAll = new Set();
  let carrying = state.carried.length > 0;
  for (let round = 0; round < 4; round++) {
    // Built in turn with writes, so a visit being written is either fully in (on disk) or not in at all.
    const [grids, tasks] = await state.exclusive(() => [pushes(state, "grid", resendAll, tally), pushes(state, "task", resendAll, tally)]);
    const body = encode({ protocol: PROTOCOL_VERSION, grids, tasks });
    const compressed = await gzip(body);
    const headers = { "content-type": "application/cbor", authorization: `Bearer ${state.device.token}` };
    if (compressed) headers["content-encoding"] = "gzip";
    const resp = await call("/api/v1/sync", { method: "POST", headers, body: compressed || body });
    let reply;
    try {
      reply = decode(new Uint8Array(await resp.arrayBuffer()));
    } catch (e) {
      throw new CallError(`the connection broke while receiving the server's answer (${e.message})`, { unreachable: true });
    }
    resendAll = new Set();
    const signedBefore = tally.signed;
    await state.exclusive(async () => {
      for (const r of reply.grids) await applyGridReply(state, r, tally, resendAll);
      for (const r of reply.tasks || []) await applyTaskReply(state, r, tally, resendAll);
    });
    if (carrying) {
      await recordCarried(state);
      carrying = false;
      continue;
    }
    if (resendAll.size === 0 && tally.signed === signedBefore) break;
  }
  if (resendAll.size > 0) {
    throw new CallError(`the server still could not place the history of ${[...resendAll].join(", ")}; try again, or contact the office`);
  }
  await state.saveCarried(state.carried.filter((c) => !state.grids.has(c.grid)));
  await state.saveDevice({ ...state.device, last_sync: Date.now() });
  state.changed();
  return tally;
}

async function applyGridReply(state, r, tally, resendAll) {
  if (typeof r.grid !== "string" || !r.grid) throw new CallError("the server sent a reply without a grid code");
  tally.stored += r.stored || 0;
  const heads = (r.heads || []).map(bytesToHex);
  const extra = r.contacts != null ? { contacts: r.contacts } : {};
  switch (r.kind) {
    case "new":
      if (!r.snapshot) throw new CallError(`the server sent the new grid ${r.grid} without its document`);
      await state.putNew("grid", r.grid, r.snapshot, heads, extra);
      tally.newGrids.push(r.grid);
      return;
    case "resend_all":
      resendAll.add(`grid:${r.grid}`);
      return;
    case "synced":
    case "unassigned":
      if (!state.grids.has(r.grid)) throw new CallError(`the server answered for grid ${r.grid}, which this phone did not send`);
      tally.received += await state.applyServerChanges("grid", r.grid, r.changes || [], heads, extra);
      if (r.kind === "unassigned" && !state.hasUnconfirmed("grid", r.grid)) {
        await state.drop("grid", r.grid);
        tally.removed.push(r.grid);
      }
      return;
    default:
      throw new CallError(`the server sent an unknown reply kind ${r.kind}; update the app`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function applyTaskReply(state, r, tally, resendAll) {
  if (typeof r.task !== "string" || !UUID.test(r.task)) throw new CallError(`the server sent an unusable task id ${r.task}`);
  tally.stored += r.stored || 0;
  const heads = (r.heads || []).map(bytesToHex);
  switch (r.kind) {
    case "new":
      if (!r.snapshot) throw new CallError(`the server sent the new task ${r.task} without its document`);
      await state.putNew("task", r.task, r.snapshot, heads);
      tally.newTasks += 1;
      // Signed for (签收) the moment the task is on the phone; the sign-for goes out in the next round.
      if (await state.signTask(r.task, "received")) tally.signed += 1;
      return;
    case "resend_all":
      resendAll.add(`task:${r.task}`);
      return;
    case "synced":
    case "closed":
      if (!state.tasks.has(r.task)) throw new CallError(`the server answered for task ${r.task}, which this phone did not send`);
      tally.received += await state.applyServerChanges("task", r.task, r.changes || [], heads);
      // A closed task is deleted from the phone once everything it recorded for it is on the server.
      if (r.kind === "closed" && !state.hasUnconfirmed("task", r.task)) await state.drop("task", r.task);
      return;
    default:
      throw new CallError(`the server sent an unknown task reply kind ${r.kind}; update the app`);
  }
}

/** Records carried-over visits again under this enrolment, in grids now on the phone. */
async function recordCarried(state) {
  await state.exclusive(async () => {
    for (const { grid, visit } of state.carried) {
      const entry = state.grids.get(grid);
      if (!entry || entry.doc.visits?.[visit.id]) continue; // grid gone, or already on the server
      await state.writeVisit(grid, { ...visit, device: state.device.device_id });
    }
  });
}
