// The app's state: the enrolled device and the documents it holds (its team's grids and urgent tasks), each kept
// in memory as an automerge document and on disk in the store. The only writer of the store; screens read the
// views it computes.
import { v7 as uuidv7 } from "uuid";
import { loadDoc, readGrid, addVisit, unconfirmedBy, unconfirmedVisits, A } from "./grid.js";
import { readTask, addSign, addOutcome, taskState } from "./task.js";
import { placeCoverage, summarize } from "./coverage.js";

/** A document's log is folded into its snapshot past this many changes, so opening it stays fast. */
const COMPACT_AFTER = 200;

export class State {
  constructor(store, rules) {
    this.store = store;
    this.rules = rules;
    this.device = null;
    this.grids = new Map(); // code → { record, doc, logged, view }
    this.tasks = new Map(); // task id → { record, doc, logged, view }
    this.carried = [];
    this.listeners = new Set();
    this.queue = Promise.resolve();
  }

  docs(kind) {
    return kind === "grid" ? this.grids : this.tasks;
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

  async load() {
    this.device = (await this.store.getMeta("device")) || null;
    this.carried = (await this.store.getMeta("carry_over")) || [];
    this.grids.clear();
    this.tasks.clear();
    if (!this.device) return;
    for (const kind of ["grid", "task"]) {
      for (const record of await this.store.list(kind)) await this.loadDoc(kind, record);
    }
  }

  async loadDoc(kind, record) {
    const id = record[kind];
    const changes = await this.store.changesOf(kind, id);
    const entry = { record, doc: loadDoc(record.snapshot, changes, this.device.actor), logged: changes.length, view: null };
    this.docs(kind).set(id, entry);
    return entry;
  }

  /** The grid as the screens show it: places with their visits and coverage, and the grid's figures. */
  view(code) {
    const entry = this.grids.get(code);
    if (!entry) return null;
    if (!entry.view) entry.view = buildView(this.rules, code, entry.doc);
    return entry.view;
  }

  /** A task as the screens show it, with where it stands on this phone. */
  taskView(id) {
    const entry = this.tasks.get(id);
    if (!entry) return null;
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
    return [...this.tasks.keys()].map((id) => this.taskView(id)).sort((a, b) =>
      (a.state === "done") - (b.state === "done") || rank(a.info.priority) - rank(b.info.priority) || a.info.deadline - b.info.deadline);
  }

  /** Visits and task entries written on this phone that the server has not confirmed, plus any carried over. */
  pendingCount() {
    let n = this.carried.length;
    for (const map of [this.grids, this.tasks]) {
      for (const { doc, record } of map.values()) n += unconfirmedBy(doc, record.confirmed, this.device.actor);
    }
    return n;
  }

  /** Pending visit ids of one grid (to mark them in a place's history). */
  pendingIds(code) {
    const entry = this.grids.get(code);
    if (!entry) return new Set();
    return new Set(unconfirmedVisits(entry.doc, entry.record.confirmed, this.device.device_id).map((v) => v.id));
  }

  /** True when this phone wrote changes to the document that the server has not confirmed. */
  hasUnconfirmed(kind, id) {
    const entry = this.docs(kind).get(id);
    return !!entry && unconfirmedBy(entry.doc, entry.record.confirmed, this.device.actor) > 0;
  }

  /**
   * Records a visit. Resolves with the visit once its change is on disk; until then the screen confirms nothing.
   * If the write fails (e.g. the storage quota is exhausted) the grid is reloaded from disk, so memory keeps no
   * visit the disk does not hold, and the error is passed on.
   */
  recordVisit(code, fields) {
    const visit = { id: uuidv7(), volunteer: this.device.username, device: this.device.device_id, at: Date.now(), ...fields };
    return this.exclusive(() => this.writeVisit(code, visit));
  }

  writeVisit(code, visit) {
    return this.writeEntry("grid", code, (doc) => addVisit(doc, visit)).then(() => visit);
  }

  /** Records a task outcome, durably, as a visit is recorded. */
  recordOutcome(taskId, fields) {
    const outcome = { id: uuidv7(), volunteer: this.device.username, device: this.device.device_id, at: Date.now(), ...fields };
    return this.exclusive(() => this.writeEntry("task", taskId, (doc) => addOutcome(doc, outcome))).then(() => outcome);
  }

  /** The volunteer opened a task: signed for as "opened" once per phone, durably. */
  markOpened(taskId) {
    return this.exclusive(() => this.signTask(taskId, "opened"));
  }

  /** Signs for a task ("received" or "opened") unless this phone already did. Returns whether it wrote one. */
  async signTask(taskId, kind) {
    const entry = this.tasks.get(taskId);
    if (!entry || readTask(entry.doc).signs.some((s) => s.kind === kind && s.device === this.device.device_id)) return false;
    const sign = { id: uuidv7(), kind, volunteer: this.device.username, device: this.device.device_id, at: Date.now() };
    await this.writeEntry("task", taskId, (doc) => addSign(doc, sign));
    return true;
  }

  async writeEntry(kind, id, add) {
    const entry = this.docs(kind).get(id);
    if (!entry) throw new Error(`${kind} ${id} is not on this phone`);
    // automerge retires the old document once changed, so readers (the header's count) get the new one at
    // once; nothing confirms, sends or compacts it before the disk has it (those wait their turn in `exclusive`).
    const { doc, change } = add(entry.doc);
    entry.doc = doc;
    entry.view = null;
    try {
      await this.store.appendChanges(kind, id, [change]);
    } catch (e) {
      await this.loadDoc(kind, entry.record);
      this.changed();
      throw e;
    }
    entry.logged += 1;
    this.changed();
  }

  /**
   * Applies what a sync brought for a document the phone holds: new changes go to disk first, then the heads the
   * server is now known to hold (only if they all arrived; otherwise the next push repeats more). Returns how
   * many changes were new.
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
        await this.loadDoc(kind, entry.record);
        throw e;
      }
      entry.logged += fresh.length;
    }
    const confirmed = A.hasHeads(entry.doc, serverHeads) ? serverHeads : [];
    const fields = { ...extra, confirmed, last_sync: Date.now() };
    await this.store.setFields(kind, id, fields);
    Object.assign(entry.record, fields);
    if (entry.logged > COMPACT_AFTER) {
      await this.store.replaceDoc(kind, id, A.save(entry.doc));
      entry.logged = 0;
    }
    return fresh.length;
  }

  /** Stores a document the server sent whole, keeping anything this phone already held for it. */
  async putNew(kind, id, snapshot, confirmed, extra = {}) {
    let doc = A.load(snapshot, { actor: this.device.actor });
    const held = this.docs(kind).get(id);
    if (held) [doc] = A.applyChanges(doc, A.getAllChanges(held.doc));
    const fields = { ...extra, confirmed, last_sync: Date.now() };
    await this.store.replaceDoc(kind, id, A.save(doc), fields);
    this.docs(kind).set(id, { record: { ...(held?.record || {}), ...fields, [kind]: id }, doc, logged: 0, view: null });
  }

  async drop(kind, id) {
    await this.store.removeDoc(kind, id);
    this.docs(kind).delete(id);
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
}

function buildView(rules, code, doc) {
  const { info, places, visits } = readGrid(doc);
  const rural = info.village_kind === "village";
  const byPlace = new Map(places.map((p) => [p.id, { ...p, visits: [] }]));
  for (const v of visits) byPlace.get(v.place)?.visits.push(v);
  const list = [...byPlace.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const p of list) {
    p.visits.sort((a, b) => b.at - a.at || (b.id > a.id ? 1 : -1));
    p.cov = placeCoverage(rules, p.kind, rural, p.visits);
  }
  return { code, info, rural, places: list, byId: byPlace, figures: summarize(rules, list, rural) };
}
