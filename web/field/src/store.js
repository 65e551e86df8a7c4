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

const DB_NAME = "doorstep-field";
const DB_VERSION = 2;

/** The two kinds of document the phone holds, and where each keeps its records and its log. */
const KINDS = {
  grid: { records: "grids", log: "changes", key: "grid" },
  task: { records: "tasks", log: "task_changes", key: "task" },
};

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
      for (const { records, log, key } of Object.values(KINDS)) {
        if (!db.objectStoreNames.contains(records)) db.createObjectStore(records, { keyPath: key });
        if (!db.objectStoreNames.contains(log)) db.createObjectStore(log, { autoIncrement: true }).createIndex(key, key);
      }
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

  /** Every record of one kind of document ("grid" or "task"). */
  list(kind) {
    return this.read(KINDS[kind].records, (s) => s.getAll());
  }

  /** A document's log records ({ bytes, visit? }) in the order they were appended. */
  logOf(kind, id) {
    const { log, key } = KINDS[kind];
    return this.read(log, (s) => s.index(key).getAll(IDBKeyRange.only(id)));
  }

  /**
   * Appends changes to a document's log, each with its plain form if given (e.g. `{ visit }`); resolves once they
   * are on disk.
   */
  appendChanges(kind, id, changes, plain = []) {
    if (changes.length === 0) return Promise.resolve();
    const { log, key } = KINDS[kind];
    return this.write([log], (stores) => {
      changes.forEach((bytes, i) => stores[log].add({ ...plain[i], [key]: id, bytes }));
    });
  }

  /** Replaces a document's snapshot (its log is folded into it) and, when given, other fields of its record. */
  replaceDoc(kind, id, snapshot, fields = {}) {
    const { records, log, key } = KINDS[kind];
    return this.write([records, log], async (stores) => {
      const old = await done(stores[records].get(id));
      stores[records].put({ confirmed: [], last_sync: null, ...old, ...fields, [key]: id, snapshot });
      await deleteLog(stores[log], key, id);
    });
  }

  /** Updates fields of a document's record: the heads the server confirmed, the last sync, contacts. */
  setFields(kind, id, fields) {
    const { records } = KINDS[kind];
    return this.write([records], async (stores) => {
      const old = await done(stores[records].get(id));
      if (old) stores[records].put({ ...old, ...fields });
    });
  }

  removeDoc(kind, id) {
    const { records, log, key } = KINDS[kind];
    return this.write([records, log], async (stores) => {
      stores[records].delete(id);
      await deleteLog(stores[log], key, id);
    });
  }
}

async function deleteLog(log, key, id) {
  const keys = await done(log.index(key).getAllKeys(IDBKeyRange.only(id)));
  for (const k of keys) log.delete(k);
}
