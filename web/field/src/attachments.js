// Attachments of the bulletins the phone holds, downloaded in the background after each sync from whichever origin
// served the app (the server, or a team hub that caches them): `GET /api/v1/blobs/{sha256}` with the device token.
// Each is kept in IndexedDB by its SHA-256 (store.js `blobs`); a download cut short keeps the part received and
// resumes with `Range: bytes=N-` next time. A file is used only once its SHA-256 checks (WebCrypto, on HTTPS and
// localhost); a mismatch discards it and the next sync downloads it again. Files no bulletin names any longer go.
import { bytesToHex } from "./grid.js";

/** What is received between two writes of the part so far, so a killed page loses at most this much. */
const FLUSH_EVERY = 512 * 1024;

let running = null;

/** Every attachment the phone's current bulletins name, by SHA-256. */
function wanted(state) {
  const out = new Map();
  for (const v of state.bulletins()) for (const a of v.notice.attachments) out.set(a.sha256, a);
  return out;
}

/**
 * Downloads what is missing, one file at a time; resolves with how many files became available. One run at a
 * time: a run asked for while one goes on joins it.
 */
export function downloadAttachments(state) {
  if (!running) running = run(state).finally(() => { running = null; });
  return running;
}

async function run(state) {
  if (!state.device || !globalThis.crypto?.subtle) return 0;
  const files = wanted(state);
  for (const sha256 of await state.store.blobKeys()) {
    if (!files.has(sha256)) await state.store.deleteBlob(sha256);
  }
  let stored = 0;
  for (const attachment of files.values()) {
    try {
      if (await fetchOne(state, attachment)) stored += 1;
    } catch (e) {
      if (e.unreachable) break; // offline: the next sync tries again
    }
  }
  return stored;
}

class Unreachable extends Error {
  constructor(message) {
    super(message);
    this.unreachable = true;
  }
}

/** Downloads one attachment (or the rest of it); returns true once it is stored verified. */
async function fetchOne(state, { sha256, size, type }) {
  const held = await state.store.getBlob(sha256);
  if (held?.complete) return false;
  let part = held?.blob || new Blob([]);
  if (part.size < size) {
    const headers = { authorization: `Bearer ${state.device.token}` };
    if (part.size > 0) headers.range = `bytes=${part.size}-`;
    let resp;
    try {
      resp = await fetch(`/api/v1/blobs/${sha256}`, { headers, cache: "no-store" });
    } catch (e) {
      throw new Unreachable(String(e?.message || e));
    }
    if (resp.status === 200) part = new Blob([]); // the whole file: what was kept is not needed
    else if (resp.status === 416) {
      // The part kept cannot be continued: start over next time.
      await state.store.deleteBlob(sha256);
      return false;
    }
    else if (resp.status !== 206 || !(resp.headers.get("content-range") || "").startsWith(`bytes ${part.size}-`)) return false;
    part = await receive(state, sha256, part, resp);
  }
  if (part.size < size) return false;
  const digest = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", await part.arrayBuffer())));
  if (part.size !== size || digest !== sha256) {
    // Not the file the bulletin names: never used; downloaded again next time.
    await state.store.deleteBlob(sha256);
    return false;
  }
  await state.store.putBlob({ sha256, blob: new Blob([part], { type }), complete: true });
  return true;
}

/**
 * Reads a response's body after `part`, writing the part received so far every FLUSH_EVERY bytes and when the
 * connection breaks (so the next try resumes from there). Resolves with everything received.
 */
async function receive(state, sha256, part, resp) {
  const reader = resp.body.getReader();
  let chunks = [];
  let unsaved = 0;
  const keep = async () => {
    part = new Blob([part, ...chunks]);
    chunks = [];
    unsaved = 0;
    await state.store.putBlob({ sha256, blob: part, complete: false });
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      unsaved += value.length;
      if (unsaved >= FLUSH_EVERY) await keep();
    }
  } catch (e) {
    if (chunks.length) await keep();
    throw new Unreachable(String(e?.message || e));
  }
  if (chunks.length) await keep();
  return part;
}

/** A stored, verified attachment as a Blob, or null while it is not (fully) downloaded. */
export async function storedAttachment(state, sha256) {
  const held = await state.store.getBlob(sha256);
  return held?.complete ? held.blob : null;
}

/** A Blob as a `data:` URL, which the page's content security policy lets images show. */
export function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
