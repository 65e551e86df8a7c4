// Browser test of photos in the field web app: real headless Chromium (a 360 px phone) against a running doorstep
// server (started and filled by tests/photos_browser.rs, under a campaign whose poster indicator asks for a photo).
// The test makes camera pictures itself (3000×2000 JPEGs drawn on a canvas; the first given EXIF orientation 6, a
// camera maker and GPS tags). The phone starts with the database of the app before photos (version 3), which the
// app upgrades keeping what it held. Offline, the volunteer takes two photos at H1 (one made upright: 1067×1600; the other
// 1600×1067), sees a picture that cannot be read refused and the same photo not added twice, removes a third with
// the keyboard, and records "all done": H1 counts as reached, H2 (all done, no photo) does not, H3 (one photo)
// does. Reloaded offline, the visits, their photos and the count of photos to upload are there, and the bytes kept
// have no metadata. Online, the photos upload after the sync: the first is cut off after some bytes reached the
// server, and the next sync resumes it from the server's offset; the office's gallery lists each photo as
// received, under 400 KB and at most 1,600 px. The office rejects H1's first photo and H3's only photo: after a
// sync the phone shows both reasons, H1 stays reached and H3 is back among the places to do. English once. Then,
// with the phone's storage full, a visit with a photo is refused whole: neither the visit nor its photo is kept.
// With room again, a photo the server refuses for its content is shown with the server's words and not sent again,
// and a photo still waiting keeps another volunteer from enrolling the phone.
// Prints `RESULT <json>`; screenshots go to test-artifacts/photos-*.png.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
const chromiumPath = process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium";
assert.ok(base && password, "DOORSTEP_URL and DOORSTEP_PASSWORD are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `photos-${name}.png`), fullPage: true });
const errors = [];
/** The camera maker written into the first picture's EXIF: it must not reach the server. */
const MAKER = "DoorstepTestCam";

// ---------- the office, through the HTTP API ----------

async function login(username) {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, `login ${username}`);
  return (await r.json()).token;
}

async function api(token, method, path, body) {
  const init = { method, headers: { authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// ---------- pictures as a phone's camera makes them ----------

/** A `width`×`height` JPEG drawn in the page: a wall, a poster with `label` on it, a black mark top left. */
async function picture(page, width, height, label, hue) {
  const b64 = await page.evaluate(async ([width, height, label, hue]) => {
    const canvas = new OffscreenCanvas(width, height);
    const g = canvas.getContext("2d");
    const wall = g.createLinearGradient(0, 0, width, height);
    wall.addColorStop(0, `hsl(${hue}, 40%, 70%)`);
    wall.addColorStop(1, `hsl(${hue + 40}, 30%, 40%)`);
    g.fillStyle = wall;
    g.fillRect(0, 0, width, height);
    g.fillStyle = "#fff";
    g.fillRect(width * 0.3, height * 0.15, width * 0.4, height * 0.7);
    g.fillStyle = "#b91c1c";
    g.font = `bold ${Math.round(height / 10)}px sans-serif`;
    g.fillText(label, width * 0.33, height * 0.5);
    g.fillStyle = "#000";
    g.fillRect(0, 0, width / 10, height / 10);
    const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: "image/jpeg", quality: 0.92 })).arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }, [width, height, label, hue]);
  return Buffer.from(b64, "base64");
}

/**
 * The EXIF a phone's camera writes (big-endian TIFF): orientation 6 (the picture is to be turned 90° clockwise),
 * the camera's maker, and GPS latitude 30°6'N; inserted right after the JPEG's start marker.
 */
function withExif(jpeg) {
  const tiff = Buffer.alloc(120);
  tiff.write("MM", 0, "ascii");
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4); // IFD0
  tiff.writeUInt16BE(3, 8);
  const entry = (at, tag, type, count, value) => {
    tiff.writeUInt16BE(tag, at);
    tiff.writeUInt16BE(type, at + 2);
    tiff.writeUInt32BE(count, at + 4);
    if (type === 3) tiff.writeUInt16BE(value, at + 8);
    else tiff.writeUInt32BE(value, at + 8);
  };
  entry(10, 0x010f, 2, MAKER.length + 1, 50); // Make, ASCII, at 50
  entry(22, 0x0112, 3, 1, 6); // Orientation
  entry(34, 0x8825, 4, 1, 66); // GPS IFD, at 66
  tiff.writeUInt32BE(0, 46); // no next IFD
  tiff.write(`${MAKER}\0`, 50, "ascii");
  tiff.writeUInt16BE(2, 66);
  tiff.writeUInt16BE(0x0001, 68); // GPSLatitudeRef "N"
  tiff.writeUInt16BE(2, 70);
  tiff.writeUInt32BE(2, 72);
  tiff.write("N\0", 76, "ascii");
  entry(80, 0x0002, 5, 3, 96); // GPSLatitude, 3 rationals at 96
  tiff.writeUInt32BE(0, 92);
  [[30, 1], [6, 1], [0, 1]].forEach(([n, d], i) => {
    tiff.writeUInt32BE(n, 96 + i * 8);
    tiff.writeUInt32BE(d, 100 + i * 8);
  });
  const payload = Buffer.concat([Buffer.from("Exif\0\0", "latin1"), tiff]);
  const header = Buffer.alloc(4);
  header.writeUInt16BE(0xffe1, 0);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), header, payload, jpeg.subarray(2)]);
}

/** The markers of a JPEG's segments before its image data (APP1 = 0xe1 is where EXIF lives). */
function jpegMarkers(bytes) {
  assert.ok(bytes[0] === 0xff && bytes[1] === 0xd8, "a JPEG");
  const markers = [];
  for (let at = 2; at + 4 <= bytes.length;) {
    assert.equal(bytes[at], 0xff, `a segment at ${at}`);
    const marker = bytes[at + 1];
    markers.push(marker);
    if (marker === 0xda) break; // the image data
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
  return markers;
}

/** Checks that photo bytes carry no metadata: no APP1 (EXIF, XMP) segment, no trace of the camera. */
function noMetadata(bytes, what) {
  const markers = jpegMarkers(bytes);
  assert.ok(!markers.includes(0xe1), `${what} has no APP1 segment: ${markers.map((m) => m.toString(16))}`);
  assert.ok(!Buffer.from(bytes).includes(MAKER), `${what} does not name the camera`);
  assert.ok(!Buffer.from(bytes).includes("Exif"), `${what} has no EXIF`);
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
const photosWaiting = async (page) => Number(await page.getAttribute("#photos-pending", "data-count"));

async function open(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((h) => document.getElementById("app").dataset.route === h, hash);
}

/** Nothing is wider than the phone's 360 px screen. */
async function fitsTheScreen(page, what) {
  const [width, visible] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(width <= visible, `${what} is ${width} px wide on a ${visible} px screen`);
}

/** Waits until the app ended `n` passes of photo uploads since the page loaded. */
const uploadPasses = (page, n) =>
  page.waitForFunction((n) => Number(document.body.dataset.uploads || 0) >= n, n, { timeout: 60_000 });

/** Gives the camera input pictures, as the phone's camera does, and waits until they are made into photos. */
async function take(page, files) {
  await page.setInputFiles("#photo-input", files);
  await page.waitForSelector("#photo-draft[data-busy='false']", { timeout: 30_000 });
}

const draftCount = async (page) => Number(await page.getAttribute("#photo-draft", "data-count"));

/** The place's row in the grid's list: its coverage as the phone counts it. */
async function placeRow(page, id) {
  await open(page, "#/grid/G1");
  return page.$eval(`a.place[data-place="${id}"]`, (a) => ({ ...a.dataset }));
}

/** The photo records the phone keeps (IndexedDB `photos`), with their bytes while it holds them. */
const keptPhotos = (page) => page.evaluate(() => new Promise((resolve, reject) => {
  const req = indexedDB.open("doorstep-field");
  req.onsuccess = () => {
    const get = req.result.transaction("photos").objectStore("photos").getAll();
    get.onsuccess = async () => {
      const out = [];
      for (const p of get.result) {
        out.push({
          sha256: p.sha256, size: p.size, visit: p.visit, width: p.width, height: p.height, uploaded: p.uploaded,
          thumb: p.thumb ? p.thumb.size : 0, bytes: p.blob ? [...new Uint8Array(await p.blob.arrayBuffer())] : null,
        });
      }
      req.result.close();
      resolve(out);
    };
    get.onerror = () => reject(get.error);
  };
  req.onerror = () => reject(req.error);
}));

/** Enrols the phone as amy. */
async function enrol(page) {
  await page.getByLabel("用户名").fill("amy");
  await page.getByLabel("密码").fill(password);
  await page.getByRole("button", { name: "登记" }).click();
  await page.waitForSelector("#grids .card", { timeout: 30_000 });
  await page.waitForSelector("body[data-offline-ready='1']", { timeout: 30_000 });
}

/** Records "all done" at a place with the photos taken there; back on the grid's list once on disk. */
async function allDone(page) {
  await page.click('[data-quick="all"]');
  await page.waitForSelector("#places");
}

/** The phone's database as the app before photos left it (version 3), with a record to find again. */
async function databaseOfVersion3(page) {
  await page.goto(`${base}/field/manifest.webmanifest`);
  await page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open("doorstep-field", 3);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("meta");
      for (const [records, log, key] of [["grids", "changes", "grid"], ["tasks", "task_changes", "task"], ["docs", "doc_changes", "key"]]) {
        db.createObjectStore(records, { keyPath: key });
        db.createObjectStore(log, { autoIncrement: true }).createIndex(key, key);
      }
      req.transaction.objectStore("docs").createIndex("kind", "kind");
      db.createObjectStore("blobs", { keyPath: "sha256" });
      req.transaction.objectStore("meta").put("kept", "before-photos");
    };
    req.onsuccess = () => { req.result.close(); resolve(); };
    req.onerror = () => reject(req.error);
  }));
}

/** The database's version, its stores, and the record written before the upgrade. */
const databaseNow = (page) => page.evaluate(() => new Promise((resolve, reject) => {
  const req = indexedDB.open("doorstep-field");
  req.onsuccess = () => {
    const db = req.result;
    const get = db.transaction("meta").objectStore("meta").get("before-photos");
    get.onsuccess = () => {
      resolve({ version: db.version, stores: [...db.objectStoreNames], kept: get.result });
      db.close();
    };
  };
  req.onerror = () => reject(req.error);
}));

async function day({ context, page }) {
  const result = {};
  await databaseOfVersion3(page);
  await page.goto(`${base}/field/`);
  await ready(page);
  // Upgraded to version 4 without losing anything: the photos' store is added beside what was there.
  const upgraded = await databaseNow(page);
  assert.equal(upgraded.version, 4);
  assert.ok(upgraded.stores.includes("photos") && upgraded.stores.includes("blobs"), JSON.stringify(upgraded));
  assert.equal(upgraded.kept, "kept", "what the phone held before the upgrade is still there");
  const pictures = {
    a: withExif(await picture(page, 3000, 2000, "海报 A", 20)),
    b: await picture(page, 3000, 2000, "海报 B", 200),
    c: await picture(page, 3000, 2000, "海报 C", 120),
  };
  assert.ok(pictures.a.includes(MAKER) && jpegMarkers(pictures.a).includes(0xe1), "the camera's picture has EXIF");
  const file = (name, buffer) => ({ name: `${name}.jpg`, mimeType: "image/jpeg", buffer });
  await enrol(page);

  // Offline all day from here.
  await context.setOffline(true);
  await open(page, "#/place/G1/H1");
  assert.ok((await page.textContent("#photo-needed")).includes("海报张贴"), "the camera says the poster needs a photo");
  assert.equal(await page.getAttribute("#photo-input", "capture"), "environment");
  assert.equal(await page.getAttribute("#photo-input", "accept"), "image/*");
  await take(page, [file("a", pictures.a)]);
  await take(page, [file("b", pictures.b)]);
  assert.equal(await draftCount(page), 2);
  const drafted = await page.$$eval("#photo-draft li", (lis) => lis.map((li) => ({ ...li.dataset })));
  // Turned upright as the camera held it (EXIF orientation 6), shrunk to a long side of 1,600 px.
  assert.deepEqual(drafted.map((d) => [Number(d.width), Number(d.height)]), [[1067, 1600], [1600, 1067]]);
  result.drafted = drafted;
  // A picture that cannot be read is refused with a message; the same photo is not added twice.
  await take(page, [{ name: "broken.jpg", mimeType: "image/jpeg", buffer: Buffer.from("not a picture") }]);
  assert.ok((await page.textContent("#photo-message")).includes("无法读取这张照片"), await page.textContent("#photo-message"));
  await take(page, [file("b-again", pictures.b)]);
  assert.ok((await page.textContent("#photo-message")).includes("已经加入"), await page.textContent("#photo-message"));
  assert.equal(await draftCount(page), 2);
  // A third, removed again with the keyboard: its button says which photo it removes.
  await take(page, [file("c", pictures.c)]);
  assert.equal(await draftCount(page), 3);
  await page.waitForFunction(() => [...document.querySelectorAll("#photo-draft img")].every((img) => img.src.startsWith("data:image/jpeg")));
  await fitsTheScreen(page, "the visit screen with three photos");
  await shot(page, "taken");
  await page.getByRole("button", { name: "删除第 3 张照片" }).focus();
  await page.keyboard.press("Enter");
  assert.equal(await draftCount(page), 2);
  assert.equal(await page.evaluate(() => document.activeElement.id), "take-photo", "focus goes back to the camera button");

  await allDone(page);
  assert.equal(await page.getAttribute("#photos-pending", "data-count"), "2");
  const h1 = await placeRow(page, "H1");
  assert.ok(h1.reached.split(",").includes("poster"), `a poster visit with photos reaches the poster: ${JSON.stringify(h1)}`);
  // The same visit without a photo does not reach it.
  await open(page, "#/place/G1/H2");
  await allDone(page);
  const h2 = await placeRow(page, "H2");
  assert.ok(h2.missing.split(",").includes("poster"), `no photo, no poster: ${JSON.stringify(h2)}`);
  assert.ok(h2.reached.split(",").includes("handbook"), JSON.stringify(h2));
  // H3: one photo.
  await open(page, "#/place/G1/H3");
  await take(page, [file("c", pictures.c)]);
  await allDone(page);
  assert.ok((await placeRow(page, "H3")).reached.split(",").includes("poster"));
  assert.equal(await pending(page), 3);
  assert.equal(await photosWaiting(page), 3);
  const queueText = await page.textContent("#photos-pending");
  assert.match(queueText, /^3 张照片待上传（\d+ KB）$/, queueText);
  await shot(page, "waiting");

  // Reloaded with no network: the visits and their photos are on disk.
  await page.reload();
  await ready(page);
  assert.equal(await photosWaiting(page), 3);
  assert.equal(await pending(page), 3);
  await open(page, "#/place/G1/H1");
  assert.equal(await page.$$eval("#place-status .pill.done", (ps) => ps.map((p) => p.textContent).join(" ").includes("海报张贴")), true);
  // Their thumbnails drawn from the phone's store.
  await page.waitForFunction(() => [...document.querySelectorAll("#history .visit-photos img")].every((img) => img.src.startsWith("data:image/jpeg")));
  const history = await page.$$eval("#history .visit-photos li", (lis) => lis.map((li) => ({ state: li.dataset.state, img: !!li.querySelector("img") })));
  assert.deepEqual(history, [{ state: "waiting", img: true }, { state: "waiting", img: true }]);
  await shot(page, "reloaded-offline");
  const kept = await keptPhotos(page);
  assert.equal(kept.length, 3);
  for (const p of kept) {
    const bytes = Buffer.from(p.bytes);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), p.sha256, "a photo is named by its bytes");
    assert.equal(bytes.length, p.size);
    assert.ok(p.size < 400 * 1024, `photo ${p.sha256} is ${p.size} bytes`);
    assert.ok(p.thumb > 0, "a thumbnail is kept");
    noMetadata(bytes, `photo ${p.sha256} as kept on the phone`);
  }
  const first = drafted[0].sha256;

  // Online: the sync sends the visits, then the photos go; the first photo's upload is cut off once part of it
  // reached the server (as a connection lost mid-way), and the next sync goes on from the server's offset.
  const puts = [];
  const sentWhole = []; // bodies sent from byte 0: each a whole photo
  await context.route("**/api/v1/photos/*", async (route) => {
    const request = route.request();
    if (request.method() !== "PUT") return route.continue();
    const headers = request.headers();
    const body = request.postDataBuffer();
    const sha = new URL(request.url()).pathname.split("/").pop();
    puts.push({ sha, offset: Number(headers["upload-offset"]), length: Number(headers["upload-length"]), bytes: body.length });
    if (headers["upload-offset"] === "0") sentWhole.push(body);
    if (puts.length === 1) {
      const part = body.subarray(0, body.length >> 1);
      const r = await fetch(request.url(), { method: "PUT", body: part, headers: {
        authorization: headers.authorization, "upload-offset": headers["upload-offset"], "upload-length": headers["upload-length"],
      } });
      assert.equal(r.status, 200, await r.text());
      return route.abort("connectionreset");
    }
    return route.continue();
  });
  await context.setOffline(false);
  await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
  await uploadPasses(page, 1);
  assert.equal(puts.length, 1, `the run stops at a lost connection: ${JSON.stringify(puts)}`);
  assert.equal(await photosWaiting(page), 3, "nothing is counted uploaded before the server says so");
  await page.click("#sync");
  await uploadPasses(page, 2);
  await page.waitForSelector("#photos-pending[data-count='0']", { state: "attached", timeout: 30_000 });
  assert.equal(await page.isHidden("#photos-pending"), true);
  const cut = puts[0];
  const again = puts.filter((p) => p.sha === cut.sha);
  assert.equal(again.length, 2, JSON.stringify(puts));
  assert.equal(again[1].offset, cut.bytes >> 1, "resumed from the bytes the server held");
  assert.equal(again[1].offset + again[1].bytes, cut.length);
  assert.equal(puts.length, 4, `each photo once more, the cut one from where it stopped: ${JSON.stringify(puts)}`);
  sentWhole.forEach((bytes, i) => noMetadata(bytes, `upload ${i}`));
  result.resumed = again.map((p) => p.offset);
  result.puts = puts;

  // The office's gallery: the three photos arrived, each small and at most 1,600 px; the first upright.
  const office = await login("office");
  const gallery = (await api(office, "GET", "/api/v1/photos?area=G1")).photos;
  result.gallery = gallery;
  assert.equal(gallery.length, 3, JSON.stringify(gallery));
  for (const p of gallery) {
    assert.equal(p.received, true, JSON.stringify(p));
    assert.ok(p.size < 400 * 1024 && Math.max(p.width, p.height) <= 1600, JSON.stringify(p));
  }
  const a = gallery.find((p) => p.sha256 === first);
  assert.deepEqual([a.width, a.height, a.place_id], [1067, 1600, "H1"]);
  // Uploaded: the phone lets go of the bytes and keeps the thumbnails.
  const after = await keptPhotos(page);
  assert.ok(after.every((p) => p.uploaded === true && p.bytes === null && p.thumb > 0), JSON.stringify(after.map((p) => ({ ...p, bytes: p.bytes && p.bytes.length }))));

  // The office rejects H1's first photo and H3's only one; the phone learns it at its next sync.
  const c = gallery.find((p) => p.place_id === "H3");
  await api(office, "POST", `/api/v1/photos/${a.sha256}/reject`, { visit: a.visit_id, reason: "照片模糊" });
  await api(office, "POST", `/api/v1/photos/${c.sha256}/reject`, { visit: c.visit_id, reason: "海报被挡住了" });
  await page.click("#sync");
  await page.waitForFunction(() => !document.getElementById("sync").disabled, null, { timeout: 30_000 });
  const h3 = await placeRow(page, "H3");
  assert.ok(h3.missing.split(",").includes("poster") && h3.done === "false", `H3 is to do again: ${JSON.stringify(h3)}`);
  await page.click('[data-filter="todo"]');
  assert.ok(await page.$('#places a.place[data-place="H3"] .photo-back'), "H3 is listed to do, its photo sent back");
  await shot(page, "grid-after-rejection");
  await page.click('[data-filter="all"]');
  assert.ok((await placeRow(page, "H1")).reached.split(",").includes("poster"), "H1 keeps its other photo");
  await open(page, "#/place/G1/H3");
  assert.equal((await page.textContent("#photo-rejected")).trim(), "照片被退回：海报被挡住了");
  assert.equal(await page.getAttribute(`#history li[data-sha256="${c.sha256}"]`, "data-state"), "rejected");
  assert.ok((await page.textContent("#photo-needed")).includes("海报张贴"), "the camera asks for the poster again");
  await fitsTheScreen(page, "a place with a photo sent back");
  await shot(page, "rejected");
  await open(page, "#/place/G1/H1");
  assert.equal((await page.textContent("#photo-rejected")).trim(), "照片被退回：照片模糊");
  assert.deepEqual(await page.$$eval("#history .visit-photos li", (lis) => lis.map((li) => li.dataset.state)), ["rejected", "uploaded"]);

  // English once.
  await page.click("#lang");
  await open(page, "#/place/G1/H3");
  assert.equal((await page.textContent("#take-photo")).trim(), "Take photo");
  assert.equal((await page.textContent("#photo-rejected")).trim(), "Photo sent back: 海报被挡住了");
  assert.ok((await page.textContent("#photo-needed")).includes("A photo is needed to count: Poster posted"));
  await page.click("#lang");
  result.pictures = Object.fromEntries(Object.entries(pictures).map(([k, v]) => [k, v.length]));
  return result;
}

/** A full phone: a visit with a photo is refused whole, and neither is kept. */
async function full({ context, page }, before) {
  await context.setOffline(true);
  const cdp = await context.newCDPSession(page);
  // Less room than the app already uses, set before the app touches its storage in this browser.
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: base, quotaSize: 1024 });
  await page.goto(`${base}/field/#/place/G1/H4`);
  await ready(page);
  await page.waitForSelector("#place");
  const picture = Buffer.from(before.pictures[0], "base64");
  await take(page, [{ name: "d.jpg", mimeType: "image/jpeg", buffer: picture }]);
  await page.click('[data-quick="all"]');
  await page.waitForFunction(() => document.getElementById("visit-message")?.textContent.includes("存储空间已满"), null, { timeout: 30_000 });
  assert.equal(await pending(page), 0);
  assert.equal(await draftCount(page), 1, "the photo stays on the screen, to save again");
  const message = await page.textContent("#visit-message");
  await shot(page, "storage-full");
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: base });
  await page.reload();
  await ready(page);
  await page.waitForSelector("#place");
  assert.equal(await page.$("#history li"), null, "the visit was not kept");
  const kept = await keptPhotos(page);
  assert.equal(kept.length, before.kept, "nor its photo");
  assert.equal(await photosWaiting(page), 0);
  return { message, kept: kept.length };
}

/**
 * With room again, two photos at H4: the server refuses the first for its content (422 `photo_refused`, answered
 * here as the server would for bytes it cannot read) and the second's upload breaks off. The refused one is shown
 * with the server's words, kept, no longer counted and not sent again; the other still waits, and so the phone
 * cannot be enrolled by another volunteer until it is up.
 */
async function refusedAndStranded({ context, page }, before) {
  const [d, e] = before.pictures.map((p, i) => ({ name: `${"de"[i]}.jpg`, mimeType: "image/jpeg", buffer: Buffer.from(p, "base64") }));
  await take(page, [d]);
  await take(page, [e]);
  const [refused, broken] = await page.$$eval("#photo-draft li", (lis) => lis.map((li) => li.dataset.sha256));
  await allDone(page);
  assert.equal(await photosWaiting(page), 2);
  const puts = [];
  await context.route("**/api/v1/photos/*", (route) => {
    const request = route.request();
    if (request.method() !== "PUT") return route.continue();
    const sha = new URL(request.url()).pathname.split("/").pop();
    puts.push(sha);
    if (sha === refused) {
      return route.fulfill({ status: 422, contentType: "application/json", body: JSON.stringify({ error: { code: "photo_refused", message: "not a picture the server can read" } }) });
    }
    return route.abort("connectionreset");
  });
  await context.setOffline(false);
  await page.waitForSelector("#pending[data-count='0']", { timeout: 30_000 });
  const passes = Number(await page.evaluate(() => document.body.dataset.uploads || 0));
  await page.click("#sync");
  await uploadPasses(page, passes + 1);
  await page.click("#sync");
  await uploadPasses(page, passes + 2);
  assert.equal(puts.filter((sha) => sha === refused).length, 1, `a refused photo is not sent again: ${puts}`);
  assert.ok(puts.filter((sha) => sha === broken).length >= 2, `a broken upload is tried again: ${puts}`);
  assert.equal(await photosWaiting(page), 1, "the refused photo no longer counts as waiting");
  await open(page, "#/place/G1/H4");
  assert.equal(await page.getAttribute(`#history li[data-sha256="${refused}"]`, "data-state"), "refused");
  assert.equal((await page.textContent(`#history li[data-sha256="${refused}"] .photo-rejected`)).trim(), "服务器未接收这张照片：not a picture the server can read");
  assert.equal(await page.getAttribute(`#history li[data-sha256="${broken}"]`, "data-state"), "waiting");
  assert.equal((await keptPhotos(page)).find((p) => p.sha256 === refused).bytes.length > 0, true, "the refused photo stays on the phone");
  await shot(page, "refused-upload");

  // Another volunteer cannot take over the phone while a photo waits.
  await open(page, "#/settings");
  page.once("dialog", (dialog) => dialog.accept());
  await page.click("#reenrol");
  await page.waitForSelector("#enrol-form");
  await page.getByLabel("用户名").fill("bob");
  await page.getByLabel("密码").fill(password);
  await page.getByRole("button", { name: "登记" }).click();
  await page.waitForFunction(() => document.getElementById("enrol-message").textContent.includes("sync them first"));
  const stranded = await page.textContent("#enrol-message");
  assert.ok(stranded.includes("1 unsynced records by amy"), stranded);

  // Once it is up, nothing waits.
  await context.unroute("**/api/v1/photos/*");
  await open(page, "#/");
  await page.click("#sync");
  await page.waitForSelector("#photos-pending[data-count='0']", { state: "attached", timeout: 30_000 });
  return { stranded, puts };
}

const profile = process.env.DOORSTEP_BROWSER_PROFILE || mkdtempSync(join(tmpdir(), "doorstep-photos-"));
let out;
try {
  let phone = await launch(profile);
  try {
    out = await day(phone);
    // Pictures for the full phone and what follows (made here while a page is at hand).
    const pictures = [await picture(phone.page, 1200, 900, "海报 D", 300), await picture(phone.page, 1200, 900, "海报 E", 60)];
    out.before_full = { pictures: pictures.map((p) => p.toString("base64")), kept: (await keptPhotos(phone.page)).length };
  } finally {
    phone.kill();
  }
  // Chromium checks the quota when a site's storage is first opened: a new browser on the same profile.
  phone = await launch(profile);
  try {
    out.full = await full(phone, out.before_full);
    out.refused = await refusedAndStranded(phone, out.before_full);
    delete out.before_full;
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    phone.kill();
  }
} finally {
  if (!process.env.DOORSTEP_BROWSER_PROFILE) rmSync(profile, { recursive: true, force: true });
}
console.log(`RESULT ${JSON.stringify(out)}`);
