// Proof of origin, as client-core/src/sign.rs does it: the phone's Ed25519 key pair, its signature over each change
// it writes (so that a team hub can relay them and the server can tell who wrote them), and the check of the
// server's signed statement of the heads it holds. The browser's own WebCrypto does the work: the private key is
// created non-extractable and kept in IndexedDB as a CryptoKey, so no script can read it out (see
// docs/security.md). WebCrypto exists only on HTTPS pages (and localhost), like the service worker.
import { bytesToHex, hexToBytes } from "./grid.js";

const ED25519 = { name: "Ed25519" };
// Domain tags keep a signature over a change from ever being read as one over heads (sign.rs).
const CHANGE_TAG = new TextEncoder().encode("doorstep-change-v1\0");
const HEADS_TAG = new TextEncoder().encode("doorstep-heads-v1\0");

/** Why the phone cannot sign: said at enrolment, in words the volunteer can act on. */
export class SigningUnavailable extends Error {}

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A new key pair: the private half as a non-extractable CryptoKey, the public half as hex (32 bytes). */
export async function generateKeyPair() {
  if (!globalThis.crypto?.subtle) throw new SigningUnavailable("https");
  let pair;
  try {
    pair = await crypto.subtle.generateKey(ED25519, false, ["sign", "verify"]);
  } catch {
    throw new SigningUnavailable("ed25519");
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKey: bytesToHex(raw) };
}

/** The wire's ChangeSignature for the change whose hash (hex) is given: Ed25519 over tag ‖ hash. */
export async function signChange(privateKey, hashHex) {
  const hash = hexToBytes(hashHex);
  const signature = new Uint8Array(await crypto.subtle.sign(ED25519, privateKey, concat([CHANGE_TAG, hash])));
  return { change: hash, signature };
}

/** The message the server signs for a grid's heads at a time: tag ‖ u32 len ‖ grid ‖ i64 at ‖ sorted heads. */
function headsMessage(grid, heads, at) {
  const code = new TextEncoder().encode(grid);
  const numbers = new DataView(new ArrayBuffer(12));
  numbers.setUint32(0, code.length);
  numbers.setBigInt64(4, BigInt(at));
  const sorted = [...heads].sort((a, b) => (bytesToHex(a) < bytesToHex(b) ? -1 : 1));
  return concat([HEADS_TAG, new Uint8Array(numbers.buffer, 0, 4), code, new Uint8Array(numbers.buffer, 4, 8), ...sorted]);
}

/**
 * The heads (hex) of an attestation of `grid` if the server's key (hex) signed it, else null: the server holds
 * every change in their history, whoever passed the statement on.
 */
export async function attestedHeads(serverKeyHex, grid, attestation) {
  if (!serverKeyHex || !attestation || !globalThis.crypto?.subtle) return null;
  const heads = attestation.heads || [];
  if (heads.some((h) => h.length !== 32) || typeof attestation.at !== "number") return null;
  try {
    const key = await crypto.subtle.importKey("raw", hexToBytes(serverKeyHex), ED25519, false, ["verify"]);
    const ok = await crypto.subtle.verify(ED25519, key, attestation.signature, headsMessage(grid, heads, attestation.at));
    return ok ? heads.map(bytesToHex) : null;
  } catch {
    return null;
  }
}
