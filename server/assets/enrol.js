// Enrolment sheets: the office (any team) or a lead (their own) issues one-time enrolment codes and prints them
// as an A4 sheet, one QR code per volunteer, or one code a team's volunteers share for a number of phones (each
// taps their name); the phone's camera opens the field app straight into enrolment. The codes of the last 30 days
// are listed with their state, and one with uses left can be withdrawn.
"use strict";

registerView("enrolment", {
  roles: ["office", "lead"],
  nav: "enrolment",
  text: {
    zh: {
      enrolment: "扫码登记", enrolmentTitle: "手机扫码登记", enrolTeam: "队伍（整队每人一个码）",
      enrolKind: "登记码", enrolPerPerson: "每人一个码", enrolShared: "全队共用一个码（每人点选自己的名字）",
      enrolUses: "共用码可登记的手机数", enrolSharedCard: "全队共用 · 可登记 {0} 部手机", enrolTeamVolunteers: "（全队志愿者）",
      enrolUsed: "已用 {0}/{1}",
      enrolUsers: "或指定用户名（用逗号分隔）", enrolHours: "有效时长（小时，1–72）", enrolAddress: "手机打开的地址",
      enrolAddressHelp: "一般是本服务器的地址；在没有网络的驻地由队长中转时，填写中转设备的地址（如 https://192.168.1.20:8090）。",
      enrolIssue: "生成登记表", enrolIssuing: "正在生成…", enrolSheetTitle: "手机登记表", enrolPrint: "打印登记表",
      enrolSheetHelp: "每人用手机相机扫描自己的二维码，点“登记”即可。每个码只能用一次，过期作废；重新生成后旧码作废。",
      enrolValidUntil: "有效期至", enrolCodeLabel: "登记码", enrolRecent: "近30天生成的登记码",
      enrolIssuedBy: "生成人", enrolIssuedAt: "生成时间", enrolState: "状态", enrolWithdraw: "作废",
      st_unused: "未使用", st_used: "已使用", st_revoked: "已作废", st_expired: "已过期",
      enrolConfirmWithdraw: "作废 {0} 的登记码？已打印的二维码将不能再用。", enrolWithdrawn: "已作废 {0} 的登记码。",
      enrolNeedWho: "请选择队伍或填写用户名", enrolIssued: "已生成 {0} 个登记码。", enrolNone: "暂无登记码。",
    },
    en: {
      enrolment: "Enrolment", enrolmentTitle: "Enrol phones by QR code", enrolTeam: "Team (a code for each member)",
      enrolKind: "Codes", enrolPerPerson: "One code per person", enrolShared: "One code the team shares (each taps their name)",
      enrolUses: "Phones the shared code may enrol", enrolSharedCard: "shared by the team · up to {0} phones", enrolTeamVolunteers: "(the team's volunteers)",
      enrolUsed: "{0} of {1} used",
      enrolUsers: "Or usernames (comma-separated)", enrolHours: "Valid for (hours, 1–72)", enrolAddress: "Address phones open",
      enrolAddressHelp: "Usually this server's address; for a base without internet served by a lead's hub, the hub's address (e.g. https://192.168.1.20:8090).",
      enrolIssue: "Make the sheet", enrolIssuing: "Making…", enrolSheetTitle: "Phone enrolment sheet", enrolPrint: "Print the sheet",
      enrolSheetHelp: "Each volunteer scans their own QR code with the phone's camera and taps Enrol. Each code works once and expires; a new sheet withdraws the earlier codes.",
      enrolValidUntil: "Valid until", enrolCodeLabel: "Code", enrolRecent: "Codes issued in the last 30 days",
      enrolIssuedBy: "Issued by", enrolIssuedAt: "Issued", enrolState: "State", enrolWithdraw: "Withdraw",
      st_unused: "unused", st_used: "used", st_revoked: "withdrawn", st_expired: "expired",
      enrolConfirmWithdraw: "Withdraw {0}'s code? The printed QR code will no longer work.", enrolWithdrawn: "{0}'s code is withdrawn.",
      enrolNeedWho: "Choose a team or give usernames", enrolIssued: "{0} codes issued.", enrolNone: "No codes yet.",
    },
  },
  render: enrolmentView,
  wire: wireEnrolment,
});

/** The form, and the recent codes. A lead's team is filled in and fixed. */
async function enrolmentView() {
  const codes = await api("/api/v1/enrolment-codes");
  const lead = session.role === "lead";
  const rows = codes.map((c) => {
    const who = c.username ?? `${c.team || ""} ${t("enrolTeamVolunteers")}`;
    const state = t("st_" + c.state) + (c.uses > 1 ? ` · ${fill("enrolUsed", c.used, c.uses)}` : "");
    return `<tr data-code="${esc(c.id)}" data-state="${esc(c.state)}" data-used="${c.used}" data-uses="${c.uses}">
    <td>${esc(who)}</td><td>${esc(c.team || "")}</td><td>${esc(c.issued_by)}</td><td>${when(c.issued_at)}</td>
    <td>${when(c.expires_at)}</td><td>${state}</td>
    <td>${c.state === "unused" ? `<button type="button" data-withdraw="${esc(c.id)}" data-owner="${esc(who)}"
      aria-label="${t("enrolWithdraw")} ${esc(who)}">${t("enrolWithdraw")}</button>` : ""}</td></tr>`;
  }).join("");
  return `<h2 id="view-title" tabindex="-1">${t("enrolmentTitle")}</h2>
    <form id="enrol-issue" class="no-print">
      <label for="enrol-team">${t("enrolTeam")}</label>
      <input id="enrol-team" name="team" value="${esc(lead ? session.team || "" : "")}" ${lead ? "readonly" : ""}>
      <label for="enrol-kind">${t("enrolKind")}</label>
      <select id="enrol-kind"><option value="person">${t("enrolPerPerson")}</option><option value="shared">${t("enrolShared")}</option></select>
      <label for="enrol-uses">${t("enrolUses")}</label>
      <input id="enrol-uses" name="uses" type="number" min="1" max="500" value="10" disabled>
      <label for="enrol-users">${t("enrolUsers")}</label>
      <input id="enrol-users" name="users" autocapitalize="off">
      <label for="enrol-hours">${t("enrolHours")}</label>
      <input id="enrol-hours" name="hours" type="number" min="1" max="72" value="24" required>
      <label for="enrol-address">${t("enrolAddress")}</label>
      <input id="enrol-address" name="address" value="${esc(location.origin)}" required aria-describedby="enrol-address-help">
      <p id="enrol-address-help" class="sub">${t("enrolAddressHelp")}</p>
      <button type="submit">${t("enrolIssue")}</button>
      <p id="enrol-result" role="status"></p>
    </form>
    <div id="enrol-sheet-area"></div>
    <section class="no-print"><h3>${t("enrolRecent")}</h3>
    ${codes.length ? `<table id="enrol-codes"><thead><tr><th>${t("owner")}</th><th>${t("team")}</th><th>${t("enrolIssuedBy")}</th>
      <th>${t("enrolIssuedAt")}</th><th>${t("enrolValidUntil")}</th><th>${t("enrolState")}</th><th></th></tr></thead>
      <tbody>${rows}</tbody></table>` : `<p>${t("enrolNone")}</p>`}</section>`;
}

/** One card per code: name, team, the QR code (an SVG the server drew), the code as text and its expiry. */
function sheetHtml(entries) {
  const cards = entries.map((e) => `<article class="enrol-card" data-username="${esc(e.username ?? "")}" data-team="${esc(e.team ?? "")}"
    data-uses="${e.uses}" data-url="${esc(e.url)}">
    <h4>${e.username ? `${esc(e.username)}${e.team ? ` · ${esc(e.team)}` : ""}` : `${esc(e.team)} · ${fill("enrolSharedCard", e.uses)}`}</h4>
    <div class="qr" role="img" aria-label="QR ${esc(e.username)}">${e.qr_svg}</div>
    <p>${t("enrolCodeLabel")}: <code>${esc(e.code)}</code></p>
    <p class="sub">${t("enrolValidUntil")} ${when(e.expires_at)}</p></article>`).join("");
  return `<section id="enrol-sheet" aria-labelledby="enrol-sheet-title">
    <h3 id="enrol-sheet-title">${t("enrolSheetTitle")}</h3><p>${t("enrolSheetHelp")}</p>
    <button type="button" id="enrol-print" class="no-print">${t("enrolPrint")}</button>
    <div class="enrol-cards">${cards}</div></section>`;
}

function wireEnrolment() {
  // A shared code is a team's: the names field gives way to the number of phones.
  $("enrol-kind").addEventListener("change", () => {
    const shared = $("enrol-kind").value === "shared";
    $("enrol-uses").disabled = !shared;
    $("enrol-users").disabled = shared;
  });
  $("enrol-issue").addEventListener("submit", async (e) => {
    e.preventDefault();
    const team = $("enrol-team").value.trim();
    const shared = $("enrol-kind").value === "shared";
    const usernames = shared ? [] : $("enrol-users").value.split(/[,，\s]+/).map((u) => u.trim()).filter(Boolean);
    if (!team && !usernames.length) { $("enrol-result").textContent = t("enrolNeedWho"); return; }
    const body = { hours: Number($("enrol-hours").value), address: $("enrol-address").value.trim() };
    // Names given win over the team (a lead's team is always filled in).
    if (usernames.length) body.usernames = usernames; else body.team = team;
    if (shared) body.shared_uses = Number($("enrol-uses").value);
    const button = e.submitter || $("enrol-issue").querySelector("button");
    button.disabled = true;
    $("enrol-result").textContent = t("enrolIssuing");
    let entries;
    try {
      entries = await api("/api/v1/enrolment-codes", body);
    } catch (err) {
      $("enrol-result").textContent = t("error") + err.message;
      button.disabled = false;
      return;
    }
    // The codes are shown only now: the sheet is drawn here, not after a reload of the view.
    await render();
    $("enrol-sheet-area").innerHTML = sheetHtml(entries);
    $("enrol-print").addEventListener("click", () => window.print());
    $("enrol-result").textContent = fill("enrolIssued", entries.length);
    $("enrol-sheet-title").focus?.();
  });
  for (const button of document.querySelectorAll("[data-withdraw]")) {
    button.addEventListener("click", async () => {
      const { withdraw, owner } = button.dataset;
      if (!window.confirm(fill("enrolConfirmWithdraw", owner))) return;
      button.disabled = true;
      try {
        await api(`/api/v1/enrolment-codes/${encodeURIComponent(withdraw)}/revoke`, {});
      } catch (err) {
        button.disabled = false;
        $("enrol-result").textContent = t("error") + err.message;
        return;
      }
      await render();
      $("enrol-result").textContent = fill("enrolWithdrawn", owner);
    });
  }
}
