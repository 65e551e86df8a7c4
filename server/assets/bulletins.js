// Bulletins and materials in the office console (通报与资料): #/bulletins lists them newest first with their read
// counts; #/bulletins/new publishes one (attachments uploaded to the content-addressed store first, then the
// bulletin, so a failed upload publishes nothing); #/bulletins/id=<id>[&days=N] shows one as the phones show it,
// with its attachments, its correction and withdrawal, and its read receipts (per team and village, who has read
// it, who has not and is overdue after N days, as a workbook too); #/bulletins/correct=<id> is the publish form
// pre-filled. The office and accounts it lets publish get the forms; leads read the list and receipts (their team's
// part); a viewer sees them when the server answers it (an account allowed to publish).
"use strict";

(() => {
  /** Calls the API with any method, renewing the session once if the access token expired (`api` in app.js sends
   * GET and POST only). */
  async function send(method, path, body) {
    const call = () => fetch(path, {
      method,
      headers: { authorization: "Bearer " + session.token, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    let r = await call();
    if (r.status === 401 && (await refresh())) r = await call();
    const text = await r.text();
    let reply = null;
    try { reply = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error(reply?.error?.message || text || r.statusText);
    return reply;
  }

  const KINDS = ["fraud_method", "reminder", "template", "talking_points"];
  /** The task fraud types (client-core's FraudType); their names are app.js's texts. */
  const FRAUD_TYPES = ["impersonation", "dating", "investment", "gambling", "other"];
  /** As client-core's bulletin module bounds them; the server checks again. */
  const MAX_ATTACHMENTS = 8;
  const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;
  const ACCEPTED = "image/jpeg,image/png,image/webp,image/gif,application/pdf";
  const DAY_MS = 86_400_000;

  /** The office publishes; so does an account the office allowed (`may_publish`, on the session or the list). */
  let listSaysMayPublish = false;
  /** Whether the list's reply says this account may publish: its `may_publish`, or, where the server does not
   * say, its answering a viewer at all (the server lets a viewer read bulletins only when it may publish them). */
  const publisherByList = (reply) => !!reply && (reply.may_publish ?? session.role === "viewer");
  const mayPublish = () => session.role === "office" || !!session.may_publish || listSaysMayPublish;
  const at = (v) => (v == null || v === 0 ? "" : when(typeof v === "number" ? v : Date.parse(v)));
  const size = (n) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`);
  const kindName = (k) => t("bl_" + k);
  const fraudName = (f) => (f ? t(f) : t("blNoFraudType"));
  function say(text, alert = false) {
    const out = $("bulletin-result");
    if (!out) return;
    out.setAttribute("role", alert ? "alert" : "status");
    out.className = alert ? "error" : "";
    out.textContent = text;
  }
  /** What the last action said, shown once the next view is drawn. */
  let notice = null;

  /** The body as phones show it (the field app's `bulletinBody`): every piece escaped, `**bold**` (an unpaired
   * `**` stays as it is) and lines starting with `- ` (a list). */
  function formatBody(text) {
    const inline = (line) => {
      const parts = line.split("**");
      if (parts.length % 2 === 0) parts.splice(-2, 2, `${parts.at(-2)}**${parts.at(-1)}`);
      return parts.map((p, i) => (i % 2 ? `<strong>${esc(p)}</strong>` : esc(p))).join("");
    };
    const out = [];
    let items = [];
    const flush = () => { if (items.length) out.push(`<ul>${items.join("")}</ul>`); items = []; };
    for (const line of String(text ?? "").split(/\r?\n/)) {
      if (line.startsWith("- ")) { items.push(`<li>${inline(line.slice(2))}</li>`); continue; }
      flush();
      if (line.trim()) out.push(`<p>${inline(line)}</p>`);
    }
    flush();
    return out.join("");
  }

  function audienceText(a) {
    if (!a || a.everyone) return t("blEveryone");
    const parts = [["towns", "blTowns"], ["villages", "village"], ["teams", "team"]]
      .filter(([key]) => a[key]?.length).map(([key, label]) => `${t(label)}${t("blColon")}${a[key].join(t("sep"))}`);
    return parts.join(t("blSemicolon")) || t("none");
  }

  const stateText = (b) => (b.withdrawn_at ? `${t("blWithdrawnAt")} ${at(b.withdrawn_at)}` : t("blPublishedState"));
  const urgentMark = (b) => (b.priority === "urgent" ? `<strong class="down" data-role="urgent">${t("blUrgent")}</strong>` : t("blNormal"));

  // --- the list --------------------------------------------------------------------------------------------
  async function listView() {
    const reply = await api("/api/v1/bulletins");
    listSaysMayPublish = publisherByList(reply);
    const rows = reply.bulletins.map((b) => `<tr data-bulletin="${esc(b.id)}" data-priority="${esc(b.priority)}"
        data-withdrawn="${b.withdrawn_at ? "true" : "false"}"${b.withdrawn_at ? ' style="color: var(--muted)"' : ""}>
      <td>${at(b.published_at)}</td>
      <th scope="row"><a href="#/bulletins/id=${esc(b.id)}">${esc(b.title)}</a></th>
      <td>${kindName(b.kind)}</td><td>${fraudName(b.fraud_type)}</td><td>${urgentMark(b)}</td>
      <td>${esc(audienceText(b.audience))}</td><td class="num">${b.edition}</td><td>${stateText(b)}</td>
      <td class="num" data-role="read" data-read="${b.read}" data-expected="${b.expected}">${b.read}${t("of")}${b.expected}</td></tr>`).join("");
    return `<h2 id="view-title" tabindex="-1">${t("blTitle")}</h2>
      <p id="bulletin-result" role="status"></p>
      ${mayPublish() ? `<p class="no-print"><a id="bulletin-new" href="#/bulletins/new">${t("blPublishNew")}</a></p>` : ""}
      ${rows ? `<table id="bulletins"><caption>${t("blTitle")}</caption><thead><tr><th scope="col">${t("blPublishedAt")}</th>
        <th scope="col">${t("blTitleField")}</th><th scope="col">${t("kind")}</th><th scope="col">${t("fraud")}</th>
        <th scope="col">${t("blPriority")}</th><th scope="col">${t("blAudience")}</th><th scope="col" class="num">${t("blEdition")}</th>
        <th scope="col">${t("statusCol")}</th><th scope="col" class="num">${t("blReadOfExpected")}</th></tr></thead>
        <tbody>${rows}</tbody></table>` : `<p id="bulletins-none">${t("blNone")}</p>`}`;
  }

  // --- the publish (and correct) form ------------------------------------------------------------------------
  /** Teams and villages the console already lists; an account that may not list them (a publisher that is no
   * office) still publishes to everyone. */
  async function territory() {
    const [villages, teams] = await Promise.all([
      api("/api/v1/villages").catch(() => []), api("/api/v1/teams").catch(() => []),
    ]);
    const towns = [...new Set(villages.map((v) => v.town_name).filter(Boolean))];
    return { villages, teams, towns };
  }

  function choices(name, legend, items, chosen) {
    if (!items.length) return "";
    return `<fieldset class="bl-choices" data-choice="${name}"><legend>${t(legend)}</legend>
      <div style="display: flex; flex-wrap: wrap; gap: .25rem 1rem; max-height: 12rem; overflow-y: auto">
      ${items.map(([value, label], i) => `<label for="bl-${name}-${i}"><input type="checkbox" id="bl-${name}-${i}" name="${name}"
        value="${esc(value)}"${chosen.includes(value) ? " checked" : ""}> ${esc(label)}</label>`).join("")}</div></fieldset>`;
  }

  /** The form; `b` a bulletin to correct (its fields pre-filled), else a new one. */
  async function formView(b) {
    // Opened directly (not from the list): the list says whether this account was allowed to publish.
    if (!mayPublish()) listSaysMayPublish = publisherByList(await api("/api/v1/bulletins").catch(() => null));
    if (!mayPublish()) return `<h2 id="view-title" tabindex="-1">${t("blTitle")}</h2><p id="bulletin-refused">${t("blMayNotPublish")}</p>`;
    const { villages, teams, towns } = await territory();
    const a = b?.audience || { everyone: true };
    // An account that may not list the territory (a publisher that is no office) publishes to everyone.
    const choosable = towns.length + villages.length + teams.length > 0;
    const everyone = !!a.everyone || !choosable;
    const expiry = b?.expires_at ? new Date(b.expires_at - 1).toLocaleDateString("sv") : "";
    const option = (value, label, selected) => `<option value="${esc(value)}"${selected ? " selected" : ""}>${esc(label)}</option>`;
    const kept = (b?.attachments || []).map((x, i) => `<label for="bl-keep-${i}"><input type="checkbox" id="bl-keep-${i}" name="keep"
      value="${esc(x.sha256)}" data-name="${esc(x.name)}" checked> ${esc(fill("blKeep", x.name, size(x.size)))}</label>`).join("");
    const title = b ? fill("blCorrectTitle", b.title) : t("blPublishTitle");
    return `${b ? `<p class="crumbs"><a href="#/bulletins/id=${esc(b.id)}">${esc(b.title)}</a></p>` : `<p class="crumbs"><a href="#/bulletins">${t("blTitle")}</a></p>`}
      <h2 id="view-title" tabindex="-1">${esc(title)}</h2>
      <form id="bulletin-form" style="max-width: 48rem" novalidate data-id="${esc(b?.id || "")}">
        <label for="bl-title">${t("blTitleField")}</label><input id="bl-title" name="title" maxlength="100" required value="${esc(b?.title || "")}">
        <label for="bl-body">${t("blBody")}</label>
        <textarea id="bl-body" name="body" rows="10" style="font: inherit" aria-describedby="bl-body-help">${esc(b?.body || "")}</textarea>
        <p id="bl-body-help" class="sub" style="margin: 0">${t("blBodyHelp")}</p>
        <label for="bl-kind">${t("kind")}</label><select id="bl-kind" name="kind">${KINDS.map((k) => option(k, kindName(k), k === (b?.kind || "fraud_method"))).join("")}</select>
        <label for="bl-fraud">${t("fraud")}</label><select id="bl-fraud" name="fraud_type">${option("", t("blNoFraudType"), !b?.fraud_type)}${
          FRAUD_TYPES.map((f) => option(f, t(f), f === b?.fraud_type)).join("")}</select>
        <label for="bl-urgent"><input type="checkbox" id="bl-urgent" name="urgent"${b?.priority === "urgent" ? " checked" : ""}> ${t("blUrgentBox")}</label>
        <fieldset id="bl-audience"><legend>${t("blAudience")}</legend>
          <label for="bl-everyone"><input type="radio" id="bl-everyone" name="audience" value="everyone"${everyone ? " checked" : ""}> ${t("blEveryone")}</label>
          ${choosable ? `<label for="bl-chosen"><input type="radio" id="bl-chosen" name="audience" value="chosen"${everyone ? "" : " checked"}> ${t("blChosen")}</label>` : ""}
          ${choices("town", "blTowns", towns.map((x) => [x, x]), a.towns || [])}
          ${choices("village", "village", villages.map((v) => [v.name, v.town_name ? `${v.name}（${v.town_name}）` : v.name]), a.villages || [])}
          ${choices("team", "team", teams.map((x) => [x.name, x.name]), a.teams || [])}
        </fieldset>
        <label for="bl-expires">${t("blExpires")}</label><input id="bl-expires" name="expires" type="date" value="${esc(expiry)}">
        ${kept ? `<fieldset id="bl-kept"><legend>${t("blKeptAttachments")}</legend>${kept}</fieldset>` : ""}
        <label for="bl-files">${fill("blFiles", MAX_ATTACHMENTS)}</label>
        <input id="bl-files" name="files" type="file" multiple accept="${ACCEPTED}">
        <p id="bulletin-result" role="status"></p>
        <div class="controls"><button type="submit" id="bl-submit">${b ? t("blCorrectButton") : t("blPublishButton")}</button>
          <a href="${b ? `#/bulletins/id=${esc(b.id)}` : "#/bulletins"}">${t("blCancel")}</a></div>
      </form>
      <section aria-labelledby="bl-preview-title"><h3 id="bl-preview-title">${t("blPreview")}</h3>
        <div id="bl-preview" class="bl-phone" style="max-width: 24rem; border: 1px solid var(--line); border-radius: 12px; padding: .75rem">${formatBody(b?.body || "")}</div></section>`;
  }

  /** The form's bulletin as the API takes it, or a message saying what is missing. */
  function formBody() {
    const title = $("bl-title").value.trim();
    if (!title) return { problem: t("blTitleMissing"), field: "bl-title" };
    const checked = (name) => [...document.querySelectorAll(`#bulletin-form input[name=${name}]:checked`)].map((x) => x.value);
    const everyone = $("bl-everyone").checked;
    const audience = everyone ? { everyone: true } : { towns: checked("town"), villages: checked("village"), teams: checked("team") };
    if (!everyone && !audience.towns.length && !audience.villages.length && !audience.teams.length) {
      return { problem: t("blAudienceMissing"), field: "bl-chosen" };
    }
    const day = $("bl-expires").value;
    // The end of the chosen day, in the reader's time zone.
    const expires_at = day ? new Date(`${day}T00:00`).getTime() + DAY_MS : null;
    if (expires_at != null && expires_at <= Date.now()) return { problem: t("blExpiryPast"), field: "bl-expires" };
    const keep = [...document.querySelectorAll("#bulletin-form input[name=keep]:checked")].map((x) => ({ sha256: x.value, name: x.dataset.name }));
    const files = [...$("bl-files").files];
    if (keep.length + files.length > MAX_ATTACHMENTS) return { problem: fill("blTooMany", MAX_ATTACHMENTS), field: "bl-files" };
    const big = files.find((f) => f.size > MAX_ATTACHMENT_BYTES);
    if (big) return { problem: fill("blTooBig", big.name), field: "bl-files" };
    return {
      body: {
        title, body: $("bl-body").value, kind: $("bl-kind").value, priority: $("bl-urgent").checked ? "urgent" : "normal",
        audience, attachments: keep, ...($("bl-fraud").value ? { fraud_type: $("bl-fraud").value } : {}),
        ...(expires_at != null ? { expires_at } : {}),
      },
      files,
    };
  }

  function wireForm() {
    $("view-title").focus();
    const form = $("bulletin-form");
    if (!form) return;
    const chosen = () => {
      const everyone = $("bl-everyone").checked;
      for (const f of form.querySelectorAll(".bl-choices")) f.disabled = everyone;
    };
    $("bl-everyone").addEventListener("change", chosen);
    $("bl-chosen")?.addEventListener("change", chosen);
    chosen();
    $("bl-body").addEventListener("input", () => { $("bl-preview").innerHTML = formatBody($("bl-body").value); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const { body, files, problem, field } = formBody();
      if (problem) { say(problem, true); $(field)?.focus(); return; }
      const button = $("bl-submit");
      button.disabled = true;
      // Every file is stored before the bulletin names it: one refused, and nothing is published.
      for (const [i, file] of files.entries()) {
        say(fill("blUploading", i + 1, files.length, file.name));
        try {
          const stored = await api(`/api/v1/blobs?name=${encodeURIComponent(file.name)}`, file, file.type || "application/octet-stream");
          body.attachments.push({ sha256: stored.sha256, name: file.name });
        } catch (err) {
          button.disabled = false;
          say(fill("blUploadFailed", file.name, err.message), true);
          $("bl-files").focus();
          return;
        }
      }
      const id = form.dataset.id;
      say(t(id ? "blCorrecting" : "blPublishing"));
      let saved;
      try {
        saved = id ? await send("PUT", `/api/v1/bulletins/${encodeURIComponent(id)}`, body) : await api("/api/v1/bulletins", body);
      } catch (err) {
        button.disabled = false;
        say(t(id ? "blCorrectFailed" : "blPublishFailed") + err.message, true);
        return;
      }
      notice = id ? fill("blCorrected", saved.edition) : t("blPublished");
      location.hash = `#/bulletins/id=${saved.id}`;
    });
  }

  // --- one bulletin and its receipts ---------------------------------------------------------------------------
  async function bulletinView(id, days) {
    const q = days ? `?days=${encodeURIComponent(days)}` : "";
    const [b, r] = await Promise.all([
      api(`/api/v1/bulletins/${encodeURIComponent(id)}`), api(`/api/v1/bulletins/${encodeURIComponent(id)}/receipts${q}`),
    ]);
    const n = r.days ?? days ?? 3;
    const attachments = b.attachments.length ? `<ul id="bulletin-attachments">${b.attachments.map((x) => `<li data-sha256="${esc(x.sha256)}">
      <button type="button" data-download="${esc(x.sha256)}" data-name="${esc(x.name)}" aria-label="${esc(fill("blDownloadOf", x.name))}">${t("blDownload")}</button>
      ${esc(x.name)} · ${esc(x.type)} · ${size(x.size)}</li>`).join("")}</ul>` : `<p>${t("blNoAttachments")}</p>`;
    const canChange = mayPublish() && !b.withdrawn_at;
    const share = (read, expected) => `${read}${t("of")}${expected}${expected ? ` (${pct(read / expected)})` : ""}`;
    const byTeam = r.by_team.map((x) => `<tr data-team="${esc(x.team)}" data-read="${x.read}" data-expected="${x.expected}"><th scope="row">${esc(x.team)}</th>
      <td class="num">${share(x.read, x.expected)}</td></tr>`).join("");
    const byVillage = r.by_village.map((x) => `<tr data-village="${esc(x.village)}" data-read="${x.read}" data-expected="${x.expected}">
      <th scope="row">${esc(x.village)}</th><td>${esc(x.town || "")}</td><td class="num">${share(x.read, x.expected)}</td></tr>`).join("");
    const readers = r.readers.map((x) => `<tr data-user="${esc(x.username)}" data-edition="${x.edition}"><th scope="row">${esc(x.username)}</th>
      <td>${esc(x.team || "")}</td><td>${at(x.read_at)}</td>
      <td class="num">${x.edition}${x.edition < b.edition ? ` <span class="down">${t("blOlderEdition")}</span>` : ""}</td></tr>`).join("");
    const unread = r.unread.map((x) => `<tr data-user="${esc(x.username)}" data-overdue="${x.overdue}"${x.overdue ? ' style="background: #fee2e2"' : ""}>
      <th scope="row">${esc(x.username)}</th><td>${esc(x.team || "")}</td>
      <td>${x.overdue ? `<strong class="down">${fill("blOverdue", n)}</strong>` : t("blNotYet")}${
        x.read_edition ? ` · ${fill("blReadEarlier", x.read_edition)}` : ""}</td></tr>`).join("");
    const table = (tid, caption, head, body) => body ? `<table id="${tid}"><caption>${caption}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`
      : `<p id="${tid}-none"><strong>${caption}</strong>：${t("none")}</p>`;
    return `<p class="crumbs no-print"><a href="#/bulletins">${t("blTitle")}</a></p>
      <h2 id="view-title" tabindex="-1">${esc(b.title)}</h2>
      <p id="bulletin-result" role="status"></p>
      <dl class="facts" id="bulletin-facts" data-edition="${b.edition}" data-withdrawn="${b.withdrawn_at ? "true" : "false"}">
        <dt>${t("kind")}</dt><dd>${kindName(b.kind)}</dd><dt>${t("fraud")}</dt><dd>${fraudName(b.fraud_type)}</dd>
        <dt>${t("blPriority")}</dt><dd>${urgentMark(b)}</dd><dt>${t("blAudience")}</dt><dd id="bulletin-audience">${esc(audienceText(b.audience))}</dd>
        <dt>${t("blEdition")}</dt><dd>${b.edition}</dd>
        <dt>${t("blPublishedAt")}</dt><dd>${at(b.published_at)} · ${esc(b.published_by || "")}${b.edition > 1 ? ` · ${t("blCorrectedAt")} ${at(b.updated_at)}` : ""}</dd>
        <dt>${t("blExpiresAt")}</dt><dd>${b.expires_at ? at(b.expires_at) : t("blNoExpiry")}</dd>
        <dt>${t("statusCol")}</dt><dd id="bulletin-state">${stateText(b)}</dd></dl>
      ${canChange ? `<div class="controls no-print"><a id="bulletin-correct" href="#/bulletins/correct=${esc(b.id)}">${t("blCorrect")}</a>
        <button type="button" id="bulletin-withdraw">${t("blWithdraw")}</button></div>` : ""}
      <section aria-labelledby="bl-phone-title"><h3 id="bl-phone-title">${t("blAsPhones")}</h3>
        <article id="bulletin-phone" style="max-width: 24rem; border: 1px solid var(--line); border-radius: 12px; padding: .75rem">
          <h4 style="margin: 0">${b.priority === "urgent" ? `<span class="down">【${t("blUrgent")}】</span>` : ""}${esc(b.title)}</h4>
          <p class="sub" style="margin: .25rem 0">${kindName(b.kind)}${b.fraud_type ? ` · ${fraudName(b.fraud_type)}` : ""} · ${fill("blEditionN", b.edition)}</p>
          <div id="bulletin-body">${formatBody(b.body)}</div></article></section>
      <section aria-labelledby="bl-attachments-title"><h3 id="bl-attachments-title">${t("blAttachments")}</h3>${attachments}</section>
      <section id="bulletin-receipts" aria-labelledby="bl-receipts-title"><h3 id="bl-receipts-title">${t("blReceipts")}</h3>
        <p id="bulletin-read" data-read="${b.read}" data-expected="${b.expected}">${t("blReadOfExpected")}：${share(b.read, b.expected)}</p>
        <form id="bl-days-form" class="controls no-print" style="max-width: none">
          <label for="bl-days">${t("blDays")}<input id="bl-days" type="number" min="0" max="365" required value="${esc(n)}"></label>
          <button type="submit">${t("show")}</button>
          <button type="button" id="bl-receipts-xlsx">${t("downloadXlsx")}</button></form>
        ${table("bl-by-team", t("blByTeam"), `<th scope="col">${t("team")}</th><th scope="col" class="num">${t("blReadOfExpected")}</th>`, byTeam)}
        ${table("bl-by-village", t("blByVillage"), `<th scope="col">${t("village")}</th><th scope="col">${t("blTown")}</th><th scope="col" class="num">${t("blReadOfExpected")}</th>`, byVillage)}
        ${table("bl-readers", t("blReaders"), `<th scope="col">${t("username")}</th><th scope="col">${t("team")}</th><th scope="col">${t("blReadAt")}</th><th scope="col" class="num">${t("blEdition")}</th>`, readers)}
        ${table("bl-unread", fill("blUnread", n), `<th scope="col">${t("username")}</th><th scope="col">${t("team")}</th><th scope="col">${t("statusCol")}</th>`, unread)}
      </section>`;
  }

  /** Days after which an unread bulletin is overdue, as typed (0: at once); 3 when not a number. */
  const chosenDays = () => { const n = Math.round(Number($("bl-days").value)); return Number.isFinite(n) && $("bl-days").value !== "" ? Math.max(0, n) : 3; };

  function wireBulletin(id) {
    $("view-title").focus();
    if (notice) { say(notice); notice = null; }
    for (const button of document.querySelectorAll("[data-download]")) {
      button.addEventListener("click", async () => {
        try { await download(`/api/v1/blobs/${button.dataset.download}`, button.dataset.name); } catch (e) { say(t("error") + e.message, true); }
      });
    }
    $("bl-days-form").addEventListener("submit", (e) => {
      e.preventDefault();
      location.hash = `#/bulletins/id=${id}&days=${chosenDays()}`;
    });
    $("bl-receipts-xlsx").addEventListener("click", async () => {
      const days = chosenDays();
      try {
        await download(`/api/v1/bulletins/${encodeURIComponent(id)}/receipts.xlsx?days=${days}`, `${t("blReceiptsFile")}-${id.slice(0, 8)}.xlsx`);
      } catch (e) { say(t("error") + e.message, true); }
    });
    $("bulletin-withdraw")?.addEventListener("click", async () => {
      if (!window.confirm(fill("blConfirmWithdraw", $("view-title").textContent))) return;
      $("bulletin-withdraw").disabled = true;
      try {
        await api(`/api/v1/bulletins/${encodeURIComponent(id)}/withdraw`, {});
      } catch (e) {
        $("bulletin-withdraw").disabled = false;
        say(t("error") + e.message, true);
        return;
      }
      notice = t("blWithdrawnDone");
      await render();
    });
  }

  // A viewer reads bulletins only when the server lets it (an account the office allows to publish, such as the
  // police station's): asked once per login, the link shown after each view is drawn (`#view[data-ready]`).
  const viewerReads = new Map();
  new MutationObserver(async () => {
    if (session?.role !== "viewer") return;
    const key = session.refresh_token;
    if (!viewerReads.has(key)) viewerReads.set(key, api("/api/v1/bulletins").then(() => true, () => false));
    $("nav-bulletins").hidden = !(await viewerReads.get(key));
  }).observe($("view"), { attributes: true, attributeFilter: ["data-ready"] });

  /** `#/bulletins`, `#/bulletins/new`, `#/bulletins/id=<id>[&days=N]`, `#/bulletins/correct=<id>`. */
  const parse = (arg) => (arg === "new" ? { form: true } : Object.fromEntries(new URLSearchParams(arg || "")));

  registerView("bulletins", {
    roles: ["office", "lead"],
    nav: "blNav",
    text: {
      zh: {
        blNav: "通报与资料", blTitle: "通报与资料", blPublishNew: "发布通报", blPublishTitle: "发布通报", blCorrectTitle: "更正：{0}",
        blTitleField: "标题", blBody: "正文", blBodyHelp: "纯文本。**两个星号之间**的文字显示为粗体；以“- ”开头的行显示为列表项。",
        blNoFraudType: "不限", blUrgentBox: "紧急（手机上置顶显示，直到已阅）", blUrgent: "紧急", blNormal: "一般", blPriority: "优先级",
        blAudience: "发送对象", blEveryone: "全体", blChosen: "指定的镇、村（社区）或队伍", blTowns: "镇（街道）", blTown: "镇（街道）",
        blExpires: "有效期至（可不填）", blExpiresAt: "有效期至", blColon: "：", blSemicolon: "；", blNoExpiry: "长期有效", blFiles: "附件（图片或 PDF，每个不超过 10 MB，最多 {0} 个）",
        blKeptAttachments: "保留的附件", blKeep: "{0}（{1}）", blPublishButton: "发布", blCancel: "取消", blCorrectButton: "发布更正",
        blPreview: "手机上的显示效果", blAsPhones: "手机上显示为", blEdition: "版本", blEditionN: "第 {0} 版",
        blPublishedAt: "发布时间", blCorrectedAt: "更正于", blPublishedState: "已发布", blWithdrawnAt: "已撤回",
        blReadOfExpected: "已阅／应阅", blNone: "暂无通报", blMayNotPublish: "仅镇反诈办及其授权的账号可发布通报。",
        bl_fraud_method: "诈骗手法", bl_reminder: "提醒", bl_template: "宣传资料模板", bl_talking_points: "入户宣讲要点",
        blTitleMissing: "请填写标题。", blAudienceMissing: "请至少选择一个镇、村（社区）或队伍，或选择“全体”。",
        blExpiryPast: "有效期不能早于今天。", blTooMany: "附件最多 {0} 个。", blTooBig: "附件“{0}”超过 10 MB。",
        blUploading: "正在上传附件 {0}/{1}：{2}…", blUploadFailed: "附件“{0}”上传失败，通报未发布：{1}",
        blPublishing: "正在发布…", blCorrecting: "正在发布更正…", blPublishFailed: "发布失败：", blCorrectFailed: "更正失败：",
        blPublished: "已发布。手机下次同步时收到。", blCorrected: "已更正，手机将显示第 {0} 版。",
        blCorrect: "更正", blWithdraw: "撤回", blConfirmWithdraw: "撤回“{0}”？手机下次同步时将删除它，此操作不能撤销。",
        blWithdrawnDone: "已撤回。手机下次同步时删除。", blAttachments: "附件", blNoAttachments: "无附件", blDownload: "下载",
        blDownloadOf: "下载 {0}", blReceipts: "阅读情况", blDays: "超过几天未阅算逾期（0：立即）", blByTeam: "各队伍阅读情况",
        blByVillage: "各村（社区）阅读情况", blReaders: "已阅人员", blUnread: "未阅人员（超过 {0} 天为逾期）", blReadAt: "已阅时间",
        blOlderEdition: "（旧版本）", blReadEarlier: "已阅第 {0} 版，未阅更正后的版本", blOverdue: "逾期（超过 {0} 天）", blNotYet: "未阅", blReceiptsFile: "通报阅读情况",
      },
      en: {
        blNav: "Bulletins", blTitle: "Bulletins and materials", blPublishNew: "Publish a bulletin", blPublishTitle: "Publish a bulletin",
        blCorrectTitle: "Correct: {0}", blTitleField: "Title", blBody: "Text",
        blBodyHelp: "Plain text. **Between two pairs of asterisks** shows in bold; lines starting with “- ” show as a list.",
        blNoFraudType: "Any", blUrgentBox: "Urgent (shown first on the phones until read)", blUrgent: "Urgent", blNormal: "Normal",
        blPriority: "Priority", blAudience: "Audience", blEveryone: "Everyone", blChosen: "Chosen towns, villages or teams",
        blTowns: "Towns", blTown: "Town", blExpires: "Expires after (optional)", blExpiresAt: "Expires", blColon: ": ", blSemicolon: "; ", blNoExpiry: "No expiry",
        blFiles: "Attachments (images or PDF, up to 10 MB each, at most {0})", blKeptAttachments: "Attachments kept",
        blKeep: "{0} ({1})", blPublishButton: "Publish", blCancel: "Cancel", blCorrectButton: "Publish the correction",
        blPreview: "How phones show it", blAsPhones: "As phones show it", blEdition: "Edition", blEditionN: "edition {0}",
        blPublishedAt: "Published", blCorrectedAt: "corrected", blPublishedState: "Published", blWithdrawnAt: "Withdrawn",
        blReadOfExpected: "Read / expected", blNone: "No bulletins yet", blMayNotPublish: "Only the office and the accounts it allows publish bulletins.",
        bl_fraud_method: "Fraud method", bl_reminder: "Reminder", bl_template: "Material template", bl_talking_points: "Talking points",
        blTitleMissing: "Give a title.", blAudienceMissing: "Choose at least one town, village or team, or everyone.",
        blExpiryPast: "The expiry cannot be before today.", blTooMany: "At most {0} attachments.", blTooBig: "The attachment “{0}” is over 10 MB.",
        blUploading: "Uploading attachment {0}/{1}: {2}…", blUploadFailed: "The attachment “{0}” was refused; nothing was published: {1}",
        blPublishing: "Publishing…", blCorrecting: "Publishing the correction…", blPublishFailed: "Not published: ",
        blCorrectFailed: "Not corrected: ", blPublished: "Published. Phones receive it at their next sync.",
        blCorrected: "Corrected; phones show edition {0}.", blCorrect: "Correct", blWithdraw: "Withdraw",
        blConfirmWithdraw: "Withdraw “{0}”? Phones delete it at their next sync; this cannot be undone.",
        blWithdrawnDone: "Withdrawn. Phones delete it at their next sync.", blAttachments: "Attachments", blNoAttachments: "No attachments",
        blDownload: "Download", blDownloadOf: "Download {0}", blReceipts: "Read receipts", blDays: "Overdue when unread after (days; 0: at once)",
        blByTeam: "Read per team", blByVillage: "Read per village or community", blReaders: "Who has read it",
        blUnread: "Who has not (overdue after {0} days)", blReadAt: "Read at", blOlderEdition: "(an earlier edition)", blReadEarlier: "read edition {0}, not the correction",
        blOverdue: "overdue (over {0} days)", blNotYet: "not yet", blReceiptsFile: "bulletin-receipts",
      },
    },
    async render(arg) {
      const q = parse(arg);
      if (q.form) return formView(null);
      if (q.correct) return formView(await api(`/api/v1/bulletins/${encodeURIComponent(q.correct)}`));
      if (q.id) return bulletinView(q.id, q.days);
      return listView();
    },
    wire(arg) {
      const q = parse(arg);
      if (q.form || q.correct) return wireForm();
      if (q.id) return wireBulletin(q.id);
      $("view-title").focus();
      if (notice) { say(notice); notice = null; }
    },
  });
})();
