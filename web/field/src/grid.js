// One grid's automerge document, as client-core's GridDoc writes and reads it (client-core/src/doc.rs):
//   ROOT { schema, grid: {code, name, village_code, village_name, village_kind, town_code, town_name},
//          places: {<id>: {kind, label, address?, lat?, lon?}},   (found in the field: `F-<uuid>`, see found.rs)
//          visits: {<uuid v7>: {place, volunteer, device, at, outcome, handbook, briefed, poster, banner,
//                               led_playing, note?, lat?, lon?}} }
// The server accepts from a device only changes that add one visit object with exactly these fields and types:
// texts are scalar strings (automerge's ImmutableString, not collaborative text), `at` a timestamp, the five
// deliveries booleans, lat/lon 64-bit floats.
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

/** A visit as stored in the document, read into plain values. */
function readVisit(id, v) {
  return {
    id,
    place: text(v.place),
    volunteer: text(v.volunteer),
    device: text(v.device),
    at: v.at instanceof Date ? v.at.getTime() : Number(v.at),
    outcome: text(v.outcome),
    handbook: v.handbook === true,
    briefed: v.briefed === true,
    poster: v.poster === true,
    banner: v.banner === true,
    led_playing: v.led_playing === true,
    note: text(v.note),
    lat: typeof v.lat === "number" ? v.lat : undefined,
    lon: typeof v.lon === "number" ? v.lon : undefined,
  };
}

/** The grid's description, places and visits as plain values. */
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
    // Places found in the field (`F-` keys) carry the office's review: confirmed, rejected or merged.
    review: text(p.review),
    merged_into: text(p.merged_into),
  }));
  const visits = Object.entries(js.visits || {}).map(([id, v]) => readVisit(id, v));
  return { info, places, visits };
}

/** Records a visit as one change by the document's actor; returns the new document and the change's bytes. */
export function addVisit(doc, visit) {
  if (doc.visits?.[visit.id]) throw new Error(`visit ${visit.id} already exists`);
  const next = A.change(doc, { time: visit.at }, (d) => {
    d.visits[visit.id] = {};
    const v = d.visits[visit.id];
    v.place = new A.ImmutableString(visit.place);
    v.volunteer = new A.ImmutableString(visit.volunteer);
    v.device = new A.ImmutableString(visit.device);
    v.at = new Date(visit.at);
    v.outcome = new A.ImmutableString(visit.outcome);
    for (const f of ["handbook", "briefed", "poster", "banner", "led_playing"]) v[f] = visit[f] === true;
    if (visit.note) v.note = new A.ImmutableString(visit.note);
    if (visit.lat != null && visit.lon != null) {
      v.lat = new A.Float64(visit.lat);
      v.lon = new A.Float64(visit.lon);
    }
  });
  const change = A.getLastLocalChange(next);
  if (!change) throw new Error("recording the visit produced no change");
  return { doc: next, change };
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
  const atServer = confirmed.length ? A.view(doc, confirmed) : null;
  return readGrid(doc).visits.filter((v) => v.device === device && !atServer?.visits?.[v.id]);
}
