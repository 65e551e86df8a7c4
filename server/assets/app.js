// Doorstep's office dashboard: login, coverage toward 100%, drill-down, ranking, progress chart, the printable
// monthly report, the urgent dissuasion tasks, the review queue of places found in the field and the campaign (what
// counts: its indicators, place kinds and deliveries, read from the API; the office checks and applies a new
// definition). Plain JavaScript against the JSON API; the session lives in sessionStorage only.
"use strict";

/** Indicator colours by position in the campaign; the default campaign's five keep their colours. */
const PALETTE = ["#1d4ed8", "#047857", "#b45309", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf", "#c2410c",
  "#374151", "#0f766e", "#9d174d"];
const TEXT = {
  zh: {
    title: "反诈宣传入户覆盖", skip: "跳到正文", overview: "总览", monthly: "月度通报", logout: "退出登录",
    login: "登录", username: "用户名", password: "密码", signin: "登录", loginFailed: "登录失败：",
    reached: "已覆盖", of: "／", excluded: "已不存在", area: "区域", code: "编码", rank: "名次", score: "综合覆盖率",
    change: "较上月", visits: "本月走访", laggard: "挂牌整治", ranking: "排名", progress: "近30天覆盖进度", bulletinsRead: "通报阅读率",
    children: "下级覆盖情况", places: "点位", kind: "类型", missing: "未完成", revisit: "需回访", done: "已完成",
    lastVisit: "最近走访", month: "月份", downloadXlsx: "下载 Excel", threshold: "整治线", show: "查看", print: "打印", laggards: "挂牌整治单位",
    none: "无", reportTitle: "反诈宣传工作月度通报", monthEnd: "覆盖率按月末统计；名次按各项指标覆盖率平均值排列。",
    loading: "加载中…", error: "出错了：", gone: "已不存在", yes: "是", date: "日期", chartLabel: "各指标覆盖率随时间变化",
    lang: "English", langCode: "en",
    tasks: "预警劝阻", tasksTitle: "预警劝阻任务", openTasks: "待处置", overdueTasks: "已超时", doneTasks: "已完成",
    medianResponse: "响应时间中位数", person: "对象", fraud: "诈骗类型", team: "队伍", deadline: "处置时限",
    statusCol: "状态", signMin: "签收用时", responseMin: "响应用时", reachMin: "劝阻用时", evaluation: "评价",
    minutes: "分钟", hours: "小时", issued: "下发", noTasks: "暂无任务", late: "超时完成",
    impersonation: "冒充公检法", dating: "网络交友", investment: "投资理财", gambling: "网络赌博", other: "其他",
    st_open: "待处置", st_done: "已劝阻", st_follow_up: "需跟进", st_closed: "已办结",
    effective: "有效", ineffective: "无效", "follow-up": "需跟进",
    review: "点位审核", reviewTitle: "待审核的新增点位与更正", foundPlaces: "实地新增点位", corrections: "点位信息更正",
    foundBy: "发现人", foundAt: "发现时间", address: "地址", actions: "操作", confirm: "确认", reject: "驳回",
    mergeInto: "合并到", merge: "合并", choosePlace: "请选择要合并到的点位", current: "现有", proposed: "建议",
    accept: "采纳", decline: "不采纳", proposedBy: "提出人", gridCoverage: "相关网格覆盖情况", grid: "网格",
    nothingPending: "暂无待审核项", pendingPlaces: "待审核点位", pendingCorrections: "待审核更正", metres: "米",
    readOnly: "仅镇反诈办可作出审核决定。", confirmed: "已确认", rejected: "已驳回", merged: "已合并到",
    accepted: "已采纳", declined: "未采纳", label: "名称", visitCount: "走访次数",
    audit: "审计日志", auditTitle: "审计日志：谁在何时做了什么", auditPerson: "人员", auditAction: "操作（如 campaign 或 campaign.apply）",
    auditFrom: "起始日期", auditTo: "截止日期", search: "查询", auditAt: "时间", auditWhat: "操作", auditDetail: "详情",
    devices: "设备", devicesTitle: "已登记的手机", deviceName: "设备名称", owner: "使用人", enrolledAt: "登记时间",
    lastSync: "最近同步", never: "从未", revoke: "停用", revokedAt: "已停用", deviceState: "状态", inUse: "使用中",
    confirmRevoke: "停用 {0} 的设备“{1}”？它将不能再同步；已同步的走访不受影响。", revokedDone: "已停用 {0} 的设备“{1}”。",
    devicesHelp: "手机丢失或更换时，停用旧设备；志愿者在新手机上重新登记即可。点“手机丢失”会停用旧设备，并立即生成新手机的登记码。",
    appVersion: "应用版本", unsentHint: "上次报告待上传", unsentAt: "{0} 条（{1}）", staleHint: "超过2天未同步，可能有未上传的走访",
    lostPhone: "手机丢失", confirmLost: "{0} 的手机“{1}”丢失？将停用它：已同步的走访不受影响，最后一次同步（{2}）之后在这部手机上记录的走访无法找回。随后为 {0} 生成新手机的登记码。",
    lostDone: "已停用 {0} 的手机“{1}”。请用下面的登记码登记新手机。",
    noEvents: "没有符合条件的记录。", auditShown: "显示符合条件的最近 {0} 条记录", auditMore: "（仅显示最近 {0} 条，请缩小范围）",
    caTitle: "驻地中转证书（每部手机安装一次）", caDownload: "下载证书", caCheck: "核对 SHA-256 指纹：",
    caHelp: "队长的中转设备在没有网络的驻地通过 HTTPS 提供走访应用。每部志愿者手机安装一次本证书即可使用；它只对内网地址有效。",
    campaign: "宣传活动", campaignTitle: "宣传活动与统计口径", campaignName: "活动名称", version: "版本",
    campaignVersion: "活动版本", defaultCampaign: "默认活动（未更改）", appliedAt: "应用时间", appliedBy: "应用人",
    indicators: "统计指标", indicator: "指标", kindsCounted: "统计点位", reachedBy: "达成方式", target: "目标",
    photo: "需拍照", no: "否", placeKinds: "点位类型", deliveries: "走访事项", definition: "定义文件",
    onlyVillages: "（仅村）", onlyCommunities: "（仅社区）", or: " 或 ", and: " 且 ", sep: "、",
    noPlaces: "暂无点位", changeCampaign: "更换活动定义",
    changeHelp: "选择 .toml 定义文件（格式见 docs/campaigns.md）。先检查，看清会有哪些变化，再应用；应用后按新口径重新统计。",
    campaignFile: "定义文件（.toml）", check: "检查", apply: "应用", checking: "正在检查…", applying: "正在应用…",
    checkFailed: "定义文件有误，未作任何更改：", chooseFile: "请先选择定义文件", fileChanged: "文件已变化，请重新检查",
    planTitle: "应用后的变化", fromTo: "从版本 {0} 到版本 {1}", onlyNames: "只改名称，统计结果不变。",
    indicatorsAdded: "新增指标", indicatorsRemoved: "删除指标", indicatorsChanged: "口径变化的指标",
    kindsAdded: "新增点位类型", kindsRemoved: "删除点位类型", deliveriesAdded: "新增走访事项",
    deliveriesRemoved: "删除走访事项", placesChanging: "统计指标发生变化的点位", village: "村（社区）",
    confirmApply: "应用新的活动定义（版本 {0}）？{1} 个点位将按新口径重新统计。", applied: "已应用活动版本 {0}",
    campaignReadOnly: "仅镇反诈办可更换活动定义。",
  },
  en: {
    title: "Anti-fraud outreach coverage", skip: "Skip to content", overview: "Overview", monthly: "Monthly report",
    logout: "Log out", login: "Log in", username: "Username", password: "Password", signin: "Log in",
    loginFailed: "Login failed: ", reached: "reached", of: " of ",
    excluded: "gone", area: "Area", code: "Code", rank: "Rank", score: "Score", change: "Change",
    visits: "Visits this month", laggard: "Laggard", ranking: "Ranking", progress: "Coverage over the last 30 days", bulletinsRead: "Bulletins read",
    children: "Coverage below", places: "Places", kind: "Kind", missing: "Missing", revisit: "Revisit",
    done: "Done", lastVisit: "Last visit", month: "Month", downloadXlsx: "Download Excel", threshold: "Threshold", show: "Show", print: "Print",
    laggards: "Units listed for rectification", none: "None", reportTitle: "Monthly anti-fraud outreach report",
    monthEnd: "Coverage at month end; ranked by the mean rate over the indicators.", loading: "Loading…",
    error: "Error: ", gone: "gone", yes: "yes", date: "Date", chartLabel: "Coverage rate per indicator over time",
    lang: "中文", langCode: "zh-CN",
    tasks: "Urgent tasks", tasksTitle: "Urgent dissuasion tasks", openTasks: "Open", overdueTasks: "Overdue",
    doneTasks: "Completed", medianResponse: "Median response time", person: "Person", fraud: "Fraud type",
    team: "Team", deadline: "Deadline", statusCol: "Status", signMin: "Signed for after", responseMin: "Response time",
    reachMin: "Reached after", evaluation: "Evaluation", issued: "Issued", minutes: "min", hours: "h", noTasks: "No tasks",
    late: "completed late", impersonation: "Impersonating officials", dating: "Online dating", investment: "Investment",
    gambling: "Gambling", other: "Other", st_open: "Open", st_done: "Reached", st_follow_up: "Follow-up",
    st_closed: "Closed", effective: "Effective", ineffective: "Ineffective", "follow-up": "Follow-up",
    review: "Review", reviewTitle: "Review queue: places found in the field and corrections", foundPlaces: "Places found in the field",
    corrections: "Proposed corrections", foundBy: "Found by", foundAt: "Found at", address: "Address", actions: "Actions",
    confirm: "Confirm", reject: "Reject", mergeInto: "Merge into", merge: "Merge", choosePlace: "Choose the place to merge into",
    current: "Now", proposed: "Proposed", accept: "Accept", decline: "Reject", proposedBy: "Proposed by",
    gridCoverage: "Coverage of the grids concerned", grid: "Grid", nothingPending: "Nothing awaits review",
    pendingPlaces: "Places to review", pendingCorrections: "Corrections to review", metres: "m",
    readOnly: "Only the office decides on reviews.", confirmed: "Confirmed", rejected: "Rejected", merged: "Merged into",
    accepted: "Accepted", declined: "Rejected", label: "Label", visitCount: "Visits",
    audit: "Audit log", auditTitle: "Audit log: who did what, and when", auditPerson: "Person", auditAction: "Action (e.g. campaign or campaign.apply)",
    auditFrom: "From", auditTo: "To", search: "Search", auditAt: "Time", auditWhat: "Action", auditDetail: "Detail",
    devices: "Devices", devicesTitle: "Enrolled phones", deviceName: "Device", owner: "Owner", enrolledAt: "Enrolled",
    lastSync: "Last sync", never: "never", revoke: "Revoke", revokedAt: "Revoked", deviceState: "State", inUse: "In use",
    confirmRevoke: "Revoke {0}'s device “{1}”? It can no longer sync; the visits it synced stay.", revokedDone: "{0}'s device “{1}” is revoked.",
    devicesHelp: "When a phone is lost or replaced, revoke the old device; the volunteer enrols again on the new phone. “Lost phone” revokes it and makes a code for the new phone at once.",
    appVersion: "App version", unsentHint: "Unsent when last reported", unsentAt: "{0} ({1})", staleHint: "no sync for over 2 days: may hold unsent visits",
    lostPhone: "Lost phone", confirmLost: "{0}'s phone “{1}” is lost? It will be revoked: the visits it synced stay, but visits recorded on it after its last sync ({2}) cannot be recovered. Then a code for {0}'s new phone is made.",
    lostDone: "{0}'s phone “{1}” is revoked. Enrol the new phone with the code below.",
    noEvents: "No events match.", auditShown: "The newest {0} matching events", auditMore: " (only the newest {0} are shown: narrow the search)",
    caTitle: "Certificate for phones at base (install once per phone)", caDownload: "Download the certificate",
    caCheck: "SHA-256 fingerprint to check:", caHelp: "A team lead's hub serves the field app over HTTPS at a base without internet. Install this certificate once on each volunteer's phone; it is valid for local network addresses only.",
    campaign: "Campaign", campaignTitle: "The campaign: what counts", campaignName: "Name", version: "Version",
    campaignVersion: "Campaign version", defaultCampaign: "the default campaign (never changed)", appliedAt: "Applied at",
    appliedBy: "Applied by", indicators: "Indicators", indicator: "Indicator", kindsCounted: "Places counted",
    reachedBy: "Reached by", target: "Target", photo: "Photo required", no: "no", placeKinds: "Place kinds",
    deliveries: "Deliveries", definition: "Definition file", onlyVillages: " (villages only)",
    onlyCommunities: " (communities only)", or: " or ", and: " and ", sep: ", ", noPlaces: "No places yet",
    changeCampaign: "Change the campaign",
    changeHelp: "Choose a .toml definition file (format: docs/campaigns.md). Check it first to see what would change, then apply it; the figures are then counted the new way.",
    campaignFile: "Definition file (.toml)", check: "Check", apply: "Apply", checking: "Checking…", applying: "Applying…",
    checkFailed: "The file has problems; nothing was changed: ", chooseFile: "Choose a definition file first",
    fileChanged: "The file changed; check it again", planTitle: "What applying it changes",
    fromTo: "From version {0} to version {1}", onlyNames: "Only names change; no figure moves.",
    indicatorsAdded: "Indicators added", indicatorsRemoved: "Indicators removed", indicatorsChanged: "Indicators counted differently",
    kindsAdded: "Place kinds added", kindsRemoved: "Place kinds removed", deliveriesAdded: "Deliveries added",
    deliveriesRemoved: "Deliveries removed", placesChanging: "Places whose indicators change", village: "Village or community",
    confirmApply: "Apply the new campaign definition (version {0})? {1} places will be counted the new way.",
    applied: "Campaign version {0} applied", campaignReadOnly: "Only the office changes the campaign.",
  },
};

let lang = sessionStorage.getItem("doorstep.lang") || "zh";
const t = (k) => TEXT[lang][k] ?? k;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const pct = (r) => (r * 100).toFixed(1) + "%";
const signed = (r) => (r > 0 ? "+" : "") + (r * 100).toFixed(1) + "%";
/** A text with {0}, {1}… filled in. */
const fill = (k, ...xs) => t(k).replace(/\{(\d)\}/g, (_, n) => xs[n]);

// --- the campaign in force -----------------------------------------------------------------------------
/** `GET /api/v1/campaign`: read once after login, again after the office applies a definition. */
let campaign = null;
async function loadCampaign() {
  if (!campaign) campaign = await api("/api/v1/campaign");
  return campaign;
}
const byId = (list, id) => (campaign?.campaign[list] || []).find((x) => x.id === id);
const named = (x, id) => (x ? (lang === "zh" ? x.zh : x.en) : id);
const indName = (id) => named(byId("indicators", id), id);
const kindName = (id) => named(byId("place_kinds", id), id);
const deliveryName = (id) => named(byId("deliveries", id), id);
/** The campaign's indicator ids in report order. */
const indicatorIds = () => (campaign?.campaign.indicators || []).map((i) => i.id);
/** The ids present in `present` (a Set or array), the campaign's first in report order, then any other (e.g. of a
 * month counted with an earlier version) as they come. */
function ordered(present) {
  const ids = [...new Set(present)];
  const known = indicatorIds();
  return [...known.filter((i) => ids.includes(i)), ...ids.filter((i) => !known.includes(i))];
}
function color(id) {
  let k = indicatorIds().indexOf(id);
  if (k < 0) k = indicatorIds().length + 1;
  return PALETTE[k % PALETTE.length];
}

// --- session -------------------------------------------------------------------------------------------
let session = JSON.parse(sessionStorage.getItem("doorstep.session") || "null");
let refreshTimer = null;

function saveSession(s) {
  session = s;
  scopeArea = null;
  if (!s) campaign = null;
  if (s) sessionStorage.setItem("doorstep.session", JSON.stringify(s));
  else sessionStorage.removeItem("doorstep.session");
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const wait = Math.max(5, session.expires_at - Date.now() / 1000 - 60) * 1000;
  refreshTimer = setTimeout(refresh, wait);
}

async function refresh() {
  if (!session) return false;
  const r = await fetch("/api/v1/auth/refresh", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: session.refresh_token }),
  });
  if (!r.ok) { saveSession(null); render(); return false; }
  saveSession(await r.json());
  return true;
}

/** Calls the API with the session, renewing it once if the access token expired. `body` makes it a POST: sent as
 * JSON, or as it is with another `type`. */
async function api(path, body, type = "application/json") {
  const call = () => fetch(path, body === undefined ? { headers: { authorization: "Bearer " + session.token } } : {
    method: "POST", headers: { authorization: "Bearer " + session.token, "content-type": type },
    body: type === "application/json" ? JSON.stringify(body) : body,
  });
  let r = await call();
  if (r.status === 401 && (await refresh())) r = await call();
  const text = await r.text();
  let reply = null;
  try { reply = text ? JSON.parse(text) : null; } catch (e) { if (r.ok) throw e; }
  if (!r.ok) throw new Error(reply?.error?.message || text || r.statusText);
  return reply;
}

/** Saves what the API answers at `path` (a workbook, say) as the file `filename`, with the session's token. */
async function download(path, filename) {
  let r = await fetch(path, { headers: { authorization: "Bearer " + session.token } });
  if (r.status === 401 && (await refresh())) r = await fetch(path, { headers: { authorization: "Bearer " + session.token } });
  if (!r.ok) throw new Error((await r.json().catch(() => null))?.error?.message || r.statusText);
  const url = URL.createObjectURL(await r.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  const r = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value }),
  });
  const body = await r.json();
  if (!r.ok) { $("login-error").textContent = t("loginFailed") + (body?.error?.message || r.status); return; }
  $("password").value = "";
  saveSession(body);
  render();
});

$("logout").addEventListener("click", async () => {
  if (session) {
    await fetch("/api/v1/auth/logout", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh_token }),
    });
  }
  saveSession(null);
  location.hash = "#/";
  render();
});

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  sessionStorage.setItem("doorstep.lang", lang);
  render();
});

// --- figures -------------------------------------------------------------------------------------------
/** Sums coverage rows per indicator (several towns add up). */
function totals(rows) {
  const out = {};
  for (const r of rows) {
    const o = (out[r.indicator] ||= { eligible: 0, reached: 0, excluded: 0 });
    o.eligible += r.eligible; o.reached += r.reached; o.excluded += r.excluded;
  }
  for (const o of Object.values(out)) o.rate = o.eligible === 0 ? 1 : o.reached / o.eligible;
  return out;
}

/** One card per indicator with places; `every`: also one, marked as having no places yet, per other indicator of the
 * campaign (the overview, where an indicator just added shows before its places are imported). */
function cards(tot, every = false) {
  const ids = ordered([...(every ? indicatorIds() : []), ...Object.keys(tot)]);
  return `<div class="cards">${ids.map((i) => {
    const f = tot[i];
    if (!f) {
      return `<div class="card empty" data-indicator="${esc(i)}" data-eligible="0" data-reached="0">
      <h3 id="card-${esc(i)}">${esc(indName(i))}</h3><div class="pct" data-role="rate">—</div>
      <div class="sub">${t("noPlaces")}</div></div>`;
    }
    return `<div class="card" data-indicator="${esc(i)}" data-eligible="${f.eligible}" data-reached="${f.reached}">
      <h3 id="card-${esc(i)}">${esc(indName(i))}</h3>
      <div class="pct" data-role="rate">${pct(f.rate)}</div>
      <div class="bar" role="progressbar" aria-labelledby="card-${i}" aria-valuemin="0" aria-valuemax="100"
        aria-valuenow="${(f.rate * 100).toFixed(1)}"><span style="width:${(f.rate * 100).toFixed(1)}%"></span></div>
      <div class="sub">${t("reached")} ${f.reached}${t("of")}${f.eligible}${f.excluded ? ` · ${t("excluded")} ${f.excluded}` : ""}</div>
    </div>`;
  }).join("")}</div>`;
}

/** A table of child areas, one row each, one column per indicator, each name a drill-down link. */
function childTable(rows, level) {
  const byArea = new Map();
  for (const r of rows) {
    if (!byArea.has(r.area)) byArea.set(r.area, { name: r.name, ind: {} });
    byArea.get(r.area).ind[r.indicator] = r;
  }
  const cols = ordered(rows.map((r) => r.indicator));
  const body = [...byArea].map(([code, a]) => `<tr data-area="${esc(code)}">
      <td><a href="#/${level}/${encodeURIComponent(code)}">${esc(a.name)}</a></td><td>${esc(code)}</td>
      ${cols.map((i) => `<td class="num" data-indicator="${esc(i)}">${a.ind[i] ? pct(a.ind[i].rate) : "—"}</td>`).join("")}</tr>`).join("");
  return `<table id="children"><caption>${t("children")}</caption><thead><tr><th scope="col">${t("area")}</th>
    <th scope="col">${t("code")}</th>${cols.map((i) => `<th scope="col" class="num">${esc(indName(i))}</th>`).join("")}</tr></thead>
    <tbody>${body}</tbody></table>`;
}

/** An inline SVG line chart of each indicator's rate per day. */
function chart(progress) {
  const W = 720, H = 260, L = 44, R = 12, T = 12, B = 30;
  const order = ordered(progress.series.map((s) => s.indicator));
  const series = [...progress.series].sort((a, b) => order.indexOf(a.indicator) - order.indexOf(b.indicator));
  if (!series.length) return "";
  const n = series[0].points.length;
  const x = (k) => L + (n <= 1 ? 0 : (k * (W - L - R)) / (n - 1));
  const y = (r) => T + (1 - r) * (H - T - B);
  let grid = "";
  for (const r of [0, 0.25, 0.5, 0.75, 1]) {
    grid += `<line x1="${L}" x2="${W - R}" y1="${y(r)}" y2="${y(r)}" stroke="#d1d5db"/>
      <text x="${L - 6}" y="${y(r) + 4}" font-size="11" text-anchor="end" fill="#374151">${r * 100}%</text>`;
  }
  const first = series[0].points[0].date, last = series[0].points[n - 1].date;
  grid += `<text x="${L}" y="${H - 8}" font-size="11" fill="#374151">${first}</text>
    <text x="${W - R}" y="${H - 8}" font-size="11" text-anchor="end" fill="#374151">${last}</text>`;
  const lines = series.map((s) => `<polyline fill="none" stroke="${color(s.indicator)}" stroke-width="2"
      data-indicator="${esc(s.indicator)}" points="${s.points.map((p, k) => `${x(k).toFixed(1)},${y(p.rate).toFixed(1)}`).join(" ")}"/>`).join("");
  const summary = series.map((s) => `${indName(s.indicator)} ${pct(s.points[n - 1].rate)}`).join("；");
  return `<figure class="chart" id="chart"><figcaption><strong>${t("progress")}</strong></figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${t("chartLabel")}: ${esc(summary)}">${grid}${lines}</svg>
    <div class="legend">${series.map((s) => `<span><i style="background:${color(s.indicator)}"></i>${esc(indName(s.indicator))}</span>`).join("")}</div>
  </figure>`;
}

/** `statuses`: each unit's monthly submission (submissions.js), shown in a column of their own when given. */
function rankingTable(report, id, statuses) {
  const cols = ordered(report.rows.flatMap((r) => r.indicators.map((x) => x.indicator)));
  const submission = (area) => { const s = statuses.find((x) => x.area === area);
    return `<td data-role="submission" data-status="${esc(s?.status || "")}">${s ? esc(submissionStatus(s)) : ""}</td>`; };
  const rows = report.rows.map((r) => {
    const cell = (i) => { const x = r.indicators.find((v) => v.indicator === i); return x ? pct(x.rate) : "—"; };
    return `<tr data-area="${esc(r.area)}" data-rank="${r.rank}" class="${r.laggard ? "laggard" : ""}">
      <td class="num">${r.rank}</td><td>${esc(r.name)}</td><td class="num">${r.visits}</td>
      <td class="num" data-role="score">${pct(r.score)}</td>
      <td class="num ${r.score_change > 0 ? "up" : r.score_change < 0 ? "down" : ""}">${signed(r.score_change)}</td>
      ${cols.map((i) => `<td class="num">${cell(i)}</td>`).join("")}<td>${r.laggard ? t("laggard") : ""}</td>
      <td class="num" data-role="bulletins-read">${r.bulletins ? `${pct(r.bulletins.rate)} (${r.bulletins.read}/${r.bulletins.expected})` : "—"}</td>${statuses ? submission(r.area) : ""}</tr>`;
  }).join("");
  return `<table id="${id}"><caption>${t("ranking")} · ${esc(report.month)}</caption><thead><tr>
    <th scope="col" class="num">${t("rank")}</th><th scope="col">${t("area")}</th><th scope="col" class="num">${t("visits")}</th>
    <th scope="col" class="num">${t("score")}</th><th scope="col" class="num">${t("change")}</th>
    ${cols.map((i) => `<th scope="col" class="num">${esc(indName(i))}</th>`).join("")}<th scope="col">${t("laggard")}</th>
    <th scope="col" class="num">${t("bulletinsRead")}</th>
    ${statuses ? `<th scope="col">${t("submissionCol")}</th>` : ""}</tr></thead>
    <tbody>${rows}</tbody></table>`;
}

const thisMonth = () => { const d = new Date(); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`; };
/** The reader's top area: the office's or lead's first town; a viewer's own area (the server scopes it). `fresh`
 * reads its figures again. */
let scopeArea = null;
async function topArea(fresh = false) {
  if (scopeArea && !fresh) return scopeArea;
  const towns = await api("/api/v1/reports/coverage?by=town");
  const first = towns[0];
  scopeArea = { towns, code: first?.area, name: first?.name };
  return scopeArea;
}
const monthlyPath = (month, code) =>
  `/api/v1/reports/monthly?month=${month}` + (session.role === "viewer" || !code ? "" : `&area=${encodeURIComponent(code)}`);

// --- views ---------------------------------------------------------------------------------------------
async function overview() {
  const area = await topArea(true);
  const [villages, progress, monthly, ca] = await Promise.all([
    area.code ? api(`/api/v1/reports/coverage?by=village&area=${encodeURIComponent(session.role === "viewer" ? "" : area.code)}`) : [],
    api("/api/v1/reports/progress" + (session.role === "viewer" || !area.code ? "" : `?area=${encodeURIComponent(area.code)}`)),
    api(monthlyPath(thisMonth(), area.code)),
    api("/api/v1/ca"),
  ]);
  return `<h2 id="view-title">${esc(area.name || t("overview"))}</h2>
    ${cards(totals(area.towns), true)}${chart(progress)}${childTable(villages, "village")}${rankingTable(monthly, "ranking")}
    ${caSection(ca)}`;
}

/** The Doorstep CA that signs team hubs' HTTPS certificates, for the office to hand out and phones to install. */
function caSection(ca) {
  return `<section id="ca" class="no-print"><h3>${t("caTitle")}</h3><p>${t("caHelp")}</p>
    <p><a id="ca-download" href="/api/v1/ca.pem" download="doorstep-ca.crt">${t("caDownload")}</a>
      · <strong id="ca-name">${esc(ca.name)}</strong></p>
    <p>${t("caCheck")} <code id="ca-sha256">${esc(ca.sha256)}</code></p></section>`;
}

async function areaView(level, code) {
  if (level === "grid") {
    const places = await api(`/api/v1/reports/gaps?grid=${encodeURIComponent(code)}&all=true`);
    const cov = await api(`/api/v1/reports/coverage?by=grid&area=${encodeURIComponent(code)}`);
    const rows = places.map((p) => `<tr data-place="${esc(p.place_id)}"><td>${esc(p.place_id)}</td><td>${esc(p.label)}</td>
      <td>${esc(kindName(p.kind))}</td><td>${p.excluded ? t("gone") : p.missing.length ? esc(p.missing.map(indName).join(t("sep"))) : t("done")}</td>
      <td>${p.needs_revisit ? t("revisit") : ""}</td><td>${esc((p.last_visit_at || "").slice(0, 16).replace("T", " "))}</td></tr>`).join("");
    return `<p class="crumbs"><a href="#/">${t("overview")}</a></p><h2 id="view-title">${esc(cov[0]?.name || code)}</h2>
      ${cards(totals(cov))}<table id="places"><caption>${t("places")}</caption><thead><tr><th scope="col">${t("code")}</th>
      <th scope="col">${t("places")}</th><th scope="col">${t("kind")}</th><th scope="col">${t("missing")}</th>
      <th scope="col">${t("revisit")}</th><th scope="col">${t("lastVisit")}</th></tr></thead><tbody>${rows}</tbody></table>`;
  }
  const own = await api(`/api/v1/reports/coverage?by=${level}&area=${encodeURIComponent(code)}`);
  const below = level === "town" ? "village" : "grid";
  const children = await api(`/api/v1/reports/coverage?by=${below}&area=${encodeURIComponent(code)}`);
  return `<p class="crumbs"><a href="#/">${t("overview")}</a></p><h2 id="view-title">${esc(own[0]?.name || code)}</h2>
    ${cards(totals(own))}${childTable(children, below)}`;
}

async function monthlyView(month) {
  month ||= thisMonth();
  const area = await topArea();
  const [report, statuses] = await Promise.all([api(monthlyPath(month, area.code)),
    // Each village's monthly submission (submissions.js): the office's and viewers' to read.
    ["office", "viewer"].includes(session.role) ? api(`/api/v1/submissions?month=${encodeURIComponent(month)}`) : null]);
  const name = report.area_name || area.name || "";
  const laggards = report.rows.filter((r) => r.laggard).map((r) => esc(r.name));
  return `<div class="controls no-print"><form id="month-form" class="controls">
      <label for="month">${t("month")}<input id="month" type="month" value="${esc(month)}" required></label>
      <button type="submit">${t("show")}</button><button type="button" id="print" class="primary">${t("print")}</button>
      <button type="button" id="monthly-xlsx" data-path="${esc(monthlyPath(month, area.code).replace("/monthly?", "/monthly.xlsx?"))}"
        data-file="${esc(`${name} ${month} ${t("reportTitle")}.xlsx`)}">${t("downloadXlsx")}</button></form></div>
    <div class="report-head"><h2 id="report-title">${esc(name)} ${esc(month)} ${t("reportTitle")}</h2>
      <p>${t("monthEnd")} ${t("threshold")} ${pct(report.threshold)}</p>
      ${report.campaign_version > 0 ? `<p id="campaign-version-used" data-version="${report.campaign_version}">${t("campaignVersion")} ${report.campaign_version}</p>` : ""}</div>
    ${rankingTable(report, "monthly-ranking", statuses)}
    <h3>${t("laggards")}</h3><p id="laggards">${laggards.length ? laggards.join("、") : t("none")}</p>
    <h3>${t("tasksTitle")}</h3><p id="monthly-tasks" data-created="${report.tasks.created}"
      data-completed="${report.tasks.completed}" data-overdue="${report.tasks.overdue}">
      ${t("issued")} ${report.tasks.created} · ${t("doneTasks")} ${report.tasks.completed} ·
      ${t("overdueTasks")} ${report.tasks.overdue} · ${t("medianResponse")} ${duration(report.tasks.median_response_minutes)}</p>`;
}

/** Minutes as "25 分钟" or "2.5 小时"; a dash when there is no time yet. */
const duration = (m) => m == null ? "—" : m < 60 ? `${m} ${t("minutes")}` : `${(m / 60).toFixed(1)} ${t("hours")}`;

function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : Math.round(((s[n / 2 - 1] + s[n / 2]) / 2) * 10) / 10;
}

function taskTable(id, caption, rows) {
  const body = rows.map((r) => `<tr data-task="${esc(r.task_id)}" class="${r.overdue ? "laggard" : ""}">
      <td>${esc(r.person)}</td><td>${esc(t(r.fraud_type))}</td><td>${esc(r.team)}</td>
      <td>${esc(r.deadline.slice(0, 16).replace("T", " "))}</td>
      <td>${esc(t("st_" + r.status))}${r.late ? ` · ${t("late")}` : ""}</td>
      <td class="num" data-role="sign">${duration(r.sign_minutes)}</td>
      <td class="num" data-role="response">${duration(r.response_minutes)}</td>
      <td class="num" data-role="reach">${duration(r.reach_minutes)}</td>
      <td>${r.evaluation ? esc(t(r.evaluation)) : ""}</td></tr>`).join("");
  return `<table id="${id}"><caption>${caption} (${rows.length})</caption><thead><tr>
    <th scope="col">${t("person")}</th><th scope="col">${t("fraud")}</th><th scope="col">${t("team")}</th>
    <th scope="col">${t("deadline")}</th><th scope="col">${t("statusCol")}</th><th scope="col" class="num">${t("signMin")}</th>
    <th scope="col" class="num">${t("responseMin")}</th><th scope="col" class="num">${t("reachMin")}</th>
    <th scope="col">${t("evaluation")}</th></tr></thead>
    <tbody>${body || `<tr><td colspan="9">${t("noTasks")}</td></tr>`}</tbody></table>`;
}

/** Open, overdue and completed urgent tasks with their sign-for, response and reach times. */
async function tasksView() {
  const rows = await api("/api/v1/tasks?status=all");
  const overdue = rows.filter((r) => r.overdue);
  const open = rows.filter((r) => !r.overdue && (r.status === "open" || r.status === "follow_up"));
  const done = rows.filter((r) => r.status === "done" || r.status === "closed");
  const med = median(rows.map((r) => r.response_minutes).filter((m) => m != null));
  const card = (key, n, extra = "") => `<div class="card" data-figure="${key}"><h3>${t(key)}</h3>
    <div class="pct" data-role="value">${n}</div>${extra}</div>`;
  return `<h2 id="view-title">${t("tasksTitle")}</h2><div class="cards">
      ${card("openTasks", open.length)}${card("overdueTasks", overdue.length)}${card("doneTasks", done.length)}
      ${card("medianResponse", duration(med))}</div>
    ${taskTable("tasks-overdue", t("overdueTasks"), overdue)}${taskTable("tasks-open", t("openTasks"), open)}
    ${taskTable("tasks-done", t("doneTasks"), done)}`;
}

/** One row per grid with pending items, one column per indicator: reached of eligible, and the rate. */
function gridCoverageTable(rows) {
  const byGrid = new Map();
  for (const r of rows) {
    if (!byGrid.has(r.area)) byGrid.set(r.area, { name: r.name, ind: {} });
    byGrid.get(r.area).ind[r.indicator] = r;
  }
  const cols = ordered(rows.map((r) => r.indicator));
  const body = [...byGrid].map(([code, g]) => `<tr data-grid="${esc(code)}"><td><a href="#/grid/${encodeURIComponent(code)}">${esc(g.name)}</a></td>
      ${cols.map((i) => { const f = g.ind[i]; return f ? `<td class="num" data-indicator="${esc(i)}" data-eligible="${f.eligible}"
        data-reached="${f.reached}">${f.reached}${t("of")}${f.eligible} · ${pct(f.rate)}</td>` : `<td class="num">—</td>`; }).join("")}</tr>`).join("");
  return `<table id="review-coverage"><caption>${t("gridCoverage")}</caption><thead><tr><th scope="col">${t("grid")}</th>
    ${cols.map((i) => `<th scope="col" class="num">${esc(indName(i))}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table>`;
}

const when = (ms) => new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "short", timeStyle: "short" });

/** The review queue: found places (confirm, reject, merge into a place of the same grid) and corrections (accept or
 * reject), in the reader's scope; only the office gets the buttons. The grids' coverage follows each decision. */
async function reviewView() {
  const pending = await api("/api/v1/review");
  const decides = session.role === "office";
  const grids = [...new Set([...pending.places, ...pending.corrections].map((x) => x.grid))].sort();
  const [coverage, candidates] = await Promise.all([
    Promise.all(grids.map((g) => api(`/api/v1/reports/coverage?by=grid&area=${encodeURIComponent(g)}`))).then((r) => r.flat()),
    decides ? Promise.all(pending.places.map((p) => api(`/api/v1/places/${encodeURIComponent(p.place_id)}/merge-candidates`))) : [],
  ]);
  const placeRows = pending.places.map((p, k) => {
    const label = esc(p.label);
    const options = (candidates[k] || []).map((c) => `<option value="${esc(c.place_id)}">${esc(c.place_id)} · ${esc(c.label)}${
      c.distance_m != null ? ` · ${Math.round(c.distance_m)} ${t("metres")}` : ""}</option>`).join("");
    const actions = decides ? `<td class="actions">
        <button type="button" data-action="confirm" data-place="${esc(p.place_id)}" aria-label="${t("confirm")} ${label}">${t("confirm")}</button>
        <button type="button" data-action="reject" data-place="${esc(p.place_id)}" aria-label="${t("reject")} ${label}">${t("reject")}</button>
        <label for="merge-${esc(p.place_id)}">${t("mergeInto")}</label>
        <select id="merge-${esc(p.place_id)}"><option value="">${t("choosePlace")}</option>${options}</select>
        <button type="button" data-action="merge" data-place="${esc(p.place_id)}" aria-label="${t("merge")} ${label}">${t("merge")}</button></td>` : "";
    return `<tr data-place="${esc(p.place_id)}" data-visits="${p.visits}"><td>${esc(p.place_id)}</td><td>${esc(p.grid)}</td>
      <td>${esc(kindName(p.kind))}</td><td>${label}</td><td>${esc(p.address || "")}</td><td>${esc(p.added_by)}</td>
      <td>${when(p.added_at)}</td><td class="num">${p.visits}</td>${actions}</tr>`;
  }).join("");
  const correctionRows = pending.corrections.map((c) => {
    const change = (now, proposed) => proposed == null ? esc(now || "") : `${esc(now || "—")} → <strong>${esc(proposed)}</strong>`;
    const actions = decides ? `<td class="actions">
        <button type="button" data-action="accept" data-correction="${esc(c.correction_id)}" aria-label="${t("accept")} ${esc(c.place_id)}">${t("accept")}</button>
        <button type="button" data-action="decline" data-correction="${esc(c.correction_id)}" aria-label="${t("decline")} ${esc(c.place_id)}">${t("decline")}</button></td>` : "";
    return `<tr data-correction="${esc(c.correction_id)}"><td>${esc(c.place_id)}</td><td>${esc(c.grid)}</td>
      <td>${change(c.current_label, c.label)}</td><td>${change(c.current_address, c.address)}</td>
      <td>${esc(c.volunteer)}</td><td>${when(c.at)}</td>${actions}</tr>`;
  }).join("");
  const actionHead = decides ? `<th scope="col">${t("actions")}</th>` : "";
  const card = (key, n) => `<div class="card" data-figure="${key}"><h3>${t(key)}</h3><div class="pct" data-role="value">${n}</div></div>`;
  return `<h2 id="view-title" tabindex="-1">${t("reviewTitle")}</h2>
    <p id="review-status" role="status" aria-live="polite">${decides ? "" : t("readOnly")}</p>
    <div class="cards">${card("pendingPlaces", pending.places.length)}${card("pendingCorrections", pending.corrections.length)}</div>
    <table id="review-places"><caption>${t("foundPlaces")}</caption><thead><tr><th scope="col">${t("code")}</th>
      <th scope="col">${t("grid")}</th><th scope="col">${t("kind")}</th><th scope="col">${t("label")}</th>
      <th scope="col">${t("address")}</th><th scope="col">${t("foundBy")}</th><th scope="col">${t("foundAt")}</th>
      <th scope="col" class="num">${t("visitCount")}</th>${actionHead}</tr></thead>
      <tbody>${placeRows || `<tr><td colspan="9">${t("nothingPending")}</td></tr>`}</tbody></table>
    <table id="review-corrections"><caption>${t("corrections")}</caption><thead><tr><th scope="col">${t("code")}</th>
      <th scope="col">${t("grid")}</th><th scope="col">${t("label")}</th><th scope="col">${t("address")}</th>
      <th scope="col">${t("proposedBy")}</th><th scope="col">${t("date")}</th>${actionHead}</tr></thead>
      <tbody>${correctionRows || `<tr><td colspan="7">${t("nothingPending")}</td></tr>`}</tbody></table>
    ${grids.length ? gridCoverageTable(coverage) : ""}`;
}

/** Sends one review decision through the same endpoints as `doorstep place confirm|reject|merge`, then shows the
 * queue again with a message; a refusal (e.g. decided meanwhile elsewhere) is shown as the server worded it. */
async function decide(button) {
  const { action, place, correction } = button.dataset;
  const status = $("review-status");
  let path, body, done;
  if (place) {
    path = `/api/v1/places/${encodeURIComponent(place)}/review`;
    if (action === "merge") {
      const into = $(`merge-${place}`).value;
      if (!into) { status.setAttribute("role", "alert"); status.textContent = t("choosePlace"); $(`merge-${place}`).focus(); return; }
      body = { decision: "merge", into };
      done = `${place} ${t("merged")} ${into}`;
    } else {
      body = { decision: action };
      done = `${place} ${t(action === "confirm" ? "confirmed" : "rejected")}`;
    }
  } else {
    path = `/api/v1/corrections/${encodeURIComponent(correction)}/review`;
    body = { decision: action === "accept" ? "confirm" : "reject" };
    done = `${correction.slice(0, 8)} ${t(action === "accept" ? "accepted" : "declined")}`;
  }
  button.disabled = true;
  try {
    await api(path, body);
  } catch (e) {
    button.disabled = false;
    status.setAttribute("role", "alert");
    status.textContent = t("error") + e.message;
    return;
  }
  await render();
  const after = $("review-status");
  after.textContent = done;
  $("view-title").focus();
}

$("view").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-action]");
  if (button && $("view").contains(button)) decide(button);
});

// --- the campaign ----------------------------------------------------------------------------------------
const list = (ids, name) => ids.map(name).join(t("sep"));
/** "户、门店" or "楼栋、街区；户（仅村）": the kinds an indicator counts, with their setting. */
const countsText = (counts) => counts.map((c) => list(c.kinds, kindName) +
  (c.setting === "village" ? t("onlyVillages") : c.setting === "community" ? t("onlyCommunities") : "")).join("；");
/** "发放宣传手册" or "A 或 B" (any of) or "A 且 B" (all of). */
const reachedText = (by) => by.all_of ? by.all_of.map(deliveryName).join(t("and")) : (by.any_of || []).map(deliveryName).join(t("or"));
const isoTime = (s) => new Date(s).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium", timeStyle: "short" });

/** The campaign in force (version, when and by whom applied, its indicators, kinds and deliveries, the definition
 * file); for the office, a definition file to check (the dry run: what would change) and then apply. */
async function campaignView() {
  const c = await loadCampaign();
  const def = c.campaign;
  const rows = def.indicators.map((i) => `<tr data-indicator="${esc(i.id)}">
      <td><i class="swatch" style="background:${color(i.id)}"></i>${esc(named(i))}</td><td><code>${esc(i.id)}</code></td>
      <td>${esc(countsText(i.counts))}</td><td>${esc(reachedText(i.reached_by))}</td>
      <td class="num">${i.target}%</td><td>${i.photo_required ? t("yes") : t("no")}</td></tr>`).join("");
  const applied = c.version > 0 ? `<dt>${t("appliedAt")}</dt><dd id="campaign-applied-at">${esc(isoTime(c.applied_at))}</dd>
      <dt>${t("appliedBy")}</dt><dd id="campaign-applied-by">${esc(c.applied_by)}</dd>` : "";
  const upload = session.role === "office" ? `<section id="campaign-upload" class="no-print">
      <h3>${t("changeCampaign")}</h3><p>${t("changeHelp")}</p>
      <div class="controls"><label for="campaign-file">${t("campaignFile")}
        <input id="campaign-file" type="file" accept=".toml,application/toml,text/plain"></label>
        <button type="button" id="campaign-check">${t("check")}</button>
        <button type="button" id="campaign-apply" class="primary" disabled>${t("apply")}</button></div>
      <div id="campaign-result" role="status" aria-live="polite"></div></section>`
    : `<p id="campaign-readonly">${t("campaignReadOnly")}</p>`;
  return `<h2 id="view-title" tabindex="-1">${t("campaignTitle")}</h2>
    <dl class="facts" id="campaign-info"><dt>${t("campaignName")}</dt><dd>${esc(lang === "zh" ? def.name_zh : def.name_en)}</dd>
      <dt>${t("version")}</dt><dd id="campaign-version" data-version="${c.version}">${c.version}${c.version > 0 ? "" : ` · ${t("defaultCampaign")}`}</dd>
      ${applied}</dl>
    <table id="campaign-indicators"><caption>${t("indicators")}</caption><thead><tr><th scope="col">${t("indicator")}</th>
      <th scope="col">${t("code")}</th><th scope="col">${t("kindsCounted")}</th><th scope="col">${t("reachedBy")}</th>
      <th scope="col" class="num">${t("target")}</th><th scope="col">${t("photo")}</th></tr></thead><tbody>${rows}</tbody></table>
    <dl class="facts" id="campaign-lists"><dt>${t("placeKinds")}</dt><dd id="campaign-kinds">${esc(list(def.place_kinds.map((k) => k.id), kindName))}</dd>
      <dt>${t("deliveries")}</dt><dd id="campaign-deliveries">${esc(list(def.deliveries.map((d) => d.id), deliveryName))}</dd></dl>
    ${upload}
    <details id="campaign-definition-box" open><summary>${t("definition")}</summary>
      <pre id="campaign-definition" tabindex="0" aria-label="${t("definition")}">${esc(c.definition)}</pre></details>`;
}

/** The file checked last and the server's plan for it; Apply sends exactly that text. */
let checked = null;

/** What the dry run says applying the file would change. */
function planHtml(plan) {
  // What the file adds is named as the file names it; the rest as the campaign in force does.
  const added = { indicators_added: "indicators", kinds_added: "place_kinds", deliveries_added: "deliveries" };
  const ids = (key, label, name) => plan[key].length ? `<dt>${t(label)}</dt><dd id="plan-${key}">${plan[key].map((id) => {
    const known = named(plan.names?.[added[key]]?.[id], name(id));
    return known === id ? `<code>${esc(id)}</code>` : `${esc(known)} (<code>${esc(id)}</code>)`;
  }).join(t("sep"))}</dd>` : "";
  const kinds = [...new Set(plan.villages.flatMap((v) => Object.keys(v.places)))];
  const villages = plan.villages.length ? `<table id="plan-villages"><caption>${t("placesChanging")}</caption><thead><tr>
      <th scope="col">${t("village")}</th>${kinds.map((k) => `<th scope="col" class="num">${esc(kindName(k))}</th>`).join("")}</tr></thead>
      <tbody>${plan.villages.map((v) => `<tr data-village="${esc(v.village)}"><td>${esc(v.village)}</td>
        ${kinds.map((k) => `<td class="num">${v.places[k] ?? 0}</td>`).join("")}</tr>`).join("")}</tbody></table>` : "";
  return `<section id="campaign-plan"><h4>${t("planTitle")}</h4><p>${fill("fromTo", plan.from_version, plan.to_version)}</p>
    ${plan.only_names ? `<p>${t("onlyNames")}</p>` : ""}
    <dl class="facts">${ids("indicators_added", "indicatorsAdded", indName)}
      ${ids("indicators_removed", "indicatorsRemoved", indName)}${ids("indicators_changed", "indicatorsChanged", indName)}
      ${ids("kinds_added", "kindsAdded", kindName)}${ids("kinds_removed", "kindsRemoved", kindName)}
      ${ids("deliveries_added", "deliveriesAdded", deliveryName)}${ids("deliveries_removed", "deliveriesRemoved", deliveryName)}
      <dt>${t("placesChanging")}</dt><dd id="plan-places-changing" data-count="${plan.places_changing}">${plan.places_changing}</dd></dl>
    ${villages}</section>`;
}

function wireCampaign() {
  const file = $("campaign-file"), check = $("campaign-check"), apply = $("campaign-apply"), out = $("campaign-result");
  checked = null;
  const say = (html, alert = false) => { out.setAttribute("role", alert ? "alert" : "status"); out.innerHTML = html; };
  file.addEventListener("change", () => { checked = null; apply.disabled = true; say(""); });
  check.addEventListener("click", async () => {
    checked = null;
    apply.disabled = true;
    const f = file.files[0];
    if (!f) { say(esc(t("chooseFile")), true); file.focus(); return; }
    const text = await f.text().catch(() => null);
    if (text == null) { say(esc(t("fileChanged")), true); return; }
    say(esc(t("checking")));
    check.disabled = true;
    try {
      const plan = await api("/api/v1/campaign?dry_run=true", text, "application/toml");
      checked = { text, plan };
      say(planHtml(plan));
      apply.disabled = false;
    } catch (e) {
      say(`<p>${t("checkFailed")}</p><pre id="campaign-errors" class="error">${esc(e.message)}</pre>`, true);
    } finally {
      check.disabled = false;
    }
  });
  apply.addEventListener("click", async () => {
    const f = file.files[0];
    const text = f ? await f.text().catch(() => null) : null;
    if (!checked || text !== checked.text) {
      checked = null;
      apply.disabled = true;
      say(esc(t("fileChanged")), true);
      return;
    }
    if (!window.confirm(fill("confirmApply", checked.plan.to_version, checked.plan.places_changing))) return;
    apply.disabled = true;
    check.disabled = true;
    say(esc(t("applying")));
    let plan;
    try {
      plan = await api("/api/v1/campaign?dry_run=false", checked.text, "application/toml");
    } catch (e) {
      checked = null;
      check.disabled = false;
      say(`<pre id="campaign-errors" class="error">${esc(t("error") + e.message)}</pre>`, true);
      return;
    }
    // Everything the views show is counted with the new campaign now.
    campaign = null;
    scopeArea = null;
    await render();
    const after = $("campaign-result");
    if (after) after.textContent = fill("applied", plan.to_version);
    $("view-title")?.focus();
  });
}

// --- enrolled devices ------------------------------------------------------------------------------------
/** A device that has not synced for this long may hold visits the server has not seen. */
const STALE_MS = 2 * 86_400_000;

/** Every enrolled phone (a lead: its team's) with its owner, team, last sync, app version and what it last said
 * it held unsent; revoked with one click once confirmed (its token stops working at its next request, and what it
 * synced stays), or, when lost, revoked and its owner given an enrolment code for the new phone at once. */
async function devicesView() {
  const devices = await api("/api/v1/devices");
  const now = Date.now();
  const rows = devices.map((d) => {
    const stale = !d.revoked_at && (!d.last_seen_at || now - d.last_seen_at > STALE_MS);
    const unsent = d.unsent_hint == null ? "" : `<span class="${d.unsent_hint > 0 ? "down" : ""}">${fill("unsentAt", d.unsent_hint, when(d.status_at))}</span>`;
    const who = `data-owner="${esc(d.username)}" data-name="${esc(d.name)}" data-last="${d.last_seen_at ? esc(when(d.last_seen_at)) : t("never")}"`;
    return `<tr data-device="${esc(d.device_id)}" data-revoked="${d.revoked_at ? "true" : "false"}" data-stale="${stale}">
    <td>${esc(d.name)}</td><td>${esc(d.username)}</td><td>${esc(d.team || "")}</td><td>${when(d.created_at)}</td>
    <td>${d.last_seen_at ? when(d.last_seen_at) : t("never")}${stale ? ` <strong class="down">${t("staleHint")}</strong>` : ""}</td>
    <td>${esc(d.app_version || "")}</td><td>${unsent}</td>
    <td>${d.revoked_at ? `${t("revokedAt")} ${when(d.revoked_at)}` : t("inUse")}</td>
    <td class="actions">${d.revoked_at ? "" : `<button type="button" data-revoke="${esc(d.device_id)}" ${who}
      aria-label="${t("revoke")} ${esc(d.username)} ${esc(d.name)}">${t("revoke")}</button>
      <button type="button" data-lost="${esc(d.device_id)}" ${who}
      aria-label="${t("lostPhone")} ${esc(d.username)} ${esc(d.name)}">${t("lostPhone")}</button>`}</td></tr>`;
  }).join("");
  return `<h2 id="view-title" tabindex="-1">${t("devicesTitle")}</h2><p>${t("devicesHelp")}</p>
    <p id="devices-result" role="status"></p><div id="lost-sheet"></div>
    <table id="devices"><thead><tr><th>${t("deviceName")}</th><th>${t("owner")}</th><th>${t("team")}</th>
      <th>${t("enrolledAt")}</th><th>${t("lastSync")}</th><th>${t("appVersion")}</th><th>${t("unsentHint")}</th>
      <th>${t("deviceState")}</th><th></th></tr></thead>
      <tbody>${rows}</tbody></table>`;
}

function wireDevices() {
  for (const button of document.querySelectorAll("[data-revoke]")) {
    button.addEventListener("click", async () => {
      const { revoke, owner, name } = button.dataset;
      if (!window.confirm(fill("confirmRevoke", owner, name))) return;
      button.disabled = true;
      try {
        await api(`/api/v1/devices/${encodeURIComponent(revoke)}/revoke`, {});
      } catch (e) {
        button.disabled = false;
        $("devices-result").textContent = t("error") + e.message;
        return;
      }
      await render();
      $("devices-result").textContent = fill("revokedDone", owner, name);
    });
  }
  // A lost phone: revoked first (nothing more reaches the server from it), then a code for the new phone.
  for (const button of document.querySelectorAll("[data-lost]")) {
    button.addEventListener("click", async () => {
      const { lost, owner, name, last } = button.dataset;
      if (!window.confirm(fill("confirmLost", owner, name, last))) return;
      button.disabled = true;
      let entries;
      try {
        await api(`/api/v1/devices/${encodeURIComponent(lost)}/revoke`, {});
        entries = await api("/api/v1/enrolment-codes", { usernames: [owner], address: location.origin, hours: 24 });
      } catch (e) {
        await render();
        $("devices-result").textContent = t("error") + e.message;
        return;
      }
      await render();
      $("devices-result").textContent = fill("lostDone", owner, name);
      $("lost-sheet").innerHTML = sheetHtml(entries);
      $("enrol-print").addEventListener("click", () => window.print());
    });
  }
}

// --- the audit log ---------------------------------------------------------------------------------------
/** The most events the page shows: the newest of those the search matches. */
const AUDIT_SHOWN = 500;

/** The audit log (office only), searched by person, action (or family of actions) and dates, the newest first;
 * the search lives in the address (`#/audit/user=…&action=…&from=…&to=…`), so it can be bookmarked. */
async function auditView(arg) {
  const q = new URLSearchParams(arg || "");
  const params = new URLSearchParams({ order: "newest", limit: String(AUDIT_SHOWN + 1) });
  if (q.get("user")) params.set("user", q.get("user"));
  if (q.get("action")) params.set("action", q.get("action"));
  // Dates are whole days in the reader's time zone: from the start of the first to the end of the last.
  if (q.get("from")) params.set("since", new Date(`${q.get("from")}T00:00`).toISOString());
  if (q.get("to")) params.set("until", new Date(new Date(`${q.get("to")}T00:00`).getTime() + 86_400_000).toISOString());
  const events = await api(`/api/v1/audit?${params}`);
  const shown = events.slice(0, AUDIT_SHOWN);
  const rows = shown.map((e) => `<tr><td>${when(Date.parse(e.at))}</td><td>${esc(e.username || "")}</td>
    <td>${esc(e.action)}</td><td>${esc(e.detail)}</td></tr>`).join("");
  const field = (id, label, type, value) => `<label for="${id}">${t(label)}</label>
    <input id="${id}" name="${id}" type="${type}" value="${esc(value || "")}">`;
  return `<h2 id="view-title" tabindex="-1">${t("auditTitle")}</h2>
    <form id="audit-form" class="filters">
      ${field("audit-user", "auditPerson", "text", q.get("user"))}
      ${field("audit-action", "auditAction", "text", q.get("action"))}
      ${field("audit-from", "auditFrom", "date", q.get("from"))}
      ${field("audit-to", "auditTo", "date", q.get("to"))}
      <button type="submit">${t("search")}</button>
    </form>
    <p id="audit-count" data-count="${shown.length}">${fill("auditShown", shown.length)}${events.length > AUDIT_SHOWN ? fill("auditMore", AUDIT_SHOWN) : ""}</p>
    ${shown.length ? `<table id="audit"><thead><tr><th>${t("auditAt")}</th><th>${t("auditPerson")}</th><th>${t("auditWhat")}</th>
      <th>${t("auditDetail")}</th></tr></thead><tbody>${rows}</tbody></table>` : `<p>${t("noEvents")}</p>`}`;
}

function wireAudit() {
  $("audit-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [key, id] of [["user", "audit-user"], ["action", "audit-action"], ["from", "audit-from"], ["to", "audit-to"]]) {
      const value = $(id).value.trim();
      if (value) q.set(key, value);
    }
    location.hash = `#/audit/${encodeURIComponent(q.toString())}`;
  });
}

// --- views added by the console's modules ----------------------------------------------------------------
/** Views of the office console that live in their own scripts (people.js, territory.js, …), loaded after this
 * one: each registers its route, the roles that see it, its texts and its render (and wire) functions here. */
const MODULE_VIEWS = {};

/** Registers a module's view: `spec = { roles, nav, text: { zh, en }, render(arg), wire() }`. With `nav` (a text
 * key), a link to `#/<route>` is added to the navigation, shown to `roles` only. */
function registerView(route, spec) {
  MODULE_VIEWS[route] = spec;
  Object.assign(TEXT.zh, spec.text?.zh || {});
  Object.assign(TEXT.en, spec.text?.en || {});
  if (spec.nav) {
    const link = document.createElement("a");
    Object.assign(link, { href: `#/${route}`, id: `nav-${route}`, hidden: true });
    link.dataset.i18n = spec.nav;
    $("nav").appendChild(link);
  }
}

/** Renders started so far: a render that a newer one overtook (a click while its data was on the way) leaves
 * the view to the newer one, so that a slow answer never draws an old page over the one asked for last. */
let renders = 0;

async function render() {
  const mine = ++renders;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("lang").textContent = t("lang");
  $("lang").lang = TEXT[lang].langCode;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.title = "Doorstep · " + t("title");
  const logged = !!session;
  $("login-view").hidden = logged;
  $("nav").hidden = !logged;
  $("logout").hidden = !logged;
  // Tasks name people at risk: the office and leads only.
  $("nav-tasks").hidden = !logged || !["office", "lead"].includes(session.role);
  $("nav-review").hidden = !logged;
  $("nav-campaign").hidden = !logged;
  $("nav-devices").hidden = !logged || !["office", "lead"].includes(session.role);
  // Who did what: the office's.
  $("nav-audit").hidden = !logged || session.role !== "office";
  for (const [route, spec] of Object.entries(MODULE_VIEWS)) {
    if (spec.nav) $(`nav-${route}`).hidden = !logged || !spec.roles.includes(session.role);
  }
  const view = $("view");
  if (!logged) { view.innerHTML = ""; return; }
  const [, route, arg] = (location.hash || "#/").split("/");
  view.innerHTML = `<p>${t("loading")}</p>`;
  let html;
  try {
    // The campaign page shows the campaign as it is now; the other views use the one read after login.
    if (route === "campaign") campaign = null;
    await loadCampaign();
    if (route === "campaign") html = await campaignView();
    else if (route === "monthly") html = await monthlyView(arg && decodeURIComponent(arg));
    else if (route === "tasks") html = await tasksView();
    else if (route === "review") html = await reviewView();
    else if (route === "audit") html = await auditView(arg && decodeURIComponent(arg));
    else if (route === "devices") html = await devicesView();
    else if (MODULE_VIEWS[route]) html = await MODULE_VIEWS[route].render(arg && decodeURIComponent(arg));
    else if (["town", "village", "grid"].includes(route)) html = await areaView(route, decodeURIComponent(arg || ""));
    else html = await overview();
  } catch (e) {
    html = `<p class="error" role="alert">${t("error")}${esc(e.message)}</p>`;
  }
  if (mine !== renders) return;
  view.innerHTML = html;
  const form = $("month-form");
  if (form) {
    form.addEventListener("submit", (e) => { e.preventDefault(); location.hash = `#/monthly/${$("month").value}`; });
    $("print").addEventListener("click", () => window.print());
    $("monthly-xlsx").addEventListener("click", (e) => download(e.currentTarget.dataset.path, e.currentTarget.dataset.file));
  }
  if ($("campaign-check")) wireCampaign();
  if ($("audit-form")) wireAudit();
  if ($("devices")) wireDevices();
  if (MODULE_VIEWS[route]?.wire && !view.querySelector(":scope > p.error")) await MODULE_VIEWS[route].wire(arg && decodeURIComponent(arg));
  if (mine !== renders) return;
  view.dataset.ready = location.hash || "#/";
}

window.addEventListener("hashchange", render);
// After every script of the page has run, so that the modules' views are registered before the first render.
window.addEventListener("DOMContentLoaded", () => {
  scheduleRefresh();
  render();
});
