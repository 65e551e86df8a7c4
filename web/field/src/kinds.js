// The documents of further kinds the phone holds (docs/sync-protocol.md, "Documents of further kinds"): every
// kind after grids and tasks travels under the sync request's `docs` and is stored, synced, confirmed and deleted
// by one generic path (store.js, state.js, sync.js). A new kind is one entry here: the subject the server signs
// its heads under (client-core's `DocKind::subject`), how its document reads into plain values, and, for a kind
// devices write to, what of a device's own the server has not confirmed (`unconfirmed`) and how to write such an
// entry again under a new enrolment (`rewrite`: the new document and change, or null when it is there already).
import { readBulletin, addReceipt, unconfirmedReceipts } from "./bulletin.js";

export const FURTHER_KINDS = {
  bulletin: {
    subject: (id) => `bulletin/${id}`,
    read: readBulletin,
    unconfirmed: unconfirmedReceipts,
    rewrite: (doc, receipt, device) => (doc.receipts?.[receipt.key] ? null : addReceipt(doc, { ...receipt, device })),
  },
};

export const furtherKinds = Object.keys(FURTHER_KINDS);

/** A further kind's document id names a key on the phone and a file on hubs (client_core::docs::check_id). */
export const validDocId = (id) => typeof id === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(id);
