// Browser test of the dashboard's territory upload: real headless Chromium against a running doorstep server
// (started by tests/territory_browser.rs with a town of two places). The office opens the page from the keyboard,
// checks a workbook with two row errors (a table of row, column and message; nothing changed), checks the fixed
// workbook (what it adds and changes per village), imports it with the progress shown, and the overview's figures
// follow the API's; choosing another file after a check disables Import; viewers get no link; English texts.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const brokenFile = process.env.DOORSTEP_BROKEN_FILE;
const fixedFile = process.env.DOORSTEP_FIXED_FILE;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
assert.ok(base && password && brokenFile && fixedFile, "the server, the password and the two workbooks are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `territory-${name}.png`), fullPage: true });

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
/** Eligible and reached places per indicator, summed over the towns. */
function totals(rows) {
  const out = {};
  for (const r of rows) {
    const o = (out[r.indicator] ||= { eligible: 0, reached: 0 });
    o.eligible += r.eligible; o.reached += r.reached;
  }
  return out;
}
/** The API's figures for the indicators the page shows cards for (an indicator without places counts 0 of 0). */
const asCards = (shown, api) => Object.fromEntries(Object.keys(shown).map((k) => [k, api[k] || { eligible: 0, reached: 0 }]));
const cards = (page) => page.$$eval(".card[data-indicator]", (els) => Object.fromEntries(els.map((e) =>
  [e.dataset.indicator, { eligible: +e.dataset.eligible, reached: +e.dataset.reached }])));

async function login(page, username) {
  await page.goto(base + "/");
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(password);
  await page.getByLabel("密码").press("Enter");
  await page.waitForSelector('#view[data-ready="#/"]');
}

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const errors = [];
try {
  const office = await token("office");

  // A viewer gets no link to the page.
  const viewerPage = await browser.newPage();
  viewerPage.on("pageerror", (e) => errors.push(String(e)));
  await login(viewerPage, "watcher");
  assert.ok(await viewerPage.isHidden("#nav-territory"), "viewers do not import");
  await viewerPage.close();

  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  await login(page, "office");
  const before = await cards(page);
  const apiBefore = totals(await get(office, "/api/v1/reports/coverage?by=town"));
  assert.deepEqual(before, asCards(before, apiBefore), "the overview before");

  // From the keyboard: the link, then Enter; the title takes the focus.
  const link = page.getByRole("link", { name: "辖区导入" });
  await link.focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector('#view[data-ready="#/territory"]');
  assert.equal(await page.evaluate(() => document.activeElement.id), "view-title");
  assert.equal(await page.textContent("#view-title"), "辖区导入");
  const help = await page.textContent("#territory-columns");
  for (const column of ["place_id", "kind", "label", "grid_code", "village_kind", "town_name", "lat", "lon"]) {
    assert.ok(help.includes(column), `the help names ${column}: ${help}`);
  }
  for (const [id, kind] of [["#territory-template-csv", "text/csv"], ["#territory-template-xlsx", "spreadsheetml"]]) {
    const r = await fetch(new URL(await page.getAttribute(id, "href"), base));
    assert.equal(r.status, 200, id);
    assert.ok(r.headers.get("content-type").includes(kind), id);
  }
  assert.ok(await page.isDisabled("#territory-import"), "nothing to import before a check");

  // Check with no file: told to choose one, focus on the file field.
  await page.click("#territory-check");
  assert.equal(await page.getAttribute("#territory-result", "role"), "alert");
  assert.equal(await page.evaluate(() => document.activeElement.id), "territory-file");

  // The broken workbook, checked from the keyboard: two rows to fix, by row and column; nothing changed.
  await page.getByLabel("辖区文件（.csv 或 .xlsx）").setInputFiles(brokenFile);
  await page.focus("#territory-check");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#territory-errors");
  const problems = await page.$$eval("#territory-errors tbody tr", (trs) => trs.map((tr) =>
    [Number(tr.dataset.line), tr.dataset.column, tr.cells[2].textContent]));
  assert.deepEqual(problems.map(([line, column]) => [line, column]), [[5, "kind"], [8, "lon"]], JSON.stringify(problems));
  assert.ok(problems[0][2].includes('"castle"'), problems[0][2]);
  assert.ok(problems[1][2].includes("empty while lat is given"), problems[1][2]);
  assert.equal(await page.getAttribute("#territory-result", "role"), "alert");
  assert.ok(await page.isDisabled("#territory-import"), "a refused file cannot be imported");
  assert.equal(await page.getAttribute("#territory-progress", "data-phase"), "failed");
  assert.deepEqual(await get(office, "/api/v1/reports/coverage?by=town").then(totals), apiBefore, "checking changes nothing");
  await shot(page, "errors");

  // Fixed: checked again; the summary per village, and Import enabled.
  await page.getByLabel("辖区文件（.csv 或 .xlsx）").setInputFiles(fixedFile);
  assert.ok(await page.isDisabled("#territory-import"));
  await page.click("#territory-check");
  await page.waitForSelector("#territory-ready");
  const villages = await page.$$eval("#territory-villages tbody tr", (trs) => trs.map((tr) => [tr.dataset.village,
    ...["added", "changed", "moved", "unchanged", "not-in-file"].map((r) => Number(tr.querySelector(`[data-role=${r}]`).textContent))]));
  assert.deepEqual(villages, [["C2", 2, 0, 0, 0, 0], ["V1", 3, 1, 0, 1, 0]]);
  assert.equal(await page.getAttribute("#territory-totals", "data-added"), "5");
  assert.ok(await page.isEnabled("#territory-import"), "a checked file can be imported");
  assert.deepEqual(await get(office, "/api/v1/reports/coverage?by=town").then(totals), apiBefore, "checking changes nothing");
  await shot(page, "checked");

  // Another file chosen after the check cannot be imported without its own check.
  await page.getByLabel("辖区文件（.csv 或 .xlsx）").setInputFiles(brokenFile);
  assert.ok(await page.isDisabled("#territory-import"), "a file not checked cannot be imported");
  await page.getByLabel("辖区文件（.csv 或 .xlsx）").setInputFiles(fixedFile);
  await page.click("#territory-check");
  await page.waitForSelector("#territory-ready");

  // Import: the progress element shows the upload, then the server's work, to the end.
  await page.click("#territory-import");
  await page.waitForSelector("#territory-imported");
  const progress = page.getByLabel("进度");
  assert.ok(await progress.isVisible(), "the progress is shown");
  const seen = (await progress.getAttribute("data-seen")).split(",");
  assert.ok(seen.includes("upload") && seen.includes("done"), `phases seen: ${seen}`);
  assert.equal(await progress.evaluate((p) => p.value === p.max), true, "complete at the end");
  assert.equal(await page.getAttribute("#territory-totals", "data-added"), "5");
  assert.ok((await page.textContent("#territory-totals")).includes("已导入 7 个点位"));
  assert.ok(await page.isDisabled("#territory-import"), "imported once");
  await shot(page, "imported");

  // The overview counts the new places, as the API does.
  await page.click("#nav-territory");
  await page.getByRole("link", { name: "总览" }).click();
  await page.waitForSelector('#view[data-ready="#/"] .card');
  const after = await cards(page);
  const api = totals(await get(office, "/api/v1/reports/coverage?by=town"));
  assert.deepEqual(after, asCards(after, api), "the overview's figures are the API's");
  const households = (figures) => figures.handbook?.eligible ?? 0;
  assert.equal(households(after) - households(before), 5, "five households more are counted");

  // English.
  await page.click("#lang");
  await page.click("#nav-territory");
  await page.waitForSelector('#view[data-ready="#/territory"]');
  assert.equal(await page.textContent("#nav-territory"), "Territory");
  assert.equal(await page.textContent("#view-title"), "Territory import");
  assert.ok(await page.getByLabel("Territory file (.csv or .xlsx)").isVisible());
  assert.ok(await page.getByRole("button", { name: "Check" }).isVisible());
  await shot(page, "english");
} finally {
  await browser.close();
}
assert.deepEqual(errors, [], "no script errors on the page");
console.log("territory browser test: 1 passed, 0 failed");
