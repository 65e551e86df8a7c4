// Browser steps of the field web app's test (tests/field_app_browser.rs runs them in order, and stops and
// starts the server and the CLI client between them). Each step starts Debian's Chromium on the same profile
// folder, drives the app in a 360 px wide phone viewport, prints `RESULT <json>` and kills the browser with
// SIGKILL, as a phone's system would: nothing is closed cleanly.
// DOORSTEP_URL is where the app is loaded from and syncs with: the server, or a team hub. DOORSTEP_HOST_RULES
// maps host names to addresses (Chromium's --host-resolver-rules), and DOORSTEP_BROWSER_HOME is the home folder
// Chromium reads its certificate trust from (NSS, ~/.pki/nssdb), as a phone keeps the certificates installed on it.
//   node field_app.test.mjs enrol|offline|reload-offline|online|reenrol|quota|two-cards|hub-field|hub-task|
//     hub-forwarded|https-hub|https-untrusted|figures
import { chromium } from "playwright-core";
import { decode, encode } from "cborg";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

const base = process.env.DOORSTEP_URL;
const profile = process.env.DOORSTEP_BROWSER_PROFILE;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
const chromiumPath = process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium";
assert.ok(base && profile, "DOORSTEP_URL and DOORSTEP_BROWSER_PROFILE are required");
mkdirSync(artifacts, { recursive: true });
const errors = [];

/** Starts Chromium in its own process group (so the whole browser can be killed at once) and connects to it. */
async function launch() {
  const proc = spawn(chromiumPath, [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // Phones draw scrollbars over the page; desktop Chromium's would take 15 px of the 360.
    "--window-size=360,740", "--hide-scrollbars",
    ...(process.env.DOORSTEP_HOST_RULES ? [`--host-resolver-rules=${process.env.DOORSTEP_HOST_RULES}`] : []),
    "about:blank",
  ], {
    detached: true, stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...(process.env.DOORSTEP_BROWSER_HOME ? { HOME: process.env.DOORSTEP_BROWSER_HOME } : {}) },
  });
  const ws = await new Promise((resolve, reject) => {
    let text = "";
    proc.stderr.on("data", (d) => {
      text += d;
      const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    proc.on("exit", (code) => reject(new Error(`chromium exited with ${code}: ${text}`)));
    setTimeout(() => reject(new Error(`chromium did not start: ${text}`)), 60_000).unref();
  });
  const browser = await chromium.connectOverCDP(ws);
  const context = browser.contexts()[0];
  const page = context.pages()[0] || (await context.newPage());
  await page.setViewportSize({ width: 360, height: 740 });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|net::ERR/.test(m.text())) errors.push(m.text()); });
  const kill = () => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  return { browser, context, page, kill };
}

const shot = (page, name) => page.screenshot({ path: join(artifacts, `field-${name}.png`), fullPage: true });
const ready = (page) => page.waitForSelector("body[data-ready='1']", { timeout: 30_000 });
const pending = async (page) => Number(await page.getAttribute("#pending", "data-count"));

async function openGrid(page, grid) {
  await page.goto(`${base}/field/#/grid/${grid}`);
  await ready(page);
  await page.waitForSelector("#places");
}

/** Every place of a grid as the list shows it. */
async function placeStates(page, grid) {
  await openGrid(page, grid);
  await page.click("[data-filter=all]");
  return page.$$eval("#places a.place", (as) => as.map((a) => ({
    place: a.dataset.place, done: a.dataset.done === "true", needs_revisit: a.dataset.revisit === "true",
    excluded: a.dataset.excluded === "true", reached: a.dataset.reached ? a.dataset.reached.split(",") : [],
    missing: a.dataset.missing ? a.dataset.missing.split(",") : [], visits: Number(a.dataset.visits),
  })));
}

/** Each grid card's figures on the home screen. */
async function gridFigures(page) {
  await page.goto(`${base}/field/#/`);
  await ready(page);
  await page.waitForSelector("#grids .card");
  return page.$$eval("#grids .card", (cards) => Object.fromEntries(cards.map((c) => [c.dataset.grid,
    [...c.querySelectorAll(".figures li")].map((li) => ({
      indicator: li.dataset.indicator, eligible: +li.dataset.eligible, reached: +li.dataset.reached, excluded: +li.dataset.excluded,
    }))])));
}

/** Opens a place from its grid's list (tap 1) and taps a quick button (tap 2); resolves with the visit id. */
async function quickVisit(page, grid, place, quick) {
  await page.click(`#places a.place[data-place="${place}"]`);
  await page.waitForSelector(`#place[data-place="${place}"]`);
  const before = await page.getAttribute("#status", "data-visit");
  await page.click(`[data-quick="${quick}"]`);
  await page.waitForFunction((b) => { const s = document.getElementById("status"); return s.dataset.visit && s.dataset.visit !== b; }, before);
  await page.waitForSelector("#places");
  return page.getAttribute("#status", "data-visit");
}

/** The device id of this enrolment, from the settings screen. */
async function deviceId(page) {
  await page.goto(`${base}/field/#/settings`);
  await ready(page);
  return page.textContent('dd[data-key="device"]');
}

/**
 * Makes every sync request of the page leave with its grids' signatures removed (`unsigned`) or each one's first
 * byte flipped (`forged`), as a tampered app or a meddler on the network would send it.
 */
async function tamperSignatures(page, how) {
  await page.route("**/api/v1/sync", async (route) => {
    const request = route.request();
    const headers = { ...request.headers() };
    let body = request.postDataBuffer();
    if (headers["content-encoding"] === "gzip") body = gunzipSync(body);
    delete headers["content-encoding"];
    delete headers["content-length"];
    const message = decode(new Uint8Array(body));
    for (const grid of message.grids) {
      if (how === "unsigned") grid.signatures = [];
      else for (const s of grid.signatures) s.signature[0] ^= 0xff;
    }
    await route.continue({ headers, postData: Buffer.from(encode(message)) });
  });
}

/** Taps Sync and waits for what the status line then says. */
async function syncSays(page, text) {
  await page.evaluate(() => { document.getElementById("status").textContent = ""; });
  await page.click("#sync");
  await page.waitForFunction((t) => document.getElementById("status").textContent.includes(t), text, { timeout: 30_000 });
  return page.textContent("#status");
}

const durable = (page) => page.evaluate(() => performance.getEntriesByName("doorstep:visit-durable").map((e) => e.duration));

async function noHorizontalScroll(page, what) {
  const [width, visible] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.equal(visible, 360);
  assert.ok(width <= visible, `${what} is ${width} px wide on a ${visible} px screen`);
  const header = await page.$eval("header.top", (e) => e.getBoundingClientRect().height);
  assert.ok(header < 60, `the header fits on one line (${header} px)`);
}

const steps = {
  /** Online at base: the page installs itself, the volunteer enrols, the first sync brings the team's grids. */
  async enrol({ page, context }) {
    // A browser that cannot make the signing key (no Ed25519 in WebCrypto; no WebCrypto at all, as on a plain
    // HTTP address) is told why, and nothing is enrolled.
    for (const [lacks, says] of [["ed25519", "此浏览器不支持 Ed25519 签名"], ["webcrypto", "请通过 HTTPS 地址打开本应用"]]) {
      const old = await context.newPage();
      await old.addInitScript((what) => {
        if (what === "webcrypto") Object.defineProperty(globalThis.crypto, "subtle", { value: undefined });
        else {
          const generate = crypto.subtle.generateKey.bind(crypto.subtle);
          crypto.subtle.generateKey = (alg, ...rest) => (alg?.name === "Ed25519" ? Promise.reject(new DOMException("unsupported", "NotSupportedError")) : generate(alg, ...rest));
        }
      }, lacks);
      await old.goto(`${base}/field/`);
      await ready(old);
      await old.getByLabel("用户名").fill(process.env.DOORSTEP_USERNAME);
      await old.getByLabel("密码").fill(process.env.DOORSTEP_PASSWORD);
      await old.getByRole("button", { name: "登记" }).click();
      await old.waitForFunction((t) => document.getElementById("enrol-message").textContent.includes(t), says);
      await old.close();
    }
    await page.goto(`${base}/field/`);
    await ready(page);
    assert.equal(await page.getAttribute("html", "lang"), "zh-CN", "Chinese by default");
    const manifest = await page.evaluate(async () => (await fetch(document.querySelector("link[rel=manifest]").href)).json());
    assert.equal(manifest.display, "standalone");
    assert.equal(manifest.start_url, "./");
    await page.getByLabel("用户名").fill(process.env.DOORSTEP_USERNAME);
    await page.getByLabel("密码").fill("not the password");
    await page.getByRole("button", { name: "登记" }).click();
    await page.waitForFunction(() => document.getElementById("enrol-message").textContent === "用户名或密码错误。");
    await shot(page, "enrol");
    await page.getByLabel("密码").fill(process.env.DOORSTEP_PASSWORD);
    await page.getByRole("button", { name: "登记" }).click();
    await page.waitForSelector("#grids .card", { timeout: 30_000 });
    await page.waitForSelector("body[data-offline-ready='1']", { timeout: 30_000 });
    assert.equal(await page.evaluate(() => !!navigator.serviceWorker.controller), true, "the service worker controls the page");
    assert.equal(await pending(page), 0);
    // The urgent task comes first, above the grids.
    const order = await page.$$eval("#tasks, #grids", (els) => els.map((e) => e.id));
    assert.deepEqual(order, process.env.DOORSTEP_TASK ? ["tasks", "grids"] : ["grids"]);
    const tasks = await page.$$eval("#tasks a.card", (as) => as.map((a) => ({ id: a.dataset.task, state: a.dataset.state, priority: a.dataset.priority })));
    await noHorizontalScroll(page, "my grids");
    await shot(page, "grids");
    const figures = await gridFigures(page);
    const places = {};
    for (const grid of Object.keys(figures)) places[grid] = await placeStates(page, grid);
    await openGrid(page, "G1");
    await noHorizontalScroll(page, "the place list");
    await shot(page, "places");
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "en");
    assert.equal(await page.textContent("[data-filter=todo]"), "Not yet reached");
    await shot(page, "places-en");
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "zh-CN");
    return { figures, places, tasks };
  },

  /** No network and no server: the app opens from its own cache, visits are recorded, the browser is killed. */
  async offline({ page, context }) {
    await context.setOffline(true);
    await context.grantPermissions(["geolocation"], { origin: base });
    await context.setGeolocation({ latitude: 30.18, longitude: 105.83, accuracy: 12 });
    await openGrid(page, "G1");
    assert.equal(await page.getAttribute("#net", "data-online"), "false");
    await page.click("[data-filter=todo]");
    const todo = await page.$$eval("#places a.place", (as) => as.map((a) => a.dataset.place));
    await page.click("[data-filter=revisit]");
    const revisit = await page.$$eval("#places a.place", (as) => as.map((a) => a.dataset.place));
    await page.click("[data-filter=all]");
    await page.fill("#search", "1组2");
    assert.deepEqual(await page.$$eval("#places a.place", (as) => as.map((a) => a.dataset.place)), ["H2"], "search by label");
    await page.fill("#search", "");

    const visits = {};
    visits.H1 = await quickVisit(page, "G1", "H1", "all");
    visits.H2 = await quickVisit(page, "G1", "H2", "nobody-home");
    assert.equal(await pending(page), 2);

    // A visit with a note, the location and a chosen delivery.
    await page.click('#places a.place[data-place="S1"]');
    await page.waitForSelector('#place[data-place="S1"]');
    const heights = await page.$$eval("[data-quick]", (bs) => bs.map((b) => b.getBoundingClientRect().height));
    assert.ok(heights.every((hgt) => hgt >= 48), `touch targets: ${heights}`);
    await noHorizontalScroll(page, "a place");
    await page.fill("#note", "店主不在，留了手册");
    await page.check("#gps");
    await page.waitForFunction(() => document.getElementById("gps-state").textContent.includes("已定位"));
    await page.click("details.details summary");
    await page.check('input[name=delivery][value=handbook]');
    await shot(page, "place");
    const before = await page.getAttribute("#status", "data-visit");
    await page.click("#save");
    await page.waitForFunction((b) => document.getElementById("status").dataset.visit !== b, before);
    visits.S1 = await page.getAttribute("#status", "data-visit");
    assert.equal(await pending(page), 3, "three visits wait to sync");
    assert.equal(await page.textContent("#status"), "已保存，待同步");
    const durableMs = await durable(page);
    await shot(page, "places-offline");

    // The urgent task, offline: opened (signed for as opened), an inconsistent outcome refused, then recorded.
    const task = process.env.DOORSTEP_TASK;
    await page.goto(`${base}/field/#/`);
    await page.click(`#tasks a.card[data-task="${task}"]`);
    await page.waitForSelector(`#task[data-task="${task}"]`);
    await page.check('input[name=method][value=phone]');
    await page.check("input[name=dissuaded]");
    await page.click("#save-outcome");
    await page.waitForFunction(() => document.getElementById("outcome-message").textContent.includes("未联系上本人"));
    await page.check("input[name=reached]");
    await page.fill("#feedback", "电话联系上，已劝阻转账");
    await page.click("#save-outcome");
    await page.waitForSelector("#outcomes li");
    assert.equal(await page.getAttribute("#task", "data-state"), "done");
    await noHorizontalScroll(page, "a task");
    await shot(page, "task");
    assert.equal(await pending(page), 5, "three visits, the task's opening and its outcome wait to sync");
    return { visits, todo, revisit, durable_ms: durableMs, places: { G1: await placeStates(page, "G1") } };
  },

  /** The browser was killed; with no network the app opens again and every visit is still there. */
  async "reload-offline"({ page, context }) {
    await context.setOffline(true);
    await page.goto(`${base}/field/#/place/G1/S1`);
    await ready(page);
    await page.waitForSelector("#place");
    assert.equal(await pending(page), 5, "the visits and the task's records survived the killed browser");
    const s1 = await page.$$eval("#history li", (lis) => lis.map((li) => ({ id: li.dataset.visit, pending: li.dataset.pending, text: li.textContent })));
    assert.equal(s1.length, 1);
    assert.equal(s1[0].pending, "true");
    assert.ok(s1[0].text.includes("店主不在，留了手册") && s1[0].text.includes("GPS 30.18000, 105.83000"), s1[0].text);
    await page.reload();
    await ready(page);
    assert.equal(await pending(page), 5, "a reload with no network keeps them too");
    await page.click("#sync");
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("连不上服务器"));
    assert.equal(await pending(page), 5);
    await shot(page, "offline-reload");
    // Drawn from the grid's view cache and the visits logged since, before the automerge core has loaded it.
    const places = { G1: await placeStates(page, "G1") };
    return { s1_visit: s1[0].id, places };
  },

  /** Back online: the app syncs by itself and shows the team-mate's concurrent visits too. */
  async online({ page }) {
    await page.goto(`${base}/field/`);
    await ready(page);
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    await page.goto(`${base}/field/#/place/G1/H1`);
    await page.waitForSelector("#history li");
    const h1 = await page.$$eval("#history li", (lis) => lis.map((li) => ({ id: li.dataset.visit, outcome: li.dataset.outcome, pending: li.dataset.pending })));
    assert.ok(h1.every((v) => v.pending === "false"), "nothing waits to sync");
    await shot(page, "synced");
    const places = {};
    for (const grid of ["G1", "G2"]) places[grid] = await placeStates(page, grid);
    return { h1, places, figures: await gridFigures(page) };
  },

  /**
   * Enrolled again while records wait to sync (the sync endpoint is blocked): a visit, a found place and a visit
   * to it, a correction and a task outcome are all carried over to the new enrolment and delivered under it once
   * sync works again.
   */
  async reenrol({ page }) {
    const before = await deviceId(page);
    await page.route("**/api/v1/sync", (route) => route.abort("internetdisconnected"));
    await openGrid(page, "G1");
    const visit = await quickVisit(page, "G1", "H2", "nobody-home");
    await page.click("#add-place");
    await page.fill("#place-label", "1组10号（新建）");
    await page.click("#save-place");
    await page.waitForSelector("#place #provisional");
    const found = await page.getAttribute("#place", "data-place");
    const beforeFound = await page.getAttribute("#status", "data-visit");
    await page.click('[data-quick="all"]');
    await page.waitForFunction((b) => document.getElementById("status").dataset.visit !== b, beforeFound);
    const foundVisit = await page.getAttribute("#status", "data-visit");
    await page.goto(`${base}/field/#/place/G1/H1`);
    await page.waitForSelector('#place[data-place="H1"]');
    await page.click("#correct summary");
    await page.fill("#correct-address", "龙凤村1组1号（桥边）");
    await page.click("#save-correction");
    await page.waitForSelector("#corrections li");
    const task = process.env.DOORSTEP_TASK;
    await page.goto(`${base}/field/#/task/${task}`);
    await page.waitForSelector(`#task[data-task="${task}"]`);
    const outcomes = await page.$$eval("#outcomes li", (lis) => lis.length);
    await page.check("input[name=reached]");
    await page.fill("#feedback", "回访：本人确认未再转账");
    await page.click("#save-outcome");
    await page.waitForFunction((n) => document.querySelectorAll("#outcomes li").length === n + 1, outcomes);
    assert.equal(await pending(page), 5, "two visits, the found place, the correction and the outcome wait to sync");

    await page.goto(`${base}/field/#/settings`);
    page.once("dialog", (d) => d.accept());
    await page.click("#reenrol");
    await page.waitForSelector("#enrol-form");
    await page.getByLabel("用户名").fill(process.env.DOORSTEP_USERNAME);
    await page.getByLabel("密码").fill(process.env.DOORSTEP_PASSWORD);
    await page.getByRole("button", { name: "登记" }).click();
    // Enrolled; the sync that follows cannot get through, and both records are set aside, not lost.
    await page.waitForSelector("p.notice", { timeout: 30_000 });
    const notices = await page.$$eval("p.notice", (ps) => ps.map((p) => p.textContent));
    assert.ok(notices.some((n) => n.startsWith("4 条记录")) && notices.some((n) => n.startsWith("1 条紧急任务")), `${notices}`);
    assert.equal(await pending(page), 5);
    await shot(page, "reenrol-carried");

    await page.unroute("**/api/v1/sync");
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    // Nothing is carried any more. The count drops as the sync ends; the screen is drawn again only after the
    // campaign's rules are read anew (up to 4 s), so wait for the notices to go.
    await page.waitForSelector("p.notice", { state: "detached", timeout: 30_000 });
    await page.goto(`${base}/field/#/task/${task}`);
    await page.waitForSelector(`#task[data-task="${task}"]`);
    assert.equal(await page.$$eval("#outcomes li", (lis) => lis.length), outcomes + 1);
    // Opened again under the new enrolment (signed for once per device), and sent before the next step. The count
    // shows the sign-for only once it is on disk: until then "0" is already there and would pass for the sync's.
    await page.waitForSelector("#pending[data-count='1']", { timeout: 30_000 });
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    return { before, after: await deviceId(page), visit, found, found_visit: foundVisit };
  },

  /** A full phone: the visit is refused with a clear message and nothing recorded before is lost. */
  async quota({ page, context }) {
    // Less room than the app already uses, set before the app touches its storage in this browser (Chromium
    // checks the quota when a site's storage is first opened, and then only now and then).
    await context.setOffline(true);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: base, quotaSize: 1024 });
    await page.goto(`${base}/field/#/place/G1/H2`);
    await ready(page);
    await page.waitForSelector("#place");
    const before = await page.$$eval("#history li", (lis) => lis.length);
    assert.equal(await pending(page), 0, "the earlier steps left nothing waiting to sync");
    await page.click('[data-quick="nobody-home"]');
    await page.waitForFunction(() => document.getElementById("visit-message")?.textContent.includes("存储空间已满"), null, { timeout: 30_000 });
    const message = await page.textContent("#visit-message");
    assert.equal(await pending(page), 0);
    assert.equal(await page.$$eval("#history li", (lis) => lis.length), before, "nothing is shown as saved");
    await shot(page, "storage-full");
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: base });
    await page.reload();
    await ready(page);
    await page.waitForSelector("#place");
    assert.equal(await page.$$eval("#history li", (lis) => lis.length), before, "the refused visit is not there, the others are");
    await page.click('[data-quick="nobody-home"]');
    await page.waitForSelector("#places");
    assert.equal(await pending(page), 1);
    await context.setOffline(false);
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    return { message, before };
  },

  /**
   * While the app is open, the office applies a new campaign version (outlets, 营业网点, post the two-cards notice)
   * and imports an outlet, O1, into G1: after its next sync the app counts with the new rules. It names the outlet's kind and offers the new delivery there, not at a household; a visit with it,
   * recorded offline, reaches the new indicator and syncs.
   */
  async "two-cards"({ page, context }) {
    // The app is open before the office applies the campaign; it counts with the new version after a sync.
    await page.goto(`${base}/field/`);
    await ready(page);
    // Until the second sync below, the rules cannot be read again (the network fails just then; the service
    // worker answers with the rules it cached at start), whatever syncs the app starts by itself meanwhile.
    // Routed on the context, which sees the service worker's requests too.
    await context.route("**/rules.json", (route) => route.abort("internetdisconnected"));
    const markers = process.env.DOORSTEP_MARKERS;
    writeFileSync(`${markers}/app-open`, "");
    for (const end = Date.now() + 60_000; !existsSync(`${markers}/applied`); await page.waitForTimeout(100)) {
      assert.ok(Date.now() < end, "the office applies the campaign");
    }
    // The outlet arrives with the grid, and the app, which does not know its kind yet, says so rather than
    // calling it done.
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    await openGrid(page, "G1");
    await page.waitForSelector('#places a.place[data-place="O1"]');
    const unknown = (await page.textContent('#places a.place[data-place="O1"] .status')).trim();
    await context.unroute("**/rules.json");
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    await openGrid(page, "G1");
    await page.waitForSelector('#places a.place[data-place="O1"] .status:not(.new-kind)', { timeout: 30_000 });
    const kind = (await page.textContent('#places a.place[data-place="O1"] .place-title .muted')).trim();
    const offered = {};
    for (const place of ["H1", "O1"]) {
      await page.goto(`${base}/field/#/place/G1/${place}`);
      await page.waitForSelector(`#place[data-place="${place}"]`);
      offered[place] = await page.$$eval("input[name=delivery]", (is) => is.map((i) => i.parentElement.textContent));
    }
    // At O1, with no network.
    await context.setOffline(true);
    await page.click("details.details summary");
    await page.getByLabel("张贴两卡通告").check();
    // The campaign asks for a photo of the notice (`photo_required`): one taken with the camera (a JPEG drawn here).
    const photo = await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(800, 600);
      canvas.getContext("2d").fillRect(100, 100, 300, 200);
      return [...new Uint8Array(await (await canvas.convertToBlob({ type: "image/jpeg" })).arrayBuffer())];
    });
    await page.setInputFiles("#photo-input", { name: "notice.jpg", mimeType: "image/jpeg", buffer: Buffer.from(photo) });
    await page.waitForSelector("#photo-draft[data-count='1'][data-busy='false']");
    await shot(page, "two-cards");
    await page.click("#save");
    await page.waitForSelector("#places");
    assert.equal(await pending(page), 1);
    const o1 = (await placeStates(page, "G1")).find((p) => p.place === "O1");
    await context.setOffline(false);
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    return { unknown, kind, offered, o1, figures: await gridFigures(page) };
  },

  /**
   * Loaded from the team hub with the server down: visits, a place found in the field (with a visit) and a
   * correction are recorded and synced with the hub; a push whose signatures were removed or altered is refused
   * by the hub and loses nothing.
   */
  async "hub-field"({ page, context }) {
    await context.grantPermissions(["geolocation"], { origin: base });
    await context.setGeolocation({ latitude: 30.181, longitude: 105.832, accuracy: 8 });
    const device = await deviceId(page);
    // Held back until the tampering below: the hub checks only changes new to it.
    await page.route("**/api/v1/sync", (route) => route.abort("internetdisconnected"));
    await openGrid(page, "G1");
    const visits = {};
    visits.H1 = await quickVisit(page, "G1", "H1", "all");
    visits.H2 = await quickVisit(page, "G1", "H2", "nobody-home");

    // A house the registry lacks: added, then visited, all offline from the server.
    await page.click("#add-place");
    await page.waitForSelector("#add-place-form");
    await page.click("#save-place");
    await page.waitForFunction(() => document.getElementById("add-place-message").textContent === "请填写名称。");
    await page.selectOption("#place-kind", "household");
    await page.fill("#place-label", "1组9号（新建）");
    await page.fill("#place-address", "龙凤村1组9号");
    await page.check("#gps");
    await page.waitForFunction(() => document.getElementById("gps-state").textContent.includes("已定位"));
    await noHorizontalScroll(page, "the new place form");
    await shot(page, "add-place");
    await page.click("#save-place");
    await page.waitForSelector("#place #provisional");
    const found = await page.getAttribute("#place", "data-place");
    assert.match(found, /^F-[0-9a-f-]{36}$/);
    const before = await page.getAttribute("#status", "data-visit");
    await page.click('[data-quick="all"]');
    await page.waitForFunction((b) => { const s = document.getElementById("status"); return s.dataset.visit && s.dataset.visit !== b; }, before);
    visits.found = await page.getAttribute("#status", "data-visit");
    await page.waitForSelector(`#places a.place[data-place="${found}"][data-provisional="true"]`);

    // A correction of H3's name.
    await page.goto(`${base}/field/#/place/G1/H3`);
    await page.waitForSelector('#place[data-place="H3"]');
    await page.click("#correct summary");
    await page.click("#save-correction");
    await page.waitForFunction(() => document.getElementById("correct-message").textContent.includes("请填写正确的名称或地址"));
    await page.fill("#correct-label", "1组3号（张家）");
    await page.click("#save-correction");
    await page.waitForSelector('#corrections li[data-review=""]');
    await shot(page, "correction");
    assert.equal(await pending(page), 5, "three visits, the found place and the correction");

    // Signatures removed or altered on the way: the hub refuses the whole push; the phone keeps everything.
    await page.unroute("**/api/v1/sync");
    await tamperSignatures(page, "unsigned");
    const unsigned = await syncSays(page, "同步失败");
    await page.unroute("**/api/v1/sync");
    await tamperSignatures(page, "forged");
    const forged = await syncSays(page, "同步失败");
    await page.unroute("**/api/v1/sync");
    assert.equal(await pending(page), 5);

    // As sent: the hub takes everything; none of it is at the server yet.
    const synced = await syncSays(page, "已与中转设备同步");
    assert.equal(await pending(page), 5, "not at the server until the hub forwards it");
    await shot(page, "hub-synced");
    return { device, visits, found, unsigned, forged, synced, places: { G1: await placeStates(page, "G1") } };
  },

  /**
   * An urgent task through the hub: it arrives and is signed for, is opened and gets an outcome, and goes back to
   * the hub, signed by the phone; none of it is at the server until the hub forwards it.
   */
  async "hub-task"({ page }) {
    const task = process.env.DOORSTEP_TASK;
    await page.goto(`${base}/field/`);
    await ready(page);
    await syncSays(page, "已与中转设备同步");
    await page.waitForSelector(`#tasks a.card[data-task="${task}"]`);
    await page.click(`#tasks a.card[data-task="${task}"]`);
    await page.waitForSelector(`#task[data-task="${task}"]`);
    await page.check("input[name=method][value=face-to-face]");
    await page.check("input[name=reached]");
    await page.check("input[name=dissuaded]");
    await page.fill("#feedback", "上门劝阻成功");
    await page.click("#save-outcome");
    await page.waitForSelector("#outcomes li");
    await page.goto(`${base}/field/`);
    await ready(page);
    const status = await syncSays(page, "已与中转设备同步");
    await shot(page, "hub-task");
    return { status, pending: await pending(page), device: await deviceId(page) };
  },

  /** The hub forwarded everything and brought back the office's review: the next sync with it confirms all. */
  async "hub-forwarded"({ page }) {
    await page.goto(`${base}/field/`);
    await ready(page);
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    const found = process.env.DOORSTEP_FOUND;
    await openGrid(page, "G1");
    const provisional = await page.getAttribute(`#places a.place[data-place="${found}"]`, "data-provisional");
    const h3 = await page.textContent('#places a.place[data-place="H3"] .place-title strong');
    const places = {};
    for (const grid of ["G1", "G2"]) places[grid] = await placeStates(page, grid);
    await page.goto(`${base}/field/`);
    await ready(page);
    const tasks = await page.$$eval("#tasks a.card", (as) => as.map((a) => a.dataset.task));
    return { provisional, h3, places, figures: await gridFigures(page), tasks };
  },

  /**
   * A phone that installed the Doorstep CA opens the app from the team hub over HTTPS, at a name that is not
   * localhost: the page is a secure context (service worker, WebCrypto Ed25519), shows the CA's fingerprint,
   * enrols through the hub, records a visit and syncs it with the hub.
   */
  async "https-hub"({ page }) {
    await page.goto(`${base}/field/`);
    await ready(page);
    const context = await page.evaluate(async () => {
      let ed25519 = false;
      try {
        await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
        ed25519 = true;
      } catch {
        // reported below
      }
      return { secure: window.isSecureContext, host: location.hostname, protocol: location.protocol, ed25519 };
    });
    await page.waitForSelector("#ca:not([hidden])");
    const ca = { name: await page.textContent("#ca-name"), sha256: await page.textContent("#ca-sha256") };
    const download = await page.evaluate(async () => (await fetch(document.getElementById("ca-download").href)).text());
    await shot(page, "https-enrol");
    await page.getByLabel("用户名").fill(process.env.DOORSTEP_USERNAME);
    await page.getByLabel("密码").fill(process.env.DOORSTEP_PASSWORD);
    await page.getByRole("button", { name: "登记" }).click();
    await page.waitForSelector("#grids .card", { timeout: 30_000 });
    await page.waitForSelector("body[data-offline-ready='1']", { timeout: 30_000 });
    const worker = await page.evaluate(() => !!navigator.serviceWorker.controller);
    await openGrid(page, "G1");
    const visit = await quickVisit(page, "G1", "H1", "all");
    const synced = await syncSays(page, "已与中转设备同步");
    await shot(page, "https-synced");
    return { ...context, ca, download, worker, visit, synced, device: await deviceId(page) };
  },

  /** A phone without the Doorstep CA installed: the browser refuses the hub's certificate. */
  async "https-untrusted"({ page }) {
    const error = await page.goto(`${base}/field/`).then(() => null, (e) => String(e));
    return { error };
  },

  /**
   * Figures for docs/benchmarks.md, offline with a large grid: opening the grid (from navigation to its place list
   * drawn, the app's own `doorstep:grid-open` measure), first after the browser started and then on reloads; and
   * recording visits until they are on disk (`doorstep:visit-durable`).
   */
  async figures({ page, context }) {
    await context.setOffline(true);
    const grid = process.env.DOORSTEP_BENCH_GRID || "G1";
    const opens = [];
    for (let i = 0; i < Number(process.env.DOORSTEP_BENCH_OPENS || 8); i++) {
      await page.goto("about:blank");
      await page.goto(`${base}/field/#/grid/${grid}`);
      await page.waitForSelector("#places a.place");
      await page.waitForFunction(() => performance.getEntriesByName("doorstep:grid-open").length > 0);
      opens.push(await page.evaluate(() => Object.fromEntries(["doorstep:wasm-ready", "doorstep:state-loaded", "doorstep:grid-open"]
        .map((n) => [n.slice(9), Math.round(performance.getEntriesByName(n)[0][n.endsWith("open") ? "duration" : "startTime"])]))));
    }
    const places = await page.$$eval("#places a.place", (as) => as.map((a) => a.dataset.place));
    const durableMs = [];
    for (let i = 0; i < Number(process.env.DOORSTEP_BENCH_VISITS || 30); i++) {
      await page.click(`#places a.place[data-place="${places[(i * 7) % places.length]}"]`);
      await page.waitForSelector("#place");
      await page.click('[data-quick="nobody-home"]');
      await page.waitForSelector("#places");
      durableMs.push(...(await durable(page)));
      await page.evaluate(() => performance.clearMeasures("doorstep:visit-durable"));
    }
    const visits = await page.evaluate(() => document.querySelectorAll("#places a.place").length);
    return { places: visits, grid_open_ms: opens, visit_durable_ms: durableMs, pending: await pending(page) };
  },
};

const step = process.argv[2];
assert.ok(steps[step], `unknown step ${step}`);
const b = await launch();
let result;
try {
  result = await steps[step](b);
} catch (e) {
  await shot(b.page, `failed-${step}`).catch(() => {});
  b.kill();
  throw e;
}
b.kill();
assert.deepEqual(errors, [], "no script errors on the page");
console.log(`RESULT ${JSON.stringify(result)}`);
