// One grid's automerge document, as client-core's GridDoc writes and reads it (client-core/src/doc.rs, found.rs):
//   ROOT { schema, grid: {code, name, village_code, village_name, village_kind, town_code, town_name},
//          places: {<id>: {kind, label, address?, lat?, lon?}},
//                  found in the field: {F-<uuid v7>: {…, added_by, device, added_at, review?, merged_into?}}
//          visits: {<uuid v7>: {place, volunteer, device, at, outcome, <delivery id>: bool…, note?, lat?, lon?,
//                               photos?, photos_rejected?}},
//          corrections: {<uuid v7>: {place, label?, address?, volunteer, device, at, review?}} }
// The server accepts from a device only changes that add one new visit, found place or correction object with
// exactly these fields and types: texts are scalar strings (automerge's ImmutableString, not collaborative text),
// `at`/`added_at` timestamps, deliveries booleans, lat/lon 64-bit floats; `review` and `merged_into` are the
// server's alone. Every visit records the rules table's `always_recorded` deliveries, delivered or not (a reader
// refuses a visit without them), and any further delivery only when delivered; what it delivered is whichever of
// its fields are `true`. Read into plain values, a visit keeps those same `true` fields. `photos` (only on a visit
// with photos) is a scalar string holding a JSON list of references `{sha256, size, type, taken_at}` (at most 8, no
// hash twice; client_core::grid::model::write_photo_refs); `photos_rejected`, the office's rejections
// `{sha256, reason, at}`, is the server's alone. Read into plain values, `photos` is that list, each photo with
// `rejected: {reason, at}` when the office rejected it.
import * as A from "@automerge/automerge/slim";

export { A };

const text = (v) => (v == null ? undefined : String(v));

export const hexToBytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (b) => parseInt(b, 16));
export const bytesToHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Loads a grid from its snapshot and logged changes, writing as `actor` (hex) from then on. */
export function loadDoc(snapshot, changes, actor) {
  let doc = A.load(snapshot, { actor });
  if (changes.length) doc = A.loadIncremental(doc, concat(changes));
  return doc;
}

/** What a visit (as stored, or in plain values) delivered: the ids of its fields that are `true`. */
export const deliveriesOf = (visit) => Object.keys(visit).filter((k) => visit[k] === true);

/** Parses a JSON list kept in a visit's string field; an unreadable one reads as none. */
function jsonList(v) {
  if (v == null) return [];
  try {
    const list = JSON.parse(String(v));
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** A visit's photo references, each marked `rejected` when the office rejected it. */
function readPhotos(v) {
  const rejections = new Map(jsonList(v.photos_rejected).map((r) => [r.sha256, { reason: String(r.reason ?? ""), at: Date.parse(r.at) }]));
  return jsonList(v.photos).map((p) => ({
    sha256: String(p.sha256), size: Number(p.size), type: String(p.type), taken_at: String(p.taken_at),
    ...(rejections.has(p.sha256) ? { rejected: rejections.get(p.sha256) } : {}),
  }));
}

/** The `photos` field as a visit stores it: the references only, in client-core's order of keys. */
export const writePhotoRefs = (photos) =>
  JSON.stringify(photos.map(({ sha256, size, type, taken_at }) => ({ sha256, size, type, taken_at })));

/** A visit as stored in the document, read into plain values. */
function readVisit(id, v) {
  const photos = readPhotos(v);
  return {
    id,
    place: text(v.place),
    volunteer: text(v.volunteer),
    device: text(v.device),
    at: v.at instanceof Date ? v.at.getTime() : Number(v.at),
    outcome: text(v.outcome),
    ...Object.fromEntries(deliveriesOf(v).map((d) => [d, true])),
    note: text(v.note),
    lat: typeof v.lat === "number" ? v.lat : undefined,
    lon: typeof v.lon === "number" ? v.lon : undefined,
    ...(photos.length ? { photos } : {}),
  };
}

const millis = (v) => (v instanceof Date ? v.getTime() : v == null ? undefined : Number(v));

/** The grid's description, places, visits and corrections as plain values. */
export function readGrid(doc) {
  const js = A.toJS(doc);
  const g = js.grid || {};
  const info = Object.fromEntries(Object.entries(g).map(([k, v]) => [k, text(v)]));
  const places = Object.entries(js.places || {}).map(([id, p]) => ({
    id,
    kind: text(p.kind),
    label: text(p.label) ?? "",
    address: text(p.address),
    lat: p.lat,
    lon: p.lon,
    // Places found in the field (`F-` keys): who found them on which device, and the office's review
    // (confirmed, rejected or merged), none while it awaits one.
    added_by: text(p.added_by),
    device: text(p.device),
    added_at: millis(p.added_at),
    review: text(p.review),
    merged_into: text(p.merged_into),
  }));
  const visits = Object.entries(js.visits || {}).map(([id, v]) => readVisit(id, v));
  const corrections = Object.entries(js.corrections || {}).map(([id, c]) => ({
    id,
    place: text(c.place),
    label: text(c.label),
    address: text(c.address),
    volunteer: text(c.volunteer),
    device: text(c.device),
    at: millis(c.at),
    review: text(c.review),
  }));
  return { info, places, visits, corrections };
}

/** Runs `write` as one change by the document's actor at `time` (ms); returns the new document and the change. */
function commitOne(doc, time, write) {
  const next = A.change(doc, { time }, write);
  const change = A.getLastLocalChange(next);
  if (!change) throw new Error("the write produced no change");
  return { doc: next, change };
}

const scalar = (v) => new A.ImmutableString(v);

/** Sets lat/lon as 64-bit floats when both are given. */
function putGps(obj, { lat, lon }) {
  if (lat != null && lon != null) {
    obj.lat = new A.Float64(lat);
    obj.lon = new A.Float64(lon);
  }
}

/** A place found in the field as one change (GridDoc::add_found_place); `found.id` is `F-<uuid v7>`. */
export function addFoundPlace(doc, found) {
  if (!/^F-[0-9a-f-]{36}$/.test(found.id)) throw new Error(`${found.id} is not a key for a found place`);
  if (doc.places?.[found.id]) throw new Error(`place ${found.id} already exists`);
  return commitOne(doc, found.added_at, (d) => {
    d.places[found.id] = {};
    const p = d.places[found.id];
    p.kind = scalar(found.kind);
    p.label = scalar(found.label);
    if (found.address) p.address = scalar(found.address);
    putGps(p, found);
    p.added_by = scalar(found.added_by);
    p.device = scalar(found.device);
    p.added_at = new Date(found.added_at);
  });
}

/**
 * A proposed correction of a place's label and/or address (GridDoc::add_correction). A grid created before
 * corrections existed first takes the constant change that creates their map (`upgrade`, bytes), exactly as the
 * CLI applies it; returns the new document and every change to store.
 */
export function addCorrection(doc, c, upgrade) {
  const changes = [];
  if (!doc.corrections) {
    [doc] = A.applyChanges(doc, [upgrade]);
    if (!doc.corrections) throw new Error("the corrections upgrade did not apply to this grid");
    changes.push(upgrade);
  }
  if (doc.corrections[c.id]) throw new Error(`correction ${c.id} already exists`);
  const { doc: next, change } = commitOne(doc, c.at, (d) => {
    d.corrections[c.id] = {};
    const o = d.corrections[c.id];
    o.place = scalar(c.place);
    if (c.label) o.label = scalar(c.label);
    if (c.address) o.address = scalar(c.address);
    o.volunteer = scalar(c.volunteer);
    o.device = scalar(c.device);
    o.at = new Date(c.at);
  });
  return { doc: next, changes: [...changes, change] };
}

/**
 * Records a visit as one change by the document's actor: its deliveries are its `true` fields, and each of
 * `alwaysRecorded` (the rules table's) is written delivered or not. Returns the new document and the change.
 */
export function addVisit(doc, visit, alwaysRecorded) {
  if (doc.visits?.[visit.id]) throw new Error(`visit ${visit.id} already exists`);
  return commitOne(doc, visit.at, (d) => {
    d.visits[visit.id] = {};
    const v = d.visits[visit.id];
    v.place = scalar(visit.place);
    v.volunteer = scalar(visit.volunteer);
    v.device = scalar(visit.device);
    v.at = new Date(visit.at);
    v.outcome = scalar(visit.outcome);
    for (const d of alwaysRecorded) v[d] = visit[d] === true;
    for (const d of deliveriesOf(visit)) v[d] = true;
    if (visit.note) v.note = scalar(visit.note);
    putGps(v, visit);
    if (visit.photos?.length) v.photos = scalar(writePhotoRefs(visit.photos));
  });
}

/** Heads as the wire carries them (32-byte hashes). */
export const headsBytes = (doc) => A.getHeads(doc).map(hexToBytes);

/** Changes after `confirmed` (hex heads; all of them when empty). */
export const changesSince = (doc, confirmed) => A.getChangesSince(doc, confirmed);

/** How many changes by `actor` the server has not confirmed. */
export function unconfirmedBy(doc, confirmed, actor) {
  return A.getChangesMetaSince(doc, confirmed).filter((m) => m.actor === actor).length;
}

/** Visits by `device` that are not part of the document as it stood at `confirmed`. */
export function unconfirmedVisits(doc, confirmed, device) {
  return unconfirmedRecords(doc, confirmed, device).filter((r) => r.visit).map((r) => r.visit);
}

/**
 * Found places, visits and corrections (in that order, so that each can be written again after what it names)
 * by `device` that are not part of the document as it stood at `confirmed`, as `{ place }`, `{ visit }` and
 * `{ correction }`.
 */
export function unconfirmedRecords(doc, confirmed, device) {
  const atServer = confirmed.length ? A.view(doc, confirmed) : null;
  const { places, visits, corrections } = readGrid(doc);
  const fresh = (list, map) => list.filter((r) => r.device === device && !atServer?.[map]?.[r.id]);
  return [
    ...fresh(places, "places").map((place) => ({ place })),
    ...fresh(visits, "visits").map((visit) => ({ visit })),
    ...fresh(corrections, "corrections").map((correction) => ({ correction })),
  ];
}
