// The app's state: the enrolled device and the grids it holds, each kept in memory as an automerge document
// and on disk in the store. The only writer of the store; screens read the views it computes.
import { v7 as uuidv7 } from "uuid";
import { loadDoc, readGrid, addVisit, unconfirmedBy, unconfirmedVisits, A } from "./grid.js";
import { placeCoverage, summarize } from "./coverage.js";

/** Grid logs are folded into their snapshot past this many changes, so opening a grid stays fast. */
const COMPACT_AFTER = 200;

export class State {
  constructor(store, rules) {
    this.store = store;
    this.rules = rules;
    this.device = null;
    this.grids = new Map(); // code → { record, doc, logged, view }
    this.carried = [];
    this.listeners = new Set();
    this.queue = Promise.resolve();
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
    if (!this.device) return;
    for (const record of await this.store.listGrids()) await this.loadGrid(record);
  }

  async loadGrid(record) {
    const changes = await this.store.changesOf(record.grid);
    const doc = loadDoc(record.snapshot, changes, this.device.actor);
    const entry = { record, doc, logged: changes.length, view: null };
    this.grids.set(record.grid, entry);
    return entry;
  }

  /** The grid as the screens show it: places with their visits and coverage, and the grid's figures. */
  view(code) {
    const entry = this.grids.get(code);
    if (!entry) return null;
    if (!entry.view) entry.view = buildView(this.rules, code, entry.doc);
    return entry.view;
  }

  sortedGrids() {
    return [...this.grids.keys()].sort();
  }

  /** Visits recorded on this phone that the server has not confirmed, plus any carried over. */
  pendingCount() {
    let n = this.carried.length;
    for (const { doc, record } of this.grids.values()) n += unconfirmedBy(doc, record.confirmed, this.device.actor);
    return n;
  }

  /** Pending visit ids of one grid (to mark them in a place's history). */
  pendingIds(code) {
    const entry = this.grids.get(code);
    if (!entry) return new Set();
    return new Set(unconfirmedVisits(entry.doc, entry.record.confirmed, this.device.device_id).map((v) => v.id));
  }

  /**
   * Records a visit. Resolves with the visit once its change is on disk; until then the screen confirms nothing.
   * If the write fails (e.g. the storage quota is exhausted) the grid is reloaded from disk, so memory never
   * holds a visit the disk does not, and the error is passed on.
   */
  recordVisit(code, fields) {
    const visit = {
      id: uuidv7(),
      volunteer: this.device.username,
      device: this.device.device_id,
      at: Date.now(),
      ...fields,
    };
    return this.exclusive(() => this.writeVisit(code, visit));
  }

  async writeVisit(code, visit) {
    const entry = this.grids.get(code);
    if (!entry) throw new Error(`grid ${code} is not on this phone`);
    const { doc, change } = addVisit(entry.doc, visit);
    try {
      await this.store.appendChanges(code, [change]);
    } catch (e) {
      await this.loadGrid(entry.record);
      this.changed();
      throw e;
    }
    entry.doc = doc;
    entry.logged += 1;
    if (entry.view) addToView(this.rules, entry.view, visit);
    this.changed();
    return visit;
  }

  /**
   * Applies what a sync brought for a grid the phone holds: new changes go to disk first, then the heads the
   * server is now known to hold (only if they all arrived; otherwise the next push repeats more). Returns how
   * many changes were new.
   */
  async applyServerChanges(code, changes, serverHeads, extra = {}) {
    const entry = this.grids.get(code);
    const fresh = changes.filter((c) => !A.hasHeads(entry.doc, [A.decodeChange(c).hash]));
    if (fresh.length) {
      const [doc] = A.applyChanges(entry.doc, fresh);
      try {
        await this.store.appendChanges(code, fresh);
      } catch (e) {
        await this.loadGrid(entry.record);
        throw e;
      }
      entry.doc = doc;
      entry.logged += fresh.length;
      entry.view = null;
    }
    const confirmed = A.hasHeads(entry.doc, serverHeads) ? serverHeads : [];
    const fields = { ...extra, confirmed, last_sync: Date.now() };
    await this.store.setGridFields(code, fields);
    Object.assign(entry.record, fields);
    if (entry.logged > COMPACT_AFTER) {
      await this.store.replaceGrid(code, A.save(entry.doc));
      entry.logged = 0;
    }
    return fresh.length;
  }

  /** True when this phone wrote changes to the grid that the server has not confirmed. */
  hasUnconfirmed(code) {
    const entry = this.grids.get(code);
    return !!entry && unconfirmedBy(entry.doc, entry.record.confirmed, this.device.actor) > 0;
  }

  /** Stores a grid the server sent whole, keeping anything this phone already held for it. */
  async putNewGrid(code, snapshot, confirmed, extra = {}) {
    let doc = A.load(snapshot, { actor: this.device.actor });
    const held = this.grids.get(code);
    if (held) [doc] = A.applyChanges(doc, A.getAllChanges(held.doc));
    const fields = { ...extra, confirmed, last_sync: Date.now() };
    await this.store.replaceGrid(code, A.save(doc), fields);
    this.grids.set(code, { record: { ...(held?.record || {}), ...fields, grid: code }, doc, logged: 0, view: null });
  }

  async dropGrid(code) {
    await this.store.removeGrid(code);
    this.grids.delete(code);
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

function addToView(rules, view, visit) {
  const p = view.byId.get(visit.place);
  if (!p) return;
  p.visits.unshift(visit);
  p.visits.sort((a, b) => b.at - a.at || (b.id > a.id ? 1 : -1));
  p.cov = placeCoverage(rules, p.kind, view.rural, p.visits);
  view.figures = summarize(rules, view.places, view.rural);
}
