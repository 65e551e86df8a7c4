// The phone's durable store in IndexedDB, the browser's counterpart of the CLI's grid store: per grid a
// snapshot and an append-only log of changes, plus the device's enrolment. Every write waits for its
// transaction to commit with strict durability (flushed to disk) before it resolves, so a visit the screen
// confirms survives a closed tab, a killed browser and a dead battery.
//
// Stores:  meta          key → value      "device", "carry_over", "task_carry_over"
//          grids         keyPath "grid"   { grid, snapshot, confirmed: [hex], last_sync, contacts, view_cache,
//                                           signatures: {hash hex → bytes}, attestation }
//          changes       auto key         { grid, bytes, visit? | place? | correction? | upgrade? }
//                                         (index "grid"; key order is append order)
// `view_cache` is the grid read into plain values ({ count, info, places, visits, corrections }) as of its first
// `count` log records; what this phone writes carries its plain form in its log record (a visit, a found place, a
// correction, or `upgrade` for the constant change that creates the corrections map). Together they let a grid be
// shown before the automerge core has loaded it (see state.js). `signatures` are team-mates' signatures of
// changes received from a hub, kept to pass those changes on; `attestation` is the server's latest signed
// statement of the heads it holds (docs/sync-protocol.md).
//          tasks         keyPath "task"   { task, snapshot, confirmed: [hex], last_sync }   (urgent tasks)
//          task_changes  auto key         { task, bytes }   (index "task")
//          docs          keyPath "key"    { key: "<kind>/<id>", kind, id, snapshot, confirmed, last_sync, signatures,
//                                           attestation }   (documents of further kinds, kinds.js; index "kind")
//          doc_changes   auto key         { key, bytes }   (index "key")
//          blobs         keyPath "sha256" { sha256, blob, complete }   attachments by content: a verified file, or
//                                         the part received so far (`complete` false), resumed with Range
//          photos        keyPath "sha256" { sha256, grid, visit, size, type, taken_at, width, height, thumb,
//                                           blob?, uploaded, refused? }   photos taken at visits (photos.js): the
//                                         shrunk JPEG (`blob`, written in the same transaction as its visit's
//                                         change) until the server holds it, and a small thumbnail, kept for good

const DB_NAME = "doorstep-field";
// Version 4 added `photos`; an upgrade only creates stores that are missing, so nothing held is lost.
const DB_VERSION = 4;

/** Grids and tasks, each in stores of its own; documents of every further kind share two, keyed "<kind>/<id>". */
const KINDS = {
  grid: { records: "grids", log: "changes", key: "grid" },
  task: { records: "tasks", log: "task_changes", key: "task" },
};
const FURTHER = { records: "docs", log: "doc_changes", key: "key" };

/** Where a document is kept: its stores, and its key in them. */
function where(kind, id) {
  return KINDS[kind] ? { ...KINDS[kind], at: id } : { ...FURTHER, at: `${kind}/${id}` };
}

/** Why a write failed, in terms the screens can act on. */
export class StoreError extends Error {
  constructor(cause) {
    super(cause?.message || String(cause));
    this.quota = cause?.name === "QuotaExceededError";
  }
}

const done = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new StoreError(req.error));
  });

export class Store {
  constructor(db) {
    this.db = db;
  }

  static async open() {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
      for (const { records, log, key } of [...Object.values(KINDS), FURTHER]) {
        if (!db.objectStoreNames.contains(records)) db.createObjectStore(records, { keyPath: key });
        if (!db.objectStoreNames.contains(log)) db.createObjectStore(log, { autoIncrement: true }).createIndex(key, key);
      }
      const docs = req.transaction.objectStore(FURTHER.records);
      if (!docs.indexNames.contains("kind")) docs.createIndex("kind", "kind");
      if (!db.objectStoreNames.contains("blobs")) db.createObjectStore("blobs", { keyPath: "sha256" });
      if (!db.objectStoreNames.contains("photos")) db.createObjectStore("photos", { keyPath: "sha256" });
    };
    return new Store(await done(req));
  }

  /** Runs `work(stores)` in one transaction and resolves with its result once the transaction is on disk. */
  write(names, work) {
    return new Promise((resolve, reject) => {
      let tx;
      try {
        tx = this.db.transaction(names, "readwrite", { durability: "strict" });
      } catch (e) {
        reject(new StoreError(e));
        return;
      }
      const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
      let result, pending;
      try {
        pending = Promise.resolve(work(stores));
      } catch (e) {
        pending = Promise.reject(e);
      }
      pending.then((r) => (result = r), (e) => { try { tx.abort(); } catch { /* already finished */ } reject(new StoreError(e)); });
      tx.oncomplete = () => resolve(result);
      tx.onabort = () => reject(new StoreError(tx.error || new Error("the write was aborted")));
    });
  }

  read(name, fn) {
    const tx = this.db.transaction([name], "readonly");
    return done(fn(tx.objectStore(name)));
  }

  getMeta(key) {
    return this.read("meta", (s) => s.get(key));
  }

  setMeta(key, value) {
    return this.write(["meta"], ({ meta }) => { meta.put(value, key); });
  }

  deleteMeta(key) {
    return this.write(["meta"], ({ meta }) => { meta.delete(key); });
  }

  /** Every record of one kind of document ("grid", "task", or a further kind such as "bulletin"). */
  list(kind) {
    if (KINDS[kind]) return this.read(KINDS[kind].records, (s) => s.getAll());
    return this.read(FURTHER.records, (s) => s.index("kind").getAll(IDBKeyRange.only(kind)));
  }

  /** A document's log records ({ bytes, visit? }) in the order they were appended. */
  logOf(kind, id) {
    const { log, key, at } = where(kind, id);
    return this.read(log, (s) => s.index(key).getAll(IDBKeyRange.only(at)));
  }

  /**
   * Appends changes to a document's log, each with its plain form if given (e.g. `{ visit }`), and the records of
   * the photos a visit references, all in one transaction: resolves once everything is on disk, or fails with
   * nothing written (a full phone refuses the visit and its photos together).
   */
  appendChanges(kind, id, changes, plain = [], photos = []) {
    if (changes.length === 0) return Promise.resolve();
    const { log, key, at } = where(kind, id);
    return this.write(photos.length ? [log, "photos"] : [log], (stores) => {
      changes.forEach((bytes, i) => stores[log].add({ ...plain[i], [key]: at, bytes }));
      for (const photo of photos) stores.photos.put(photo);
    });
  }

  /** Replaces a document's snapshot (its log is folded into it) and, when given, other fields of its record. */
  replaceDoc(kind, id, snapshot, fields = {}) {
    const { records, log, key, at } = where(kind, id);
    // A further kind's record names its kind and id besides its key, so that `list` finds it by kind.
    const names = KINDS[kind] ? {} : { kind, id };
    return this.write([records, log], async (stores) => {
      const old = await done(stores[records].get(at));
      stores[records].put({ confirmed: [], last_sync: null, ...old, ...fields, ...names, [key]: at, snapshot });
      await deleteLog(stores[log], key, at);
    });
  }

  /** Updates fields of a document's record: the heads the server confirmed, the last sync, contacts. */
  setFields(kind, id, fields) {
    const { records, at } = where(kind, id);
    return this.write([records], async (stores) => {
      const old = await done(stores[records].get(at));
      if (old) stores[records].put({ ...old, ...fields });
    });
  }

  removeDoc(kind, id) {
    const { records, log, key, at } = where(kind, id);
    return this.write([records, log], async (stores) => {
      stores[records].delete(at);
      await deleteLog(stores[log], key, at);
    });
  }

  /** A stored attachment by its SHA-256 (hex): `{ sha256, blob, complete }`, or undefined. */
  getBlob(sha256) {
    return this.read("blobs", (s) => s.get(sha256));
  }

  /** Keeps an attachment, or the part of it received so far (`complete` false). */
  putBlob(record) {
    return this.write(["blobs"], ({ blobs }) => { blobs.put(record); });
  }

  deleteBlob(sha256) {
    return this.write(["blobs"], ({ blobs }) => { blobs.delete(sha256); });
  }

  /** The SHA-256 of every attachment kept, whole or in part. */
  blobKeys() {
    return this.read("blobs", (s) => s.getAllKeys());
  }

  /** Every photo record kept (photos.js), bytes as Blobs the browser reads only when asked. */
  photos() {
    return this.read("photos", (s) => s.getAll());
  }

  /** One photo record by its SHA-256, or undefined. */
  getPhoto(sha256) {
    return this.read("photos", (s) => s.get(sha256));
  }

  /** Rewrites a photo record (uploaded, refused): fields given replace those kept; `blob: undefined` drops it. */
  updatePhoto(sha256, fields) {
    return this.write(["photos"], async ({ photos }) => {
      const old = await done(photos.get(sha256));
      if (!old) return;
      const next = { ...old, ...fields };
      for (const k of Object.keys(next)) if (next[k] === undefined) delete next[k];
      photos.put(next);
    });
  }
}

async function deleteLog(log, key, id) {
  const keys = await done(log.index(key).getAllKeys(IDBKeyRange.only(id)));
  for (const k of keys) log.delete(k);
}
