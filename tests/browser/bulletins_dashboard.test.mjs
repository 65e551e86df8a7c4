// Browser test of the dashboard's bulletin pages (started by tests/bulletins_dashboard_browser.rs, in two phases
// around a phone reading the bulletin). Phase "publish": in real headless Chromium the office publishes an urgent
// bulletin with an attachment to one village, from labelled fields and the keyboard; a file that is no image or
// PDF is refused by the server with its message and nothing is published; the page shows the text as phones do
// (HTML escaped, **bold** and "- " lists), the attachment downloads byte for byte, the list shows it; a lead and a
// viewer read it but get no publish link, and the API refuses them (403). Phase "receipts": the receipts show the
// reader and the unread volunteers (overdue highlighted with N = 0), the workbook downloads, the office corrects
// the bulletin (edition 2) and withdraws it after confirming, and lets a viewer publish from the people page.
// axe-core's WCAG 2 A/AA rules run on each page. Screenshots go to DOORSTEP_ARTIFACTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const phase = process.env.DOORSTEP_PHASE;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
assert.ok(base && password && phase, "DOORSTEP_URL, DOORSTEP_PASSWORD and DOORSTEP_PHASE are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `bulletins-dashboard-${name}.png`), fullPage: true });
const errors = [];

/** A 1×1 PNG: what the server's content sniffing accepts as image/png. */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");
const TITLE = "新型冒充公检法诈骗";
/** The date `n` days from today, as a date field holds it (the browser runs in this process's time zone). */
const day = (n) => { const d = new Date(); d.setDate(d.getDate() + n); return d.toLocaleDateString("sv"); };
const BODY = "近期出现**冒充公检法**的电话诈骗。\n- 不要转账到“安全账户”\n- 接到电话先挂断，拨打 110 核实\n<script>window.hacked = 1</script> & 更多";

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
async function get(tok, path) {
  const r = await call(tok, path);
  assert.equal(r.status, 200, path);
  return r.body;
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

function answerNextDialog(page, contains) {
  page.once("dialog", async (d) => {
    assert.equal(d.type(), "confirm");
    assert.ok(d.message().includes(contains), d.message());
    await d.accept();
  });
}

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const result = {};
try {
  const officeToken = await token("office");
  const office = watch(await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true }));
  await login(office, "office");

  if (phase === "publish") {
    // --- the office publishes ------------------------------------------------------------------------------
    assert.equal(await office.textContent("#nav-bulletins"), "通报与资料");
    await office.focus("#nav-bulletins");
    await office.keyboard.press("Enter");
    await ready(office, "#/bulletins");
    assert.equal(await office.isVisible("#bulletins-none"), true, "nothing published yet");
    await office.focus("#bulletin-new");
    await office.keyboard.press("Enter");
    await ready(office, "#/bulletins/new");
    await allLabelled(office);
    await office.getByLabel("标题", { exact: true }).fill(TITLE);
    await office.getByLabel("正文").fill(BODY);
    assert.equal(await office.textContent("#bl-preview strong"), "冒充公检法", "the preview formats as the phones do");
    await office.getByLabel("类型", { exact: true }).selectOption("fraud_method");
    await office.getByLabel("诈骗类型", { exact: true }).selectOption("impersonation");
    await office.getByLabel("紧急（手机上置顶显示，直到已阅）").check();
    // Nothing chosen for a chosen audience: said, and nothing sent.
    await office.getByLabel("指定的镇、村（社区）或队伍").check();
    await office.click("#bl-submit");
    await office.waitForFunction(() => document.getElementById("bulletin-result")?.getAttribute("role") === "alert");
    assert.match(await office.textContent("#bulletin-result"), /请至少选择/);
    await office.getByLabel("龙凤村（太安镇）").check();
    // An expiry in the past is refused before anything is sent; a later one is the end of that day.
    await office.getByLabel("有效期至（可不填）").fill(day(-1));
    await office.click("#bl-submit");
    await office.waitForFunction(() => document.getElementById("bulletin-result")?.textContent === "有效期不能早于今天。");
    await office.getByLabel("有效期至（可不填）").fill(day(30));
    await checkAccessibility(office, "publish form");
    await shot(office, "publish-form");

    // A text file named like an image: the server tells by content, and nothing is published.
    await office.getByLabel(/^附件/).setInputFiles([
      { name: "海报.png", mimeType: "image/png", buffer: PNG },
      { name: "伪装.png", mimeType: "image/png", buffer: Buffer.from("这不是图片，只是文字。\n") },
    ]);
    await office.click("#bl-submit");
    await office.waitForFunction(() => document.getElementById("bulletin-result")?.getAttribute("role") === "alert");
    const refusal = await office.textContent("#bulletin-result");
    assert.match(refusal, /附件“伪装\.png”上传失败，通报未发布/, refusal);
    result.refusal = refusal;
    assert.equal((await get(officeToken, "/api/v1/bulletins")).bulletins.length, 0, "no bulletin after a refused upload");
    assert.equal(await office.inputValue("#bl-title"), TITLE, "the form keeps what was typed");
    await shot(office, "publish-refused");

    await office.getByLabel(/^附件/).setInputFiles([{ name: "海报.png", mimeType: "image/png", buffer: PNG }]);
    await office.focus("#bl-submit");
    await office.keyboard.press("Enter");
    await office.waitForFunction(() => /^#\/bulletins\/id=/.test(location.hash) && document.getElementById("view").dataset.ready === location.hash);
    const id = (await office.evaluate(() => location.hash)).slice("#/bulletins/id=".length);
    assert.equal(await office.textContent("#bulletin-result"), "已发布。手机下次同步时收到。");
    const published = await get(officeToken, `/api/v1/bulletins/${id}`);
    assert.equal(published.title, TITLE);
    assert.equal(published.body, BODY);
    assert.equal(published.kind, "fraud_method");
    assert.equal(published.fraud_type, "impersonation");
    assert.equal(published.priority, "urgent");
    assert.equal(published.expires_at, new Date(`${day(30)}T00:00`).getTime() + 86_400_000, "expires at the end of the day chosen");
    assert.deepEqual(published.audience.villages, ["龙凤村"]);
    assert.equal(published.attachments.length, 1);
    assert.equal(published.attachments[0].name, "海报.png");
    assert.equal(published.attachments[0].type, "image/png");
    assert.equal(published.attachments[0].size, PNG.length);

    // The text as phones show it: escaped, then bold and a list.
    assert.equal(await office.textContent("#bulletin-body strong"), "冒充公检法");
    assert.deepEqual(await office.$$eval("#bulletin-body li", (li) => li.map((x) => x.textContent)),
      ["不要转账到“安全账户”", "接到电话先挂断，拨打 110 核实"]);
    assert.equal(await office.locator("#bulletin-body script").count(), 0, "markup in the body is text");
    assert.match(await office.textContent("#bulletin-body"), /<script>window\.hacked = 1<\/script> & 更多/);
    assert.equal(await office.evaluate(() => window.hacked), undefined);
    assert.equal(await office.isVisible("#bulletin-facts [data-role=urgent]"), true, "urgent marked");
    // The attachment, as stored.
    const [download] = await Promise.all([office.waitForEvent("download"), office.click(`[data-download="${published.attachments[0].sha256}"]`)]);
    assert.equal(download.suggestedFilename(), "海报.png");
    assert.deepEqual(readFileSync(await download.path()), PNG, "the attachment downloads byte for byte");
    await checkAccessibility(office, "bulletin page");
    await shot(office, "bulletin");

    // Listed, newest first, with what it is for and whom.
    await office.click("#nav-bulletins");
    await ready(office, "#/bulletins");
    const row = office.locator(`#bulletins tr[data-bulletin="${id}"]`);
    assert.equal(await row.getAttribute("data-priority"), "urgent");
    assert.match(await row.textContent(), /诈骗手法[\s\S]*冒充公检法[\s\S]*紧急[\s\S]*龙凤村/);
    assert.equal(await row.locator("[data-role=read]").getAttribute("data-read"), "0");
    assert.equal(await row.locator("[data-role=read]").getAttribute("data-expected"), String(published.expected));
    await checkAccessibility(office, "list");
    await shot(office, "list");
    result.id = id;

    // --- a lead and a viewer read, and may not publish -----------------------------------------------------
    for (const user of ["lead-e", "viewer"]) {
      const page = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
      await login(page, user);
      if (user === "lead-e") {
        // A lead reads its team's part: the list and the receipts, with nothing to change.
        await page.click("#nav-bulletins");
        await ready(page, "#/bulletins");
        assert.equal(await page.locator("#bulletin-new").count(), 0, `${user}: no publish link`);
        assert.equal(await page.locator(`#bulletins tr[data-bulletin="${id}"]`).count(), 1, `${user} reads the list`);
        await page.goto(`${base}/#/bulletins/id=${id}`);
        await page.waitForSelector(`#view[data-ready="#/bulletins/id=${id}"] #bulletin-receipts`);
        assert.equal(await page.locator("#bulletin-withdraw, #bulletin-correct").count(), 0, `${user}: no correct or withdraw`);
      } else {
        // A viewer the office has not allowed to publish is not offered the bulletins at all.
        await page.waitForLoadState("networkidle");
        assert.equal(await page.isHidden("#nav-bulletins"), true, `${user}: no bulletins link`);
      }
      await page.goto(`${base}/#/bulletins/new`);
      await page.waitForSelector('#view[data-ready="#/bulletins/new"] #bulletin-refused');
      if (user === "lead-e") await shot(page, "lead-refused");
      const tok = await token(user);
      const refused = await call(tok, "/api/v1/bulletins", { title: "x", body: "x", kind: "reminder", priority: "normal", audience: { everyone: true }, attachments: [] });
      assert.equal(refused.status, 403, `${user}: POST /api/v1/bulletins is refused`);
      await page.close();
    }
  } else if (phase === "receipts") {
    // --- the receipts after the phone read it --------------------------------------------------------------
    const id = process.env.DOORSTEP_BULLETIN;
    const exportPath = process.env.DOORSTEP_EXPORT;
    assert.ok(id && exportPath, "DOORSTEP_BULLETIN and DOORSTEP_EXPORT are required");
    await office.click("#nav-bulletins");
    await ready(office, "#/bulletins");
    await office.click(`#bulletins tr[data-bulletin="${id}"] a`);
    await ready(office, `#/bulletins/id=${id}`);
    const receipts = await get(officeToken, `/api/v1/bulletins/${id}/receipts`);
    assert.deepEqual(await office.$$eval("#bl-readers tbody tr", (trs) => trs.map((tr) => tr.dataset.user)), ["vol-a"]);
    assert.deepEqual(await office.$$eval("#bl-unread tbody tr", (trs) => trs.map((tr) => tr.dataset.user).sort()), ["lead-e", "vol-b"]);
    assert.equal(await office.locator('#bl-unread tr[data-overdue="true"]').count(), 0, "not overdue after 3 days");
    for (const x of receipts.by_team) {
      const tr = office.locator(`#bl-by-team tr[data-team="${x.team}"]`);
      assert.equal(await tr.getAttribute("data-read"), String(x.read));
      assert.equal(await tr.getAttribute("data-expected"), String(x.expected));
    }
    assert.deepEqual(receipts.by_team.map((x) => [x.team, x.read, x.expected]), [["east", 1, 3]]);
    assert.equal(await office.getAttribute('#bl-by-village tr[data-village="龙凤村"]', "data-read"), "1");
    assert.equal(await office.getAttribute("#bulletin-read", "data-read"), "1");
    await checkAccessibility(office, "receipts");
    // Overdue at once (N = 0): the unread are highlighted.
    await office.getByLabel(/超过几天未阅算逾期/).fill("0");
    await office.getByLabel(/超过几天未阅算逾期/).press("Enter");
    await ready(office, `#/bulletins/id=${id}&days=0`);
    assert.equal(await office.locator('#bl-unread tr[data-overdue="true"]').count(), 2, "both unread are overdue");
    assert.match(await office.textContent('#bl-unread tr[data-user="vol-b"]'), /逾期/);
    await checkAccessibility(office, "receipts overdue");
    await shot(office, "receipts");
    const [download] = await Promise.all([office.waitForEvent("download"), office.click("#bl-receipts-xlsx")]);
    assert.ok(download.suggestedFilename().endsWith(".xlsx"), download.suggestedFilename());
    await download.saveAs(exportPath);

    // The same page in English.
    await office.click("#lang");
    await office.waitForSelector(`#view[data-ready="#/bulletins/id=${id}&days=0"]`);
    assert.equal(await office.textContent("#nav-bulletins"), "Bulletins");
    assert.equal(await office.textContent("#bl-receipts-title"), "Read receipts");
    await checkAccessibility(office, "receipts in English");
    await office.click("#lang");
    await office.waitForFunction(() => document.documentElement.lang === "zh-CN");
    await office.waitForSelector(`#view[data-ready="#/bulletins/id=${id}&days=0"]`);

    // A correction: the same form, pre-filled; phones show edition 2.
    await office.click("#bulletin-correct");
    await ready(office, `#/bulletins/correct=${id}`);
    await allLabelled(office);
    assert.equal(await office.inputValue("#bl-title"), TITLE);
    assert.equal(await office.isChecked("#bl-urgent"), true);
    assert.equal(await office.inputValue("#bl-expires"), day(30));
    assert.equal(await office.inputValue("#bl-fraud"), "impersonation");
    assert.equal(await office.getByLabel("龙凤村（太安镇）").isChecked(), true);
    assert.equal(await office.locator("#bl-kept input:checked").count(), 1, "the attachment is kept");
    await checkAccessibility(office, "correct form");
    await office.getByLabel("标题", { exact: true }).fill(TITLE + "（更正）");
    await office.click("#bl-submit");
    await office.waitForSelector(`#view[data-ready="#/bulletins/id=${id}"]`);
    assert.equal(await office.textContent("#bulletin-result"), "已更正，手机将显示第 2 版。");
    const corrected = await get(officeToken, `/api/v1/bulletins/${id}`);
    assert.equal(corrected.edition, 2);
    assert.equal(corrected.title, TITLE + "（更正）");
    assert.equal(corrected.attachments.length, 1, "the kept attachment stays");
    assert.equal(await office.getAttribute("#bulletin-facts", "data-edition"), "2");
    assert.equal(await office.textContent('#bl-readers tr[data-user="vol-a"] td.num span'), "（旧版本）", "read an earlier edition");
    await shot(office, "corrected");

    // Withdrawn once confirmed.
    answerNextDialog(office, TITLE);
    await office.click("#bulletin-withdraw");
    await office.waitForFunction(() => document.getElementById("bulletin-facts")?.dataset.withdrawn === "true");
    assert.equal(await office.textContent("#bulletin-result"), "已撤回。手机下次同步时删除。");
    assert.equal(await office.locator("#bulletin-withdraw, #bulletin-correct").count(), 0);
    assert.ok((await get(officeToken, `/api/v1/bulletins/${id}`)).withdrawn_at, "withdrawn on the server");
    await office.click("#nav-bulletins");
    await ready(office, "#/bulletins");
    assert.equal(await office.getAttribute(`#bulletins tr[data-bulletin="${id}"]`, "data-withdrawn"), "true");
    await shot(office, "withdrawn");

    // The office lets the police station's viewer account publish, from the people page.
    await office.click("#nav-people");
    await ready(office, "#/people");
    await office.click('[data-edit="police"]');
    await office.getByLabel("可发布通报").check();
    await office.click('#people-edit button[type="submit"]');
    await office.waitForFunction(() => document.getElementById("people-result")?.textContent.includes("可发布通报"));
    assert.equal(await office.locator('#people tr[data-user="police"] [data-role=may-publish]').count(), 1);
    const police = watch(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
    await login(police, "police");
    await police.click("#nav-bulletins");
    await ready(police, "#/bulletins");
    assert.equal(await police.locator("#bulletin-new").count(), 1, "the allowed account gets the publish link");
    await police.click("#bulletin-new");
    await ready(police, "#/bulletins/new");
    // It lists the territory's teams and villages to choose an audience from, as the office does.
    assert.equal(await police.locator("#bl-chosen").count(), 1);
    await checkAccessibility(police, "publish form of a viewer allowed to publish");
    await police.close();
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
  const failing = Object.entries(accessibility).filter(([, v]) => v.length);
  assert.deepEqual(failing, [], "WCAG 2 A/AA violations (axe-core)");
  result.accessibility_checked = Object.keys(accessibility);
  assert.deepEqual(errors, [], "no page errors");
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
