// Browser test of the dashboard's review queue: real headless Chromium against a running doorstep server with
// places found by a CLI field client (started and filled by tests/review_browser.rs). The office merges a
// duplicate into the registry place it duplicates, chosen from the nearby places, confirms a new place and accepts
// a correction, from the keyboard; the grid's coverage on the page follows the API's; a decision taken meanwhile
// elsewhere is reported, not hidden; viewers see their area only and get no buttons. Screenshots are saved.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const duplicate = process.env.DOORSTEP_DUPLICATE;
const newShop = process.env.DOORSTEP_NEW_SHOP;
const correction = process.env.DOORSTEP_CORRECTION;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
assert.ok(base && password && duplicate && newShop && correction, "the server and the field client's ids are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `review-${name}.png`), fullPage: true });

async function token(username) {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, username);
  return (await r.json()).token;
}
async function get(tok, path) {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${tok}` } });
  assert.equal(r.status, 200, path);
  return r.json();
}

async function openReview(page, username) {
  await page.goto(base + "/");
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(password);
  await page.getByLabel("密码").press("Enter");
  await page.waitForSelector('#view[data-ready="#/"]');
  // Keyboard only: the navigation link, then Enter.
  await page.focus("#nav-review");
  await page.keyboard.press("Enter");
  await page.waitForSelector('#view[data-ready="#/review"] #review-places');
}

/** The page's coverage cells for grid G1, as the API gives them: {indicator: [eligible, reached]}. */
async function pageCoverage(page) {
  return page.$$eval('#review-coverage tr[data-grid="G1"] td[data-indicator]', (tds) =>
    Object.fromEntries(tds.map((td) => [td.dataset.indicator, [+td.dataset.eligible, +td.dataset.reached]])));
}
async function apiCoverage(tok) {
  const rows = await get(tok, "/api/v1/reports/coverage?by=grid&area=G1");
  return Object.fromEntries(rows.map((r) => [r.indicator, [r.eligible, r.reached]]));
}

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const errors = [];
try {
  const office = await token("office");
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  await openReview(page, "office");
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN", "Chinese by default");

  // The queue is the API's: both found places and the correction, with the found places' visits.
  const pending = await get(office, "/api/v1/review");
  const rows = await page.$$eval("#review-places tbody tr[data-place]", (trs) => trs.map((tr) => tr.dataset.place));
  assert.deepEqual(rows, pending.places.map((p) => p.place_id));
  assert.deepEqual(new Set(rows), new Set([duplicate, newShop]));
  assert.equal(await page.getAttribute(`#review-places tr[data-place="${duplicate}"]`, "data-visits"), "1");
  assert.equal(await page.locator(`#review-corrections tr[data-correction="${correction}"]`).count(), 1);
  assert.ok((await page.textContent(`#review-corrections tr[data-correction="${correction}"]`)).includes("1组2号 王家"));
  const before = await pageCoverage(page);
  assert.deepEqual(before, await apiCoverage(office), "the page's coverage is the API's");
  // The merge choices are the grid's places, nearest first: H1 is a few metres from the duplicate.
  const choices = await page.$$eval(`#merge-${duplicate} option`, (os) => os.map((o) => o.value).filter(Boolean));
  assert.equal(choices[0], "H1", `nearest first: ${choices}`);
  assert.ok(!choices.includes(duplicate) && !choices.includes("H9"), "neither itself nor another grid's place");
  await shot(page, "before");

  // Viewers: their own area only (V1 holds grid G1; C2 does not), and no buttons.
  for (const [viewer, sees] of [["viewer-v1", true], ["viewer-c2", false]]) {
    const vpage = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    vpage.on("pageerror", (e) => errors.push(String(e)));
    await openReview(vpage, viewer);
    const mine = await get(await token(viewer), "/api/v1/review");
    const shown = await vpage.$$eval("#review-places tbody tr[data-place]", (trs) => trs.map((tr) => tr.dataset.place));
    assert.deepEqual(shown, mine.places.map((p) => p.place_id), viewer);
    assert.equal(shown.length, sees ? 2 : 0, `${viewer}: ${shown}`);
    assert.equal(await vpage.locator("#view button").count(), 0, `${viewer} gets no buttons`);
    assert.equal(await vpage.textContent("#review-status"), "仅镇反诈办可作出审核决定。");
    if (sees) await shot(vpage, "viewer");
    await vpage.close();
  }

  // The server enforces the same: a viewer may not decide, list merge choices, or read outside their area.
  const viewerToken = await token("viewer-v1");
  for (const [method, path, body] of [
    ["POST", `/api/v1/places/${newShop}/review`, { decision: "confirm" }],
    ["POST", `/api/v1/corrections/${correction}/review`, { decision: "confirm" }],
    ["GET", `/api/v1/places/${newShop}/merge-candidates`],
    ["GET", "/api/v1/review?area=C2"],
  ]) {
    const r = await fetch(base + path, {
      method, headers: { authorization: `Bearer ${viewerToken}`, "content-type": "application/json" },
      body: body && JSON.stringify(body),
    });
    assert.equal(r.status, 403, `${method} ${path}`);
  }

  // Merging without choosing a place says so and changes nothing.
  await page.focus(`button[data-action="merge"][data-place="${duplicate}"]`);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("review-status")?.textContent.length > 0);
  assert.equal(await page.textContent("#review-status"), "请选择要合并到的点位");
  assert.equal((await get(office, "/api/v1/review")).places.length, 2);

  // Merge into H1 from the keyboard: the duplicate leaves the queue, its visit counts for H1, and the grid's
  // figures on the page follow (one place fewer to reach, the same number reached).
  await page.focus(`#merge-${duplicate}`);
  await page.selectOption(`#merge-${duplicate}`, "H1");
  await page.focus(`button[data-action="merge"][data-place="${duplicate}"]`);
  await page.keyboard.press("Enter");
  await page.waitForFunction((id) => !document.querySelector(`#review-places tr[data-place="${id}"]`) &&
    document.getElementById("review-status")?.textContent.includes("H1"), duplicate);
  const after = await pageCoverage(page);
  assert.deepEqual(after, await apiCoverage(office), "the page follows the API after the merge");
  assert.deepEqual(after.handbook, [before.handbook[0] - 1, before.handbook[1]], `handbook ${before.handbook} -> ${after.handbook}`);
  const gaps = await get(office, "/api/v1/reports/gaps?grid=G1&all=true");
  const h1 = gaps.find((p) => p.place_id === "H1");
  assert.ok(!h1.missing.includes("handbook") && !h1.missing.includes("awareness"), `H1 reached: ${JSON.stringify(h1)}`);
  assert.ok(!gaps.some((p) => p.place_id === duplicate), "the duplicate no longer counts");
  await shot(page, "after-merge");

  // Decided meanwhile elsewhere (the CLI's endpoint): the page reports the server's refusal.
  const r = await fetch(`${base}/api/v1/places/${newShop}/review`, {
    method: "POST", headers: { authorization: `Bearer ${office}`, "content-type": "application/json" },
    body: JSON.stringify({ decision: "confirm" }),
  });
  assert.equal(r.status, 204);
  await page.click(`button[data-action="confirm"][data-place="${newShop}"]`);
  await page.waitForFunction(() => document.getElementById("review-status")?.getAttribute("role") === "alert");
  assert.ok((await page.textContent("#review-status")).includes("already reviewed"), await page.textContent("#review-status"));

  // Accept the correction with the keyboard.
  await page.reload();
  await page.waitForSelector('#view[data-ready="#/review"] #review-corrections');
  await page.focus(`button[data-action="accept"][data-correction="${correction}"]`);
  await page.keyboard.press("Enter");
  await page.waitForFunction((id) => !document.querySelector(`#review-corrections tr[data-correction="${id}"]`), correction);
  const h2 = (await get(office, "/api/v1/reports/gaps?grid=G1&all=true")).find((p) => p.place_id === "H2");
  assert.equal(h2.label, "1组2号 王家");
  assert.equal(await page.textContent('.card[data-figure="pendingPlaces"] [data-role=value]'), "0");
  await shot(page, "done");

  // English.
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/review"] #review-places');
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal(await page.textContent("#nav-review"), "Review");
  await shot(page, "en");
  await page.click("#lang");

} finally {
  await browser.close();
}
assert.deepEqual(errors, [], "no script errors on the page");
console.log("review browser test: 1 passed, 0 failed");
