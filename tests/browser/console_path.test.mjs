// The town office's whole path in a real headless Chromium, from an empty server (its first office account
// aside) to a volunteer's visit, with no terminal: the office imports the territory workbook, creates a team, a
// lead and a volunteer, assigns a village to the team, prints the team's enrolment sheet; the volunteer's phone
// opens the QR code's address, enrols with one tap and records a visit, which the overview counts; a used code
// enrols nothing; the devices page shows the phone's app; the lead reports it lost, which revokes it and gives
// the volunteer a new code at once; the audit log shows every step. Run by tests/console_path_browser.rs.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const workbook = process.env.DOORSTEP_TERRITORY;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
assert.ok(base && password && workbook, "DOORSTEP_URL, DOORSTEP_PASSWORD and DOORSTEP_TERRITORY are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `console-path-${name}.png`), fullPage: true });
const errors = [];

function watch(page) {
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource/.test(m.text())) errors.push(m.text()); });
  return page;
}

function answerNextDialog(page, contains) {
  page.once("dialog", async (d) => {
    assert.equal(d.type(), "confirm");
    assert.ok(d.message().includes(contains), d.message());
    await d.accept();
  });
}

async function login(page, username, pw) {
  await page.goto(base + "/");
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(pw);
  await page.getByLabel("密码").press("Enter");
  await page.waitForSelector('#view[data-ready="#/"]');
}

async function open(page, route, selector = "") {
  await page.click(`#nav-${route}`);
  await page.waitForSelector(`#view[data-ready="#/${route}"] ${selector}`);
}

// axe-core's WCAG 2 A and AA rules (labels, names, contrast, landmarks…), evaluated in the page itself: through
// the debugging protocol, which the pages' Content-Security-Policy does not govern.
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const accessibility = {};
// A QR decoder, run in the page on the sheet's codes as drawn: what a phone's camera reads.
const JSQR = readFileSync(createRequire(import.meta.url).resolve("jsqr/dist/jsQR.js"), "utf8");

/** Each enrolment card's QR code, drawn as the page draws it and decoded; null where it does not decode. */
async function decodeSheet(page) {
  if (!(await page.evaluate(() => !!window.jsQR))) await page.evaluate(JSQR);
  return page.evaluate(async () => {
    const decoded = [];
    for (const svg of document.querySelectorAll(".enrol-card .qr svg")) {
      const xml = new XMLSerializer().serializeToString(svg);
      const image = new Image();
      image.src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(xml)));
      await image.decode();
      const size = 400;
      const canvas = Object.assign(document.createElement("canvas"), { width: size, height: size });
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, size, size);
      context.drawImage(image, 0, 0, size, size);
      decoded.push(window.jsQR(context.getImageData(0, 0, size, size).data, size, size)?.data ?? null);
    }
    return decoded;
  });
}

/** Runs axe on the page as it is and records its violations under `what`: none are expected. */
async function checkAccessibility(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return result.violations.map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
  accessibility[what] = violations;
}

/** Fields of the view without a label: none expected. */
async function unlabelled(page) {
  return page.$$eval("#view input, #view select, #view textarea", (els) =>
    els.filter((el) => el.type !== "hidden" && !(el.labels && el.labels.length) && !el.getAttribute("aria-label")).map((el) => el.id || el.name));
}

const browser = await chromium.launch({ executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const result = {};
try {
  const office = watch(await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage());
  await login(office, "office", password);

  // 1. The territory, from the office's workbook: checked, then imported.
  await open(office, "territory");
  await office.getByLabel("辖区文件（.csv 或 .xlsx）").setInputFiles(workbook);
  await office.click("#territory-check");
  await office.waitForSelector("#territory-ready");
  await office.click("#territory-import");
  await office.waitForSelector("#territory-imported", { timeout: 60_000 });
  await shot(office, "territory");
  await checkAccessibility(office, "territory, imported");

  // 2. A team, then its lead and a volunteer.
  await open(office, "teams", "#grids");
  await office.fill("#tg-new-name", "一队");
  await office.press("#tg-new-name", "Enter");
  await office.waitForSelector('#teams tr[data-team="一队"]');
  await open(office, "people", "#people");
  for (const [name, role] of [["li-lead", "lead"], ["zhang", "volunteer"], ["wang", "volunteer"]]) {
    await office.fill("#pp-new-name", name);
    await office.fill("#pp-new-password", "a volunteer's password");
    await office.selectOption("#pp-new-role", role);
    await office.selectOption("#pp-new-team", "一队");
    await office.click("#people-create button[type=submit]");
    await office.waitForSelector(`#people tr[data-user="${name}"]`);
  }
  assert.deepEqual(await unlabelled(office), [], "every field of the people page has a label");
  await checkAccessibility(office, "people");

  // 3. The village's grids to the team: every grid of V1 assigned, V2's still counted as unassigned.
  await open(office, "teams", "#grids");
  const unassignedBefore = Number(await office.getAttribute("#grids-unassigned", "data-count"));
  assert.equal(unassignedBefore, 3, "the three grids of the new territory start unassigned");
  await office.selectOption("#tg-village", "V1");
  await office.click("#grids-filter button[type=submit]");
  await office.waitForSelector(`#view[data-ready="#/teams/${encodeURIComponent("village=V1")}"] #village-assign`);
  await office.selectOption("#tg-village-team", "一队");
  answerNextDialog(office, "V1");
  await office.click("#village-assign button[type=submit]");
  await office.waitForSelector('#grids tr[data-grid="G1"][data-team="一队"]');
  await open(office, "teams", "#grids");
  assert.equal(Number(await office.getAttribute("#grids-unassigned", "data-count")), 1, "V2's grid stays unassigned, and says so");
  await shot(office, "teams");
  await checkAccessibility(office, "teams and grids");

  // 4. The team's enrolment sheet: one QR card per member, each with the field app's address and its code.
  await open(office, "enrolment", "#enrol-issue");
  assert.deepEqual(await unlabelled(office), [], "every field of the enrolment page has a label");
  await office.fill("#enrol-team", "一队");
  await office.fill("#enrol-hours", "8");
  await office.click("#enrol-issue button[type=submit]");
  await office.waitForSelector("#enrol-sheet .enrol-card");
  const cards = await office.$$eval(".enrol-card", (els) => els.map((el) => ({
    username: el.dataset.username, url: el.dataset.url, qr: !!el.querySelector(".qr svg"), code: el.querySelector("code").textContent,
  })));
  assert.deepEqual(cards.map((c) => c.username), ["li-lead", "wang", "zhang"]);
  for (const c of cards) {
    assert.ok(c.qr, `a QR code for ${c.username}`);
    assert.equal(c.url, `${base}/field/#/enrol/${c.code}`);
  }
  assert.deepEqual(await decodeSheet(office), cards.map((c) => c.url), "each QR code holds its card's address");
  await checkAccessibility(office, "enrolment sheet");
  await office.emulateMedia({ media: "print" });
  await shot(office, "enrolment-sheet-print");
  assert.equal(await office.isVisible("#enrol-issue"), false, "the printed sheet leaves the form out");
  await office.emulateMedia({ media: "screen" });
  const zhang = cards.find((c) => c.username === "zhang");

  // 5. Zhang's phone opens the QR code's address: the app is at its enrolment, with nothing to type.
  const phoneContext = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true });
  const phone = watch(await phoneContext.newPage());
  await phone.goto(zhang.url);
  await phone.waitForSelector("#enrol-code");
  assert.equal(await phone.textContent("#enrol-code"), zhang.code);
  assert.equal(await phone.locator("#enrol-form input[type=password]").count(), 0, "no password asked");
  await phone.waitForSelector("#enrol-person");
  assert.equal(await phone.textContent("#enrol-person strong"), "zhang", "the app says whose code it is");
  await shot(phone, "phone-enrol");
  await checkAccessibility(phone, "phone: enrolment by code");
  await phone.getByRole("button", { name: "登记" }).click();
  await phone.waitForSelector("#grids .card", { timeout: 30_000 });
  assert.equal(new URL(phone.url()).hash, "#/", "the used code leaves the address");
  // A visit in two taps: the place, then "all delivered".
  await phone.goto(`${base}/field/#/grid/G1`);
  await phone.waitForSelector("#places a.place");
  await phone.click('#places a.place[data-place="H1"]');
  await phone.waitForSelector('#place[data-place="H1"]');
  await phone.click('[data-quick="all"]');
  await phone.waitForSelector("#places");
  await phone.waitForFunction(() => document.getElementById("pending")?.dataset.count === "0", null, { timeout: 30_000 });
  await shot(phone, "phone-visit");
  await checkAccessibility(phone, "phone: a grid's places");

  // 6. The same code again, on another phone: the app says at once that it was used, and offers nothing to tap.
  const second = watch(await (await browser.newContext({ viewport: { width: 360, height: 740 } })).newPage());
  await second.goto(zhang.url);
  await second.waitForFunction(() => /已经用过/.test(document.getElementById("enrol-message")?.textContent || ""));
  result.second_phone_message = await second.textContent("#enrol-message");
  assert.equal(await second.isDisabled("#enrol-form button[type=submit]"), true);

  // 6b. One code the team shares, for one phone: wang's phone shows the team's volunteers (not its lead), wang
  // taps his name, then Enrol; the code then enrols nothing more.
  await office.getByRole("link", { name: "总览" }).click();
  await open(office, "enrolment", "#enrol-issue");
  assert.equal(await office.locator(".enrol-card").count(), 0, "the earlier sheet is not shown again");
  await office.fill("#enrol-team", "一队");
  await office.selectOption("#enrol-kind", "shared");
  await office.fill("#enrol-uses", "1");
  await office.click("#enrol-issue button[type=submit]");
  await office.waitForSelector('#enrol-sheet .enrol-card[data-username=""][data-uses="1"][data-team="一队"]');
  const sharedUrl = await office.getAttribute("#enrol-sheet .enrol-card", "data-url");
  assert.deepEqual(await decodeSheet(office), [sharedUrl]);
  await shot(office, "enrolment-shared");
  const wang = watch(await (await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true })).newPage());
  await wang.goto(sharedUrl);
  await wang.waitForSelector("#enrol-members");
  const names = await wang.$$eval("#enrol-members input", (inputs) => inputs.map((i) => i.value));
  assert.deepEqual(names, ["wang", "zhang"], "the team's volunteers, not its lead");
  await shot(wang, "phone-shared-code");
  await checkAccessibility(wang, "phone: a team's shared code");
  await wang.getByLabel("wang").check();
  await wang.getByRole("button", { name: "登记" }).click();
  await wang.waitForSelector("#grids .card", { timeout: 30_000 });
  const third = watch(await (await browser.newContext({ viewport: { width: 360, height: 740 } })).newPage());
  await third.goto(sharedUrl);
  await third.waitForFunction(() => /已经用过/.test(document.getElementById("enrol-message")?.textContent || ""));
  assert.equal(await third.isDisabled("#enrol-form button[type=submit]"), true, "nothing to enrol with");

  // 7. The office's overview counts the visit; the devices page shows the phone, its app and nothing unsent.
  await office.goto(base + "/#/");
  await office.reload();
  await office.waitForSelector('#view[data-ready="#/"] .card');
  await shot(office, "overview");
  // The phone reports its app right after its sync, in the background: the page is read again until it shows.
  let cells = [];
  for (let tries = 0; tries < 50 && !cells.includes("web 0.1.0"); tries++) {
    if (tries) await office.waitForTimeout(200);
    await office.goto(base + "/#/");
    await open(office, "devices", "#devices");
    cells = await office.locator("#devices tbody tr", { hasText: "zhang" }).locator("td").allTextContents();
  }
  assert.ok(cells.includes("web 0.1.0"), `the app version is shown: ${cells}`);
  assert.ok(cells.some((c) => c.startsWith("0 条")), `nothing unsent: ${cells}`);
  result.device_cells = cells;
  await checkAccessibility(office, "devices");

  // 8. The lead reports the phone lost: revoked, and a code for the new phone at once.
  const leadPage = watch(await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage());
  await login(leadPage, "li-lead", "a volunteer's password");
  await open(leadPage, "devices", "#devices");
  answerNextDialog(leadPage, "zhang");
  await leadPage.click('#devices [data-lost][data-owner="zhang"]');
  await leadPage.waitForSelector("#lost-sheet .enrol-card[data-username=zhang]");
  await leadPage.waitForSelector('#devices tr[data-revoked="true"]');
  await shot(leadPage, "lost-phone");
  await checkAccessibility(leadPage, "devices, a lost phone");
  result.new_code_url = await leadPage.getAttribute("#lost-sheet .enrol-card", "data-url");
  assert.notEqual(result.new_code_url, zhang.url);

  // 8b. The monthly ranking as an Excel file, downloaded from its page (compared with the CLI's export afterwards).
  await open(office, "monthly", "#monthly-xlsx");
  const [download] = await Promise.all([office.waitForEvent("download"), office.click("#monthly-xlsx")]);
  assert.ok(download.suggestedFilename().endsWith(".xlsx"), download.suggestedFilename());
  await download.saveAs(process.env.DOORSTEP_MONTHLY_XLSX);

  // 9. The audit log holds every step, searched in the page.
  await open(office, "audit");
  await office.fill("#audit-action", "enrolment");
  await office.click("#audit-form button[type=submit]");
  await office.waitForSelector('#view[data-ready^="#/audit/"] #audit');
  result.audit_enrolment = await office.$$eval("#audit tbody tr td:nth-child(3)", (tds) => tds.map((td) => td.textContent));
  await checkAccessibility(office, "audit log");
  for (const route of ["roster", "submissions", "situations", "campaign", "monthly", "tasks", "review"]) {
    await open(office, route);
    await checkAccessibility(office, route);
  }
  await office.getByRole("link", { name: "总览" }).click();
  await office.waitForSelector('#view[data-ready="#/"] .card');
  await checkAccessibility(office, "overview");
  await office.click("#lang");
  await office.waitForFunction(() => document.documentElement.lang === "en");
  await checkAccessibility(office, "overview, in English");
  await office.click("#lang");
  await office.waitForFunction(() => document.documentElement.lang === "zh-CN");
  result.accessibility_checked = Object.keys(accessibility);
  const failing = Object.entries(accessibility).filter(([, v]) => v.length);
  assert.deepEqual(failing, [], "WCAG 2 A/AA violations (axe-core)");

  // 10. A slow answer never draws an old page over the one asked for last: the overview's figures are held back,
  // the office clicks on to the devices page meanwhile, and the devices page stays.
  await office.route("**/api/v1/reports/coverage**", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await route.continue();
  });
  await office.getByRole("link", { name: "总览" }).click();
  await office.click("#nav-devices");
  await office.waitForSelector('#view[data-ready="#/devices"] #devices');
  // The overview reads the figures twice (towns, then villages): both answers have come by now.
  await office.waitForTimeout(3500);
  assert.equal(await office.textContent("#view-title"), "已登记的手机", "the devices page is still shown");
  assert.equal(await office.getAttribute("#view", "data-ready"), "#/devices");
  await office.unroute("**/api/v1/reports/coverage**");
  assert.deepEqual(errors, [], "no script errors");
} finally {
  await browser.close();
}
console.log("RESULT " + JSON.stringify(result));
