// Photos taken at a visit: made on the phone from the camera's picture (turned upright, shrunk to a long side of
// 1,600 px, encoded again as JPEG, which leaves every piece of metadata behind, GPS included), named by the SHA-256
// of those bytes, kept in IndexedDB with their visit (store.js `photos`, written in the visit's own transaction),
// and uploaded in the background after each sync to whichever origin served the app (the server, or a team hub):
// `POST /api/v1/photos/missing`, then per photo `GET /api/v1/photos/{sha256}/upload` (how much the server holds)
// and `PUT /api/v1/photos/{sha256}` from there, so a connection lost mid-photo resumes where the server stopped.
// Once the server says a photo is complete its bytes leave the phone; a small thumbnail stays.
import { bytesToHex } from "./grid.js";

/** The long side a photo is shrunk to: enough to read a poster, typically under 250 KB as JPEG. */
export const MAX_SIDE = 1600;
/** JPEG quality of a photo, and the lower one tried when a very busy picture comes out too big. */
const QUALITY = 0.8;
const FALLBACK_QUALITY = 0.6;
/** The thumbnail kept on the phone for good (the visit's history shows it). */
const THUMB_SIDE = 240;
/** client_core::grid::model::MAX_PHOTOS_PER_VISIT and MAX_PHOTO_BYTES. */
export const MAX_PHOTOS_PER_VISIT = 8;
export const MAX_PHOTO_BYTES = 4 * 1024 * 1024;
/** Photo hashes asked about in one `missing` request (the server takes up to 1,000). */
const ASK_AT_ONCE = 500;
/** Tries for one photo within a run: a 409 (another request, or an offset the server does not hold) asks again. */
const TRIES = 4;

/** Why a photo could not be made from a picture; `code` names the text for the screen. */
export class PhotoError extends Error {
  constructor(code, detail = "") {
    super(detail || code);
    this.code = code;
  }
}

/** Draws `bitmap` at `width`×`height` and encodes it as JPEG. */
async function encode(bitmap, width, height, quality) {
  if (typeof OffscreenCanvas !== "undefined") {
    const canvas = new OffscreenCanvas(width, height);
    draw(canvas.getContext("2d"), bitmap, width, height);
    return canvas.convertToBlob({ type: "image/jpeg", quality });
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  draw(canvas.getContext("2d"), bitmap, width, height);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the picture could not be encoded"))), "image/jpeg", quality));
}

function draw(ctx, bitmap, width, height) {
  // A white ground for pictures with transparency (JPEG has none).
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, width, height);
}

/** `width`×`height` scaled so that the long side is at most `side`. */
function fit(width, height, side) {
  const scale = Math.min(1, side / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

/**
 * Makes the photo a visit keeps from a picture (a File from the camera): upright as the camera held it, at most
 * MAX_SIDE px on its long side, JPEG with no metadata, its SHA-256, size, capture time (the file's time, else now)
 * and a thumbnail. Throws PhotoError when the picture cannot be read or stays too big.
 */
export async function makePhoto(file) {
  if (!globalThis.crypto?.subtle) throw new PhotoError("photoNeedsHttps");
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (e) {
    throw new PhotoError("photoUnreadable", String(e?.message || e));
  }
  try {
    const [width, height] = fit(bitmap.width, bitmap.height, MAX_SIDE);
    let blob = await encode(bitmap, width, height, QUALITY);
    if (blob.size > MAX_PHOTO_BYTES) blob = await encode(bitmap, width, height, FALLBACK_QUALITY);
    if (blob.size > MAX_PHOTO_BYTES) throw new PhotoError("photoTooBig");
    const thumb = await encode(bitmap, ...fit(bitmap.width, bitmap.height, THUMB_SIDE), 0.7);
    const sha256 = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer())));
    const taken = file.lastModified > 0 ? file.lastModified : Date.now();
    return { sha256, size: blob.size, type: "image/jpeg", taken_at: new Date(taken).toISOString(), width, height, blob, thumb };
  } finally {
    bitmap.close();
  }
}

/** The record a photo is kept as, with the visit that references it. */
export const photoRecord = (photo, grid, visit) => ({
  sha256: photo.sha256, grid, visit, size: photo.size, type: photo.type, taken_at: photo.taken_at,
  width: photo.width, height: photo.height, thumb: photo.thumb, blob: photo.blob, uploaded: false,
});

class Unreachable extends Error {}

/** Stops a run without marking the photo: the server asks to wait (the day's limit, or it is busy). */
class Later extends Error {}

let running = null;

/**
 * Uploads the photos the server lacks, one at a time; resolves with how many arrived whole. One run at a time: a
 * run asked for while one goes on joins it. A photo whose visit the server does not hold yet waits for a later run.
 */
export function uploadPhotos(state) {
  if (!running) running = run(state).finally(() => { running = null; });
  return running;
}

async function run(state) {
  if (!state.device) return 0;
  const waiting = state.photosToUpload();
  if (!waiting.length) return 0;
  let uploaded = 0;
  try {
    const missing = new Set();
    for (let i = 0; i < waiting.length; i += ASK_AT_ONCE) {
      const photos = waiting.slice(i, i + ASK_AT_ONCE).map((p) => p.sha256);
      const answer = await call(state, "POST", "/api/v1/photos/missing", JSON.stringify({ photos }), { "content-type": "application/json" });
      if (!answer.ok) return 0;
      for (const sha of (await answer.json()).missing || []) missing.add(sha);
    }
    const pending = new Map(); // grid → ids of its visits the server has not confirmed
    const unsynced = ({ grid, visit }) => {
      if (!pending.has(grid)) pending.set(grid, state.pendingIds(grid));
      return pending.get(grid).has(visit);
    };
    for (const photo of waiting) {
      // Not missing: the server holds it already (asked below, to hear it say so), or no visit it holds names it
      // yet, which is sure while this phone has not had the visit confirmed.
      if (!missing.has(photo.sha256) && unsynced(photo)) continue;
      if (await uploadOne(state, photo)) uploaded += 1;
    }
  } catch (e) {
    if (!(e instanceof Unreachable || e instanceof Later)) throw e;
  }
  return uploaded;
}

async function call(state, method, path, body, headers = {}) {
  try {
    return await fetch(path, { method, body, cache: "no-store", headers: { authorization: `Bearer ${state.device.token}`, ...headers } });
  } catch (e) {
    throw new Unreachable(String(e?.message || e));
  }
}

/** The server's words for a refusal, or its status line. */
async function refusal(resp) {
  try {
    const body = await resp.json();
    return { code: body?.error?.code || "", message: body?.error?.message || `HTTP ${resp.status}` };
  } catch {
    return { code: "", message: `HTTP ${resp.status}` };
  }
}

/**
 * Uploads one photo from the offset the server holds (or learns that it is complete); true once the server holds
 * it whole. A refusal for its content is kept on the photo and not tried again.
 */
async function uploadOne(state, photo) {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    const asked = await call(state, "GET", `/api/v1/photos/${photo.sha256}/upload`);
    if (asked.status === 404) return false; // its visit is not at the server yet
    if (!asked.ok) throw new Later();
    const at = await asked.json();
    if (at.complete) {
      await state.photoUploaded(photo.sha256);
      return true;
    }
    const offset = Math.min(Number(at.offset) || 0, photo.size);
    // Sent as bytes read into memory (a photo is a few hundred KB): a plain body of known length.
    const body = new Uint8Array(await photo.blob.slice(offset).arrayBuffer());
    const sent = await call(state, "PUT", `/api/v1/photos/${photo.sha256}`, body, {
      "content-type": "application/octet-stream", "upload-offset": String(offset), "upload-length": String(photo.size),
    });
    if (sent.ok) {
      if ((await sent.json()).complete) {
        await state.photoUploaded(photo.sha256);
        return true;
      }
      continue; // part of it arrived: ask where to go on from
    }
    if (sent.status === 409) continue; // another request is sending it, or the offset moved: ask again
    if (sent.status === 404) return false;
    const why = await refusal(sent);
    if (sent.status === 422 && why.code !== "photo_limit") {
      // Refused for what it is (not a picture the server can read, or not the bytes the visit names): shown on the
      // visit, kept on the phone, and not sent again and again.
      await state.photoRefused(photo.sha256, why.message);
      return false;
    }
    throw new Later(why.message);
  }
  return false;
}
