// Browser test of bulletins (通报) in the field web app: real headless Chromium (a 360 px phone) against a running
// doorstep server (started and filled by tests/bulletins_browser.rs). The office publishes with the HTTP API an
// urgent bulletin with a PNG and a PDF attachment, to everyone, and talking points. The phone enrols and syncs:
// the urgent bulletin is a banner at the top and the unread count says 2; the attachments download in the
// background, the PNG resuming with `Range` after a download cut short, the PDF downloaded again after a copy whose
// SHA-256 did not check. Offline, the volunteer reads the bulletin (body as text, bold and list lines, no HTML
// from the document; the image shown; the PDF a link to the stored file), marks it read (已阅), reloads (the
// receipt survives, counted as pending), goes online: the server lists the volunteer as a reader. The visit screen
// shows the talking points folded; once withdrawn they are gone after the next sync; a correction of the urgent
// bulletin shows as unread again. Through a team hub (steps hub-publish, hub-enrol, hub-read, hub-confirmed, run
// in turn while the test stops and starts the server): the hub serves the attachments from its cache with the
// server down, takes the receipt, and the phone counts it pending until the server's signed statement, brought
// back by the hub, confirms it. DOORSTEP_STEP names the step (default `server`, the day against the server).
// Prints `RESULT <json>`; screenshots go to test-artifacts/bulletins-*.png.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";

const base = process.env.DOORSTEP_URL;
// Where the office publishes and reads receipts: the server, also when the phone's app comes from a hub.
const server = process.env.DOORSTEP_SERVER_URL || base;
const password = process.env.DOORSTEP_PASSWORD;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
const chromiumPath = process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium";
assert.ok(base && password, "DOORSTEP_URL and DOORSTEP_PASSWORD are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `bulletins-${name}.png`), fullPage: true });
const errors = [];

// ---------- the office, through the HTTP API ----------

async function login(username) {
  const r = await fetch(`${server}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, `login ${username}`);
  return (await r.json()).token;
}

async function api(token, method, path, body, headers = {}) {
  const init = { method, headers: { authorization: `Bearer ${token}`, ...headers } };
  if (body instanceof Uint8Array) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const r = await fetch(server + path, init);
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A real PNG: `size`×`size` pixels in one colour, with a gradient so it is not tiny. */
function png(size) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, "ascii"), data])), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  const rows = [];
  for (let y = 0; y < size; y++) {
    rows.push(0);
    for (let x = 0; x < size; x++) rows.push(185, (x * 7 + y * 13) % 256, (x * y) % 256);
  }
  return new Uint8Array(Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.from(rows), { level: 0 })), chunk("IEND", Buffer.alloc(0)),
  ]));
}

/** A minimal one-page PDF. */
function pdf() {
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
  ];
  let text = "%PDF-1.4\n";
  const offsets = objects.map((o, i) => {
    const at = text.length;
    text += `${i + 1} 0 obj\n${o}\nendobj\n`;
    return at;
  });
  const xref = text.length;
  text += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  text += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(text);
}

// ---------- the phone ----------

async function launch(profile) {
  const proc = spawn(chromiumPath, [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=360,740", "--hide-scrollbars", "about:blank",
  ], { detached: true, stdio: ["ignore", "ignore", "pipe"] });
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
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|net::ERR/.test(m.text())) errors.push(m.text());
  });
  const kill = () => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  return { context, page, kill };
}

const ready = (page) => page.waitForSelector("body[data-ready='1']", { timeout: 30_000 });
const pending = async (page) => Number(await page.getAttribute("#pending", "data-count"));

async function open(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => document.getElementById("app").dataset.route === h, hash);
}

/** Nothing is wider than the phone's 360 px screen. */
async function fitsTheScreen(page, what) {
  const [width, visible] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(width <= visible, `${what} is ${width} px wide on a ${visible} px screen`);
}

/** Waits until the app ended `n` passes of attachment downloads since the page loaded. */
const downloadPasses = (page, n) =>
  page.waitForFunction((n) => Number(document.body.dataset.downloads || 0) >= n, n, { timeout: 30_000 });

/** Taps Sync and waits until the sync is over. */
async function sync(page) {
  await page.click("#sync");
  await page.waitForFunction(() => !document.getElementById("sync").disabled, null, { timeout: 30_000 });
}

/** The office publishes, through the HTTP API: an urgent fraud method with a PNG and a PDF, and talking points. */
async function publish() {
  const office = await login("office");
  const image = png(64);
  const document_ = pdf();
  const pngBlob = await api(office, "POST", "/api/v1/blobs?name=%E8%AD%A6%E7%A4%BA.png", image, { "content-type": "application/octet-stream" });
  const pdfBlob = await api(office, "POST", "/api/v1/blobs?name=leaflet.pdf", document_, { "content-type": "application/octet-stream" });
  assert.equal(pngBlob.type, "image/png");
  assert.equal(pdfBlob.type, "application/pdf");
  const body = "冒充公检法来电，要求转账到“安全账户”。\n**公检法不会电话办案。**\n- 不转账\n- 挂断后拨打 110\n<img src=x onerror=alert(1)>";
  const urgentFields = {
    title: "紧急：冒充公检法诈骗新手法", body, kind: "fraud_method", fraud_type: "impersonation", priority: "urgent",
    audience: { everyone: true }, attachments: [{ sha256: pngBlob.sha256, name: "警示.png" }, { sha256: pdfBlob.sha256, name: "leaflet.pdf" }],
  };
  const urgent = await api(office, "POST", "/api/v1/bulletins", urgentFields);
  const points = await api(office, "POST", "/api/v1/bulletins", {
    title: "本周入户宣讲要点", body: "- 先问家里老人是否接到陌生来电\n- **任何要求转账的电话都是诈骗**", kind: "talking_points",
    priority: "normal", audience: { everyone: true }, attachments: [],
  });
  assert.equal(urgent.edition, 1);
  return { office, image, document_, pngBlob, pdfBlob, body, urgentFields, urgent, points };
}

/** The whole day against the server: see the top of this file. */
async function atServer({ context, page }) {
  const { office, image, document_, pngBlob, pdfBlob, body, urgentFields, urgent, points } = await publish();
  const result = {};
  // The attachments' downloads, as the server sees them: the PNG's first is cut short half way (the phone keeps
  // the half and asks for the rest with Range next time), the PDF's first arrives with a wrong byte (the phone
  // discards it and downloads it whole again next time).
  const seen = { png: [], pdf: [] };
  await context.route("**/api/v1/blobs/*", async (route) => {
    const request = route.request();
    const sha = new URL(request.url()).pathname.split("/").pop();
    const which = sha === pngBlob.sha256 ? "png" : sha === pdfBlob.sha256 ? "pdf" : null;
    if (!which || request.method() !== "GET") return route.continue();
    const headers = request.headers();
    seen[which].push({ range: headers.range || null, auth: (headers.authorization || "").startsWith("Bearer ") });
    if (seen[which].length === 1 && which === "png") {
      return route.fulfill({ status: 200, contentType: "image/png", body: Buffer.from(image.subarray(0, image.length >> 1)) });
    }
    if (seen[which].length === 1 && which === "pdf") {
      const wrong = Buffer.from(document_);
      wrong[20] ^= 0xff;
      return route.fulfill({ status: 200, contentType: "application/pdf", body: wrong });
    }
    return route.continue();
  });

  await enrol(page);

  // Home: the urgent bulletin first, as a banner, then the unread ones, urgent first; 2 unread.
  await page.waitForSelector("#urgent-bulletin");
  assert.equal(await page.getAttribute("#urgent-bulletin", "data-bulletin"), urgent.id);
  const order = await page.$$eval("#app > section > *", (els) => els.map((e) => e.id).filter(Boolean));
  assert.equal(order[0], "urgent-bulletin", `the banner is at the top: ${order}`);
  assert.equal(await page.getAttribute("#unread-count", "data-count"), "2");
  result.unread_order = await page.$$eval("#bulletins a.card", (as) => as.map((a) => a.dataset.bulletin));
  assert.deepEqual(result.unread_order, [urgent.id, points.id], "urgent first");
  await fitsTheScreen(page, "the home screen");
  await shot(page, "home");

  // The first downloads failed as arranged; the next sync resumes the PNG and downloads the PDF again.
  const downloadsDone = (n) => downloadPasses(page, n);
  await downloadsDone(1);
  assert.deepEqual(seen.png, [{ range: null, auth: true }]);
  assert.deepEqual(seen.pdf, [{ range: null, auth: true }]);
  // A reminder valid for a few seconds comes with the next sync; once expired the phone hides it by itself.
  const expiring = await api(office, "POST", "/api/v1/bulletins", {
    title: "今晚停电提醒", body: "今晚 8 点后停电，入户请带手电。", kind: "reminder", priority: "normal",
    audience: { everyone: true }, expires_at: Date.now() + 15_000, attachments: [],
  });
  await sync(page);
  await downloadsDone(2);
  await page.waitForSelector(`#bulletins a.card[data-bulletin="${expiring.id}"]`);
  assert.deepEqual(seen.png[1], { range: `bytes=${image.length >> 1}-`, auth: true }, "the PNG resumes where it broke off");
  assert.deepEqual(seen.pdf[1], { range: null, auth: true }, "the PDF that did not check is downloaded whole again");
  result.downloads = seen;

  // Offline from here: the bulletin opens with its image from the phone's store.
  await context.setOffline(true);
  await page.click("#urgent-bulletin");
  await page.waitForSelector(`#bulletin[data-bulletin="${urgent.id}"]`);
  await page.waitForSelector(`li.attachment[data-sha256="${pngBlob.sha256}"][data-stored="true"] img`, { timeout: 10_000 });
  const shown = await page.$eval("li.attachment img", (img) => ({ width: img.naturalWidth, src: img.src.slice(0, 22) }));
  assert.deepEqual(shown, { width: 64, src: "data:image/png;base64," }, "the image is shown from the stored file");
  const pdfHref = await page.getAttribute(`li.attachment[data-sha256="${pdfBlob.sha256}"] a[data-pdf]`, "href");
  assert.ok(pdfHref.startsWith("blob:"), pdfHref);
  // The stored copy is the file published (the page's CSP lets no script fetch a blob: URL; its store it may read).
  const stored = await page.evaluate((sha) => new Promise((resolve, reject) => {
    const req = indexedDB.open("doorstep-field");
    req.onsuccess = () => {
      const get = req.result.transaction("blobs").objectStore("blobs").get(sha);
      get.onsuccess = async () => resolve({ complete: get.result.complete, bytes: [...new Uint8Array(await get.result.blob.arrayBuffer())] });
      get.onerror = () => reject(get.error);
    };
  }), pdfBlob.sha256);
  assert.deepEqual(stored, { complete: true, bytes: [...document_] });
  const [tab] = await Promise.all([context.waitForEvent("page"), page.click("a[data-pdf]")]);
  assert.equal(tab.url(), pdfHref, "the PDF link opens the stored file");
  await tab.close();
  assert.equal(await page.textContent("#bulletin-title"), urgentFields.title);
  assert.equal(await page.textContent("#bulletin-kind"), "诈骗手法");
  assert.ok((await page.textContent("#bulletin-edition")).includes("1"));
  assert.ok(await page.$("#bulletin-fraud-type"));
  const rendered = await page.$eval(".bulletin-body", (b) => ({
    bold: [...b.querySelectorAll("strong")].map((s) => s.textContent),
    items: [...b.querySelectorAll("li")].map((li) => li.textContent),
    html: b.querySelectorAll("img, script").length,
    text: b.textContent,
  }));
  assert.deepEqual(rendered.bold, ["公检法不会电话办案。"]);
  assert.deepEqual(rendered.items, ["不转账", "挂断后拨打 110"]);
  assert.equal(rendered.html, 0, "nothing of the body becomes HTML");
  assert.ok(rendered.text.includes("<img src=x onerror=alert(1)>"), "markup in the body shows as text");
  await fitsTheScreen(page, "the bulletin");
  await shot(page, "bulletin");

  // 已阅, offline: on disk before the screen says so; pending until the server confirms it.
  assert.equal(await pending(page), 0);
  await page.click("#mark-read");
  await page.waitForSelector("#read-mark");
  assert.equal(await page.getAttribute("#status", "data-read"), urgent.id);
  assert.equal(await pending(page), 1);
  await shot(page, "read-offline");

  // Reloaded with no network: the receipt is there, still pending; the banner is gone, one bulletin unread.
  await page.reload();
  await ready(page);
  await page.waitForSelector("#read-mark");
  assert.equal(await page.getAttribute("#bulletin", "data-pending"), "true");
  assert.equal(await pending(page), 1);
  await page.waitForTimeout(Math.max(0, expiring.expires_at + 500 - Date.now()));
  await open(page, "#/");
  assert.equal(await page.$(`a.card[data-bulletin="${expiring.id}"]`), null, "an expired bulletin is hidden, offline too");
  assert.equal(await page.$("#urgent-bulletin"), null, "a read urgent bulletin is no banner");
  assert.equal(await page.getAttribute("#unread-count", "data-count"), "1");

  // The visit screen: the current talking points, folded.
  await open(page, "#/place/G1/H1");
  await page.waitForSelector("#talking-points");
  assert.equal(await page.getAttribute("#talking-points", "open"), null, "folded");
  await page.click("#talking-points summary");
  assert.ok((await page.textContent("#talking-points")).includes("任何要求转账的电话都是诈骗"));
  await shot(page, "talking-points");

  // Online again: the app syncs by itself; the receipt reaches the server.
  await context.setOffline(false);
  await page.waitForFunction(() => document.getElementById("pending").dataset.count === "0", null, { timeout: 30_000 });
  const receipts = await api(office, "GET", `/api/v1/bulletins/${urgent.id}/receipts`);
  result.readers = receipts.readers;
  assert.ok(receipts.readers.some((r) => r.username === "amy" && r.edition === 1), JSON.stringify(receipts));

  // Withdrawn talking points disappear after the next sync.
  await api(office, "POST", `/api/v1/bulletins/${points.id}/withdraw`);
  await sync(page);
  await open(page, "#/place/G1/H1");
  await page.waitForSelector("#place");
  assert.equal(await page.$("#talking-points"), null, "withdrawn talking points are gone");
  await open(page, "#/bulletins");
  result.after_withdrawal = await page.$$eval("#bulletin-list a.card", (as) => as.map((a) => a.dataset.bulletin));
  assert.deepEqual(result.after_withdrawal, [urgent.id]);
  result.held = await page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open("doorstep-field");
    req.onsuccess = () => {
      const get = req.result.transaction("docs").objectStore("docs").getAllKeys();
      get.onsuccess = () => resolve(get.result);
      get.onerror = () => reject(get.error);
    };
  }));
  // (The expired reminder goes once the server's minutely check has withdrawn it.)
  assert.ok(result.held.includes(`bulletin/${urgent.id}`), JSON.stringify(result.held));
  assert.ok(!result.held.includes(`bulletin/${points.id}`), "the withdrawn bulletin is deleted from the phone");

  // A correction (edition 2) of the bulletin read shows as unread again, as the urgent banner.
  await api(office, "PUT", `/api/v1/bulletins/${urgent.id}`, { ...urgentFields, body: `${body}\n更正：请拨打 110 或 96110。` });
  await sync(page);
  await open(page, "#/");
  await page.waitForSelector("#urgent-bulletin");
  assert.equal(await page.getAttribute("#unread-count", "data-count"), "1");
  assert.equal(await page.getAttribute(`#bulletins a.card[data-bulletin="${urgent.id}"]`, "data-edition"), "2");
  await page.click("#urgent-bulletin");
  await page.waitForSelector("#mark-read");
  assert.ok((await page.textContent(".bulletin-body")).includes("96110"));
  assert.ok((await page.textContent("#bulletin-corrected")).includes("第 1 版"), "read before the correction");
  await shot(page, "corrected");

  // English on request.
  await page.click("#lang");
  await page.waitForSelector("#mark-read");
  assert.equal((await page.textContent("#mark-read")).trim(), "✓ Mark read");
  await page.click("#lang");

  // Read (edition 2) while the server is out of reach, then the phone is enrolled again: the receipt is carried
  // over, written again under the new enrolment, and reaches the server.
  await page.route("**/api/v1/sync", (route) => route.abort("internetdisconnected"));
  await page.click("#mark-read");
  await page.waitForSelector("#read-mark");
  assert.equal(await pending(page), 1);
  await open(page, "#/settings");
  page.once("dialog", (d) => d.accept());
  await page.click("#reenrol");
  await page.waitForSelector("#enrol-form");
  await page.unroute("**/api/v1/sync");
  await page.getByLabel("用户名").fill("amy");
  await page.getByLabel("密码").fill(password);
  await page.getByRole("button", { name: "登记" }).click();
  await page.waitForSelector("#grids .card", { timeout: 30_000 });
  await page.waitForFunction(() => document.getElementById("pending").dataset.count === "0", null, { timeout: 30_000 });
  const again = await api(office, "GET", `/api/v1/bulletins/${urgent.id}/receipts`);
  result.readers_after_reenrol = again.readers;
  assert.ok(again.readers.some((r) => r.username === "amy" && r.edition === 2), JSON.stringify(again));
  await open(page, "#/");
  assert.equal(await page.$("#urgent-bulletin"), null, "read on this phone before it was enrolled again");

  return { ...result, urgent: urgent.id, points: points.id };
}
/** Enrols the phone with the app loaded from `base` (the server, or a hub that passes enrolment on). */
async function enrol(page) {
  await page.goto(`${base}/field/`);
  await ready(page);
  await page.getByLabel("用户名").fill("amy");
  await page.getByLabel("密码").fill(password);
  await page.getByRole("button", { name: "登记" }).click();
  await page.waitForSelector("#grids .card", { timeout: 30_000 });
  await page.waitForSelector("body[data-offline-ready='1']", { timeout: 30_000 });
}

const steps = {
  server: atServer,

  /** The office publishes at the server (DOORSTEP_SERVER_URL); no phone yet. */
  async "hub-publish"() {
    const { urgent, points, pngBlob, pdfBlob } = await publish();
    return { urgent: urgent.id, points: points.id, png: pngBlob.sha256, pdf: pdfBlob.sha256 };
  },

  /** The phone enrols through the hub, with the server up; no attachment is downloaded yet (held back here). */
  async "hub-enrol"({ page }) {
    await page.route("**/api/v1/blobs/*", (route) => route.abort("internetdisconnected"));
    await enrol(page);
    await page.waitForSelector(`#urgent-bulletin[data-bulletin="${process.env.DOORSTEP_BULLETIN}"]`);
    return { unread: Number(await page.getAttribute("#unread-count", "data-count")) };
  },

  /**
   * The server is down: the phone syncs with the hub, which serves the attachments from its cache; the volunteer
   * reads the bulletin and marks it read; the hub takes the receipt, but only the server's statement confirms it,
   * so it stays pending.
   */
  async "hub-read"({ page }) {
    const id = process.env.DOORSTEP_BULLETIN;
    const answers = [];
    page.on("response", (r) => { if (r.url().includes("/api/v1/blobs/")) answers.push(r.status()); });
    await page.goto(`${base}/field/#/bulletin/${id}`);
    await ready(page);
    await sync(page);
    assert.ok(!(await page.textContent("#status")).includes("失败"), await page.textContent("#status"));
    await downloadPasses(page, 1);
    await page.waitForSelector("li.attachment[data-type='image/png'][data-stored='true'] img", { timeout: 10_000 })
      .catch((e) => { throw new Error(`the hub's answers for the attachments: ${answers}: ${e.message}`); });
    assert.equal(await page.$eval("li.attachment img", (img) => img.naturalWidth), 64);
    await page.waitForSelector("li.attachment[data-type='application/pdf'][data-stored='true'] a[data-pdf]");
    await page.click("#mark-read");
    await page.waitForSelector("#read-mark");
    assert.equal(await pending(page), 1);
    await page.evaluate(() => { document.getElementById("status").textContent = ""; });
    await page.click("#sync");
    await page.waitForFunction(() => document.getElementById("status").textContent.includes("已与中转设备同步"), null, { timeout: 30_000 });
    await shot(page, "hub-read");
    return { pending: await pending(page) };
  },

  /** The hub delivered the receipt and brought back the server's statement: the next sync confirms it. */
  async "hub-confirmed"({ page }) {
    await page.goto(`${base}/field/`);
    await ready(page);
    await page.click("#sync");
    await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
    return { pending: 0 };
  },
};

const step = process.env.DOORSTEP_STEP || "server";
assert.ok(steps[step], `no step ${step}`);
const keep = process.env.DOORSTEP_BROWSER_PROFILE;
let out;
if (step === "hub-publish") out = await steps[step]();
else {
  // A step of several keeps its browser profile (the phone's storage) in DOORSTEP_BROWSER_PROFILE.
  const profile = keep || mkdtempSync(join(tmpdir(), "doorstep-bulletins-"));
  const { context, page, kill } = await launch(profile);
  try {
    out = await steps[step]({ context, page });
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    kill();
    if (!keep) rmSync(profile, { recursive: true, force: true });
  }
}
console.log(`RESULT ${JSON.stringify(out)}`);
