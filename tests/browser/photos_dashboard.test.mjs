// Browser test of the dashboard's photo pages (started by tests/photos_dashboard_browser.rs, which makes a town
// whose poster asks for a photo and a volunteer's visits carrying DOORSTEP_PHOTOS photos, all uploaded but
// DOORSTEP_ON_PHONE). In real headless Chromium: the overview's poster card counts the evidence; the office opens
// the gallery from the keyboard, sees a page of lazily loaded thumbnails named by place and time (the one not
// uploaded says so), pages with "more", filters by state and area, opens a photo (the full photo, its place,
// volunteer, times, size), and rejects it: a reason is required, the office confirms, the page shows it rejected;
// the grid page links a place to its photos; a lead and the village's viewer see the photos, the viewer without a
// reject button (and the API refuses it). axe-core's WCAG 2 A/AA rules run on each page, in Chinese and English.
// Prints {"rejected": sha256}. Screenshots go to DOORSTEP_ARTIFACTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const total = Number(process.env.DOORSTEP_PHOTOS);
const onPhone = process.env.DOORSTEP_ON_PHONE;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
assert.ok(base && password && total > 24 && onPhone, "DOORSTEP_URL, DOORSTEP_PASSWORD, DOORSTEP_PHOTOS (> 24) and DOORSTEP_ON_PHONE are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `photos-dashboard-${name}.png`), fullPage: true });
const errors = [];
const PAGE = 24;
const REASON = "照片里看不到海报";

// axe-core's WCAG 2 A and AA rules, evaluated in the page itself through the debugging protocol, which the
// pages' Content-Security-Policy does not govern.
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const accessibility = {};
async function checkAccessibility(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  accessibility[what] = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return result.violations.map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
}

function watch(page) {
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(m.text()); });
  return page;
}

async function token(username) {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, `log in ${username}`);
  return (await r.json()).token;
}
async function call(tok, path, body) {
  const r = await fetch(base + path, body === undefined ? { headers: { authorization: `Bearer ${tok}` } } : {
    method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function login(page, username) {
  await page.goto(base + "/");
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(password);
  await page.getByLabel("密码").press("Enter");
  await page.waitForSelector('#view[data-ready="#/"]');
}

/** Waits for the view at `hash` drawn, its title focused. */
async function ready(page, hash) {
  await page.waitForSelector(`#view[data-ready="${hash}"]`);
  assert.equal(await page.evaluate(() => document.activeElement?.id), "view-title", `${hash}: the title has the focus`);
}

/** Every form control in the view has a label naming it. */
async function allLabelled(page) {
  const unlabelled = await page.$$eval("#view input, #view select, #view textarea", (els) =>
    els.filter((e) => !e.labels?.length || !e.labels[0].textContent.trim()).map((e) => e.id || e.name));
  assert.deepEqual(unlabelled, [], "every field has a label");
}

/** The photos the gallery shows, in order. */
const tiles = (page, within = "#photo-grid") => page.$$eval(`${within} li`, (lis) => lis.map((li) => ({ ...li.dataset })));

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const result = {};
try {
  const officeToken = await token("office");
  const office = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
  await login(office, "office");

  // --- the overview counts the evidence beside the poster's card --------------------------------------------
  const evidence = (await call(officeToken, "/api/v1/photos/evidence")).body.indicators;
  const poster = evidence.find((e) => e.indicator === "poster");
  assert.ok(poster && poster.reached === 4 && poster.with_evidence === 4, JSON.stringify(evidence));
  await office.waitForSelector('.card[data-indicator="poster"] [data-role=evidence]');
  assert.equal((await office.textContent('.card[data-indicator="poster"] [data-role=evidence]')).trim(), "有照片佐证 4 / 已完成 4");
  assert.equal(await office.locator('.card[data-indicator="handbook"] [data-role=evidence]').count(), 0, "the handbook asks for no photo");
  await shot(office, "overview");

  // --- the gallery, from the keyboard -------------------------------------------------------------------------
  assert.equal(await office.textContent("#nav-photos"), "照片");
  await office.focus("#nav-photos");
  await office.keyboard.press("Enter");
  await ready(office, "#/photos");
  await allLabelled(office);
  assert.equal((await office.textContent('#photo-evidence li[data-indicator="poster"]')).includes("有照片佐证 4 / 已完成 4"), true);
  let shown = await tiles(office);
  assert.equal(shown.length, PAGE, "a page of photos");
  assert.equal(await office.isVisible("#photo-more"), true);
  // Thumbnails load lazily, are named by place and time, and come from the server (not the phone).
  const imgs = office.locator("#photo-grid img");
  assert.equal(await imgs.count(), PAGE - 1, "the photo still on the phone has no thumbnail");
  assert.deepEqual([...new Set(await imgs.evaluateAll((xs) => xs.map((x) => x.getAttribute("loading"))))], ["lazy"]);
  for (const alt of await imgs.evaluateAll((xs) => xs.map((x) => x.alt))) assert.match(alt, /^1组\d号，拍摄于 .+/);
  await office.waitForFunction(() => document.querySelector("#photo-grid img")?.dataset.loaded === "true");
  assert.ok(await office.evaluate(() => document.querySelector("#photo-grid img").naturalWidth > 0), "the thumbnail shows");
  const waiting = office.locator(`#photo-grid li[data-sha256="${onPhone}"]`);
  assert.equal(await waiting.getAttribute("data-received"), "false");
  assert.ok((await waiting.textContent()).includes("照片还在手机上"));
  await shot(office, "gallery");

  // More: the rest, none twice, the focus on the first added.
  await office.focus("#photo-more");
  await office.keyboard.press("Enter");
  await office.waitForFunction((n) => document.querySelectorAll("#photo-grid li").length === n, total);
  shown = await tiles(office);
  assert.equal(new Set(shown.map((s) => `${s.visit}/${s.sha256}`)).size, total, "every photo once");
  assert.equal(await office.isVisible("#photo-more"), false, "no more pages");
  assert.equal(await office.evaluate(() => document.activeElement?.closest("li")?.dataset.sha256), shown[PAGE].sha256);
  assert.notEqual(await office.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), "none", "focus is visible");
  assert.equal(await office.textContent("#photo-result"), `已显示 ${total} 张照片`);
  await checkAccessibility(office, "gallery");

  // Filters: nothing rejected yet; an unknown area is refused with the server's message.
  await office.getByLabel("状态").selectOption("rejected");
  await office.getByRole("button", { name: "查看" }).click();
  await ready(office, "#/photos/state=rejected");
  assert.equal(await office.isVisible("#photo-none"), true);
  await office.getByLabel("状态").selectOption("all");
  await office.getByLabel("区域或网格编码").fill("NOWHERE");
  await office.getByLabel("区域或网格编码").press("Enter");
  await office.waitForSelector('#view[data-ready="#/photos/area=NOWHERE"]');
  assert.ok((await office.textContent("#view .error")).includes("NOWHERE"));
  await office.goto(`${base}/#/photos/area=G1&indicator=poster`);
  await ready(office, "#/photos/area=G1&indicator=poster");
  assert.equal((await tiles(office)).length, PAGE);
  assert.equal(await office.inputValue("#ph-indicator"), "poster");

  // --- one photo: detail, then rejected with a reason -----------------------------------------------------------
  const target = shown.find((s) => s.place === "H1" && s.received === "true");
  await office.focus(`#photo-grid li[data-sha256="${target.sha256}"] a`);
  await office.keyboard.press("Enter");
  const detail = `#/photos/sha=${target.sha256}&visit=${target.visit}&place=H1`;
  await ready(office, detail);
  await allLabelled(office);
  await office.waitForFunction(() => document.getElementById("photo-full")?.dataset.loaded === "true");
  assert.deepEqual(await office.evaluate(() => [document.getElementById("photo-full").naturalWidth, document.getElementById("photo-full").naturalHeight]), [320, 240]);
  const facts = await office.textContent("#photo-facts");
  for (const fact of ["1组1号", "H1", "vol", "已上传", "320×240", "image/jpeg", "有效"]) assert.ok(facts.includes(fact), `${fact} in ${facts}`);
  assert.equal(await office.locator("#photo-others li").count(), 7, "the place's other photos beside it");
  await checkAccessibility(office, "photo");

  // No reason: refused on the page, the focus on the reason.
  await office.click("#photo-reject");
  assert.equal(await office.textContent("#photo-result"), "请填写退回原因。");
  assert.equal(await office.getAttribute("#photo-result", "role"), "alert");
  assert.equal(await office.evaluate(() => document.activeElement?.id), "photo-reason-input");
  // Declined at the confirmation: nothing is sent.
  await office.getByLabel("退回原因（必填，志愿者会看到）").fill(REASON);
  office.once("dialog", (d) => d.dismiss());
  await office.click("#photo-reject");
  assert.equal((await call(officeToken, "/api/v1/photos?state=rejected")).body.photos.length, 0, "declined: nothing rejected");
  office.once("dialog", async (d) => {
    assert.equal(d.type(), "confirm");
    assert.ok(d.message().includes(REASON), d.message());
    await d.accept();
  });
  await office.click("#photo-reject");
  await office.waitForFunction(() => document.getElementById("photo-facts")?.dataset.rejected === "true");
  assert.equal(await office.textContent("#photo-result"), "已退回。志愿者下次同步时收到。");
  assert.equal(await office.textContent("#photo-reason"), REASON);
  assert.equal(await office.locator("#photo-reject-form").count(), 0, "rejected once");
  result.rejected = target.sha256;
  await shot(office, "rejected");
  await office.click("#photo-place-link");
  await ready(office, "#/photos/place=H1");
  assert.equal(await office.getAttribute(`#photo-grid li[data-sha256="${target.sha256}"]`, "data-rejected"), "true");
  assert.deepEqual([...new Set((await tiles(office)).map((s) => s.place))], ["H1"]);

  // In English.
  await office.click("#lang");
  await office.waitForFunction(() => document.getElementById("view-title")?.textContent.startsWith("Photos of"));
  assert.equal(await office.textContent("#nav-photos"), "Photos");
  await checkAccessibility(office, "place's photos in English");
  await office.click("#lang");
  await office.waitForFunction(() => document.documentElement.lang === "zh-CN");

  // The grid page links each place to its photos.
  await office.goto(`${base}/#/grid/G1`);
  await office.waitForSelector('#places tr[data-place="H2"] a[data-role=photos]');
  await office.click('#places tr[data-place="H2"] a[data-role=photos]');
  await ready(office, "#/photos/place=H2");
  assert.equal((await tiles(office)).length, 8);

  // --- a lead and the village's viewer ------------------------------------------------------------------------
  const lead = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
  await login(lead, "lead-e");
  await lead.click("#nav-photos");
  await ready(lead, "#/photos");
  assert.equal((await tiles(lead)).length, PAGE);
  await lead.close();

  const viewer = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
  await login(viewer, "cadre");
  await viewer.click("#nav-photos");
  await ready(viewer, "#/photos");
  assert.equal((await tiles(viewer)).length, PAGE);
  await viewer.click(`#photo-grid li[data-sha256="${shown[0].sha256}"] a`);
  await viewer.waitForSelector("#photo-facts");
  assert.equal(await viewer.locator("#photo-reject-form, #photo-reject").count(), 0, "a viewer gets no reject button");
  await checkAccessibility(viewer, "photo as a viewer");
  await shot(viewer, "viewer");
  const refused = await call(await token("cadre"), `/api/v1/photos/${shown[0].sha256}/reject`, { visit: shown[0].visit, reason: "x" });
  assert.equal(refused.status, 403, "the API refuses a viewer too");
  await viewer.close();

  const failing = Object.entries(accessibility).filter(([, v]) => v.length);
  assert.deepEqual(failing, [], "WCAG 2 A/AA violations (axe-core)");
  result.accessibility_checked = Object.keys(accessibility);
  assert.deepEqual(errors, [], "no page errors");
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
