// One bulletin's automerge document, as client-core's BulletinDoc writes and reads it (client-core/src/bulletin/):
//   ROOT { notice:   {title, body, kind, fraud_type, priority, edition, published_at, expires_at (absent: none),
//                     attachments: [{sha256, name, type, size}]}        (the server's alone, replaced at a correction)
//          receipts: {<uuid>: {volunteer, device, read_at, edition}} }  (one entry per change of a device)
// A device writes nothing but one new receipt per change (client-core's `BulletinDoc::check_ops`): texts as scalar
// strings, `read_at` a timestamp (ms), `edition` an integer. The server and hubs refuse the whole sync otherwise.
import { A } from "./grid.js";

const text = (v) => (v == null ? "" : String(v));
const int = (v) => (v instanceof Date ? v.getTime() : v == null ? 0 : Number(v));
const SHA256 = /^[0-9a-f]{64}$/;

/** The notice and receipts as plain values (`notice` null while the document has none). */
export function readBulletin(doc) {
  const js = A.toJS(doc);
  const n = js.notice;
  const notice = n ? {
    title: text(n.title), body: text(n.body), kind: text(n.kind), fraud_type: text(n.fraud_type),
    priority: text(n.priority) || "normal", edition: int(n.edition), published_at: int(n.published_at),
    expires_at: int(n.expires_at),
    // An attachment whose name cannot be a stored file's key is left out (the server never writes one).
    attachments: (Array.isArray(n.attachments) ? n.attachments : []).map((a) => ({
      sha256: text(a?.sha256), name: text(a?.name), type: text(a?.type), size: int(a?.size),
    })).filter((a) => SHA256.test(a.sha256)),
  } : null;
  const receipts = Object.entries(js.receipts || {}).map(([key, r]) => ({
    key, volunteer: text(r?.volunteer), device: text(r?.device), read_at: int(r?.read_at), edition: int(r?.edition),
  }));
  return { notice, receipts };
}

/** A receipt (已阅) as one change: `key` a new UUID, `edition` the edition read, `read_at` when (ms). */
export function addReceipt(doc, r) {
  if (!doc.receipts) throw new Error("this bulletin has no receipts map yet; sync first");
  if (doc.receipts[r.key]) throw new Error(`receipt ${r.key} already exists`);
  const next = A.change(doc, { time: r.read_at }, (d) => {
    d.receipts[r.key] = {};
    const o = d.receipts[r.key];
    o.volunteer = new A.ImmutableString(r.volunteer);
    o.device = new A.ImmutableString(r.device);
    o.read_at = new Date(r.read_at);
    o.edition = new A.Int(r.edition);
  });
  const change = A.getLastLocalChange(next);
  if (!change) throw new Error("recording the receipt produced no change");
  return { doc: next, change };
}

/**
 * Receipts `device` wrote that are not part of the document as it stood at `confirmed` (hex heads): carried over
 * to a new enrolment, which writes them again under its own actor.
 */
export function unconfirmedReceipts(doc, confirmed, device) {
  const atServer = confirmed.length ? A.view(doc, confirmed) : null;
  return readBulletin(doc).receipts.filter((r) => r.device === device && !atServer?.receipts?.[r.key]);
}

/** Whether `volunteer` read the bulletin's current edition (a correction is unread again until read). */
export const readBy = (view, volunteer) =>
  !!view.notice && view.receipts.some((r) => r.volunteer === volunteer && r.edition >= view.notice.edition);

/** Shown on the phone: it has a notice and has not expired (the server withdraws it at its next sync anyway). */
export const current = (view, now = Date.now()) => !!view.notice && !(view.notice.expires_at > 0 && view.notice.expires_at <= now);

/** The receipt (已阅) this volunteer gave for the current edition, if any: the latest. */
export const receiptOf = (view, volunteer) =>
  view.receipts.filter((r) => r.volunteer === volunteer && r.edition >= (view.notice?.edition ?? 0)).sort((a, b) => b.read_at - a.read_at)[0] || null;
