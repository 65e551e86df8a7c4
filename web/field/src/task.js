// One urgent task's automerge document, as client-core's TaskDoc writes and reads it (client-core/src/task_doc.rs):
//   ROOT { schema, task: {id, fraud_type, priority, created_at, deadline, instructions, target_label, place_id?,
//                         grid?, target_address?, target_phone?, follow_up_at?, follow_up_comment?},
//          signs:    {<uuid v7>: {kind, volunteer, device, at}},
//          outcomes: {<uuid v7>: {volunteer, device, at, method, reached, dissuaded, money_lost, amount_fen?,
//                                 feedback?, lat?, lon?}} }
// Devices only add entries to `signs` (the task "received" on the phone, "opened" by the volunteer) and
// `outcomes`, with these fields and types; the server checks them like a visit's.
import { A } from "./grid.js";

const text = (v) => (v == null ? undefined : String(v));
const ms = (v) => (v instanceof Date ? v.getTime() : v == null ? undefined : Number(v));

export function readTask(doc) {
  const js = A.toJS(doc);
  const t = js.task || {};
  const info = {
    id: text(t.id), fraud_type: text(t.fraud_type), priority: text(t.priority), created_at: ms(t.created_at),
    deadline: ms(t.deadline), instructions: text(t.instructions) ?? "", target_label: text(t.target_label) ?? "",
    place_id: text(t.place_id), grid: text(t.grid), target_address: text(t.target_address),
    target_phone: text(t.target_phone), follow_up_at: ms(t.follow_up_at), follow_up_comment: text(t.follow_up_comment),
  };
  const signs = Object.entries(js.signs || {}).map(([id, s]) => ({
    id, kind: text(s.kind), volunteer: text(s.volunteer), device: text(s.device), at: ms(s.at),
  }));
  const outcomes = Object.entries(js.outcomes || {}).map(([id, o]) => ({
    id, volunteer: text(o.volunteer), device: text(o.device), at: ms(o.at), method: text(o.method),
    reached: o.reached === true, dissuaded: o.dissuaded === true, money_lost: o.money_lost === true,
    amount_fen: o.amount_fen == null ? undefined : Number(o.amount_fen), feedback: text(o.feedback),
    lat: typeof o.lat === "number" ? o.lat : undefined, lon: typeof o.lon === "number" ? o.lon : undefined,
  })).sort((a, b) => b.at - a.at);
  return { info, signs, outcomes };
}

/**
 * Where the task stands on this phone (as `doorstep field tasks` says): `done` once an outcome reached the person
 * (after the office's follow-up request, if any), `attempted` with outcomes that did not, `opened` once opened
 * here, else `new`.
 */
export function taskState(view, device) {
  const since = view.info.follow_up_at ?? 0;
  const current = view.outcomes.filter((o) => o.at >= since);
  if (current.some((o) => o.reached)) return "done";
  if (current.length) return "attempted";
  if (view.signs.some((s) => s.kind === "opened" && s.device === device)) return "opened";
  return "new";
}

/** The rules an outcome follows (client_core::task_model::TaskOutcome::check); `null` when it is consistent. */
export function outcomeProblem(o) {
  if (o.dissuaded && !o.reached) return "notReachedDissuaded";
  if (o.money_lost && !o.reached) return "notReachedMoney";
  if (o.amount_fen != null && !o.money_lost) return "amountWithoutLoss";
  return null;
}

/** Parses yuan such as `5000` or `1234.5` into fen, exactly (client_core::task_model::parse_yuan). */
export function parseYuan(s) {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(s.trim());
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

export const yuanText = (fen) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;

function addEntry(doc, map, id, fields, at) {
  if (doc[map]?.[id]) throw new Error(`${map} entry ${id} already exists`);
  const next = A.change(doc, { time: at }, (d) => {
    d[map][id] = {};
    Object.assign(d[map][id], fields);
  });
  const change = A.getLastLocalChange(next);
  if (!change) throw new Error("recording the entry produced no change");
  return { doc: next, change };
}

/** A sign-for entry ("received" or "opened") as one change. */
export function addSign(doc, sign) {
  return addEntry(doc, "signs", sign.id, {
    kind: new A.ImmutableString(sign.kind),
    volunteer: new A.ImmutableString(sign.volunteer),
    device: new A.ImmutableString(sign.device),
    at: new Date(sign.at),
  }, sign.at);
}

/** An outcome as one change. */
export function addOutcome(doc, o) {
  const fields = {
    volunteer: new A.ImmutableString(o.volunteer),
    device: new A.ImmutableString(o.device),
    at: new Date(o.at),
    method: new A.ImmutableString(o.method),
    reached: o.reached,
    dissuaded: o.dissuaded,
    money_lost: o.money_lost,
  };
  if (o.amount_fen != null) fields.amount_fen = new A.Int(o.amount_fen);
  if (o.feedback) fields.feedback = new A.ImmutableString(o.feedback);
  if (o.lat != null && o.lon != null) {
    fields.lat = new A.Float64(o.lat);
    fields.lon = new A.Float64(o.lon);
  }
  return addEntry(doc, "outcomes", o.id, fields, o.at);
}
