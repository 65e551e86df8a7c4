// Browser test of the office dashboard: real headless Chromium against a running doorstep server (started by
// tests/dashboard_browser.rs). Logs in, checks that the page's figures equal the API's, drills down to places,
// renews the session, switches language, prints the monthly report, shows the urgent tasks, shows the campaign and
// has the office check a broken and a good definition file and apply the good one, revokes a phone, searches the
// audit log, and saves screenshots.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const officePassword = process.env.DOORSTEP_OFFICE_PASSWORD;
const viewerPassword = process.env.DOORSTEP_VIEWER_PASSWORD;
const leadPassword = process.env.DOORSTEP_LEAD_PASSWORD;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
const campaignFile = process.env.DOORSTEP_CAMPAIGN_FILE;
const brokenCampaignFile = process.env.DOORSTEP_BROKEN_CAMPAIGN_FILE;
assert.ok(base && officePassword && viewerPassword && leadPassword, "DOORSTEP_URL and the demo passwords are required");
assert.ok(campaignFile && brokenCampaignFile, "the campaign files to check and apply are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `dashboard-${name}.png`), fullPage: true });
const pct = (r) => (r * 100).toFixed(1) + "%";

async function token(username, password) {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).token;
}
async function get(tok, path) {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${tok}` } });
  assert.equal(r.status, 200, path);
  return r.json();
}
function totals(rows) {
  const out = {};
  for (const r of rows) {
    const o = (out[r.indicator] ||= { eligible: 0, reached: 0 });
    o.eligible += r.eligible; o.reached += r.reached;
  }
  return out;
}
/** The page's indicator cards, in order: id, figures, rate and name. */
const cardFigures = (page) => page.$$eval(".card[data-indicator]", (els) => els.map((e) => ({
  indicator: e.dataset.indicator, eligible: +e.dataset.eligible, reached: +e.dataset.reached,
  rate: e.querySelector("[data-role=rate]").textContent, name: e.querySelector("h3").textContent,
})));
const DEFAULT_INDICATORS = ["handbook", "awareness", "poster", "banner", "led"];
const thisMonth = () => { const d = new Date(); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`; };

async function login(page, username, password) {
  await page.goto(base + "/");
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(password);
  await page.getByLabel("密码").press("Enter");
  await page.waitForSelector('#view[data-ready="#/"] .card');
}

/** The overview's cards and ranking equal the API's figures for the same reader. */
async function checkOverview(page, tok, areaParam) {
  const api = totals(await get(tok, "/api/v1/reports/coverage?by=town"));
  const cards = await page.$$eval(".card", (els) => els.map((e) => ({
    indicator: e.dataset.indicator, eligible: +e.dataset.eligible, reached: +e.dataset.reached,
    text: e.querySelector("[data-role=rate]").textContent,
  })));
  assert.equal(cards.length, Object.keys(api).length, "one card per indicator with places");
  for (const c of cards) {
    const f = api[c.indicator];
    assert.deepEqual([c.eligible, c.reached], [f.eligible, f.reached], c.indicator);
    assert.equal(c.text, pct(f.eligible ? f.reached / f.eligible : 1), c.indicator);
  }
  const monthly = await get(tok, `/api/v1/reports/monthly?month=${thisMonth()}${areaParam}`);
  const ranking = await page.$$eval("#ranking tbody tr", (trs) => trs.map((tr) => ({
    area: tr.dataset.area, rank: +tr.dataset.rank, score: tr.querySelector("[data-role=score]").textContent,
  })));
  assert.deepEqual(ranking, monthly.rows.map((r) => ({ area: r.area, rank: r.rank, score: pct(r.score) })));
  assert.ok(await page.$("#chart svg polyline"), "the progress chart is drawn");
  return monthly;
}

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  const office = await token("office", officePassword);

  // Wrong password: a clear message, still on the login form.
  await page.goto(base + "/");
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN", "Chinese by default");
  await page.getByLabel("用户名").fill("office");
  await page.getByLabel("密码").fill("wrong password");
  await page.getByRole("button", { name: "登录" }).click();
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  await shot(page, "login-error");

  await login(page, "office", officePassword);
  const town = await get(office, "/api/v1/reports/coverage?by=town");
  const monthly = await checkOverview(page, office, `&area=${town[0].area}`);
  assert.ok(monthly.rows.length >= 5, "the demo town ranks its villages");
  // The CA certificate phones install for team hubs, with the fingerprint to check it by.
  const ca = await (await fetch(`${base}/api/v1/ca`)).json();
  assert.equal(await page.textContent("#ca-sha256"), ca.sha256);
  assert.equal(await page.textContent("#ca-name"), ca.name);
  const download = await page.getAttribute("#ca-download", "href");
  assert.equal(await (await fetch(new URL(download, base))).text(), ca.certificate);
  await shot(page, "overview");

  // Drill down with the keyboard: town -> village -> grid -> places.
  const villages = await get(office, `/api/v1/reports/coverage?by=village&area=${town[0].area}`);
  const village = villages[0].area;
  await page.focus(`#children tr[data-area="${village}"] a`);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#view[data-ready="#/village/${village}"]`);
  const grids = await get(office, `/api/v1/reports/coverage?by=grid&area=${village}`);
  const gridCodes = [...new Set(grids.map((r) => r.area))];
  const shown = await page.$$eval("#children tbody tr", (trs) => trs.map((tr) => tr.dataset.area));
  assert.deepEqual(shown, gridCodes);
  for (const r of grids) {
    const cell = await page.textContent(`#children tr[data-area="${r.area}"] td[data-indicator="${r.indicator}"]`);
    assert.equal(cell, pct(r.rate), `${r.area}/${r.indicator}`);
  }
  const grid = gridCodes[0];
  await page.click(`#children tr[data-area="${grid}"] a`);
  await page.waitForSelector(`#view[data-ready="#/grid/${grid}"]`);
  const places = await get(office, `/api/v1/reports/gaps?grid=${grid}&all=true`);
  assert.equal(await page.locator("#places tbody tr").count(), places.length);
  const missing = places.find((p) => !p.excluded && p.missing.length);
  if (missing) {
    const text = await page.textContent(`#places tr[data-place="${missing.place_id}"]`);
    assert.ok(text.includes("未完成") || text.length > 0);
  }
  const body = await page.textContent("body");
  assert.ok(!/1[3-9]\d{9}/.test(body), "no phone numbers on the page");
  await shot(page, "grid");

  // An expired access token is renewed with the refresh token, transparently.
  await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem("doorstep.session"));
    s.token = "expired";
    sessionStorage.setItem("doorstep.session", JSON.stringify(s));
  });
  await page.goto(base + "/#/");
  await page.reload();
  await page.waitForSelector('#view[data-ready="#/"] .card');
  const renewed = await page.evaluate(() => JSON.parse(sessionStorage.getItem("doorstep.session")).token);
  assert.notEqual(renewed, "expired");

  // English.
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/"] .card');
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal(await page.textContent('.card[data-indicator="handbook"] h3'), "Handbook delivered");
  assert.equal(await page.textContent("#nav-monthly"), "Monthly report");
  await shot(page, "overview-en");
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/"] .card');
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");

  // The monthly report prints on A4 with the town's name and the month; the navigation is not printed.
  const month = thisMonth();
  await page.click("#nav-monthly");
  await page.waitForSelector("#monthly-ranking");
  const title = await page.textContent("#report-title");
  assert.ok(title.includes(town[0].name) && title.includes(month), title);
  const printed = await page.$$eval("#monthly-ranking tbody tr", (trs) => trs.map((tr) => tr.dataset.area));
  assert.deepEqual(printed, monthly.rows.map((r) => r.area));
  assert.equal(monthly.campaign_version, 0);
  assert.equal(await page.locator("#campaign-version-used").count(), 0, "the default campaign needs no version line");
  await page.emulateMedia({ media: "print" });
  assert.equal(await page.$eval("header.top", (e) => getComputedStyle(e).display), "none");
  assert.equal(await page.$eval("#month-form", (e) => getComputedStyle(e).display), "none");
  await shot(page, "monthly-print");
  await page.pdf({ path: join(artifacts, "monthly-report.pdf"), format: "A4", printBackground: true });
  await page.emulateMedia({ media: "screen" });

  // The monthly report carries the urgent task figures of the API's report.
  const monthReport = await get(office, `/api/v1/reports/monthly?month=${month}&area=${town[0].area}`);
  const printedTasks = await page.$eval("#monthly-tasks", (e) => ({ ...e.dataset }));
  assert.deepEqual(printedTasks, {
    created: String(monthReport.tasks.created), completed: String(monthReport.tasks.completed),
    overdue: String(monthReport.tasks.overdue),
  });

  // Urgent tasks: open, overdue and completed ones, with the API's response times, and no phone numbers.
  const taskRows = await get(office, "/api/v1/tasks?status=all");
  assert.ok(taskRows.length >= 4, "the demo town has urgent tasks");
  await page.click("#nav-tasks");
  await page.waitForSelector('#view[data-ready="#/tasks"] #tasks-done');
  const rowsOf = (id) => page.locator(`#${id} tbody tr[data-task]`).count();
  const overdue = taskRows.filter((r) => r.overdue);
  const open = taskRows.filter((r) => !r.overdue && ["open", "follow_up"].includes(r.status));
  const completed = taskRows.filter((r) => ["done", "closed"].includes(r.status));
  assert.ok(overdue.length >= 1 && open.length >= 1 && completed.length >= 2, "the demo has tasks of every kind");
  assert.equal(await rowsOf("tasks-overdue"), overdue.length);
  assert.equal(await rowsOf("tasks-open"), open.length);
  assert.equal(await rowsOf("tasks-done"), completed.length);
  for (const r of completed) {
    const cell = await page.textContent(`#tasks-done tr[data-task="${r.task_id}"] [data-role=response]`);
    assert.equal(cell, r.response_minutes < 60 ? `${r.response_minutes} 分钟` : `${(r.response_minutes / 60).toFixed(1)} 小时`);
  }
  const figure = (key) => page.textContent(`.card[data-figure="${key}"] [data-role=value]`);
  assert.equal(await figure("overdueTasks"), String(overdue.length));
  assert.equal(await figure("doneTasks"), String(completed.length));
  assert.ok(!/1[3-9]\d{9}/.test(await page.textContent("body")), "no phone numbers on the tasks page");
  await shot(page, "tasks");
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/tasks"] #tasks-done');
  assert.equal(await page.textContent("#view-title"), "Urgent dissuasion tasks");
  await shot(page, "tasks-en");
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/tasks"] #tasks-done');

  // A viewer sees their own area's figures, equal to the API's for them.
  const viewerPage = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  viewerPage.on("pageerror", (e) => errors.push(String(e)));
  await login(viewerPage, "viewer", viewerPassword);
  await checkOverview(viewerPage, await token("viewer", viewerPassword), "");
  assert.ok(await viewerPage.locator("#nav-tasks").isHidden(), "viewers do not see urgent tasks");
  await shot(viewerPage, "viewer");

  // The campaign: a viewer sees it, without the means to change it.
  await viewerPage.click("#nav-campaign");
  await viewerPage.waitForSelector('#view[data-ready="#/campaign"] #campaign-indicators');
  assert.equal(await viewerPage.getAttribute("#campaign-version", "data-version"), "0");
  assert.equal(await viewerPage.locator("#campaign-file, #campaign-check, #campaign-apply").count(), 0, "viewers get no upload");
  assert.ok(await viewerPage.isVisible("#campaign-readonly"));

  // The office: the overview's figures with the default campaign, then the campaign page: version 0, the five
  // default indicators in report order with their names, and the definition file as the API gives it.
  await page.click('nav a[href="#/"]');
  await page.waitForSelector('#view[data-ready="#/"] .card');
  const figuresBefore = await cardFigures(page);
  assert.deepEqual(figuresBefore.map((c) => c.indicator), DEFAULT_INDICATORS);
  const campaignBefore = await get(office, "/api/v1/campaign");
  assert.equal(campaignBefore.version, 0);
  await page.click("#nav-campaign");
  await page.waitForSelector('#view[data-ready="#/campaign"] #campaign-indicators');
  assert.equal(await page.getAttribute("#campaign-version", "data-version"), "0");
  const listed = await page.$$eval("#campaign-indicators tbody tr", (trs) =>
    trs.map((tr) => [tr.dataset.indicator, tr.cells[0].textContent.trim()]));
  assert.deepEqual(listed.map(([id]) => id), DEFAULT_INDICATORS);
  assert.deepEqual(listed, campaignBefore.campaign.indicators.map((i) => [i.id, i.zh]));
  assert.equal(await page.textContent("#campaign-definition"), campaignBefore.definition);
  assert.ok(await page.isDisabled("#campaign-apply"), "nothing to apply before a check");
  await shot(page, "campaign");

  // A broken file: every problem with its line, and nothing to apply.
  const brokenLines = readFileSync(brokenCampaignFile, "utf8").split("\n");
  const lineOf = (word) => brokenLines.findIndex((l) => l.includes(word)) + 1;
  await page.setInputFiles("#campaign-file", brokenCampaignFile);
  await page.click("#campaign-check");
  await page.waitForSelector("#campaign-errors");
  const problems = await page.textContent("#campaign-errors");
  assert.ok(problems.includes("2 problems"), problems);
  for (const word of ["castle", "leaflet"]) {
    assert.ok(lineOf(word) > 0 && problems.split("\n").some((l) => l.trim().startsWith(`line ${lineOf(word)}:`) && l.includes(word)),
      `${word} on line ${lineOf(word)}: ${problems}`);
  }
  assert.equal(await page.getAttribute("#campaign-result", "role"), "alert");
  assert.ok(await page.isDisabled("#campaign-apply"), "a refused file cannot be applied");
  assert.equal((await get(office, "/api/v1/campaign")).version, 0, "checking changes nothing");
  await shot(page, "campaign-problems");

  // The "two cards" file: the check shows what it adds; still nothing applied.
  await page.setInputFiles("#campaign-file", campaignFile);
  assert.ok(await page.isDisabled("#campaign-apply"));
  await page.click("#campaign-check");
  await page.waitForSelector("#campaign-plan");
  assert.ok((await page.textContent("#plan-indicators_added")).includes("two_cards"));
  assert.ok((await page.textContent("#plan-indicators_added")).includes("两卡通告张贴"), "named as the file names it");
  assert.ok((await page.textContent("#plan-kinds_added")).includes("outlet"));
  assert.ok((await page.textContent("#plan-deliveries_added")).includes("two_cards_notice"));
  assert.equal(await page.locator("#plan-indicators_removed, #plan-indicators_changed, #plan-kinds_removed").count(), 0);
  assert.ok(await page.isEnabled("#campaign-apply"), "a checked file can be applied");
  assert.equal((await get(office, "/api/v1/campaign")).version, 0, "checking changes nothing");
  await shot(page, "campaign-plan");

  // Apply it, confirming: version 1, applied by the office, with the sixth indicator.
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await page.click("#campaign-apply");
  await page.waitForSelector('#view[data-ready="#/campaign"] #campaign-version[data-version="1"]');
  assert.ok(asked.includes("1"), `confirmation asked: ${asked}`);
  const campaignAfter = await get(office, "/api/v1/campaign");
  assert.equal(campaignAfter.version, 1);
  assert.equal(await page.textContent("#campaign-applied-by"), campaignAfter.applied_by);
  assert.ok((await page.textContent("#campaign-result")).includes("1"));
  const listedAfter = await page.$$eval("#campaign-indicators tbody tr", (trs) =>
    trs.map((tr) => [tr.dataset.indicator, tr.cells[0].textContent.trim()]));
  assert.deepEqual(listedAfter, campaignAfter.campaign.indicators.map((i) => [i.id, i.zh]));
  assert.deepEqual(listedAfter.at(-1), ["two_cards", "两卡通告张贴"]);
  assert.equal(await page.textContent("#campaign-definition"), readFileSync(campaignFile, "utf8"));
  await shot(page, "campaign-applied");

  // The overview counts with it: a "two cards" card (no outlets yet), and the five others' figures unchanged.
  await page.click('nav a[href="#/"]');
  await page.waitForSelector('#view[data-ready="#/"] .card[data-indicator="two_cards"]');
  const figuresAfter = await cardFigures(page);
  assert.deepEqual(figuresAfter.map((c) => c.indicator), [...DEFAULT_INDICATORS, "two_cards"]);
  assert.deepEqual(figuresAfter.slice(0, 5), figuresBefore, "the five indicators count as before");
  assert.equal(figuresAfter[5].name, "两卡通告张贴");
  const apiAfter = totals(await get(office, "/api/v1/reports/coverage?by=town"));
  for (const c of figuresAfter) {
    const f = apiAfter[c.indicator] || { eligible: 0, reached: 0 };
    assert.deepEqual([c.eligible, c.reached], [f.eligible, f.reached], c.indicator);
  }
  await shot(page, "overview-two-cards");
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/"] .card[data-indicator="two_cards"]');
  assert.equal(await page.textContent('.card[data-indicator="two_cards"] h3'), "Two-cards notice at outlets");
  await page.click("#lang");
  await page.waitForSelector('#view[data-ready="#/"] .card');

  // Enrolled phones: every one with its owner for the office; one revoked with a click, once confirmed, stops at
  // once; a dismissed confirmation revokes nothing.
  assert.ok(await viewerPage.isHidden("#nav-devices"), "a viewer has no devices page");
  await page.click("#nav-devices");
  await page.waitForSelector('#view[data-ready="#/devices"] #devices');
  const enrolled = await get(office, "/api/v1/devices");
  const deviceRows = () => page.$$eval("#devices tbody tr", (trs) =>
    trs.map((tr) => [tr.dataset.device, tr.cells[1].textContent, tr.dataset.revoked]));
  assert.ok(enrolled.length >= 2, "the demo enrols phones");
  assert.deepEqual(await deviceRows(), enrolled.map((d) => [d.device_id, d.username, d.revoked_at ? "true" : "false"]));
  const [lost, kept] = enrolled.filter((d) => !d.revoked_at);
  page.once("dialog", (d) => d.dismiss());
  await page.click(`[data-revoke="${kept.device_id}"]`);
  let revokeAsked = "";
  page.once("dialog", (d) => { revokeAsked = d.message(); d.accept(); });
  await page.click(`[data-revoke="${lost.device_id}"]`);
  await page.waitForSelector(`#devices tr[data-device="${lost.device_id}"][data-revoked="true"]`);
  assert.ok(revokeAsked.includes(lost.username) && revokeAsked.includes(lost.name), revokeAsked);
  assert.ok((await page.textContent("#devices-result")).includes(lost.username));
  const afterRevoke = await get(office, "/api/v1/devices");
  assert.ok(afterRevoke.find((d) => d.device_id === lost.device_id).revoked_at, "revoked");
  assert.equal(afterRevoke.find((d) => d.device_id === kept.device_id).revoked_at, null, "the dismissed one is not");
  assert.equal(await page.locator(`[data-revoke="${lost.device_id}"]`).count(), 0, "nothing left to revoke on it");
  await shot(page, "devices");
  // A lead (team-west) sees its own team's phones only, and no audit log.
  const leadPage = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  leadPage.on("pageerror", (e) => errors.push(String(e)));
  await login(leadPage, "lead-west", leadPassword);
  assert.ok(await leadPage.isHidden("#nav-audit"), "a lead has no audit log");
  await leadPage.click("#nav-devices");
  await leadPage.waitForSelector('#view[data-ready="#/devices"] #devices');
  const westRows = await leadPage.$$eval("#devices tbody tr", (trs) => trs.map((tr) => tr.cells[2].textContent));
  assert.deepEqual(westRows, enrolled.filter((d) => d.team === "team-west").map(() => "team-west"));
  await leadPage.close();

  // The audit log, the office's only: the newest first, searched by a family of actions, a person and dates.
  assert.ok(await viewerPage.isHidden("#nav-audit"), "a viewer has no audit log");
  await page.click("#nav-audit");
  await page.waitForSelector('#view[data-ready="#/audit"] #audit-form');
  const newest = await get(office, "/api/v1/audit?order=newest&limit=501");
  assert.equal(Number(await page.getAttribute("#audit-count", "data-count")), Math.min(newest.length, 500));
  const auditRows = () => page.$$eval("#audit tbody tr", (trs) => trs.map((tr) => [tr.cells[1].textContent, tr.cells[2].textContent]));
  assert.deepEqual((await auditRows())[0], [newest[0].username || "", newest[0].action], "the newest first");
  const search = async (fields, expected) => {
    for (const id of ["audit-user", "audit-action", "audit-from", "audit-to"]) await page.fill(`#${id}`, fields[id] || "");
    await page.click('#audit-form button[type="submit"]');
    await page.waitForSelector(`#view[data-ready="#/audit/${encodeURIComponent(expected)}"] #audit-count`);
  };
  await search({ "audit-action": "campaign" }, "action=campaign");
  assert.deepEqual(await auditRows(), [["office", "campaign.apply"]]);
  await search({ "audit-action": "device" }, "action=device");
  assert.deepEqual((await auditRows())[0], ["office", "device.revoke"], "the revoke just made, the newest first");
  await search({ "audit-user": "viewer" }, "user=viewer");
  const viewerRows = await auditRows();
  assert.ok(viewerRows.length > 0 && viewerRows.every(([who]) => who === "viewer"), JSON.stringify(viewerRows));
  assert.ok(viewerRows.some(([, action]) => action === "login"), "the viewer's login is there");
  const tomorrow = new Date(Date.now() + 86_400_000).toLocaleDateString("sv-SE");
  await search({ "audit-from": tomorrow }, `from=${tomorrow}`);
  assert.equal(await page.getAttribute("#audit-count", "data-count"), "0");
  assert.equal(await page.locator("#audit").count(), 0);
  assert.ok((await page.textContent("#view")).includes("没有符合条件的记录。"));
  await search({ "audit-action": "campaign" }, "action=campaign");
  await shot(page, "audit");

  // The monthly report says which campaign version it was counted with.
  await page.click("#nav-monthly");
  await page.waitForSelector('#view[data-ready="#/monthly"] #monthly-ranking');
  assert.equal((await get(office, `/api/v1/reports/monthly?month=${month}&area=${town[0].area}`)).campaign_version, 1);
  assert.equal(await page.textContent("#campaign-version-used"), "活动版本 1");

  // Log out: back to the login form.
  await page.click("#logout");
  await page.waitForSelector("#login-form", { state: "visible" });
} finally {
  await browser.close();
}
assert.deepEqual(errors, [], "no script errors on the page");
console.log("dashboard browser test: 1 passed, 0 failed");
