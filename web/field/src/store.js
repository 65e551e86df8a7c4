// The phone's durable store in IndexedDB, the browser's counterpart of the CLI's grid store: per grid a
// snapshot and an append-only log of changes, plus the device's enrolment. Every write waits for its
// transaction to commit with strict durability (flushed to disk) before it resolves, so a visit the screen
// confirms survives a closed tab, a killed browser and a dead battery.
//
// Stores:  meta     key → value      "device", "carry_over", "lang"
//          grids    keyPath "grid"   { grid, snapshot, confirmed: [hex], last_sync, contacts }
//          changes  auto key         { grid, bytes }   (index "grid"; key order is append order)

const DB_NAME = "doorstep-field";
const DB_VERSION = 1;

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
      db.createObjectStore("meta");
      db.createObjectStore("grids", { keyPath: "grid" });
      db.createObjectStore("changes", { autoIncrement: true }).createIndex("grid", "grid");
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

  listGrids() {
    return this.read("grids", (s) => s.getAll());
  }

  /** The grid's logged changes in the order they were appended. */
  async changesOf(grid) {
    const rows = await this.read("changes", (s) => s.index("grid").getAll(IDBKeyRange.only(grid)));
    return rows.map((r) => r.bytes);
  }

  /** Appends changes to a grid's log; resolves once they are on disk. */
  appendChanges(grid, changes) {
    if (changes.length === 0) return Promise.resolve();
    return this.write(["changes"], ({ changes: log }) => {
      for (const bytes of changes) log.add({ grid, bytes });
    });
  }

  /** Replaces a grid's snapshot (its log is folded into it) and, when given, its confirmed heads. */
  replaceGrid(grid, snapshot, fields = {}) {
    return this.write(["grids", "changes"], async ({ grids, changes }) => {
      const old = await done(grids.get(grid));
      grids.put({ confirmed: [], last_sync: null, contacts: null, ...old, ...fields, grid, snapshot });
      await deleteLog(changes, grid);
    });
  }

  /** Records what the server confirmed (and when), and the contacts it sent, if any. */
  setGridFields(grid, fields) {
    return this.write(["grids"], async ({ grids }) => {
      const old = await done(grids.get(grid));
      if (old) grids.put({ ...old, ...fields });
    });
  }

  removeGrid(grid) {
    return this.write(["grids", "changes"], async ({ grids, changes }) => {
      grids.delete(grid);
      await deleteLog(changes, grid);
    });
  }
}

async function deleteLog(changes, grid) {
  const keys = await done(changes.index("grid").getAllKeys(IDBKeyRange.only(grid)));
  for (const k of keys) changes.delete(k);
}
