// What villages and communities report to the office: the liaison roster (#/roster: 分管领导 and 联络员, its
// deadline, the XLSX list), the monthly written submission (#/submissions: the office's list of a month with each
// unit's state, a cadre's own submission pre-filled with the month's figures, printable) and major or urgent
// situation reports (#/situations: filed by a cadre, read by the office, newest first with an unread count).
// A village cadre is a viewer account scoped to their village or community; the server decides what each may do,
// and each view shows what the reader may do.
"use strict";

const SUBMISSION_TEXT = {
  zh: {
    liaisons: "联络员", rosterTitle: "分管领导及联络员名单", rosterDeadline: "报送截止日期", rosterNoDeadline: "未设截止日期",
    rosterSetDeadline: "设置截止日期", rosterSave: "保存名单", rosterAdd: "添加一人", rosterRemove: "删除",
    rosterExport: "导出名单（Excel）", rosterNotFiled: "尚未报齐分管领导和联络员", rosterAllFiled: "各村（社区）均已报送",
    rosterPast: "已过截止日期", rosterEdit: "填写名单", rosterPerson: "第 {0} 人", rosterSaved: "已保存 {0} 的名单。",
    rosterNone: "尚未报送", duty: "职责", leader: "分管领导", liaison: "联络员", personName: "姓名", unit: "单位",
    post: "职务", phone: "联系电话", note: "备注", rosterMasked: "电话号码仅镇反诈办和本村（社区）可见。",
    rosterEditArea: "编辑",
    monthlySubmissions: "月度报送", submissionsTitle: "月度工作报送", submissionState: "报送情况",
    sub_on_time: "按时报送", sub_late: "逾期报送", sub_not_yet: "未报送", sub_overdue: "未报送（已逾期）",
    state_none: "未填写", state_new: "未填写", state_draft: "草稿", state_submitted: "已报送",
    dueAt: "报送截止", submittedAt: "报送时间", submittedBy: "报送人", open: "查看", fillIn: "填写本月报送",
    workDone: "本月工作开展情况", problems: "存在问题", plans: "下步工作打算", saveDraft: "保存草稿", submit: "报送",
    draftSaved: "草稿已保存。", submittedDone: "已报送。", submissionOf: "{0} {1} 反诈宣传工作月度报送",
    figuresAt: "数据统计于", visitsMonth: "本月走访", placesVisited: "走访点位", coverage: "覆盖率",
    tasksMonth: "本月预警劝阻任务", taskStatus: "处置状态", taskCreated: "下发时间", taskReached: "劝阻时间",
    noTasksMonth: "本月无预警劝阻任务", lateTask: "超时", confirmSubmit: "报送后不能再修改。确认报送？",
    situations: "紧急情况", situationsTitle: "重大紧急情况报告", unreadCount: "{0} 条未读", fileSituation: "报告重大紧急情况",
    situationTitle: "标题", situationBody: "情况说明", urgency: "紧急程度", urgent: "紧急", major: "重大",
    fileIt: "立即报告", filedDone: "已报告，镇反诈办将立即看到。", markRead: "标为已读", readState: "状态",
    unread: "未读", readBy: "已读", filedAt: "报告时间", filedBy: "报告人", noSituations: "暂无报告",
    submissionCol: "月度报送", town: "镇（街道）",
  },
  en: {
    liaisons: "Liaisons", rosterTitle: "Leaders in charge and liaisons", rosterDeadline: "Due by", rosterNoDeadline: "No deadline set",
    rosterSetDeadline: "Set the deadline", rosterSave: "Save the roster", rosterAdd: "Add a person", rosterRemove: "Remove",
    rosterExport: "Export the roster (Excel)", rosterNotFiled: "Not yet named both a leader and a liaison", rosterAllFiled: "Every village and community has filed",
    rosterPast: "past the deadline", rosterEdit: "Fill in the roster", rosterPerson: "Person {0}", rosterSaved: "Saved the roster of {0}.",
    rosterNone: "Not filed", duty: "Duty", leader: "Leader in charge", liaison: "Liaison", personName: "Name", unit: "Unit",
    post: "Post", phone: "Phone", note: "Note", rosterMasked: "Phone numbers are visible to the office and to the area's own cadre only.",
    rosterEditArea: "Edit",
    monthlySubmissions: "Monthly submissions", submissionsTitle: "Monthly work submissions", submissionState: "Submission",
    sub_on_time: "on time", sub_late: "late", sub_not_yet: "not yet", sub_overdue: "not yet (overdue)",
    state_none: "not started", state_new: "not started", state_draft: "draft", state_submitted: "submitted",
    dueAt: "Due", submittedAt: "Submitted", submittedBy: "By", open: "Open", fillIn: "Fill in this month's submission",
    workDone: "Work done this month", problems: "Problems", plans: "Plans", saveDraft: "Save draft", submit: "Submit",
    draftSaved: "Draft saved.", submittedDone: "Submitted.", submissionOf: "{0} {1} monthly anti-fraud outreach submission",
    figuresAt: "Figures counted at", visitsMonth: "Visits this month", placesVisited: "Places visited", coverage: "Coverage",
    tasksMonth: "Urgent tasks this month", taskStatus: "Status", taskCreated: "Issued", taskReached: "Reached",
    noTasksMonth: "No urgent tasks this month", lateTask: "late", confirmSubmit: "A submission cannot be changed afterwards. Submit?",
    situations: "Situations", situationsTitle: "Major or urgent situation reports", unreadCount: "{0} unread", fileSituation: "Report a major or urgent situation",
    situationTitle: "Title", situationBody: "What happened", urgency: "Urgency", urgent: "Urgent", major: "Major",
    fileIt: "Report now", filedDone: "Reported; the office sees it at once.", markRead: "Mark read", readState: "State",
    unread: "unread", readBy: "read", filedAt: "Filed", filedBy: "By", noSituations: "No reports yet",
    submissionCol: "Submission", town: "Town",
  },
};

/** A unit's submission status as words (also used by the monthly ranking in app.js). */
function submissionStatus(s) {
  return t(s.overdue ? "sub_overdue" : "sub_" + s.status);
}

const isCadre = () => session.role === "viewer";
/** The last day a submission is on time, as the server counts it (its due time is the next day's local midnight). */
const dueDay = (dueAt) => { const d = new Date(dueAt.slice(0, 10) + "T00:00Z"); d.setUTCDate(d.getUTCDate() - 1); return d.toISOString().slice(0, 10); };
const say = (id, text, alert = false) => { const el = $(id); el.setAttribute("role", alert ? "alert" : "status"); el.textContent = text; };
const labelled = (id, label, control) => `<label for="${id}">${t(label)}</label>${control}`;

// --- the liaison roster ----------------------------------------------------------------------------------
/** The roster: the deadline, who has not filed, every area's people; an area's form at #/roster/<area>. */
async function rosterView(arg) {
  const roster = await api("/api/v1/roster");
  const writable = roster.areas.filter((a) => a.writable);
  // A cadre edits their own area straight away; the office picks an area.
  const editing = roster.areas.find((a) => a.area === arg && a.writable) || (isCadre() && writable.length === 1 ? writable[0] : null);
  const names = Object.fromEntries(roster.areas.map((a) => [a.area, a.name]));
  const notFiled = roster.not_filed.map((c) => esc(names[c] || c));
  const deadline = roster.deadline ? `${t("rosterDeadline")} <strong id="roster-deadline">${esc(roster.deadline)}</strong>${
    roster.past_deadline ? ` <span class="down">(${t("rosterPast")})</span>` : ""}` : t("rosterNoDeadline");
  const tables = roster.areas.filter((a) => a.entries.length || a.missing.length).map((a) => `<section data-area="${esc(a.area)}">
    <h3>${esc(a.name)} ${a.writable && a !== editing ? `<a class="no-print" href="#/roster/${encodeURIComponent(a.area)}"
      aria-label="${t("rosterEditArea")} ${esc(a.name)}">${t("rosterEditArea")}</a>` : ""}</h3>
    ${a.entries.length ? `<table class="roster"><thead><tr><th scope="col">${t("duty")}</th><th scope="col">${t("personName")}</th>
      <th scope="col">${t("unit")}</th><th scope="col">${t("post")}</th><th scope="col">${t("phone")}</th><th scope="col">${t("note")}</th></tr></thead>
      <tbody>${a.entries.map((e) => `<tr><td>${t(e.duty)}</td><td>${esc(e.name)}</td><td>${esc(e.unit)}</td><td>${esc(e.post)}</td>
        <td data-role="phone" data-masked="${e.phone_masked}">${esc(e.phone)}</td><td>${esc(e.note)}</td></tr>`).join("")}</tbody></table>`
      : `<p class="down">${t("rosterNone")}</p>`}</section>`).join("");
  return `<h2 id="view-title" tabindex="-1">${t("rosterTitle")}</h2>
    <p>${deadline}</p>
    ${session.role === "office" ? `<form id="deadline-form" class="controls no-print">
      ${labelled("deadline-date", "rosterDeadline", `<input id="deadline-date" type="date" value="${esc(roster.deadline || "")}">`)}
      <button type="submit">${t("rosterSetDeadline")}</button></form>` : ""}
    <p id="roster-not-filed" data-count="${notFiled.length}">${notFiled.length ? `${t("rosterNotFiled")}：${notFiled.join("、")}` : t("rosterAllFiled")}</p>
    <p class="no-print"><button type="button" id="roster-export">${t("rosterExport")}</button> <span>${t("rosterMasked")}</span></p>
    <p id="roster-result" role="status"></p>
    ${editing ? rosterForm(editing) : ""}
    ${tables}`;
}

/** One fieldset per person, every field labelled. */
function personFields(i, e = {}) {
  const id = (f) => `roster-${f}-${i}`;
  const input = (f, label, attrs = "") => labelled(id(f), label, `<input id="${id(f)}" name="${f}" value="${esc(e[f] || "")}" ${attrs}>`);
  return `<fieldset class="person" data-index="${i}" style="display: grid; grid-template-columns: max-content 1fr; gap: .3rem .6rem; align-items: center"><legend>${fill("rosterPerson", i + 1)}</legend>
    ${labelled(id("duty"), "duty", `<select id="${id("duty")}" name="duty">${["leader", "liaison"].map((d) =>
      `<option value="${d}" ${e.duty === d ? "selected" : ""}>${t(d)}</option>`).join("")}</select>`)}
    ${input("name", "personName", "required")}${input("unit", "unit", "required")}${input("post", "post", "required")}
    ${input("phone", "phone", 'type="tel" required')}${input("note", "note")}
    <button type="button" data-remove="${i}" style="grid-column: 2; justify-self: start">${t("rosterRemove")}</button></fieldset>`;
}

function rosterForm(area) {
  const entries = area.entries.length ? area.entries : [{ duty: "leader" }, { duty: "liaison" }];
  return `<form id="roster-form" class="no-print" style="max-width: 40rem" data-area="${esc(area.area)}" data-name="${esc(area.name)}">
    <h3>${t("rosterEdit")}：${esc(area.name)}</h3>
    <div id="roster-people">${entries.map((e, i) => personFields(i, e)).join("")}</div>
    <p><button type="button" id="roster-add">${t("rosterAdd")}</button></p>
    <button type="submit">${t("rosterSave")}</button></form>`;
}

/** What the last save said, shown once the roster is drawn again. */
let rosterNotice = "";

function wireRoster() {
  $("view-title").focus();
  if (rosterNotice) { say("roster-result", rosterNotice); rosterNotice = ""; }
  $("roster-export").addEventListener("click", downloadRoster);
  $("deadline-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/api/v1/roster/deadline", { deadline: $("deadline-date").value });
      await render();
    } catch (err) { say("roster-result", t("error") + err.message, true); }
  });
  const form = $("roster-form");
  if (!form) return;
  const people = $("roster-people");
  const renumber = () => [...people.querySelectorAll("fieldset legend")].forEach((l, i) => { l.textContent = fill("rosterPerson", i + 1); });
  people.addEventListener("click", (e) => {
    const button = e.target.closest("[data-remove]");
    if (!button) return;
    button.closest("fieldset").remove();
    renumber();
    people.querySelector("input, select")?.focus();
  });
  $("roster-add").addEventListener("click", () => {
    const next = Math.max(-1, ...[...people.querySelectorAll("fieldset")].map((f) => Number(f.dataset.index))) + 1;
    people.insertAdjacentHTML("beforeend", personFields(next, { duty: "liaison" }));
    renumber();
    $(`roster-name-${next}`).focus();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const entries = [...people.querySelectorAll("fieldset")].map((f) =>
      Object.fromEntries(["duty", "name", "unit", "post", "phone", "note"].map((k) => [k, f.querySelector(`[name=${k}]`).value])));
    try {
      await api(`/api/v1/roster/areas/${encodeURIComponent(form.dataset.area)}`, { entries });
    } catch (err) { say("roster-result", t("error") + err.message, true); return; }
    rosterNotice = fill("rosterSaved", form.dataset.name);
    if (location.hash === "#/roster") await render(); else location.hash = "#/roster";
  });
}

/** The roster's workbook, saved as a file (`download` in app.js). */
async function downloadRoster() {
  try {
    await download("/api/v1/roster/export.xlsx", "联络员名单.xlsx");
  } catch (e) {
    say("roster-result", t("error") + e.message, true);
  }
}

// --- monthly submissions ---------------------------------------------------------------------------------
/** `#/submissions[/<month>]`: each unit's state; `#/submissions/<area>:<month>`: one submission. */
async function submissionsView(arg) {
  if (arg && arg.includes(":")) {
    const [area, month] = arg.split(":");
    return submissionView(area, month);
  }
  const month = arg || thisMonth();
  const rows = await api(`/api/v1/submissions?month=${encodeURIComponent(month)}`);
  const line = (r) => `<tr data-area="${esc(r.area)}" data-status="${esc(r.status)}" data-state="${esc(r.state)}">
    <td>${esc(r.name)}</td><td>${esc(r.town_name || "")}</td><td>${t("state_" + r.state)}</td>
    <td class="${r.status === "on_time" ? "up" : r.status === "late" || r.overdue ? "down" : ""}">${submissionStatus(r)}</td>
    <td>${r.submitted_at ? when(Date.parse(r.submitted_at)) : ""}</td><td>${esc(r.submitted_by || "")}</td>
    <td><a href="#/submissions/${encodeURIComponent(r.area)}:${esc(month)}" aria-label="${t("open")} ${esc(r.name)}">${
      isCadre() && r.state !== "submitted" ? t("fillIn") : t("open")}</a></td></tr>`;
  return `<h2 id="view-title" tabindex="-1">${t("submissionsTitle")} · ${esc(month)}</h2>
    <form id="submissions-month" class="controls no-print">
      ${labelled("submissions-month-input", "month", `<input id="submissions-month-input" type="month" value="${esc(month)}" required>`)}
      <button type="submit">${t("show")}</button></form>
    <p>${t("dueAt")} ${rows[0] ? dueDay(rows[0].due_at) : ""}</p>
    <table id="submissions"><thead><tr><th scope="col">${t("area")}</th><th scope="col">${t("town")}</th>
      <th scope="col">${t("statusCol")}</th><th scope="col">${t("submissionState")}</th><th scope="col">${t("submittedAt")}</th>
      <th scope="col">${t("submittedBy")}</th><th scope="col"></th></tr></thead><tbody>${rows.map(line).join("")}</tbody></table>`;
}

function figuresHtml(f) {
  const cols = ordered(f.indicators.map((i) => i.indicator));
  const ind = (id) => f.indicators.find((i) => i.indicator === id);
  const tasks = f.task_list.length ? `<table id="submission-tasks"><caption>${t("tasksMonth")}</caption><thead><tr>
      <th scope="col">${t("fraud")}</th><th scope="col">${t("taskStatus")}</th><th scope="col">${t("taskCreated")}</th>
      <th scope="col">${t("taskReached")}</th><th scope="col">${t("evaluation")}</th></tr></thead><tbody>${f.task_list.map((k) => `<tr>
      <td>${t(k.fraud_type)}</td><td>${t("st_" + k.status)}${k.late ? ` · ${t("lateTask")}` : ""}</td><td>${when(Date.parse(k.created_at))}</td>
      <td>${k.reached_at ? when(Date.parse(k.reached_at)) : ""}</td><td>${k.evaluation ? t(k.evaluation) : ""}</td></tr>`).join("")}</tbody></table>`
    : `<p>${t("noTasksMonth")}</p>`;
  return `<table id="submission-figures"><caption>${t("figuresAt")} ${when(Date.parse(f.counted_at))}</caption><thead><tr>
      <th scope="col" class="num">${t("visitsMonth")}</th><th scope="col" class="num">${t("placesVisited")}</th>
      <th scope="col" class="num">${t("score")}</th><th scope="col" class="num">${t("change")}</th>
      ${cols.map((i) => `<th scope="col" class="num">${esc(indName(i))}</th>`).join("")}</tr></thead>
    <tbody><tr><td class="num" data-role="visits">${f.visits}</td><td class="num">${f.places_visited}</td>
      <td class="num" data-role="score">${pct(f.score)}</td><td class="num">${signed(f.score_change)}</td>
      ${cols.map((i) => `<td class="num" data-indicator="${esc(i)}">${pct(ind(i).rate)} (${ind(i).reached}${t("of")}${ind(i).eligible})</td>`).join("")}</tr></tbody></table>
    <p id="submission-task-figures" data-created="${f.tasks.created}">${t("issued")} ${f.tasks.created} · ${t("doneTasks")} ${f.tasks.completed} ·
      ${t("overdueTasks")} ${f.tasks.overdue}</p>${tasks}`;
}

async function submissionView(area, month) {
  const s = await api(`/api/v1/submissions/${encodeURIComponent(area)}/${encodeURIComponent(month)}`);
  const text = (key, label) => s.writable
    ? labelled(`submission-${key}`, label, `<textarea id="submission-${key}" name="${key}" rows="5" style="font: inherit">${esc(s[key])}</textarea>`)
    : `<h3>${t(label)}</h3><p class="prose" id="submission-${key}">${esc(s[key]) || t("none")}</p>`;
  return `<p class="crumbs no-print"><a href="#/submissions/${esc(month)}">${t("monthlySubmissions")}</a></p>
    <div class="controls no-print"><button type="button" id="print" class="primary">${t("print")}</button></div>
    <div class="report-head"><h2 id="view-title" tabindex="-1">${esc(fill("submissionOf", (s.town_name ? s.town_name + " " : "") + s.name, month))}</h2>
      <p id="submission-state" data-state="${esc(s.state)}" data-status="${esc(s.status)}">${t("state_" + s.state)} · ${submissionStatus(s)}
        ${s.submitted_at ? ` · ${t("submittedAt")} ${when(Date.parse(s.submitted_at))} · ${esc(s.submitted_by)}` : ""}
        · ${t("dueAt")} ${dueDay(s.due_at)}</p></div>
    ${figuresHtml(s.figures)}
    <form id="submission-form" style="max-width: 48rem" data-area="${esc(area)}" data-month="${esc(month)}">
      ${text("work_done", "workDone")}${text("problems", "problems")}${text("plans", "plans")}
      ${s.writable ? `<div class="controls no-print"><button type="button" id="submission-save">${t("saveDraft")}</button>
        <button type="submit">${t("submit")}</button></div>` : ""}
    </form><p id="submission-result" role="status" class="no-print"></p>`;
}

function wireSubmissions() {
  $("view-title").focus();
  $("submissions-month")?.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/submissions/${$("submissions-month-input").value}`;
  });
  $("print")?.addEventListener("click", () => window.print());
  const form = $("submission-form");
  if (!form || !$("submission-save")) return;
  const base = `/api/v1/submissions/${encodeURIComponent(form.dataset.area)}/${encodeURIComponent(form.dataset.month)}`;
  const texts = () => ({ work_done: $("submission-work_done").value, problems: $("submission-problems").value, plans: $("submission-plans").value });
  const send = async (path, done) => {
    try {
      await api(path, texts());
    } catch (err) { say("submission-result", t("error") + err.message, true); return; }
    await render();
    say("submission-result", t(done));
  };
  $("submission-save").addEventListener("click", () => send(base, "draftSaved"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (window.confirm(t("confirmSubmit"))) send(`${base}/submit`, "submittedDone");
  });
}

// --- situation reports -----------------------------------------------------------------------------------
async function situationsView() {
  const s = await api("/api/v1/situations");
  const office = session.role === "office";
  const items = s.reports.map((r) => `<article class="situation" style="border-left: 4px solid ${r.read ? "var(--line)" : "var(--bad)"}; padding-left: .75rem" data-report="${esc(r.report_id)}" data-read="${r.read}">
    <h3>${t(r.urgency)} · ${esc(r.title)}</h3>
    <p class="sub">${esc(r.area_name)} · ${t("filedAt")} ${when(Date.parse(r.filed_at))} · ${t("filedBy")} ${esc(r.filed_by)} ·
      ${r.read ? `${t("readBy")} ${esc(r.read_by)}` : `<strong>${t("unread")}</strong>`}</p>
    <p class="prose">${esc(r.body)}</p>
    ${office && !r.read ? `<button type="button" data-mark-read="${esc(r.report_id)}" aria-label="${t("markRead")} ${esc(r.title)}">${t("markRead")}</button>` : ""}
  </article>`).join("");
  return `<h2 id="view-title" tabindex="-1">${t("situationsTitle")} <span id="situations-unread" data-count="${s.unread}">(${fill("unreadCount", s.unread)})</span></h2>
    ${s.own_area ? `<form id="situation-form" class="no-print" style="max-width: 40rem" data-area="${esc(s.own_area)}"><h3>${t("fileSituation")}</h3>
      ${labelled("situation-urgency", "urgency", `<select id="situation-urgency" name="urgency"><option value="urgent">${t("urgent")}</option>
        <option value="major">${t("major")}</option></select>`)}
      ${labelled("situation-title", "situationTitle", `<input id="situation-title" name="title" maxlength="100" required>`)}
      ${labelled("situation-body", "situationBody", `<textarea id="situation-body" name="body" rows="5" style="font: inherit" required></textarea>`)}
      <button type="submit">${t("fileIt")}</button></form>` : ""}
    <p id="situation-result" role="status"></p>
    <div id="situations">${items || `<p>${t("noSituations")}</p>`}</div>`;
}

function wireSituations() {
  $("view-title").focus();
  $("situation-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/api/v1/situations/${encodeURIComponent($("situation-form").dataset.area)}`, { title: $("situation-title").value, body: $("situation-body").value, urgency: $("situation-urgency").value });
    } catch (err) { say("situation-result", t("error") + err.message, true); return; }
    await render();
    say("situation-result", t("filedDone"));
  });
  for (const button of document.querySelectorAll("[data-mark-read]")) {
    button.addEventListener("click", async () => {
      try {
        await api(`/api/v1/situations/${encodeURIComponent(button.dataset.markRead)}/read`, {});
      } catch (err) { say("situation-result", t("error") + err.message, true); return; }
      await render();
    });
  }
}

registerView("roster", { roles: ["office", "viewer"], nav: "liaisons", text: SUBMISSION_TEXT, render: rosterView, wire: wireRoster });
registerView("submissions", { roles: ["office", "viewer"], nav: "monthlySubmissions", render: submissionsView, wire: wireSubmissions });
registerView("situations", { roles: ["office", "viewer"], nav: "situations", render: situationsView, wire: wireSituations });

// The office sees the unread situation reports counted beside their navigation link, on every page: counted
// again each time a view is drawn (`#view[data-ready]` is set), so a report filed meanwhile shows at the next one.
const situationsBadge = Object.assign(document.createElement("span"), { id: "situations-badge", hidden: true });
situationsBadge.style.cssText = "background: var(--bad); color: #fff; border-radius: 1rem; padding: 0 .5rem; font-size: .85rem";
$("nav-situations").after(situationsBadge);
new MutationObserver(async () => {
  if (session?.role !== "office") { situationsBadge.hidden = true; return; }
  try {
    const { unread } = await api("/api/v1/situations");
    situationsBadge.textContent = fill("unreadCount", unread);
    situationsBadge.dataset.count = String(unread);
    situationsBadge.hidden = unread === 0;
  } catch { situationsBadge.hidden = true; }
}).observe($("view"), { attributes: true, attributeFilter: ["data-ready"] });
