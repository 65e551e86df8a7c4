// The app's state: the enrolled device and the documents it holds (its team's grids and urgent tasks, and those
// of further kinds: bulletins), each kept in memory as an automerge document and on disk in the store. The only
// writer of the store; screens read the views it computes.
import { v4 as uuidv4, v7 as uuidv7 } from "uuid";
import { loadDoc, readGrid, addVisit, addFoundPlace, addCorrection, unconfirmedBy, unconfirmedVisits, hexToBytes, A } from "./grid.js";
import { readTask, addSign, addOutcome, taskState } from "./task.js";
import { placeCoverage, summarize } from "./coverage.js";
import { FURTHER_KINDS, furtherKinds } from "./kinds.js";
import { addReceipt, current, readBy } from "./bulletin.js";
import { photoRecord } from "./photos.js";

/** A document's log is folded into its snapshot past this many changes, so opening it stays fast. */
const COMPACT_AFTER = 200;

export class State {
  constructor(store, rules) {
    this.store = store;
    this.rules = rules;
    this.device = null;
    this.grids = new Map(); // code → { record, doc, logged, view }
    this.tasks = new Map(); // task id → { record, doc, logged, view }
    // Further kinds (kinds.js): kind → (id → { record, doc, logged, view }).
    this.further = new Map(furtherKinds.map((k) => [k, new Map()]));
    this.carried = [];
    this.carriedTasks = [];
    this.carriedDocs = []; // { kind, id, entry }: further kinds' entries of an earlier enrolment
    this.photos = new Map(); // sha256 → the photo's record (store.js `photos`), bytes as a Blob until uploaded
    this.listeners = new Set();
    this.queue = Promise.resolve();
  }

  docs(kind) {
    if (kind === "grid") return this.grids;
    if (kind === "task") return this.tasks;
    if (!this.further.has(kind)) throw new Error(`this app does not know documents of kind ${kind}`);
    return this.further.get(kind);
  }

  /** Every kind of document the phone holds, grids and tasks first. */
  get kinds() {
    return ["grid", "task", ...furtherKinds];
  }

  /** Runs writes one at a time: a document must not change while another write to it waits for the disk. */
  exclusive(fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }

  /**
   * Reads what the phone holds, without the automerge core: each grid's plain view comes from its cache, so the
   * screens can draw at once. `loadDocs()` then loads the documents themselves (needed to write and to sync).
   */
  async load() {
    this.device = (await this.store.getMeta("device")) || null;
    this.carried = (await this.store.getMeta("carry_over")) || [];
    this.carriedTasks = (await this.store.getMeta("task_carry_over")) || [];
    this.carriedDocs = (await this.store.getMeta("doc_carry_over")) || [];
    for (const kind of this.kinds) this.docs(kind).clear();
    this.photos = new Map((await this.store.photos()).map((p) => [p.sha256, p]));
    this.loaded = !this.device;
    if (!this.device) return;
    for (const kind of this.kinds) {
      for (const record of await this.store.list(kind)) {
        const id = idOf(kind, record);
        const log = await this.store.logOf(kind, id);
        const plain = kind === "grid" ? cachedPlain(record, log) : null;
        this.docs(kind).set(id, { record, log, doc: null, logged: log.length, plain, view: null });
      }
    }
  }

  /**
   * Puts a newer campaign version's rules in force (the office applied one): every grid's view is worked out
   * again with them. Returns whether anything changed.
   */
  setRules(rules) {
    if (!rules || rules.campaign_version === this.rules.campaign_version) return false;
    this.rules = rules;
    for (const entry of this.grids.values()) entry.view = null;
    this.changed();
    return true;
  }

  /** Loads every document into the automerge core (which must be ready), and caches views that were missing. */
  async loadDocs() {
    for (const kind of this.kinds) {
      for (const entry of this.docs(kind).values()) {
        entry.doc = loadDoc(entry.record.snapshot, entry.log.map((r) => r.bytes), this.device.actor);
        entry.log = null;
        if (kind === "grid" && !entry.plain) {
          entry.view = null;
          await this.exclusive(() => this.store.setFields("grid", entry.record.grid, { view_cache: viewCache(entry) }));
        }
        entry.plain = null;
      }
    }
    this.loaded = true;
    this.docsLoaded?.();
  }

  /** Resolves once the documents are loaded: writes wait for it. */
  whenLoaded() {
    if (this.loaded) return Promise.resolve();
    return new Promise((resolve) => {
      const before = this.docsLoaded;
      this.docsLoaded = () => { before?.(); resolve(); };
    });
  }

  /** Reloads a document from disk (after a failed write, so memory never holds what the disk does not). */
  async reload(kind, id) {
    const entry = this.docs(kind).get(id);
    const log = await this.store.logOf(kind, id);
    entry.doc = loadDoc(entry.record.snapshot, log.map((r) => r.bytes), this.device.actor);
    entry.logged = log.length;
    entry.view = null;
  }

  /** The grid as the screens show it: places with their visits and coverage, and the grid's figures. */
  view(code) {
    const entry = this.grids.get(code);
    if (!entry || !(entry.doc || entry.plain)) return null;
    if (!entry.view) entry.view = buildView(this.rules, code, entry.doc ? readGrid(entry.doc) : entry.plain);
    return entry.view;
  }

  /** A task as the screens show it, with where it stands on this phone. */
  taskView(id) {
    const entry = this.tasks.get(id);
    if (!entry?.doc) return null;
    if (!entry.view) {
      entry.view = readTask(entry.doc);
      entry.view.state = taskState(entry.view, this.device.device_id);
    }
    return entry.view;
  }

  sortedGrids() {
    return [...this.grids.keys()].sort();
  }

  /** Tasks still to do first, then by priority and deadline (as `doorstep field tasks`). */
  sortedTasks() {
    const rank = (p) => this.rules.priorities.findIndex((n) => n.id === p);
    return [...this.tasks.keys()].map((id) => this.taskView(id)).filter(Boolean).sort((a, b) =>
      (a.state === "done") - (b.state === "done") || rank(a.info.priority) - rank(b.info.priority) || a.info.deadline - b.info.deadline);
  }

  /**
   * Changes written on this phone that the server has not confirmed (visits, found places, corrections, task
   * sign-fors and outcomes), plus records carried over from an earlier enrolment.
   */
  pendingCount() {
    if (!this.loaded) return null;
    let n = this.carried.length + this.carriedTasks.length + this.carriedDocs.length;
    for (const kind of this.kinds) {
      for (const { doc, record } of this.docs(kind).values()) n += unconfirmedBy(doc, record.confirmed, this.device.actor);
    }
    return n;
  }

  /** Pending visit ids of one grid (to mark them in a place's history). */
  pendingIds(code) {
    const entry = this.grids.get(code);
    if (!entry?.doc) return new Set();
    return new Set(unconfirmedVisits(entry.doc, entry.record.confirmed, this.device.device_id).map((v) => v.id));
  }

  /**
   * True when every change the phone holds of the document is among `stored` or in their history: the heads the
   * server confirmed, or the server's signed list of a closed task's changes.
   */
  heldOnly(kind, id, stored) {
    const entry = this.docs(kind).get(id);
    if (A.hasHeads(entry.doc, stored) && A.getChangesMetaSince(entry.doc, stored).length === 0) return true;
    const listed = new Set(stored);
    return A.getChangesMetaSince(entry.doc, []).every((m) => listed.has(m.hash));
  }

  /** True when this phone wrote changes to the document that the server has not confirmed. */
  hasUnconfirmed(kind, id) {
    const entry = this.docs(kind).get(id);
    return !!entry && unconfirmedBy(entry.doc, entry.record.confirmed, this.device.actor) > 0;
  }

  /**
   * Records a visit with the photos taken at it (photos.js `makePhoto`). Resolves with the visit once its change
   * and its photos are on disk, written in one transaction; until then the screen confirms nothing. If the write
   * fails (e.g. the storage quota is exhausted) neither is kept: the grid is reloaded from disk, so memory keeps no
   * visit the disk does not hold, and the error is passed on.
   */
  recordVisit(code, fields, photos = []) {
    const visit = { id: uuidv7(), volunteer: this.device.username, device: this.device.device_id, at: Date.now(), ...fields };
    if (photos.length) visit.photos = photos.map(({ sha256, size, type, taken_at }) => ({ sha256, size, type, taken_at }));
    const records = photos.map((p) => photoRecord(p, code, visit.id));
    return this.whenLoaded().then(() => this.exclusive(() => this.writeVisit(code, visit, records)));
  }

  async writeVisit(code, visit, photos = []) {
    await this.writeEntry("grid", code, (doc) => addVisit(doc, visit, this.rules.always_recorded), [{ visit }], photos);
    return visit;
  }

  /** Photos still to upload: not yet held whole by the server, and not refused by it for their content. */
  photosToUpload() {
    return [...this.photos.values()].filter((p) => !p.uploaded && !p.refused && p.blob)
      .sort((a, b) => (a.taken_at < b.taken_at ? -1 : a.taken_at > b.taken_at ? 1 : 0));
  }

  /** How many photos wait to upload, and their bytes (the header shows it). */
  photoQueue() {
    const waiting = this.photosToUpload();
    return { count: waiting.length, bytes: waiting.reduce((n, p) => n + p.size, 0) };
  }

  /** The server holds the photo whole: its bytes leave the phone, its thumbnail stays. */
  async photoUploaded(sha256) {
    await this.store.updatePhoto(sha256, { uploaded: true, uploaded_at: Date.now(), blob: undefined });
    const held = this.photos.get(sha256);
    if (held) {
      held.uploaded = true;
      delete held.blob;
    }
    this.changed();
  }

  /** The server refused the photo for its content: kept, with why, and not sent again. */
  async photoRefused(sha256, why) {
    await this.store.updatePhoto(sha256, { refused: why });
    const held = this.photos.get(sha256);
    if (held) held.refused = why;
    this.changed();
  }

  /**
   * Records a place found in the field (`doorstep field add-place`): kind, label, optional address and location.
   * Resolves with it once on disk; it counts at once on this phone and awaits the office's review.
   */
  recordFoundPlace(code, fields) {
    const found = { id: `F-${uuidv7()}`, added_by: this.device.username, device: this.device.device_id, added_at: Date.now(), ...fields };
    return this.whenLoaded().then(() => this.exclusive(() => this.writeFoundPlace(code, found)));
  }

  writeFoundPlace(code, found) {
    const { id, kind, label, address, lat, lon, added_by, device, added_at } = found;
    const place = { id, kind, label, address, lat, lon, added_by, device, added_at };
    return this.writeEntry("grid", code, (doc) => addFoundPlace(doc, found), [{ place }]).then(() => found);
  }

  /** Proposes a new label and/or address for a place (`doorstep field correct`), durably; the office reviews it. */
  recordCorrection(code, placeId, fields) {
    const c = { id: uuidv7(), place: placeId, volunteer: this.device.username, device: this.device.device_id, at: Date.now(), ...fields };
    return this.whenLoaded().then(() => this.exclusive(() => this.writeCorrection(code, c)));
  }

  writeCorrection(code, c) {
    const upgrade = hexToBytes(this.rules.corrections_upgrade);
    return this.writeEntry("grid", code, (doc) => {
      const written = addCorrection(doc, c, upgrade);
      // The constant upgrade change, when the grid needed it, is logged first with nothing to show.
      return { ...written, plain: [...written.changes.slice(1).map(() => ({ upgrade: true })), { correction: c }] };
    }).then(() => c);
  }

  /** Records a task outcome, durably, as a visit is recorded. */
  recordOutcome(taskId, fields) {
    const outcome = { id: uuidv7(), volunteer: this.device.username, device: this.device.device_id, at: Date.now(), ...fields };
    return this.whenLoaded()
      .then(() => this.exclusive(() => this.writeEntry("task", taskId, (doc) => addOutcome(doc, outcome))))
      .then(() => outcome);
  }

  /** The volunteer opened a task: signed for as "opened" once per phone, durably. */
  markOpened(taskId) {
    return this.whenLoaded().then(() => this.exclusive(() => this.signTask(taskId, "opened")));
  }

  /** Signs for a task ("received" or "opened") unless this phone already did. Returns whether it wrote one. */
  async signTask(taskId, kind) {
    const entry = this.tasks.get(taskId);
    if (!entry || readTask(entry.doc).signs.some((s) => s.kind === kind && s.device === this.device.device_id)) return false;
    const sign = { id: uuidv7(), kind, volunteer: this.device.username, device: this.device.device_id, at: Date.now() };
    await this.writeEntry("task", taskId, (doc) => addSign(doc, sign));
    return true;
  }

  /**
   * Writes one entry (a visit, a found place, a correction, a sign-for, an outcome). `add` returns the new
   * document and its change (or changes, with their plain forms); `plain` gives a single change's plain form;
   * `photos`, the records of a visit's photos, go to disk in the same transaction.
   */
  async writeEntry(kind, id, add, plain = [], photos = []) {
    const entry = this.docs(kind).get(id);
    if (!entry) throw new Error(`${kind} ${id} is not on this phone`);
    // automerge retires the old document once changed, so readers (the header's count) get the new one at
    // once; nothing confirms, sends or compacts it before the disk has it (those wait their turn in `exclusive`).
    const written = add(entry.doc);
    const changes = written.changes || [written.change];
    entry.doc = written.doc;
    entry.view = null;
    try {
      await this.store.appendChanges(kind, id, changes, written.plain || plain, photos);
    } catch (e) {
      await this.reload(kind, id);
      this.changed();
      throw e;
    }
    entry.logged += changes.length;
    for (const p of photos) this.photos.set(p.sha256, p);
    this.changed();
  }

  /**
   * Applies what a sync brought for a document the phone holds: new changes go to disk first, then the heads the
   * server is now known to hold. When some of them did not arrive, or `serverHeads` is null (a hub's answer
   * without the server's statement), the heads confirmed before stay (the next push repeats a little more).
   * Returns how many changes were new.
   */
  async applyServerChanges(kind, id, changes, serverHeads, extra = {}) {
    const entry = this.docs(kind).get(id);
    const fresh = changes.filter((c) => !A.hasHeads(entry.doc, [A.decodeChange(c).hash]));
    if (fresh.length) {
      [entry.doc] = A.applyChanges(entry.doc, fresh);
      entry.view = null;
      try {
        await this.store.appendChanges(kind, id, fresh);
      } catch (e) {
        await this.reload(kind, id);
        throw e;
      }
      entry.logged += fresh.length;
    }
    const confirmed = serverHeads && A.hasHeads(entry.doc, serverHeads) ? serverHeads : entry.record.confirmed;
    if (entry.logged > COMPACT_AFTER) {
      // A new snapshot and the view cache that goes with it, in one write.
      entry.logged = 0;
      const snapshot = A.save(entry.doc);
      await this.store.replaceDoc(kind, id, snapshot, kind === "grid" ? { view_cache: viewCache(entry) } : {});
      entry.record.snapshot = snapshot;
    }
    const fields = { ...extra, confirmed, last_sync: Date.now(), ...forgetDelivered(entry, extra, confirmed) };
    // The grid's view as of its whole log, so the next start shows it at once.
    if (kind === "grid" && fresh.length) fields.view_cache = viewCache(entry);
    await this.store.setFields(kind, id, fields);
    Object.assign(entry.record, fields);
    return fresh.length;
  }

  /** Stores a document the server sent whole, keeping anything this phone already held for it. */
  async putNew(kind, id, sent, confirmed, extra = {}) {
    let doc = A.load(sent, { actor: this.device.actor });
    const held = this.docs(kind).get(id);
    if (held) [doc] = A.applyChanges(doc, A.getAllChanges(held.doc));
    if (!A.hasHeads(doc, confirmed)) confirmed = [];
    const snapshot = A.save(doc);
    const names = ["grid", "task"].includes(kind) ? { [kind]: id } : { kind, id };
    const entry = { record: { ...(held?.record || {}), ...names, snapshot }, doc, logged: 0, view: null };
    const fields = { ...extra, confirmed, last_sync: Date.now(), ...(kind === "grid" ? { view_cache: viewCache(entry) } : {}) };
    await this.store.replaceDoc(kind, id, snapshot, fields);
    Object.assign(entry.record, fields);
    this.docs(kind).set(id, entry);
  }

  async drop(kind, id) {
    await this.store.removeDoc(kind, id);
    this.docs(kind).delete(id);
  }

  /** A document of a further kind read into plain values (kinds.js), or null until the core has loaded it. */
  furtherView(kind, id) {
    const entry = this.docs(kind).get(id);
    if (!entry?.doc) return null;
    if (!entry.view) entry.view = { id, ...FURTHER_KINDS[kind].read(entry.doc) };
    return entry.view;
  }

  /**
   * The bulletins to show (with a notice, not expired), each marked `read` when this volunteer read its current
   * edition and `pending` while this phone's receipt awaits the server: unread first, urgent first, newest first.
   */
  bulletins(now = Date.now()) {
    const me = this.device?.username;
    return [...this.docs("bulletin").keys()].map((id) => this.furtherView("bulletin", id))
      .filter((v) => v && current(v, now))
      .map((v) => ({ ...v, read: readBy(v, me), pending: this.hasUnconfirmed("bulletin", v.id) }))
      .sort((a, b) => a.read - b.read || (b.notice.priority === "urgent") - (a.notice.priority === "urgent")
        || b.notice.published_at - a.notice.published_at);
  }

  /** The current talking points (入户宣讲要点), newest first: shown on the visit screen. */
  talkingPoints(now = Date.now()) {
    return this.bulletins(now).filter((v) => v.notice.kind === "talking_points")
      .sort((a, b) => b.notice.published_at - a.notice.published_at);
  }

  /**
   * The volunteer tapped 已阅: a receipt of the current edition, as a signed change of this phone, on disk before
   * it resolves (then counted among the records to sync until the server confirms it).
   */
  markRead(id) {
    return this.whenLoaded().then(() => this.exclusive(async () => {
      const view = this.furtherView("bulletin", id);
      if (!view?.notice) throw new Error(`bulletin ${id} is not on this phone`);
      const receipt = {
        key: uuidv4(), volunteer: this.device.username, device: this.device.device_id, read_at: Date.now(), edition: view.notice.edition,
      };
      await this.writeEntry("bulletin", id, (doc) => addReceipt(doc, receipt));
      return receipt;
    }));
  }

  async saveDevice(device) {
    await this.store.setMeta("device", device);
    this.device = device;
  }

  async saveCarried(list) {
    if (list.length) await this.store.setMeta("carry_over", list);
    else await this.store.deleteMeta("carry_over");
    this.carried = list;
  }

  async saveCarriedDocs(list) {
    if (list.length) await this.store.setMeta("doc_carry_over", list);
    else await this.store.deleteMeta("doc_carry_over");
    this.carriedDocs = list;
  }

  /** Entries of further kinds this enrolment wrote that the server has not confirmed, to carry over. */
  unconfirmedDocEntries() {
    const out = [];
    for (const kind of furtherKinds) {
      const { unconfirmed } = FURTHER_KINDS[kind];
      if (!unconfirmed) continue;
      for (const [id, { doc, record }] of this.docs(kind)) {
        for (const entry of unconfirmed(doc, record.confirmed, this.device.device_id)) out.push({ kind, id, entry });
      }
    }
    return out;
  }

  /**
   * Writes carried-over entries of further kinds again under this enrolment, in the documents now on the phone
   * (an entry already there is skipped, so a crash between the writes repeats nothing). Those whose document is
   * not here are forgotten when `forget` (the server answered: it is withdrawn, or not meant for this phone), else
   * kept for the next sync. Returns how many were written.
   */
  async recordCarriedDocs(forget) {
    let written = 0;
    const kept = [];
    for (const c of this.carriedDocs) {
      const entry = this.docs(c.kind).get(c.id);
      if (!entry) {
        if (!forget) kept.push(c);
        continue;
      }
      const rewritten = FURTHER_KINDS[c.kind].rewrite(entry.doc, c.entry, this.device.device_id);
      if (rewritten) {
        await this.writeEntry(c.kind, c.id, () => rewritten);
        written += 1;
      }
    }
    await this.saveCarriedDocs(kept);
    return written;
  }

  async saveCarriedTasks(list) {
    if (list.length) await this.store.setMeta("task_carry_over", list);
    else await this.store.deleteMeta("task_carry_over");
    this.carriedTasks = list;
  }

  /**
   * Sign-fors and outcomes this enrolment recorded that the server has not confirmed, to carry over, each with the
   * server's latest signed statement of its task: it shows the server that this phone held the task, so that the
   * server sends it again even once closed.
   */
  unconfirmedTaskEntries() {
    const out = [];
    for (const [task, { doc, record }] of this.tasks) {
      const atServer = record.confirmed.length ? A.view(doc, record.confirmed) : null;
      const view = readTask(doc);
      const kept = record.attestation ? { attestation: record.attestation } : {};
      for (const sign of view.signs) {
        if (sign.device === this.device.device_id && !atServer?.signs?.[sign.id]) out.push({ task, sign, ...kept });
      }
      for (const outcome of view.outcomes) {
        if (outcome.device === this.device.device_id && !atServer?.outcomes?.[outcome.id]) out.push({ task, outcome, ...kept });
      }
    }
    return out;
  }

  /**
   * Records the carried-over entries of a task now on the phone again, under this enrolment (same ids), and
   * forgets them. Entries already in the document are skipped, so a crash between the two writes repeats
   * nothing. Returns how many were written.
   */
  async recordCarriedTask(taskId) {
    const entry = this.tasks.get(taskId);
    const mine = this.carriedTasks.filter((c) => c.task === taskId);
    if (!entry || !mine.length) return 0;
    let written = 0;
    for (const { sign, outcome } of mine) {
      const held = readTask(entry.doc);
      const device = this.device.device_id;
      if (sign && !held.signs.some((s) => s.id === sign.id)) {
        await this.writeEntry("task", taskId, (doc) => addSign(doc, { ...sign, device }));
        written += 1;
      }
      if (outcome && !held.outcomes.some((o) => o.id === outcome.id)) {
        await this.writeEntry("task", taskId, (doc) => addOutcome(doc, { ...outcome, device }));
        written += 1;
      }
    }
    await this.saveCarriedTasks(this.carriedTasks.filter((c) => c.task !== taskId));
    return written;
  }
}

/** A stored record's document id: its grid code or task id, or a further kind's `id`. */
const idOf = (kind, record) => (kind === "grid" || kind === "task" ? record[kind] : record.id);

/** What a grid's view cache holds: the grid read into plain values, as of its first `count` log records. */
function viewCache(entry) {
  return { count: entry.logged, ...readGrid(entry.doc) };
}

/**
 * The grid in plain values from its cache and what this phone logged since, or null when the cache cannot tell
 * (none yet, or the log holds changes from a sync that the cache does not cover).
 */
function cachedPlain(record, log) {
  const cache = record.view_cache;
  if (!cache || cache.count > log.length) return null;
  const since = log.slice(cache.count);
  if (!since.every((r) => r.visit || r.place || r.correction || r.upgrade)) return null;
  const written = (k) => since.filter((r) => r[k]).map((r) => r[k]);
  return {
    info: cache.info,
    places: [...cache.places, ...written("place")],
    visits: [...cache.visits, ...written("visit")],
    corrections: [...(cache.corrections || []), ...written("correction")],
  };
}

/** Team-mates' signatures kept until the server holds their changes: those of confirmed changes go. */
function forgetDelivered(entry, extra, confirmed) {
  const kept = extra.signatures || entry.record.signatures;
  if (!kept || !Object.keys(kept).length) return {};
  const undelivered = new Set(A.getChangesMetaSince(entry.doc, confirmed).map((m) => m.hash));
  return { signatures: Object.fromEntries(Object.entries(kept).filter(([hash]) => undelivered.has(hash))) };
}

/** Found places the office rejected or merged away no longer count (client_core::found::FoundPlace::is_active). */
const isActive = (p) => !p.id.startsWith("F-") || p.review == null || p.review === "confirmed";

function buildView(rules, code, { info, places, visits, corrections = [] }) {
  const rural = info.village_kind === "village";
  // Visits of a found place merged into another count for that other place, as on the server.
  const merged = new Map(places.filter((p) => p.id.startsWith("F-") && p.review === "merged").map((p) => [p.id, p.merged_into]));
  const byPlace = new Map(places.filter(isActive).map((p) => [p.id, { ...p, visits: [], corrections: [] }]));
  for (const v of visits) byPlace.get(merged.get(v.place) ?? v.place)?.visits.push(v);
  const list = [...byPlace.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const c of corrections) byPlace.get(c.place)?.corrections.push(c);
  for (const p of list) {
    // Found in the field and not reviewed yet: counted, but provisional until the office confirms it.
    p.provisional = p.id.startsWith("F-") && p.review == null;
    p.corrections.sort((a, b) => b.at - a.at);
    p.visits.sort((a, b) => b.at - a.at || (b.id > a.id ? 1 : -1));
    p.cov = placeCoverage(rules, p.kind, rural, p.visits);
  }
  return { code, info, rural, places: list, byId: byPlace, figures: summarize(rules, list, rural) };
}
