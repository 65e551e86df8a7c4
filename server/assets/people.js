// People, teams and grids in the office console: #/people (the list with its filter, creating an account, editing
// its role, team and area, moving it to another team, disabling and enabling it, resetting its password, shown
// once) and #/teams (teams with their lead and counts, creating a team, changing its lead; grids by village with
// their team, assigned one by one or a whole village at a time, unassigned grids counted at the top and
// highlighted). A lead sees their own team only, and may reset its volunteers' passwords. The same JSON API as
// `doorstep user|team|grid|assign`.
"use strict";

(() => {
  /** Calls the API with any method, renewing the session once if the access token expired (`api` in app.js
   * sends GET and POST only). */
  async function send(method, path, body) {
    const call = () => fetch(path, {
      method,
      headers: { authorization: "Bearer " + session.token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let r = await call();
    if (r.status === 401 && (await refresh())) r = await call();
    const text = await r.text();
    let reply = null;
    try { reply = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error(reply?.error?.message || text || r.statusText);
    return reply;
  }

  const ROLES = ["volunteer", "lead", "office", "viewer"];
  const isOffice = () => session.role === "office";
  const option = (value, label, selected) =>
    `<option value="${esc(value)}"${selected ? " selected" : ""}>${esc(label)}</option>`;
  const teamOptions = (teams, selected, none) =>
    (none ? option("", t(none), !selected) : "") + teams.map((x) => option(x.name, x.name, x.name === selected)).join("");
  const areaOptions = (villages, selected) => option("", t("ppChooseArea"), !selected) +
    villages.map((v) => option(v.code, `${v.name}（${v.code}）`, v.code === selected)).join("");
  /** Says what happened in the view's status line (an alert for errors). */
  function say(id, text, alert = false) {
    const out = $(id);
    if (!out) return;
    out.setAttribute("role", alert ? "alert" : "status");
    out.textContent = text;
  }

  // --- people ----------------------------------------------------------------------------------------------
  /** The list's filter, from the address (`#/people/team=…&role=…&q=…&after=…`). */
  const peopleQuery = (arg) => new URLSearchParams(arg || "");
  let shownUsers = [];
  let knownTeams = [];
  let knownVillages = [];

  async function peopleView(arg) {
    const q = peopleQuery(arg);
    const params = new URLSearchParams({ limit: "200" });
    for (const key of ["team", "role", "q", "after"]) if (q.get(key)) params.set(key, q.get(key));
    const [page, teams, villages] = await Promise.all([
      api(`/api/v1/users?${params}`), api("/api/v1/teams"), isOffice() ? api("/api/v1/villages") : Promise.resolve([]),
    ]);
    shownUsers = page.users;
    knownTeams = teams;
    knownVillages = villages.filter((v) => ["village", "community"].includes(v.kind));
    const own = isOffice() ? null : teams[0]?.name;
    const rows = page.users.map((u) => {
      const disabled = u.disabled_at != null;
      const actions = [];
      if (isOffice()) {
        actions.push(`<button type="button" data-edit="${esc(u.username)}" aria-label="${esc(fill("ppEditOf", u.username))}">${t("ppEdit")}</button>`);
        if (["volunteer", "lead"].includes(u.role)) {
          actions.push(`<button type="button" data-move="${esc(u.username)}" aria-label="${esc(fill("ppMoveOf", u.username))}">${t("ppMove")}</button>`);
        }
        actions.push(disabled
          ? `<button type="button" data-enable="${esc(u.username)}" aria-label="${esc(fill("ppEnableOf", u.username))}">${t("ppEnable")}</button>`
          : u.username === session.username ? "" : `<button type="button" data-disable="${esc(u.username)}" aria-label="${esc(fill("ppDisableOf", u.username))}">${t("ppDisable")}</button>`);
      }
      if (isOffice() || (u.role === "volunteer" && u.team === own)) {
        actions.push(`<button type="button" data-reset="${esc(u.username)}" aria-label="${esc(fill("ppResetOf", u.username))}">${t("ppReset")}</button>`);
      }
      return `<tr data-user="${esc(u.username)}" data-role="${esc(u.role)}" data-team="${esc(u.team || "")}" data-disabled="${disabled}"
        class="${disabled ? "pp-disabled" : ""}">
        <th scope="row">${esc(u.username)}</th><td>${esc(t("role_" + u.role))}${u.may_publish ? ` · <span data-role="may-publish">${t("ppMayPublish")}</span>` : ""}</td><td>${esc(u.team || "—")}</td>
        <td>${u.area ? esc(`${u.area_name || ""}（${u.area}）`) : "—"}</td><td>${when(u.created_at)}</td>
        <td>${disabled ? `${t("ppDisabledAt")} ${when(u.disabled_at)}` : t("ppActive")}</td>
        <td class="num">${u.active_devices}</td><td>${u.last_sync_at ? when(u.last_sync_at) : t("never")}</td>
        <td class="actions">${actions.join("")}</td></tr>`;
    }).join("");
    const roleFilter = option("", t("ppAllRoles"), !q.get("role")) + ROLES.map((r) => option(r, t("role_" + r), q.get("role") === r)).join("");
    const teamFilter = isOffice()
      ? `<label for="pp-team">${t("team")}</label><select id="pp-team" name="team">${teamOptions(teams, q.get("team"), "ppAllTeams")}</select>`
      : `<p id="pp-own-team">${fill("ppOwnTeam", esc(own || ""))}</p>`;
    const next = page.next ? `<p><a id="pp-next" href="#/people/${encodeURIComponent(new URLSearchParams({ ...Object.fromEntries(q), after: page.next }).toString())}">${t("ppNextPage")}</a></p>` : "";
    return `<h2 id="view-title" tabindex="-1">${t("ppTitle")}</h2>
      <p id="people-result" role="status"></p>
      <div id="people-password" hidden role="alert"></div>
      <form id="people-filter" class="filters" aria-label="${t("ppFilter")}">
        ${teamFilter}
        <label for="pp-role">${t("ppRole")}</label><select id="pp-role" name="role">${roleFilter}</select>
        <label for="pp-q">${t("ppSearch")}</label><input id="pp-q" name="q" type="search" value="${esc(q.get("q") || "")}">
        <button type="submit">${t("search")}</button>
      </form>
      <p id="people-count" data-total="${page.total}">${fill("ppCount", page.total, page.users.length)}</p>
      <table id="people"><caption>${t("ppTitle")}</caption><thead><tr><th scope="col">${t("username")}</th><th scope="col">${t("ppRole")}</th>
        <th scope="col">${t("team")}</th><th scope="col">${t("ppArea")}</th><th scope="col">${t("ppCreated")}</th>
        <th scope="col">${t("deviceState")}</th><th scope="col" class="num">${t("ppDevices")}</th><th scope="col">${t("lastSync")}</th>
        <th scope="col">${t("actions")}</th></tr></thead><tbody>${rows}</tbody></table>${next}
      ${isOffice() ? editForm() : ""}
      ${createForm(teams, own)}`;
  }

  /** Editing one person (office): role, team (moving them), area (viewers). Hidden until "Edit" is pressed. */
  function editForm() {
    return `<section id="people-edit-box" hidden><h3 id="pp-edit-title" tabindex="-1"></h3>
      <form id="people-edit">
        <label for="pp-edit-role">${t("ppRole")}</label><select id="pp-edit-role">${ROLES.map((r) => option(r, t("role_" + r), false)).join("")}</select>
        <label for="pp-edit-team">${t("ppMoveTeam")}</label><select id="pp-edit-team">${teamOptions(knownTeams, "", "ppNoTeam")}</select>
        <label for="pp-edit-area">${t("ppViewerArea")}</label><select id="pp-edit-area">${areaOptions(knownVillages, "")}</select>
        <label for="pp-edit-publish"><input type="checkbox" id="pp-edit-publish"> ${t("ppMayPublish")}</label>
        <button type="submit">${t("ppSave")}</button><button type="button" id="pp-edit-cancel">${t("ppCancel")}</button>
      </form></section>`;
  }

  /** Creating an account: the office any role (a viewer with an area), a lead volunteers of their own team. */
  function createForm(teams, own) {
    const roles = isOffice() ? ROLES : ["volunteer"];
    return `<section id="people-create-box"><h3>${t("ppCreate")}</h3>
      <form id="people-create">
        <label for="pp-new-name">${t("username")}</label><input id="pp-new-name" required autocomplete="off">
        <label for="pp-new-password">${t("ppNewPassword")}</label><input id="pp-new-password" type="password" required minlength="8" autocomplete="new-password">
        <label for="pp-new-role">${t("ppRole")}</label><select id="pp-new-role">${roles.map((r) => option(r, t("role_" + r), r === "volunteer")).join("")}</select>
        <label for="pp-new-team">${t("team")}</label><select id="pp-new-team">${isOffice() ? teamOptions(teams, "", "ppNoTeam") : option(own || "", own || "", true)}</select>
        ${isOffice() ? `<label for="pp-new-area">${t("ppViewerArea")}</label><select id="pp-new-area">${areaOptions(knownVillages, "")}</select>` : ""}
        <button type="submit">${t("ppCreateButton")}</button>
      </form></section>`;
  }

  function wirePeople(arg) {
    const q = peopleQuery(arg);
    $("people-filter").addEventListener("submit", (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const [key, id] of [["team", "pp-team"], ["role", "pp-role"], ["q", "pp-q"]]) {
        const value = $(id)?.value.trim();
        if (value) next.set(key, value);
      }
      location.hash = `#/people/${encodeURIComponent(next.toString())}`;
    });
    const rerender = async (message) => { await render(); say("people-result", message); };
    for (const b of document.querySelectorAll("[data-disable]")) {
      b.addEventListener("click", async () => {
        const name = b.dataset.disable;
        if (!window.confirm(fill("ppConfirmDisable", name))) return;
        try { await api(`/api/v1/users/${encodeURIComponent(name)}/disable`, {}); } catch (e) { say("people-result", t("error") + e.message, true); return; }
        await rerender(fill("ppDisabledDone", name));
      });
    }
    for (const b of document.querySelectorAll("[data-enable]")) {
      b.addEventListener("click", async () => {
        const name = b.dataset.enable;
        if (!window.confirm(fill("ppConfirmEnable", name))) return;
        try { await api(`/api/v1/users/${encodeURIComponent(name)}/enable`, {}); } catch (e) { say("people-result", t("error") + e.message, true); return; }
        await rerender(fill("ppEnabledDone", name));
      });
    }
    for (const b of document.querySelectorAll("[data-reset]")) {
      b.addEventListener("click", async () => {
        const name = b.dataset.reset;
        if (!window.confirm(fill("ppConfirmReset", name))) return;
        let reply;
        try { reply = await send("POST", `/api/v1/users/${encodeURIComponent(name)}/password`, {}); } catch (e) { say("people-result", t("error") + e.message, true); return; }
        // Shown once: it lives only in this page until the next render.
        const box = $("people-password");
        box.hidden = false;
        box.innerHTML = `<p>${esc(fill("ppNewPasswordFor", name))}</p><p><code id="pp-password" tabindex="0">${esc(reply.password)}</code></p><p>${t("ppPasswordOnce")}</p>`;
        $("pp-password").focus();
      });
    }
    const editBox = $("people-edit-box");
    let editing = null;
    const showArea = () => { $("pp-edit-area").disabled = $("pp-edit-role").value !== "viewer"; };
    /** Opens the edit form for a person; a move goes straight to the team. */
    const openEdit = (username, move) => {
      const u = shownUsers.find((x) => x.username === username);
      editing = u;
      editBox.hidden = false;
      $("pp-edit-title").textContent = fill(move ? "ppMoveOf" : "ppEditOf", u.username);
      $("pp-edit-role").value = u.role;
      $("pp-edit-team").value = u.team || "";
      // A town's viewer (the police station's, say) keeps its town: the list offers villages and communities only.
      const areas = $("pp-edit-area");
      if (u.area && ![...areas.options].some((o) => o.value === u.area)) areas.add(new Option(`${u.area_name || ""}（${u.area}）`, u.area));
      areas.value = u.area || "";
      $("pp-edit-publish").checked = !!u.may_publish;
      showArea();
      (move ? $("pp-edit-team") : $("pp-edit-title")).focus();
    };
    for (const b of document.querySelectorAll("[data-edit]")) b.addEventListener("click", () => openEdit(b.dataset.edit, false));
    for (const b of document.querySelectorAll("[data-move]")) b.addEventListener("click", () => openEdit(b.dataset.move, true));
    if (editBox) {
      $("pp-edit-role").addEventListener("change", showArea);
      $("pp-edit-cancel").addEventListener("click", () => { editBox.hidden = true; editing = null; $("view-title").focus(); });
      $("people-edit").addEventListener("submit", async (e) => {
        e.preventDefault();
        if (!editing) return;
        const role = $("pp-edit-role").value;
        const body = { role, team: role === "viewer" ? null : ($("pp-edit-team").value || null) };
        if (role === "viewer") body.area = $("pp-edit-area").value || null;
        let reply;
        // Allowed to publish bulletins (bulletins.js): sent on its own, only when it changes.
        const publish = $("pp-edit-publish").checked;
        try {
          reply = await send("PATCH", `/api/v1/users/${encodeURIComponent(editing.username)}`, body);
          if (publish !== !!editing.may_publish) {
            await send("PATCH", `/api/v1/users/${encodeURIComponent(editing.username)}`, { may_publish: publish });
            reply.changed = [reply.changed, t(publish ? "ppMayPublishOn" : "ppMayPublishOff")].filter(Boolean).join(t("sep"));
          }
        } catch (err) { say("people-result", t("error") + err.message, true); return; }
        await rerender(reply.changed ? fill("ppEdited", reply.username, reply.changed) : fill("ppUnchanged", reply.username));
      });
    }
    const newRole = $("pp-new-role"), newArea = $("pp-new-area"), newTeam = $("pp-new-team");
    const showNewArea = () => {
      if (newArea) newArea.disabled = newRole.value !== "viewer";
      if (isOffice()) newTeam.disabled = newRole.value === "viewer";
    };
    newRole.addEventListener("change", showNewArea);
    showNewArea();
    $("people-create").addEventListener("submit", async (e) => {
      e.preventDefault();
      const role = newRole.value;
      const body = { username: $("pp-new-name").value.trim(), password: $("pp-new-password").value, role,
        team: role === "viewer" ? null : (newTeam.value || null), area: role === "viewer" ? (newArea?.value || null) : null };
      try { await api("/api/v1/users", body); } catch (err) { say("people-result", t("error") + err.message, true); return; }
      $("pp-new-password").value = "";
      await rerender(fill("ppCreatedDone", body.username));
    });
    if (!q.get("after")) $("view-title").focus();
  }

  registerView("people", {
    roles: ["office", "lead"],
    nav: "ppNav",
    text: {
      zh: {
        ppNav: "人员", ppTitle: "人员", ppFilter: "筛选人员", ppRole: "角色", ppAllRoles: "全部角色", ppAllTeams: "全部队伍",
        ppSearch: "用户名包含", ppCount: "共 {0} 人（本页 {1} 人）", ppArea: "可查看区域", ppCreated: "创建时间",
        ppDevices: "在用设备", ppActive: "正常", ppDisabledAt: "已停用", ppEdit: "编辑", ppEditOf: "编辑 {0}", ppMove: "调队", ppMoveOf: "把 {0} 调到其他队伍",
        ppEnable: "启用", ppEnableOf: "启用 {0}", ppDisable: "停用", ppDisableOf: "停用 {0}", ppReset: "重置密码",
        ppResetOf: "重置 {0} 的密码", ppOwnTeam: "本队：{0}", ppNextPage: "下一页", ppMoveTeam: "队伍（调到其他队伍）",
        ppNoTeam: "无队伍", ppViewerArea: "可查看的村（社区）（仅查看员）", ppChooseArea: "请选择村（社区）", ppSave: "保存",
        ppCancel: "取消", ppCreate: "新建账号", ppNewPassword: "初始密码（至少8位）", ppCreateButton: "创建",
        ppConfirmDisable: "停用 {0}？其登录和所有手机将立即失效。", ppDisabledDone: "已停用 {0}。",
        ppConfirmEnable: "启用 {0}？其可重新登录，手机需重新登记。", ppEnabledDone: "已启用 {0}。",
        ppConfirmReset: "重置 {0} 的密码？其已登录的会话将结束，手机不受影响。", ppNewPasswordFor: "{0} 的新密码：",
        ppPasswordOnce: "新密码只显示这一次，请当面告知本人。", ppEdited: "{0}：{1}", ppUnchanged: "{0} 没有变化。",
        ppCreatedDone: "已创建账号 {0}。", ppMayPublish: "可发布通报", ppMayPublishOn: "可发布通报", ppMayPublishOff: "不再可发布通报",
        role_volunteer: "志愿者", role_lead: "队长", role_office: "镇反诈办", role_viewer: "查看员",
      },
      en: {
        ppNav: "People", ppTitle: "People", ppFilter: "Filter people", ppRole: "Role", ppAllRoles: "All roles", ppAllTeams: "All teams",
        ppSearch: "Username contains", ppCount: "{0} people ({1} on this page)", ppArea: "Area read", ppCreated: "Created",
        ppDevices: "Active devices", ppActive: "Active", ppDisabledAt: "Disabled", ppEdit: "Edit", ppEditOf: "Edit {0}", ppMove: "Move", ppMoveOf: "Move {0} to another team",
        ppEnable: "Enable", ppEnableOf: "Enable {0}", ppDisable: "Disable", ppDisableOf: "Disable {0}", ppReset: "Reset password",
        ppResetOf: "Reset {0}'s password", ppOwnTeam: "Your team: {0}", ppNextPage: "Next page", ppMoveTeam: "Team (move to another)",
        ppNoTeam: "No team", ppViewerArea: "Village or community read (viewers only)", ppChooseArea: "Choose a village or community",
        ppSave: "Save", ppCancel: "Cancel", ppCreate: "New account", ppNewPassword: "First password (at least 8 characters)",
        ppCreateButton: "Create",
        ppConfirmDisable: "Disable {0}? Their sessions and every phone stop working at once.", ppDisabledDone: "{0} is disabled.",
        ppConfirmEnable: "Enable {0}? They may log in again; their phones enrol again.", ppEnabledDone: "{0} is enabled.",
        ppConfirmReset: "Reset {0}'s password? Their sessions end; their phones keep syncing.", ppNewPasswordFor: "{0}'s new password:",
        ppPasswordOnce: "This password is shown only once: tell it to them in person.", ppEdited: "{0}: {1}", ppUnchanged: "{0}: nothing changed.",
        ppCreatedDone: "Account {0} created.", ppMayPublish: "May publish bulletins", ppMayPublishOn: "may publish bulletins",
        ppMayPublishOff: "may no longer publish bulletins",
        role_volunteer: "Volunteer", role_lead: "Lead", role_office: "Office", role_viewer: "Viewer",
      },
    },
    render: peopleView,
    wire: wirePeople,
  });

  // --- teams and grids -------------------------------------------------------------------------------------
  /** The grids shown at most at once; more are reached by choosing a village. */
  const GRIDS_SHOWN = 1000;

  async function teamsView(arg) {
    const q = new URLSearchParams(arg || "");
    const village = q.get("village") || "";
    const onlyUnassigned = q.get("unassigned") === "1" && isOffice();
    const params = new URLSearchParams({ limit: String(GRIDS_SHOWN) });
    if (village) params.set("village", village);
    if (onlyUnassigned) params.set("unassigned", "true");
    const [teams, villages, page, all] = await Promise.all([
      api("/api/v1/teams"), api("/api/v1/villages"), api(`/api/v1/grids?${params}`),
      isOffice() ? api("/api/v1/grids?limit=1") : Promise.resolve(null),
    ]);
    knownTeams = teams;
    const office = isOffice();
    const teamRows = teams.map((x) => `<tr data-team="${esc(x.name)}"><th scope="row">${esc(x.name)}</th><td>${esc(x.lead || "—")}</td>
      <td class="num">${x.members}</td><td class="num">${x.volunteers}</td><td class="num">${x.grids}</td></tr>`).join("");
    const gridRows = page.grids.map((g) => {
      const none = g.team == null;
      const assign = office ? `<td class="actions"><label class="sr" for="tg-team-${esc(g.code)}">${esc(fill("tgTeamOf", g.code))}</label>
        <select id="tg-team-${esc(g.code)}" data-grid-team="${esc(g.code)}">${teamOptions(teams, g.team, "tgUnassigned")}</select>
        <button type="button" data-assign="${esc(g.code)}" aria-label="${esc(fill("tgAssignOf", g.code))}">${t("tgAssign")}</button></td>` : "";
      return `<tr data-grid="${esc(g.code)}" data-team="${esc(g.team || "")}" class="${none ? "tg-unassigned" : ""}">
        <th scope="row">${esc(g.code)}</th><td>${esc(g.name)}</td><td>${esc(g.village_name || "")}（${esc(g.village || "")}）</td>
        <td>${esc(g.town_name || "")}</td><td class="num">${g.places}</td>
        <td>${none ? `<strong class="tg-none">${t("tgUnassigned")}</strong>` : esc(g.team)}</td>${assign}</tr>`;
    }).join("");
    const villageOptions = option("", t("tgAllVillages"), !village) + villages.map((v) =>
      option(v.code, `${v.name}（${v.code}）${office && v.unassigned ? ` · ${fill("tgVillageUnassigned", v.unassigned)}` : ""}`, v.code === village)).join("");
    const chosen = villages.find((v) => v.code === village);
    const officeForms = office ? `
      <section id="team-forms" class="controls">
        <form id="team-create" aria-label="${t("tgCreate")}"><h3>${t("tgCreate")}</h3>
          <label for="tg-new-name">${t("tgTeamName")}</label><input id="tg-new-name" required autocomplete="off">
          <button type="submit">${t("tgCreateButton")}</button></form>
        <form id="team-lead" aria-label="${t("tgChangeLead")}"><h3>${t("tgChangeLead")}</h3>
          <label for="tg-lead-team">${t("team")}</label><select id="tg-lead-team">${teamOptions(teams, "", null)}</select>
          <label for="tg-lead-user">${t("tgLeadUser")}</label><input id="tg-lead-user" required autocomplete="off">
          <button type="submit">${t("tgChangeLeadButton")}</button></form>
      </section>` : `<p id="tg-readonly">${t("tgReadOnly")}</p>`;
    const villageAssign = office && chosen ? `<form id="village-assign" aria-label="${esc(fill("tgAssignVillage", chosen.name))}">
        <h3>${esc(fill("tgAssignVillage", `${chosen.name}（${chosen.code}）`))}</h3>
        <label for="tg-village-team">${t("tgVillageTeam")}</label><select id="tg-village-team">${teamOptions(teams, "", null)}</select>
        <button type="submit">${fill("tgAssignVillageButton", chosen.grids)}</button></form>` : "";
    const unassignedTop = office ? `<p id="grids-unassigned" data-count="${all.unassigned}" class="${all.unassigned ? "tg-warning" : ""}">
        ${all.unassigned ? fill("tgUnassignedCount", all.unassigned) : t("tgAllAssigned")}</p>` : "";
    return `<h2 id="view-title" tabindex="-1">${t("tgTitle")}</h2>
      ${unassignedTop}
      <p id="teams-result" role="status"></p>
      <table id="teams"><caption>${t("tgTeams")}</caption><thead><tr><th scope="col">${t("team")}</th><th scope="col">${t("tgLead")}</th>
        <th scope="col" class="num">${t("tgMembers")}</th><th scope="col" class="num">${t("tgVolunteers")}</th>
        <th scope="col" class="num">${t("tgGrids")}</th></tr></thead><tbody>${teamRows}</tbody></table>
      ${officeForms}
      <h3 id="grids-title">${t("tgGridsTitle")}</h3>
      <form id="grids-filter" class="filters" aria-label="${t("tgFilter")}">
        <label for="tg-village">${t("village")}</label><select id="tg-village">${villageOptions}</select>
        ${office ? `<label for="tg-only-unassigned"><input type="checkbox" id="tg-only-unassigned"${onlyUnassigned ? " checked" : ""}> ${t("tgOnlyUnassigned")}</label>` : ""}
        <button type="submit">${t("show")}</button>
      </form>
      ${villageAssign}
      <p id="grids-count" data-total="${page.total}">${fill("tgGridCount", page.total)}${page.total > page.grids.length ? fill("tgMoreGrids", page.grids.length) : ""}</p>
      <table id="grids"><caption>${t("tgGridsTitle")}</caption><thead><tr><th scope="col">${t("grid")}</th><th scope="col">${t("label")}</th>
        <th scope="col">${t("village")}</th><th scope="col">${t("tgTown")}</th><th scope="col" class="num">${t("places")}</th>
        <th scope="col">${t("team")}</th>${office ? `<th scope="col">${t("actions")}</th>` : ""}</tr></thead><tbody>${gridRows}</tbody></table>`;
  }

  function wireTeams() {
    const rerender = async (message) => { await render(); say("teams-result", message); };
    const failed = (e) => say("teams-result", t("error") + e.message, true);
    $("grids-filter").addEventListener("submit", (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      if ($("tg-village").value) next.set("village", $("tg-village").value);
      if ($("tg-only-unassigned")?.checked) next.set("unassigned", "1");
      location.hash = `#/teams/${encodeURIComponent(next.toString())}`;
    });
    $("team-create")?.addEventListener("submit", async (e) => {
      e.preventDefault();
      const name = $("tg-new-name").value.trim();
      try { await api("/api/v1/teams", { name }); } catch (err) { failed(err); return; }
      await rerender(fill("tgCreated", name));
    });
    $("team-lead")?.addEventListener("submit", async (e) => {
      e.preventDefault();
      const team = $("tg-lead-team").value, lead = $("tg-lead-user").value.trim();
      if (!window.confirm(fill("tgConfirmLead", lead, team))) return;
      try { await send("PATCH", `/api/v1/teams/${encodeURIComponent(team)}`, { lead }); } catch (err) { failed(err); return; }
      await rerender(fill("tgLeadChanged", lead, team));
    });
    $("village-assign")?.addEventListener("submit", async (e) => {
      e.preventDefault();
      const village = $("tg-village").value, team = $("tg-village-team").value;
      if (!window.confirm(fill("tgConfirmVillage", village, team))) return;
      let done;
      try { done = await send("PUT", "/api/v1/assignments", { team, village }); } catch (err) { failed(err); return; }
      await rerender(fill("tgVillageAssigned", done.grids.length, team, done.changed.length));
    });
    for (const b of document.querySelectorAll("[data-assign]")) {
      b.addEventListener("click", async () => {
        const grid = b.dataset.assign;
        const team = document.querySelector(`[data-grid-team="${CSS.escape(grid)}"]`).value;
        try {
          if (team) await send("PUT", "/api/v1/assignments", { team, grids: [grid] });
          else await send("DELETE", `/api/v1/assignments/${encodeURIComponent(grid)}`);
        } catch (err) { failed(err); return; }
        await rerender(team ? fill("tgAssigned", grid, team) : fill("tgUnassignedDone", grid));
      });
    }
    $("view-title").focus();
  }

  registerView("teams", {
    roles: ["office", "lead"],
    nav: "tgNav",
    text: {
      zh: {
        tgNav: "队伍与网格", tgTitle: "队伍与网格", tgTeams: "队伍", tgLead: "队长", tgMembers: "成员", tgVolunteers: "志愿者",
        tgGrids: "网格数", tgCreate: "新建队伍", tgTeamName: "队伍名称", tgCreateButton: "创建队伍", tgChangeLead: "更换队长",
        tgLeadUser: "新队长用户名", tgChangeLeadButton: "更换", tgReadOnly: "仅镇反诈办可新建队伍、更换队长和分配网格。",
        tgGridsTitle: "网格", tgFilter: "筛选网格", tgAllVillages: "全部村（社区）", tgOnlyUnassigned: "只看未分配",
        tgVillageUnassigned: "{0} 个未分配", tgUnassigned: "未分配", tgTeamOf: "{0} 的队伍", tgAssign: "分配", tgAssignOf: "分配 {0}",
        tgAssignVillage: "整村分配：{0}", tgVillageTeam: "分配给队伍", tgAssignVillageButton: "分配全部 {0} 个网格",
        tgUnassignedCount: "有 {0} 个网格尚未分配给任何队伍。", tgAllAssigned: "所有网格都已分配。", tgGridCount: "共 {0} 个网格",
        tgMoreGrids: "，仅显示前 {0} 个，请按村（社区）筛选", tgTown: "镇（街道）", tgCreated: "已创建队伍 {0}。",
        tgConfirmLead: "任命 {0} 为 {1} 的队长？该队原队长将改为志愿者。", tgLeadChanged: "{0} 已任 {1} 队长。",
        tgConfirmVillage: "把 {0} 的全部网格分配给 {1}？原有队伍的手机下次同步时将移除这些网格。",
        tgVillageAssigned: "{0} 个网格已分配给 {1}（其中 {2} 个更换了队伍）。", tgAssigned: "{0} 已分配给 {1}。",
        tgUnassignedDone: "{0} 已取消分配。",
      },
      en: {
        tgNav: "Teams and grids", tgTitle: "Teams and grids", tgTeams: "Teams", tgLead: "Lead", tgMembers: "Members",
        tgVolunteers: "Volunteers", tgGrids: "Grids", tgCreate: "New team", tgTeamName: "Team name", tgCreateButton: "Create team",
        tgChangeLead: "Change a team's lead", tgLeadUser: "New lead's username", tgChangeLeadButton: "Change",
        tgReadOnly: "Only the office creates teams, changes leads and assigns grids.", tgGridsTitle: "Grids",
        tgFilter: "Filter grids", tgAllVillages: "All villages and communities", tgOnlyUnassigned: "Only unassigned",
        tgVillageUnassigned: "{0} unassigned", tgUnassigned: "Unassigned", tgTeamOf: "Team of {0}", tgAssign: "Assign",
        tgAssignOf: "Assign {0}", tgAssignVillage: "Assign a whole village: {0}", tgVillageTeam: "To team",
        tgAssignVillageButton: "Assign all {0} grids", tgUnassignedCount: "{0} grids have no team yet.",
        tgAllAssigned: "Every grid has a team.", tgGridCount: "{0} grids", tgMoreGrids: "; the first {0} are shown: choose a village",
        tgTown: "Town", tgCreated: "Team {0} created.", tgConfirmLead: "Make {0} the lead of {1}? Its former lead becomes a volunteer.",
        tgLeadChanged: "{0} now leads {1}.",
        tgConfirmVillage: "Assign every grid of {0} to {1}? Phones of the teams that had them drop them at their next sync.",
        tgVillageAssigned: "{0} grids assigned to {1} ({2} of them changed team).", tgAssigned: "{0} assigned to {1}.",
        tgUnassignedDone: "{0} has no team now.",
      },
    },
    render: teamsView,
    wire: wireTeams,
  });
})();
