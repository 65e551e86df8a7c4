// Enrolment and sync with whichever origin served the app (the server, or a team hub that passes enrolment on
// to the server), exactly as the CLI field client does them (src/field.rs, src/relay.rs): the same endpoints, the
// same CBOR messages (client-core/src/protocol.rs, docs/sync-protocol.md), gzip bodies, the server-assigned actor
// id, every change of this phone signed with its key, and visits and task records of an earlier enrolment carried
// over to the new one.
import { encode, decode } from "cborg";
import { A, bytesToHex, hexToBytes, headsBytes, changesSince, unconfirmedRecords } from "./grid.js";
import { generateKeyPair, signChange, attestedHeads } from "./sign.js";
import { FURTHER_KINDS, furtherKinds, validDocId } from "./kinds.js";

const PROTOCOL_VERSION = 1;
/* global APP_VERSION: the Doorstep version this app was built with (build.mjs defines it). */

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
  // A proxy or hub that cannot reach the server answers so: as good as unreachable, nothing was done.
  const unreachable = [502, 503, 504].includes(resp.status);
  let code = "http_error";
  let message = `HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    code = body?.error?.code || code;
    message = body?.error?.message || message;
  } catch {
    // not a JSON error body: keep the status line
  }
  throw new CallError(message, { status: resp.status, code, unreachable });
}

async function gzip(bytes) {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Enrols this phone (POST /api/v1/devices, at the server or through the hub that served the app) with a new
 * Ed25519 key pair whose public half the server records, as `doorstep field login` does. Another user cannot
 * enrol a phone that still holds someone's unsynced records; the same user's unsynced visits and task records
 * are set aside durably and recorded again under the new enrolment at the next sync, since the server accepts
 * only the new actor's changes.
 */
/** What an enrolment code is for: `{ kind: "person" | "team", team, members }` (a person's name, or the team's
 * volunteers to choose from). */
export async function lookupCode(code) {
  const resp = await call("/api/v1/enrolment-codes/lookup", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ code }),
  });
  return resp.json();
}

/** Enrols the phone with a username and password, or with a one-time `code` from an enrolment sheet (a team's
 * shared code with the volunteer's name, `member`). */
export async function enrol(state, { username, password, code, member, deviceName }) {
  await state.whenLoaded();
  const old = state.device;
  // Photos not yet uploaded count too: only their visit's team can send them.
  const pending = old ? state.pendingCount() + state.photoQueue().count : 0;
  const strands = (who) => old && pending > 0 && old.username !== who;
  const stranded = () => new CallError(`this phone holds ${pending} unsynced records by ${old.username}; sync them first`);
  if (!code && strands(username)) throw stranded();
  const key = await generateKeyPair();
  const credentials = code ? { code, member } : { username, password };
  const resp = await call("/api/v1/devices", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...credentials, device_name: deviceName, public_key: key.publicKey }),
  });
  const reply = await resp.json();
  // A code names its person only in the reply: someone else's unsent records stay, and this enrolment is not kept.
  if (strands(reply.username)) throw stranded();
  if (!/^[0-9a-f]+$/.test(reply.actor || "")) throw new CallError("the server sent an invalid actor id");
  const carried = [...state.carried];
  const carriedTasks = [...state.carriedTasks];
  const carriedDocs = [...state.carriedDocs];
  if (old) {
    for (const [grid, entry] of state.grids) {
      for (const record of unconfirmedRecords(entry.doc, entry.record.confirmed, old.device_id)) carried.push({ grid, ...record });
    }
    carriedTasks.push(...state.unconfirmedTaskEntries());
    carriedDocs.push(...state.unconfirmedDocEntries());
  }
  // Set aside on disk before anything is dropped.
  await state.saveCarried(carried);
  await state.saveCarriedTasks(carriedTasks);
  await state.saveCarriedDocs(carriedDocs);
  // Every document goes: the server accepts changes of the new actor only, and sends each document again.
  for (const kind of state.kinds) {
    for (const id of [...state.docs(kind).keys()]) await state.drop(kind, id);
  }
  await state.saveDevice({
    server: location.origin,
    username: reply.username,
    team: reply.team ?? null,
    device_id: reply.device_id,
    actor: reply.actor,
    token: reply.token,
    public_key: key.publicKey,
    signing_key: key.privateKey,
    server_key: reply.server_key ?? null,
    last_sync: null,
  });
  state.changed();
}

/**
 * Signatures for the changes of a push, as src/relay.rs gives them: this phone signs its own; team-mates' come
 * from those it keeps; others (the server's, or already on the server) travel without one.
 */
async function signaturesFor(device, changes, kept = {}) {
  const out = [];
  for (const bytes of changes) {
    const { actor, hash } = A.decodeChange(bytes);
    if (actor === device.actor) {
      if (device.signing_key) out.push(await signChange(device.signing_key, hash));
    } else if (kept[hash]) {
      out.push({ change: hexToBytes(hash), signature: kept[hash] });
    }
  }
  return out;
}

/**
 * The pushes for every document the phone holds: its changes after what the server confirmed, with their
 * signatures and the server's latest statement of its heads (so that a hub takes changes the server holds
 * already); for a task only carried-over records name, an empty push, whose answer brings its whole history.
 */
async function buildPushes(state, resendAll, tally) {
  // Read in turn with writes, so an entry being written is either fully in (on disk) or not in at all.
  const read = (kind) => [...state.docs(kind)].map(([id, entry]) => {
    const since = resendAll.has(`${kind}:${id}`) ? [] : entry.record.confirmed;
    const changes = changesSince(entry.doc, since);
    tally.sent += changes.length;
    return { id, changes, have: headsBytes(entry.doc), record: entry.record };
  });
  const [grids, tasks, ...further] = await state.exclusive(() => [read("grid"), read("task"), ...furtherKinds.map(read)]);
  const signed = async (key, { id, changes, have, record }) => {
    const push = { [key]: id, have, changes, signatures: await signaturesFor(state.device, changes, record.signatures) };
    if (record.attestation) push.attestation = record.attestation;
    return push;
  };
  const gridPushes = [];
  for (const grid of grids) gridPushes.push(await signed("grid", grid));
  const taskPushes = [];
  for (const task of tasks) taskPushes.push(await signed("task", task));
  const wanted = new Set(state.carriedTasks.map((c) => c.task).filter((id) => !state.tasks.has(id)));
  for (const id of wanted) {
    // The newest statement the earlier enrolment kept: the server sends a closed task only to its holders.
    const kept = state.carriedTasks.filter((c) => c.task === id && c.attestation).map((c) => c.attestation);
    const attestation = kept.reduce((a, b) => (a && a.at >= b.at ? a : b), null);
    taskPushes.push({ task: id, have: [], changes: [], ...(attestation ? { attestation } : {}) });
  }
  // Every further kind is sent, with an empty list when the phone holds none of it: a kind is opted into so.
  const docs = {};
  for (const [i, kind] of furtherKinds.entries()) {
    docs[kind] = [];
    for (const doc of further[i]) docs[kind].push(await signed("id", doc));
  }
  return { grids: gridPushes, tasks: taskPushes, docs };
}

/**
 * One sync: push every grid's and task's unconfirmed changes, take in what the server sends. Resolves with a
 * tally. Normally one round trip; another to send the sign-for (签收) of tasks that just arrived, when the server
 * asked for a document's whole history, or to send visits carried over from an earlier enrolment once their
 * grids are here.
 */
export async function sync(state) {
  await state.whenLoaded();
  const tally = { sent: 0, stored: 0, received: 0, newGrids: [], removed: [], newTasks: 0, signed: 0, hub: null, newDocs: 0, goneDocs: 0 };
  let resendAll = new Set();
  let carrying = state.carried.length > 0;
  let carryingDocs = state.carriedDocs.length > 0;
  for (let round = 0; round < 4; round++) {
    const { grids, tasks, docs } = await buildPushes(state, resendAll, tally);
    const body = encode({ protocol: PROTOCOL_VERSION, grids, tasks, docs });
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
    // A hub's answer: its heads are not the server's, so they confirm nothing (docs/sync-protocol.md).
    tally.hub = reply.relay ?? null;
    const kept = [];
    for (const r of reply.grids) kept.push(await keptFromReply(state, "grid", r.grid, r));
    const keptTasks = [];
    for (const r of reply.tasks || []) keptTasks.push(await keptFromReply(state, "task", r.task, r));
    // A kind the receiver does not know gets no answer: the phone keeps what it holds of it as it is.
    const docReplies = furtherKinds.flatMap((kind) => (reply.docs?.[kind] || []).map((r) => [kind, r]));
    for (const [kind, r] of docReplies) {
      if (!validDocId(r.id)) throw new CallError(`the server sent an unusable ${kind} id ${r.id}`);
    }
    const keptDocs = [];
    for (const [kind, r] of docReplies) keptDocs.push(state.docs(kind).has(r.id) || r.answer === "new" ? await keptFromReply(state, kind, r.id, r) : null);
    await state.exclusive(async () => {
      for (const [i, r] of reply.grids.entries()) await applyGridReply(state, r, kept[i], tally, resendAll);
      for (const [i, r] of (reply.tasks || []).entries()) await applyTaskReply(state, r, keptTasks[i], tally, resendAll);
      for (const [i, [kind, r]] of docReplies.entries()) await applyDocReply(state, kind, r, keptDocs[i], tally, resendAll);
    });
    if (carrying || carryingDocs) {
      if (carrying) await recordCarried(state);
      // Receipts and other entries of further kinds, in the documents the server just sent again.
      if (carryingDocs) await state.exclusive(() => state.recordCarriedDocs(!tally.hub));
      carrying = carryingDocs = false;
      continue;
    }
    if (resendAll.size === 0 && tally.signed === signedBefore) break;
  }
  if (resendAll.size > 0) {
    throw new CallError(`the server still could not place the history of ${[...resendAll].join(", ")}; try again, or contact the office`);
  }
  await state.saveCarried(state.carried.filter((c) => !state.grids.has(c.grid)));
  if (!tally.hub) await state.saveDevice({ ...state.device, last_sync: Date.now() });
  state.changed();
  if (!tally.hub) reportStatus(state);
  return tally;
}

/** Tells the server which app this is and how many records the phone still holds unsent, for the devices page of
 * the office and the lead; a hint only, so a failure is ignored (the next sync reports again). */
function reportStatus(state) {
  const body = JSON.stringify({ app_version: `web ${APP_VERSION}`, unsent: state.pendingCount() });
  fetch("/api/v1/devices/status", {
    method: "POST", cache: "no-store", body,
    headers: { "content-type": "application/json", authorization: `Bearer ${state.device.token}` },
  }).catch(() => {});
}

/**
 * What the server's statements about a document are signed for: its grid code, `task/<id>` (sign.rs), or a
 * further kind's subject (kinds.js; `bulletin/<id>`).
 */
const subjectOf = (kind, id) => (kind === "task" ? `task/${id}` : kind === "grid" ? id : FURTHER_KINDS[kind].subject(id));

/**
 * What an answer for a grid or task brings for passing changes on (src/relay.rs): team-mates' signatures (from a
 * hub), and the server's signed statement of its heads when it checks out with the server's key and is newer
 * than the one held. `attested`: the heads of the newest statement, which the server is known to hold.
 */
async function keptFromReply(state, kind, id, r) {
  const record = state.docs(kind).get(id)?.record || {};
  const fields = {};
  if (r.signatures?.length) {
    fields.signatures = { ...record.signatures };
    for (const s of r.signatures) fields.signatures[bytesToHex(s.change)] = s.signature;
  }
  let attestation = record.attestation;
  if (r.attestation && !(attestation?.at >= r.attestation.at) && (await attestedHeads(state.device.server_key, subjectOf(kind, id), r.attestation))) {
    attestation = r.attestation;
    fields.attestation = attestation;
  }
  const attested = attestation ? attestation.heads.map(bytesToHex) : null;
  return { fields, attested };
}

async function applyGridReply(state, r, kept, tally, resendAll) {
  if (typeof r.grid !== "string" || !r.grid) throw new CallError("the server sent a reply without a grid code");
  tally.stored += r.stored || 0;
  // From the server its heads are confirmed; from a hub, only what the server attested.
  const heads = tally.hub ? kept.attested : (r.heads || []).map(bytesToHex);
  const extra = { ...kept.fields, ...(r.contacts != null ? { contacts: r.contacts } : {}) };
  switch (r.kind) {
    case "new":
      if (!r.snapshot) throw new CallError(`the server sent the new grid ${r.grid} without its document`);
      await state.putNew("grid", r.grid, r.snapshot, heads || [], extra);
      tally.newGrids.push(r.grid);
      return;
    case "resend_all":
      resendAll.add(`grid:${r.grid}`);
      return;
    case "synced":
    case "unassigned":
      if (!state.grids.has(r.grid)) throw new CallError(`the server answered for grid ${r.grid}, which this phone did not send`);
      tally.received += await state.applyServerChanges("grid", r.grid, r.changes || [], heads, extra);
      if (r.kind === "unassigned" && !tally.hub && !state.hasUnconfirmed("grid", r.grid)) {
        await state.drop("grid", r.grid);
        tally.removed.push(r.grid);
      }
      return;
    default:
      throw new CallError(`the server sent an unknown reply kind ${r.kind}; update the app`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function applyTaskReply(state, r, kept, tally, resendAll) {
  if (typeof r.task !== "string" || !UUID.test(r.task)) throw new CallError(`the server sent an unusable task id ${r.task}`);
  tally.stored += r.stored || 0;
  // From the server its heads are confirmed; from a hub, only what the server attested.
  const heads = tally.hub ? kept.attested : (r.heads || []).map(bytesToHex);
  if (r.kind === "closed" && tally.hub) {
    // A hub that no longer holds the task: the server's signed list of the task's changes must hold every change
    // this phone has, or the task stays until the server says so itself.
    const listed = await attestedHeads(state.device.server_key, subjectOf("task", r.task), r.attestation);
    if (listed && state.tasks.has(r.task) && state.heldOnly("task", r.task, listed)) await state.drop("task", r.task);
    return;
  }
  switch (r.kind) {
    case "new":
      if (!r.snapshot) throw new CallError(`the server sent the new task ${r.task} without its document`);
      await state.putNew("task", r.task, r.snapshot, heads || [], kept.fields);
      tally.newTasks += 1;
      // Signed for (签收) the moment the task is on the phone; the sign-for goes out in the next round.
      if (await state.signTask(r.task, "received")) tally.signed += 1;
      tally.signed += await state.recordCarriedTask(r.task);
      return;
    case "resend_all":
      resendAll.add(`task:${r.task}`);
      return;
    case "synced":
    case "closed":
      if (!state.tasks.has(r.task) && state.carriedTasks.some((c) => c.task === r.task)) {
        // Asked for by an empty push because carried-over records name it: the answer is its whole history.
        let doc = A.init();
        [doc] = A.applyChanges(doc, r.changes || []);
        await state.putNew("task", r.task, A.save(doc), heads || [], kept.fields);
        tally.signed += await state.recordCarriedTask(r.task);
        return;
      }
      if (!state.tasks.has(r.task)) throw new CallError(`the server answered for task ${r.task}, which this phone did not send`);
      tally.received += await state.applyServerChanges("task", r.task, r.changes || [], heads, kept.fields);
      // A closed task is deleted from the phone once everything it holds of it (its own records, and team-mates'
      // it relays) is on the server.
      if (r.kind === "closed" && state.heldOnly("task", r.task, state.tasks.get(r.task).record.confirmed)) {
        await state.drop("task", r.task);
      }
      return;
    default:
      throw new CallError(`the server sent an unknown task reply kind ${r.kind}; update the app`);
  }
}

/**
 * Applies the answer for one document of a further kind (client_core::docs::device_apply): `new` brings it whole
 * (merged with what the phone held of it), `synced` what the phone lacks, `resend_all` asks for its whole history
 * next round, `gone` says it was withdrawn or is no longer meant for this phone: it is deleted once every change
 * the phone holds of it is confirmed (its receipts are on the server), and until then it stays and is pushed again.
 * Answers for a document the phone does not hold, other than `new`, are not for it.
 */
async function applyDocReply(state, kind, r, kept, tally, resendAll) {
  tally.stored += r.stored || 0;
  // From the server its heads are confirmed; from a hub, only what the server attested.
  const heads = tally.hub ? kept?.attested : (r.heads || []).map(bytesToHex);
  const held = state.docs(kind).has(r.id);
  switch (r.answer) {
    case "resend_all":
      resendAll.add(`${kind}:${r.id}`);
      return;
    case "new":
      if (!r.snapshot) throw new CallError(`the server sent the new ${kind} ${r.id} without its document`);
      await state.putNew(kind, r.id, r.snapshot, heads || [], kept.fields);
      tally.newDocs += 1;
      return;
    case "synced":
    case "gone":
      if (!held) return;
      tally.received += await state.applyServerChanges(kind, r.id, r.changes || [], heads, kept.fields);
      if (r.answer === "gone" && state.heldOnly(kind, r.id, state.docs(kind).get(r.id).record.confirmed)) {
        await state.drop(kind, r.id);
        tally.goneDocs += 1;
      }
      return;
    default:
      throw new CallError(`the server sent an unknown answer ${r.answer} for ${kind} ${r.id}; update the app`);
  }
}

/**
 * Records carried-over found places, visits and corrections again under this enrolment (same ids, this
 * device), in grids now on the phone, in the order they were set aside. One already in the document (it reached
 * the server under the earlier enrolment, or a crash came between this and forgetting the list) is skipped.
 */
async function recordCarried(state) {
  await state.exclusive(async () => {
    const device = state.device.device_id;
    // A record dated after now was recorded while the phone's clock was wrong (and the server refused it): it is
    // dated now, as src/field.rs does.
    const now = Date.now();
    for (const { grid, place, visit, correction } of state.carried) {
      const doc = state.grids.get(grid)?.doc;
      if (!doc) continue; // the grid is no longer the team's
      if (place && !doc.places?.[place.id]) {
        await state.writeFoundPlace(grid, { ...place, device, added_at: Math.min(place.added_at, now) });
      }
      if (visit && !doc.visits?.[visit.id]) await state.writeVisit(grid, { ...visit, device, at: Math.min(visit.at, now) });
      if (correction && !doc.corrections?.[correction.id]) {
        await state.writeCorrection(grid, { ...correction, device, at: Math.min(correction.at, now) });
      }
    }
  });
}
