// Doorstep's field app: starts the automerge core, opens the phone's store, routes between screens, and syncs
// on demand and by itself whenever the phone is online. Served at /field/ by `doorstep serve` and by a team's
// `doorstep hub serve`, and syncs with whichever served it; works offline once loaded (sw.js keeps every file).
import { A } from "./grid.js";
import { Store } from "./store.js";
import { State } from "./state.js";
import { sync, enrol, lookupCode, CallError } from "./sync.js";
import { downloadAttachments } from "./attachments.js";
import { uploadPhotos } from "./photos.js";
import { t, setLang, getLang, formatSize } from "./i18n.js";
import { h, $ } from "./dom.js";
import * as screens from "./screens.js";

const AUTO_SYNC_EVERY_MS = 60_000;
const AUTO_SYNC_AFTER_VISIT_MS = 3_000;
/** A GPS fix older than this is not attached to a visit. */
const FIX_MAX_AGE_MS = 5 * 60_000;

const app = {
  state: null,
  syncing: null,
  syncTimer: null,
  gridUis: new Map(),
  photoDrafts: new Map(), // "<grid>/<place>" → photos taken for the visit being recorded there
  lastFix: null,
  gpsError: null,
  objectUrls: [],
};

function say(text, kind = "") {
  const el = $("#status");
  el.textContent = text;
  el.className = `status-line ${kind}`;
}

/** Runs one sync at a time. `manual` syncs report every outcome; automatic ones stay quiet unless refused. */
function runSync(manual) {
  if (!app.state?.device) return Promise.resolve();
  if (app.syncing) return app.syncing;
  const button = $("#sync");
  button.disabled = true;
  button.textContent = t("syncing");
  app.syncing = sync(app.state)
    .then(async (tally) => {
      // A campaign version the office applied since the app started counts from now on.
      const rules = await fetch("rules.json").then((r) => (r.ok ? r.json() : null)).catch(() => null);
      const newRules = app.state.setRules(rules);
      const news = tally.received || tally.newGrids.length || tally.removed.length || tally.newDocs || tally.goneDocs || newRules;
      if (tally.hub && (manual || news)) say(t("syncedHub", { n: app.state.pendingCount() }), "ok");
      else if (manual || news) say(t("synced"), "ok");
      // Redraw with what arrived and what is now confirmed, unless someone is typing.
      if (!isTyping()) route();
      // Bulletins' attachments come after, in the background; a screen showing one is drawn again once it is here.
      downloadAttachments(app.state).then((stored) => {
        if (stored && ["bulletin", "home"].includes($("#app").dataset.screen) && !isTyping()) route();
      }).catch(() => {}).finally(() => {
        // How many download passes ended, for whoever waits on them (the browser tests).
        document.body.dataset.downloads = Number(document.body.dataset.downloads || 0) + 1;
      });
      // Photos go after the visits that name them: the server takes only photos of visits it holds.
      runUploads();
    })
    .catch((err) => {
      const hint = err.status === 401 ? t("reenrolHint") : err.code === "clock_ahead" ? t("clockHint") : "";
      if (!(err instanceof CallError) || !err.unreachable) say(`${t(err.status === 401 ? "refused" : "syncFailed")}${err.message} ${hint}`, "error");
      else if (manual) say(t("unreachable"), "error");
    })
    .finally(() => {
      app.syncing = null;
      button.disabled = false;
      button.textContent = t("sync");
      chrome();
    });
  return app.syncing;
}

/** Uploads the photos waiting, in the background; the screen showing them is drawn again once they are up. */
function runUploads() {
  return uploadPhotos(app.state).then((uploaded) => {
    if (uploaded && $("#app").dataset.screen === "place" && !isTyping()) route();
  }).catch(() => {}).finally(() => {
    // How many upload passes ended, for whoever waits on them (the browser tests).
    document.body.dataset.uploads = Number(document.body.dataset.uploads || 0) + 1;
    chrome();
  });
}

/** Someone is typing (a note, feedback, any field): the screen is not drawn again under their fingers. */
const isTyping = () => !!($("#note")?.value || $("#feedback")?.value || ["INPUT", "TEXTAREA"].includes(document.activeElement?.tagName));

function scheduleSync(delay) {
  clearTimeout(app.syncTimer);
  app.syncTimer = setTimeout(() => { if (navigator.onLine) runSync(false); }, delay);
}

/** The header's live parts: connectivity and the count of visits waiting to sync. */
function chrome() {
  const online = navigator.onLine;
  const net = $("#net");
  net.textContent = t(online ? "online" : "offline");
  net.dataset.online = online;
  const pending = app.state?.device ? app.state.pendingCount() : 0;
  const badge = $("#pending");
  badge.textContent = `${t("pending")} ${pending ?? "…"}`;
  if (pending == null) delete badge.dataset.count; // not known until the documents are loaded
  else badge.dataset.count = pending;
  // Photos waiting to upload, and how much they weigh: a day offline gathers dozens.
  const photos = app.state?.device ? app.state.photoQueue() : { count: 0, bytes: 0 };
  const queue = $("#photos-pending");
  queue.hidden = photos.count === 0;
  queue.dataset.count = photos.count;
  queue.dataset.bytes = photos.bytes;
  queue.textContent = photos.count ? t("photosWaiting", { n: photos.count, size: formatSize(photos.bytes) }) : "";
  $("#sync").hidden = !app.state?.device;
  $("#settings-link").hidden = !app.state?.device;
  $("#lang").textContent = t("langSwitch");
  $("#title").textContent = t("appName");
}

const gps = {
  wanted: () => localStorage.getItem("doorstep.gps") === "1",
  setWanted(on) {
    localStorage.setItem("doorstep.gps", on ? "1" : "0");
    if (on) gps.locate();
  },
  fix: () => (app.lastFix && Date.now() - app.lastFix.at < FIX_MAX_AGE_MS ? app.lastFix : null),
  describe() {
    if (!gps.wanted()) return "";
    if (gps.fix()) return `${t("gpsOk")} (±${Math.round(app.lastFix.accuracy)} m)`;
    return app.gpsError ? `${t("gpsDenied")}${app.gpsError}` : t("gpsWaiting");
  },
  onUpdate: null,
  /** Asks for a position in the background, so recording never waits for the GPS. */
  locate() {
    if (!gps.wanted() || !navigator.geolocation) return;
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        app.lastFix = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy, at: Date.now() };
        app.gpsError = null;
        gps.onUpdate?.();
      },
      (err) => { app.gpsError = err.message; gps.onUpdate?.(); },
      { enableHighAccuracy: true, timeout: 20_000, maximumAge: 60_000 },
    );
  },
};

const ctx = {
  get state() { return app.state; },
  gps,
  go(hash) { location.hash = hash; },
  /** The photos taken at a place for the visit not yet saved (kept while the app is open). */
  photoDraft(code, placeId) {
    const key = `${code}/${placeId}`;
    if (!app.photoDrafts.has(key)) app.photoDrafts.set(key, { photos: [], busy: null, message: "" });
    return app.photoDrafts.get(key);
  },
  gridUi(code) {
    if (!app.gridUis.has(code)) app.gridUis.set(code, { filter: "all", search: "" });
    return app.gridUis.get(code);
  },
  lookupCode,
  async enrol(input) {
    await enrol(app.state, input);
    navigator.storage?.persist?.();
    say(t("enrolled"), "ok");
    // Replaced, not added: the used code leaves the address and the history.
    history.replaceState(null, "", "#/");
    route();
    await runSync(true);
  },
  recorded(text) {
    say(text, "ok");
    route();
    scheduleSync(AUTO_SYNC_AFTER_VISIT_MS);
  },
  placeAdded(found, code) {
    say(t("placeSaved"), "ok");
    location.hash = `#/place/${encodeURIComponent(code)}/${encodeURIComponent(found.id)}`;
    scheduleSync(AUTO_SYNC_AFTER_VISIT_MS);
  },
  markedRead(id) {
    say(t(navigator.onLine ? "markedReadSynced" : "markedRead"), "ok");
    $("#status").dataset.read = id;
    route();
    scheduleSync(AUTO_SYNC_AFTER_VISIT_MS);
  },
  /** A URL for a stored file (a PDF to open), revoked once a later screen is drawn and a minute has passed (so a
   * tab opening it has it read by then). */
  objectUrl(blob) {
    const url = URL.createObjectURL(blob);
    app.objectUrls.push({ url, at: Date.now() });
    return url;
  },
  saved(visit, code) {
    say(t(navigator.onLine ? "saved" : "savedPending"), "ok");
    $("#status").dataset.visit = visit.id;
    location.hash = `#/grid/${encodeURIComponent(code)}`;
    scheduleSync(AUTO_SYNC_AFTER_VISIT_MS);
  },
};

let gridOpened = false;

function route() {
  const main = $("#app");
  const old = app.objectUrls.filter((u) => Date.now() - u.at > 60_000);
  for (const { url } of old) URL.revokeObjectURL(url);
  app.objectUrls = app.objectUrls.filter((u) => !old.includes(u));
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const state = app.state;
  let screen;
  let name;
  if (!state.device || parts[0] === "enrol") [name, screen] = ["enrol", screens.enrolScreen(ctx, parts[0] === "enrol" ? parts[1] : undefined)];
  else if (parts[0] === "grid" && parts[1]) [name, screen] = ["grid", screens.gridScreen(ctx, parts[1])];
  else if (parts[0] === "add-place" && parts[1]) [name, screen] = ["add-place", screens.addPlaceScreen(ctx, parts[1])];
  else if (parts[0] === "place" && parts[2]) {
    [name, screen] = ["place", screens.placeScreen(ctx, parts[1], parts[2])];
    gps.locate();
  } else if (parts[0] === "task" && parts[1]) {
    [name, screen] = ["task", screens.taskScreen(ctx, parts[1])];
    // Opening the task is signed for once per phone (the office sees when it was first read).
    if (state.tasks.has(parts[1])) state.markOpened(parts[1]).catch(() => {});
  } else if (parts[0] === "bulletin" && parts[1]) [name, screen] = ["bulletin", screens.bulletinScreen(ctx, parts[1])];
  else if (parts[0] === "bulletins") [name, screen] = ["bulletins", screens.bulletinsScreen(ctx)];
  else if (parts[0] === "settings") [name, screen] = ["settings", screens.settingsScreen(ctx)];
  else [name, screen] = ["home", screens.homeScreen(ctx)];
  const scroll = main.dataset.route === location.hash ? window.scrollY : 0;
  main.replaceChildren(screen);
  main.dataset.screen = name;
  main.dataset.route = location.hash;
  window.scrollTo(0, scroll);
  if (name === "grid" && !gridOpened && $("#places")) {
    gridOpened = true;
    performance.measure("doorstep:grid-open", { start: 0, end: performance.now() });
  }
  chrome();
}

/** One tab writes at a time: two tabs writing with the same actor would number their changes twice. */
function holdWriterLock() {
  if (!navigator.locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks.request("doorstep-field-writer", { ifAvailable: true }, (lock) => {
      resolve(!!lock);
      return lock ? new Promise(() => {}) : undefined;
    });
  });
}

function fatal(text) {
  $("#app").replaceChildren(h("p", { class: "message error", role: "alert" }, text));
  document.body.dataset.ready = "error";
}

async function boot() {
  setLang(localStorage.getItem("doorstep.lang") || "zh");
  $("#lang").addEventListener("click", () => {
    setLang(getLang() === "zh" ? "en" : "zh");
    localStorage.setItem("doorstep.lang", getLang());
    route();
  });
  $("#sync").addEventListener("click", () => runSync(true));
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch((e) => say(`${t("needsHttps")} (${e.message})`, "error"));
    navigator.serviceWorker.ready.then(() => { document.body.dataset.offlineReady = "1"; });
  } else {
    say(t("needsHttps"), "error");
  }
  if (!(await holdWriterLock())) return fatal(t("otherTab"));
  try {
    const rules = await (await fetch("rules.json")).json();
    app.state = new State(await Store.open(), rules);
    await app.state.load();
  } catch (e) {
    return fatal(`${t("startError")}${e.message}`);
  }
  app.state.onChange(chrome);
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => { chrome(); runSync(false); });
  window.addEventListener("offline", chrome);
  route();
  try {
    // The screen is drawn from the store's plain views first; the automerge core (needed to write and sync)
    // compiles after, so the two do not compete for the phone's CPU.
    await A.initializeWasm("automerge.wasm");
    performance.mark("doorstep:wasm-ready");
    await app.state.loadDocs();
    performance.mark("doorstep:state-loaded");
  } catch (e) {
    return fatal(`${t("startError")}${e.message}`);
  }
  if (!["INPUT", "TEXTAREA"].includes(document.activeElement?.tagName)) route();
  document.body.dataset.ready = "1";
  if (app.state.device && navigator.onLine) runSync(false);
  setInterval(() => {
    if (navigator.onLine && app.state.device && (app.state.pendingCount() > 0 || app.state.photoQueue().count > 0)) runSync(false);
  }, AUTO_SYNC_EVERY_MS);
}

boot();
