// Browser test of the liaison roster, monthly submissions and situation reports (started by
// tests/roster_browser.rs): in real headless Chromium a village cadre files the roster, the month's submission and
// a situation report, from labelled fields and the keyboard; the office sees them (phones in full, the submission's
// state in the monthly ranking, the situation as unread), sets the deadline, exports the roster and prints the
// submission; a town's viewer sees the phones masked. Screenshots go to DOORSTEP_ARTIFACTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
const exportPath = process.env.DOORSTEP_EXPORT;
assert.ok(base && password && exportPath, "DOORSTEP_URL, DOORSTEP_PASSWORD and DOORSTEP_EXPORT are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `roster-${name}.png`), fullPage: true });
const pct = (r) => (r * 100).toFixed(1) + "%";
const thisMonth = () => { const d = new Date(); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`; };
const month = thisMonth();

async function token(username) {
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

async function login(page, username) {
  await page.goto(base + "/");
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(password);
  await page.getByLabel("密码").press("Enter");
  await page.waitForSelector('#view[data-ready="#/"]');
}

/** Follows a navigation link from the keyboard and waits for its view; its title has the focus. */
async function navigate(page, route, titled = true) {
  await page.focus(`#nav-${route}`);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#view[data-ready="#/${route}"]`);
  if (titled) assert.equal(await page.evaluate(() => document.activeElement?.id), "view-title", `${route}: the title has the focus`);
}

/** Every visible form control in the view has a label naming it. */
async function allLabelled(page) {
  const unlabelled = await page.$$eval("#view input, #view select, #view textarea", (els) =>
    els.filter((e) => !e.labels?.length || !e.labels[0].textContent.trim()).map((e) => e.id || e.name));
  assert.deepEqual(unlabelled, [], "every field has a label");
}

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const errors = [];
try {
  const cadreToken = await token("cadre-v1");
  const officeToken = await token("office");

  // --- the cadre ---------------------------------------------------------------------------------------
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  await login(page, "cadre-v1");
  assert.equal(await page.isVisible("#nav-roster"), true);
  assert.equal(await page.textContent("#nav-roster"), "联络员");
  await navigate(page, "roster");
  await page.waitForSelector("#roster-form");
  await allLabelled(page);
  const person = (i, p = page) => p.locator(`fieldset[data-index="${i}"]`);
  const fillPerson = async (i, duty, name, unit, post, phone, note = "", p = page) => {
    const person = (i) => p.locator(`fieldset[data-index="${i}"]`);
    await person(i).getByLabel("职责").selectOption(duty);
    await person(i).getByLabel("姓名").fill(name);
    await person(i).getByLabel("单位").fill(unit);
    await person(i).getByLabel("职务").fill(post);
    await person(i).getByLabel("联系电话").fill(phone);
    await person(i).getByLabel("备注").fill(note);
  };
  await fillPerson(0, "leader", "张三", "龙凤村委会", "副书记", "13812341234", "分管平安建设");
  await fillPerson(1, "liaison", "李四", "龙凤村委会", "综治专干", "13900005678");
  // A third person, added from the keyboard: the new name field gets the focus.
  await page.focus("#roster-add");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "roster-name-2");
  await page.keyboard.type("王五");
  await fillPerson(2, "liaison", "王五", "龙凤村小学", "教导主任", "0571-8888-6666");
  await page.focus('#roster-form button[type="submit"]');
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("roster-result")?.textContent.includes("已保存"));
  const saved = (await get(cadreToken, "/api/v1/roster")).areas.find((a) => a.area === "V1");
  assert.deepEqual(saved.entries.map((e) => [e.duty, e.name, e.unit, e.post, e.phone]), [
    ["leader", "张三", "龙凤村委会", "副书记", "13812341234"],
    ["liaison", "李四", "龙凤村委会", "综治专干", "13900005678"],
    ["liaison", "王五", "龙凤村小学", "教导主任", "0571-8888-6666"],
  ]);
  const shownPhones = await page.$$eval('section[data-area="V1"] [data-role=phone]', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(shownPhones, ["13812341234", "13900005678", "0571-8888-6666"], "the cadre sees their own phones");
  await shot(page, "cadre-roster");

  // A bad phone is refused with the reason, and nothing changes.
  await person(0).getByLabel("联系电话").fill("call me");
  await page.click('#roster-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("roster-result")?.getAttribute("role") === "alert");
  assert.match(await page.textContent("#roster-result"), /entry 1: phone "call me"/);
  assert.equal((await get(cadreToken, "/api/v1/roster")).areas.find((a) => a.area === "V1").entries[0].phone, "13812341234");

  // The month's submission, pre-filled with the monthly report's figures.
  await navigate(page, "submissions");
  assert.equal(await page.locator("#submissions tbody tr").count(), 1, "a cadre lists their own area only");
  assert.equal(await page.textContent('#submissions tr[data-area="V1"] a'), "填写本月报送");
  await page.focus('#submissions tr[data-area="V1"] a');
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#view[data-ready="#/submissions/V1:${month}"] #submission-form`);
  await allLabelled(page);
  const report = await get(officeToken, `/api/v1/reports/monthly?month=${month}&area=T1`);
  const row = report.rows.find((r) => r.area === "V1");
  assert.equal(await page.textContent("[data-role=visits]"), String(row.visits));
  assert.equal(await page.textContent("#submission-figures [data-role=score]"), pct(row.score));
  for (const i of row.indicators) {
    assert.equal(await page.textContent(`#submission-figures [data-indicator="${i.indicator}"]`), `${pct(i.rate)} (${i.reached}／${i.eligible})`);
  }
  await page.getByLabel("本月工作开展情况").fill("入户宣传 2 户，发放手册 2 本");
  await page.getByLabel("存在问题").fill("外出务工人员多");
  await page.getByLabel("下步工作打算").fill("下月补访");
  await page.focus("#submission-save");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("submission-result")?.textContent === "草稿已保存。");
  assert.equal(await page.getAttribute("#submission-state", "data-state"), "draft");
  assert.equal(await page.inputValue("#submission-problems"), "外出务工人员多", "the draft reads back");
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await page.click('#submission-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("submission-result")?.textContent === "已报送。");
  assert.match(asked, /不能再修改/);
  const submitted = await get(cadreToken, `/api/v1/submissions/V1/${month}`);
  assert.equal(submitted.state, "submitted");
  assert.equal(await page.getAttribute("#submission-state", "data-status"), submitted.status);
  assert.equal(await page.locator("#submission-form textarea").count(), 0, "a submitted report is read-only");
  await shot(page, "cadre-submission");

  // A situation report.
  await navigate(page, "situations");
  await allLabelled(page);
  await page.getByLabel("紧急程度").selectOption("urgent");
  await page.getByLabel("标题").fill("疑似电诈窝点");
  await page.getByLabel("情况说明").fill("村东出租屋多人使用大量手机卡");
  await page.focus('#situation-form button[type="submit"]');
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("situation-result")?.textContent.includes("已报告"));
  assert.equal(await page.locator("#situations article").count(), 1);
  await shot(page, "cadre-situation");
  await page.close();

  // --- the office ----------------------------------------------------------------------------------------
  const office = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  office.on("pageerror", (e) => errors.push(String(e)));
  await login(office, "office");
  // The unread report is counted beside its navigation link from the first page on.
  await office.waitForSelector('#situations-badge[data-count="1"]');
  assert.equal(await office.textContent("#situations-badge"), "1 条未读");
  // The situation is there at once, unread, and marked read from the keyboard.
  await navigate(office, "situations");
  assert.equal(await office.getAttribute("#situations-unread", "data-count"), "1");
  assert.equal(await office.getAttribute("#situations article", "data-read"), "false");
  assert.match(await office.textContent("#situations article h3"), /紧急 · 疑似电诈窝点/);
  await office.focus("[data-mark-read]");
  await office.keyboard.press("Enter");
  await office.waitForSelector('#situations article[data-read="true"]');
  assert.equal(await office.getAttribute("#situations-unread", "data-count"), "0");
  await office.waitForSelector('#situations-badge[data-count="0"]', { state: "hidden" });

  // The roster: phones in full, who has not filed, the deadline, the export.
  await navigate(office, "roster");
  assert.deepEqual(await office.$$eval('section[data-area="V1"] [data-role=phone]', (tds) => tds.map((td) => td.textContent)),
    ["13812341234", "13900005678", "0571-8888-6666"]);
  assert.match(await office.textContent("#roster-not-filed"), /新街社区/);
  await office.getByLabel("报送截止日期").fill("2026-12-31");
  await office.click('#deadline-form button[type="submit"]');
  await office.waitForSelector("#roster-deadline");
  assert.equal(await office.textContent("#roster-deadline"), "2026-12-31");
  const [download] = await Promise.all([office.waitForEvent("download"), office.click("#roster-export")]);
  await download.saveAs(exportPath);
  assert.equal(readFileSync(exportPath).subarray(0, 2).toString(), "PK", "an XLSX (zip) file");
  await shot(office, "office-roster");

  // The office fills in a community's roster for it; then everyone has filed.
  await office.click('section[data-area="C1"] a');
  await office.waitForSelector('#view[data-ready="#/roster/C1"] #roster-form');
  await allLabelled(office);
  await fillPerson(0, "leader", "陈七", "新街社区居委会", "主任", "13700001111", "", office);
  await fillPerson(1, "liaison", "周八", "新街社区居委会", "网格长", "13700002222", "", office);
  await office.click('#roster-form button[type="submit"]');
  await office.waitForSelector('#view[data-ready="#/roster"]');
  await office.waitForFunction(() => document.getElementById("roster-result")?.textContent.includes("新街社区"));
  assert.equal(await office.getAttribute("#roster-not-filed", "data-count"), "0");

  // The monthly ranking shows each village's submission status beside its figures.
  const statuses = await get(officeToken, `/api/v1/submissions?month=${month}`);
  // (The monthly report is app.js's view, whose heading is not focused.)
  await navigate(office, "monthly", false);
  const cells = await office.$$eval("#monthly-ranking tbody tr", (trs) => trs.map((tr) => [tr.dataset.area,
    tr.querySelector("[data-role=submission]")?.dataset.status]));
  assert.deepEqual(Object.fromEntries(cells), Object.fromEntries(statuses.filter((s) => cells.some(([a]) => a === s.area)).map((s) => [s.area, s.status])));
  const v1 = statuses.find((s) => s.area === "V1");
  assert.equal(await office.textContent('#monthly-ranking tr[data-area="V1"] [data-role=submission]'), v1.status === "on_time" ? "按时报送" : "逾期报送");
  assert.equal(await office.textContent('#monthly-ranking thead th:last-child'), "月度报送");
  await shot(office, "office-monthly");

  // The list of the month, and the submission, read and printed.
  await navigate(office, "submissions");
  assert.equal(await office.getAttribute('#submissions tr[data-area="V1"]', "data-state"), "submitted");
  assert.equal(await office.getAttribute('#submissions tr[data-area="C1"]', "data-status"), "not_yet");
  await office.click('#submissions tr[data-area="V1"] a');
  await office.waitForSelector(`#view[data-ready="#/submissions/V1:${month}"]`);
  assert.equal(await office.textContent("#submission-work_done"), "入户宣传 2 户，发放手册 2 本");
  assert.equal(await office.locator("#submission-save").count(), 0, "the office reads, the cadre writes");
  await office.emulateMedia({ media: "print" });
  assert.equal(await office.isVisible("#print"), false, "the print layout hides the controls");
  assert.equal(await office.isVisible("#submission-figures"), true);
  await shot(office, "office-submission-print");
  await office.emulateMedia({ media: "screen" });

  // English.
  await office.click("#lang");
  await office.waitForSelector(`#view[data-ready="#/submissions/V1:${month}"]`);
  assert.equal(await office.textContent("#nav-roster"), "Liaisons");
  assert.equal(await office.textContent("#nav-submissions"), "Monthly submissions");
  await office.click("#lang");
  await office.close();

  // --- a town's viewer: the phones masked ----------------------------------------------------------------
  const viewer = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  viewer.on("pageerror", (e) => errors.push(String(e)));
  await login(viewer, "town-viewer");
  await navigate(viewer, "roster");
  assert.deepEqual(await viewer.$$eval('section[data-area="V1"] [data-role=phone]', (tds) => tds.map((td) => [td.textContent, td.dataset.masked])),
    [["138****1234", "true"], ["139****5678", "true"], ["057****6666", "true"]]);
  assert.deepEqual(await viewer.$$eval('section[data-area="C1"] [data-role=phone]', (tds) => tds.map((td) => td.textContent)),
    ["137****1111", "137****2222"]);
  assert.equal(await viewer.locator("#roster-form").count(), 0, "not theirs to write");
  await shot(viewer, "viewer-roster");
  await viewer.close();

  // A volunteer's session sees none of it.
  const volToken = await token("vol");
  assert.equal((await fetch(base + "/api/v1/roster", { headers: { authorization: `Bearer ${volToken}` } })).status, 403);
} finally {
  await browser.close();
}
assert.deepEqual(errors, [], "no script errors on the page");
console.log("roster browser test: 1 passed, 0 failed");
