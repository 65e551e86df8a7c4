// Browser test of the dashboard's people (#/people) and teams and grids (#/teams) pages: real headless Chromium
// against a running doorstep server (started and filled by tests/people_browser.rs). As the office: the list
// equals the API's, filtering, creating a viewer, moving a volunteer to another team, disabling and enabling
// after a confirmation (a dismissed one changes nothing), a password reset shown once, creating a team, changing
// a lead, unassigned grids counted and highlighted and filtered, a grid assigned from its row, a whole community
// assigned, a grid unassigned. As a lead: their team only, no office controls, a volunteer created and a
// volunteer's password reset, and the server's refusals shown. As a viewer: both pages refused. Every field has
// a label, the view title takes focus, focus is visible, and the controls work from the keyboard.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.DOORSTEP_URL;
const password = process.env.DOORSTEP_PASSWORD;
const artifacts = process.env.DOORSTEP_ARTIFACTS || "test-artifacts";
assert.ok(base && password, "DOORSTEP_URL and DOORSTEP_PASSWORD are required");
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `people-${name}.png`), fullPage: true });

async function token(username, pw = password) {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password: pw }),
  });
  return r.status === 200 ? (await r.json()).token : null;
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

/** Opens a page from the navigation with the keyboard, and waits for it. */
async function openFromNav(page, route, selector) {
  await page.focus(`#nav-${route}`);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#view[data-ready="#/${route}"] ${selector}`);
}

/** Fields of the view without a label (none expected), and whether the view title has the focus. */
async function checkLabelsAndFocus(page, what) {
  const unlabelled = await page.$$eval("#view input, #view select, #view textarea", (els) =>
    els.filter((e) => e.type !== "hidden" && !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).map((e) => e.id || e.outerHTML));
  assert.deepEqual(unlabelled, [], `${what}: fields without a label`);
  assert.equal(await page.evaluate(() => document.activeElement?.id), "view-title", `${what}: the title has the focus`);
}

/** The focused element shows a visible outline. */
async function focusIsVisible(page, what) {
  const outline = await page.evaluate(() => {
    const s = getComputedStyle(document.activeElement);
    return { style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
  assert.ok(outline.style !== "none" && outline.width >= 2, `${what}: focus is visible (${JSON.stringify(outline)})`);
}

/** Answers the next confirmation dialog, checking its text. */
function answerNextDialog(page, accept, contains) {
  page.once("dialog", async (d) => {
    assert.equal(d.type(), "confirm");
    if (contains) assert.ok(d.message().includes(contains), d.message());
    if (accept) await d.accept(); else await d.dismiss();
  });
}

const userRows = (page) => page.$$eval("#people tbody tr", (trs) => trs.map((tr) => ({
  username: tr.dataset.user, role: tr.dataset.role, team: tr.dataset.team, disabled: tr.dataset.disabled === "true",
})));
const gridRows = (page) => page.$$eval("#grids tbody tr", (trs) => trs.map((tr) => ({
  code: tr.dataset.grid, team: tr.dataset.team, highlighted: tr.classList.contains("tg-unassigned"),
  background: getComputedStyle(tr.querySelector("td")).backgroundColor,
})));

const browser = await chromium.launch({
  executablePath: process.env.DOORSTEP_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"],
});
const errors = [];
try {
  const office = await token("office");
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("pageerror", (e) => errors.push(String(e)));
  await login(page, "office");

  // --- people, as the office -----------------------------------------------------------------------------
  assert.equal(await page.textContent("#nav-people"), "人员");
  await openFromNav(page, "people", "#people");
  await checkLabelsAndFocus(page, "people");
  const api = await get(office, "/api/v1/users");
  assert.deepEqual(await userRows(page), api.users.map((u) => ({ username: u.username, role: u.role, team: u.team || "", disabled: false })));
  assert.equal(await page.getAttribute("#people-count", "data-total"), String(api.total));
  await shot(page, "office-list");

  // Filter by role, from the keyboard: the list is the API's for the same filter, and the address keeps it.
  await page.selectOption("#pp-role", "volunteer");
  await page.focus("#pp-q");
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#view[data-ready="#/people/${encodeURIComponent("role=volunteer")}"]`);
  assert.deepEqual((await userRows(page)).map((u) => u.username), ["vol-a", "vol-b"]);
  await page.fill("#pp-q", "B");
  await page.press("#pp-q", "Enter");
  await page.waitForSelector(`#view[data-ready="#/people/${encodeURIComponent("role=volunteer&q=B")}"]`);
  assert.deepEqual((await userRows(page)).map((u) => u.username), ["vol-b"]);
  await page.evaluate(() => { location.hash = "#/people"; });
  await page.waitForSelector('#view[data-ready="#/people"] #people');

  // Create a viewer of community C2: the area is asked for, the team is not.
  await page.fill("#pp-new-name", "viewer-c2");
  await page.fill("#pp-new-password", "a viewer's password");
  await page.selectOption("#pp-new-role", "viewer");
  assert.ok(await page.isDisabled("#pp-new-team"), "a viewer has no team");
  assert.ok(await page.isEnabled("#pp-new-area"));
  await page.selectOption("#pp-new-area", "C2");
  await page.click("#people-create button[type=submit]");
  await page.waitForSelector('#people tr[data-user="viewer-c2"]');
  assert.ok((await page.textContent("#people-result")).includes("viewer-c2"));
  const viewerC2 = (await get(office, "/api/v1/users?q=viewer-c2")).users[0];
  assert.deepEqual([viewerC2.role, viewerC2.team, viewerC2.area], ["viewer", null, "C2"]);
  // A bad account (too short a password) is refused with the server's reason, and nothing is created.
  await page.fill("#pp-new-name", "too-short");
  await page.fill("#pp-new-password", "12345678");
  await page.evaluate(() => { document.getElementById("pp-new-password").value = "short"; document.getElementById("pp-new-password").removeAttribute("minlength"); });
  await page.click("#people-create button[type=submit]");
  await page.waitForFunction(() => document.getElementById("people-result").textContent.includes("8"));
  assert.equal(await page.getAttribute("#people-result", "role"), "alert");
  assert.equal((await get(office, "/api/v1/users?q=too-short")).total, 0);

  // Edit from the keyboard: the form's title takes the focus, then its first field, with a visible outline.
  await page.focus('[data-edit="vol-a"]');
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "pp-edit-title");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "pp-edit-role");
  await focusIsVisible(page, "the role select");
  await page.click("#pp-edit-cancel");
  assert.ok(await page.isHidden("#people-edit-box"));
  // Move vol-a to team west, from the keyboard: Move goes straight to the team.
  await page.focus('[data-move="vol-a"]');
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "pp-edit-team");
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.inputValue("#pp-edit-team"), "west", "the teams follow: none, east, west");
  await page.focus("#people-edit button[type=submit]");
  await focusIsVisible(page, "the save button");
  await page.keyboard.press("Enter");
  await page.waitForSelector('#people tr[data-user="vol-a"][data-team="west"]');
  assert.ok((await page.textContent("#people-result")).includes("team east -> west"));
  // A viewer without an area is refused, and the row is unchanged.
  await page.click('[data-edit="vol-b"]');
  await page.selectOption("#pp-edit-role", "viewer");
  await page.selectOption("#pp-edit-area", "");
  await page.click("#people-edit button[type=submit]");
  await page.waitForFunction(() => document.getElementById("people-result").getAttribute("role") === "alert");
  assert.ok((await page.textContent("#people-result")).includes("a viewer needs an area"));
  assert.equal((await get(office, "/api/v1/users?q=vol-b")).users[0].role, "volunteer");
  await shot(page, "office-edit");
  await page.evaluate(() => { location.hash = "#/people/"; });
  await page.waitForSelector('#view[data-ready="#/people/"] #people');

  // Disable vol-b: a dismissed confirmation changes nothing; a confirmed one disables; then enable again.
  answerNextDialog(page, false, "vol-b");
  await page.click('[data-disable="vol-b"]');
  await page.waitForTimeout(200);
  assert.equal((await get(office, "/api/v1/users?q=vol-b")).users[0].disabled_at, null, "dismissed: nothing changed");
  answerNextDialog(page, true, "vol-b");
  await page.click('[data-disable="vol-b"]');
  await page.waitForSelector('#people tr[data-user="vol-b"][data-disabled="true"]');
  assert.equal(await token("vol-b"), null, "a disabled account cannot log in");
  answerNextDialog(page, true, "vol-b");
  await page.click('[data-enable="vol-b"]');
  await page.waitForSelector('#people tr[data-user="vol-b"][data-disabled="false"]');
  assert.ok(await token("vol-b"), "enabled again");

  // Reset lead-w's password: shown once, it works, and the old one no longer does.
  answerNextDialog(page, true, "lead-w");
  await page.click('[data-reset="lead-w"]');
  await page.waitForSelector("#people-password:not([hidden]) #pp-password");
  assert.equal(await page.evaluate(() => document.activeElement.id), "pp-password");
  const newPassword = (await page.textContent("#pp-password")).trim();
  assert.equal(newPassword.length, 12);
  assert.ok(await token("lead-w", newPassword), "the new password works");
  assert.equal(await token("lead-w"), null, "the old one no longer does");
  await shot(page, "office-password");
  await page.evaluate(() => { location.hash = "#/people"; });
  await page.waitForSelector('#view[data-ready="#/people"] #people');
  assert.ok(await page.isHidden("#people-password"), "shown once: gone after the page is drawn again");
  assert.ok(!(await page.content()).includes(newPassword));

  // --- teams and grids, as the office ----------------------------------------------------------------------
  assert.equal(await page.textContent("#nav-teams"), "队伍与网格");
  await openFromNav(page, "teams", "#grids");
  await checkLabelsAndFocus(page, "teams");
  // Unassigned grids: counted at the top and highlighted.
  assert.equal(await page.getAttribute("#grids-unassigned", "data-count"), "2");
  let rows = await gridRows(page);
  assert.deepEqual(rows.map((r) => [r.code, r.team, r.highlighted]), [["G1", "east", false], ["G2", "", true], ["G3", "", true]]);
  assert.notEqual(rows[1].background, rows[0].background, "unassigned rows stand out");
  await shot(page, "office-teams");
  // Only unassigned.
  await page.check("#tg-only-unassigned");
  await page.click("#grids-filter button[type=submit]");
  await page.waitForSelector(`#view[data-ready="#/teams/${encodeURIComponent("unassigned=1")}"]`);
  assert.deepEqual((await gridRows(page)).map((r) => r.code), ["G2", "G3"]);
  await page.evaluate(() => { location.hash = "#/teams"; });
  await page.waitForSelector('#view[data-ready="#/teams"] #grids');

  // One grid from its row, from the keyboard: its team select, then its Assign button.
  assert.equal(await page.getAttribute("#tg-team-G2", "id"), "tg-team-G2");
  assert.ok(await page.getByLabel("G2 的队伍").isVisible(), "the row's select is labelled");
  await page.selectOption("#tg-team-G2", "east");
  await page.focus('[data-assign="G2"]');
  await page.keyboard.press("Enter");
  await page.waitForSelector('#grids tr[data-grid="G2"][data-team="east"]');
  assert.equal(await page.getAttribute("#grids-unassigned", "data-count"), "1");

  // A whole community: choose it, then its team; confirmed.
  await page.selectOption("#tg-village", "C2");
  await page.click("#grids-filter button[type=submit]");
  await page.waitForSelector(`#view[data-ready="#/teams/${encodeURIComponent("village=C2")}"] #village-assign`);
  await checkLabelsAndFocus(page, "teams, a community chosen");
  await page.selectOption("#tg-village-team", "west");
  answerNextDialog(page, true, "C2");
  await page.click("#village-assign button[type=submit]");
  await page.waitForSelector('#grids tr[data-grid="G3"][data-team="west"]');
  assert.equal(await page.getAttribute("#grids-unassigned", "data-count"), "0");
  assert.ok((await page.textContent("#teams-result")).includes("west"));
  await shot(page, "office-village");

  // Unassign G1 from its row.
  await page.evaluate(() => { location.hash = "#/teams"; });
  await page.waitForSelector('#view[data-ready="#/teams"] #grids');
  await page.selectOption("#tg-team-G1", "");
  await page.click('[data-assign="G1"]');
  await page.waitForSelector('#grids tr[data-grid="G1"][data-team=""].tg-unassigned');
  assert.equal(await page.getAttribute("#grids-unassigned", "data-count"), "1");

  // A new team, then its lead.
  await page.fill("#tg-new-name", "north");
  await page.press("#tg-new-name", "Enter");
  await page.waitForSelector('#teams tr[data-team="north"]');
  await page.selectOption("#tg-lead-team", "north");
  await page.fill("#tg-lead-user", "vol-b");
  answerNextDialog(page, true, "vol-b");
  await page.click("#team-lead button[type=submit]");
  await page.waitForFunction(() => document.querySelector('#teams tr[data-team="north"] td')?.textContent === "vol-b");
  // An unknown lead is refused with the reason.
  await page.fill("#tg-lead-user", "nobody");
  answerNextDialog(page, true, "nobody");
  await page.click("#team-lead button[type=submit]");
  await page.waitForFunction(() => document.getElementById("teams-result").textContent.includes("nobody"));
  assert.equal(await page.getAttribute("#teams-result", "role"), "alert");

  // In English.
  await page.click("#lang");
  await page.waitForFunction(() => document.getElementById("view-title")?.textContent === "Teams and grids");
  assert.equal(await page.textContent("#nav-people"), "People");
  assert.equal(await page.textContent("#nav-teams"), "Teams and grids");
  assert.equal(await page.textContent("#view-title"), "Teams and grids");
  await shot(page, "office-teams-en");
  await page.click("#lang");
  await page.waitForFunction(() => document.getElementById("view-title")?.textContent === "队伍与网格");

  // --- as a lead -----------------------------------------------------------------------------------------
  const leadPage = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  leadPage.on("pageerror", (e) => errors.push(String(e)));
  await login(leadPage, "lead-e");
  await openFromNav(leadPage, "people", "#people");
  await checkLabelsAndFocus(leadPage, "lead's people");
  assert.deepEqual((await userRows(leadPage)).map((u) => u.username), ["lead-e"], "vol-a moved to west: only the lead is left");
  assert.equal(await leadPage.$$eval("[data-edit], [data-disable], [data-enable]", (b) => b.length), 0, "no office controls");
  assert.deepEqual(await leadPage.$$eval("#pp-new-role option", (os) => os.map((o) => o.value)), ["volunteer"]);
  await leadPage.fill("#pp-new-name", "vol-new");
  await leadPage.fill("#pp-new-password", password);
  await leadPage.click("#people-create button[type=submit]");
  await leadPage.waitForSelector('#people tr[data-user="vol-new"][data-team="east"]');
  // The lead resets their own volunteer's password, shown once.
  answerNextDialog(leadPage, true, "vol-new");
  await leadPage.click('[data-reset="vol-new"]');
  await leadPage.waitForSelector("#people-password:not([hidden]) #pp-password");
  assert.ok(await token("vol-new", (await leadPage.textContent("#pp-password")).trim()));
  assert.equal(await leadPage.$$eval('[data-reset="lead-e"]', (b) => b.length), 0, "not their own (a lead's) password");
  await shot(leadPage, "lead-people");
  // Refused: another team's people, and an office change made from the page's session.
  await leadPage.evaluate(() => { location.hash = `#/people/${encodeURIComponent("team=west")}`; });
  await leadPage.waitForSelector(`#view[data-ready="#/people/${encodeURIComponent("team=west")}"] p.error[role=alert]`);
  assert.ok((await leadPage.textContent("#view p.error")).includes("own team (east)"));
  const refused = await leadPage.evaluate(async () => {
    const s = JSON.parse(sessionStorage.getItem("doorstep.session"));
    const call = async (method, path, body) => {
      const r = await fetch(path, { method, headers: { authorization: "Bearer " + s.token, "content-type": "application/json" }, body: JSON.stringify(body) });
      return [r.status, (await r.json()).error.message];
    };
    return [await call("PATCH", "/api/v1/users/vol-b", { team: "east" }), await call("PUT", "/api/v1/assignments", { team: "east", village: "C2" }),
      await call("POST", "/api/v1/users/vol-b/password", {})];
  });
  assert.deepEqual(refused.map(([status]) => status), [403, 403, 403], JSON.stringify(refused));
  assert.ok(refused[2][1].includes("own team's volunteers only"), refused[2][1]);
  // Teams and grids: their team and its grids, nothing to change.
  await leadPage.evaluate(() => { location.hash = "#/"; });
  await leadPage.waitForSelector('#view[data-ready="#/"]');
  await openFromNav(leadPage, "teams", "#grids");
  await checkLabelsAndFocus(leadPage, "lead's teams");
  assert.deepEqual(await leadPage.$$eval("#teams tbody tr", (trs) => trs.map((tr) => tr.dataset.team)), ["east"]);
  assert.deepEqual((await gridRows(leadPage)).map((r) => r.code), ["G2"]);
  assert.ok(await leadPage.isVisible("#tg-readonly"));
  assert.equal(await leadPage.$$eval("#team-create, #team-lead, [data-assign], #grids-unassigned", (e) => e.length), 0);
  await shot(leadPage, "lead-teams");

  // --- a viewer: neither page ----------------------------------------------------------------------------
  const viewerPage = await browser.newPage();
  viewerPage.on("pageerror", (e) => errors.push(String(e)));
  await login(viewerPage, "viewer");
  assert.ok(await viewerPage.isHidden("#nav-people") && await viewerPage.isHidden("#nav-teams"));
  await viewerPage.evaluate(() => { location.hash = "#/people"; });
  await viewerPage.waitForSelector('#view[data-ready="#/people"] p.error[role=alert]');
  assert.ok((await viewerPage.textContent("#view p.error")).includes("viewer may not see them"));
  assert.deepEqual(errors, [], "no script errors");
  console.log("people and teams pages: ok");
} finally {
  await browser.close();
}
