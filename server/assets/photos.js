// Photos in the office console (照片): #/photos is a gallery of the photos visits carry as evidence, within what the
// reader may see (the office: everything; a lead: the team's grids; a viewer: the area), filtered by area or grid,
// indicator, state and place, a page at a time ("more" asks for the next); #/photos/sha=<sha>&visit=<id>&place=<id>
// shows one photo with its place, volunteer and times, beside the place's other photos, and lets the office reject
// it (退回) with a reason the volunteer reads on the phone. The gallery's header counts, per indicator that asks for
// a photo, the reached places with evidence; the overview's cards say the same, and the grid page links each place
// to its photos.
"use strict";

(() => {
  const PAGE = 24;
  /** As client-core bounds a rejection's reason; the server checks again. */
  const MAX_REASON_BYTES = 500;
  const STATES = ["all", "standing", "rejected"];
  const size = (n) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`);
  const parse = (arg) => Object.fromEntries(new URLSearchParams(arg || ""));
  const query = (q) => new URLSearchParams(Object.entries(q).filter(([, v]) => v)).toString();
  /** What the last action said, shown once the next view is drawn. */
  let notice = null;
  /** The gallery's filters as last drawn, for "more". */
  let shown = null;

  function say(text, alert = false) {
    const out = $("photo-result");
    if (!out) return;
    out.setAttribute("role", alert ? "alert" : "status");
    out.className = alert ? "error" : "";
    out.textContent = text;
  }

  // --- the images --------------------------------------------------------------------------------------------
  // Photos are read with the session's token, which an <img src> cannot send; the page's policy lets images come
  // from the page itself or data: URLs, so each is fetched and shown as a data: URL, thumbnails only once they come
  // near the screen.
  async function dataUrl(path) {
    let r = await fetch(path, { headers: { authorization: "Bearer " + session.token } });
    if (r.status === 401 && (await refresh())) r = await fetch(path, { headers: { authorization: "Bearer " + session.token } });
    if (!r.ok) throw new Error((await r.json().catch(() => null))?.error?.message || r.statusText);
    const blob = await r.blob();
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  async function show(img) {
    if (img.dataset.loading) return;
    img.dataset.loading = "true";
    try {
      img.src = await dataUrl(img.dataset.src);
      img.dataset.loaded = "true";
    } catch (e) {
      img.dataset.failed = "true";
      img.title = t("error") + e.message;
    }
  }

  const nearScreen = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) { nearScreen.unobserve(e.target); show(e.target); }
    }, { rootMargin: "300px" })
    : null;
  function lazyImages(root) {
    for (const img of root.querySelectorAll("img[data-src]:not([data-loading])")) {
      if (nearScreen) nearScreen.observe(img); else show(img);
    }
  }

  // --- the gallery -------------------------------------------------------------------------------------------
  const alt = (p) => fill("phAlt", p.place_label || p.place_id, when(p.taken_at));
  const detailLink = (p) => `#/photos/${query({ sha: p.sha256, visit: p.visit_id, place: p.place_id })}`;

  /** A rejected photo says so under its tile (one not uploaded says it in place of its thumbnail). */
  const stateBadge = (p) => (p.rejected_at ? `<strong class="down" data-role="rejected">${t("phRejected")}</strong>` : "");

  function tile(p) {
    const picture = p.received
      ? `<img loading="lazy" data-src="/api/v1/photos/${esc(p.sha256)}/thumbnail" alt="${esc(alt(p))}" width="200" height="150"
          style="width: 100%; height: 150px; object-fit: cover; background: #e5e7eb; display: block">`
      : `<div role="img" aria-label="${esc(alt(p))}" style="height: 150px; background: #f3f4f6; display: grid; place-items: center; color: var(--muted)">${t(p.deleted ? "phDeleted" : "phOnPhone")}</div>`;
    return `<li data-sha256="${esc(p.sha256)}" data-visit="${esc(p.visit_id)}" data-place="${esc(p.place_id)}"
        data-rejected="${p.rejected_at ? "true" : "false"}" data-received="${p.received ? "true" : "false"}"
        style="border: 1px solid var(--line); border-radius: 6px; overflow: hidden">
      <a href="${detailLink(p)}" style="display: block; color: inherit; text-decoration: none">${picture}
        <span style="display: block; padding: .35rem .5rem"><strong>${esc(p.place_label || p.place_id)}</strong>
          <span class="sub" style="display: block; color: var(--muted); font-size: .85rem">${esc(p.grid_code)} · ${esc(p.volunteer)} · ${when(p.visited_at)}</span>
          ${stateBadge(p)}</span></a></li>`;
  }

  /** Per indicator that asks for a photo: reached places with a standing photo that arrived, of those reached. */
  async function evidence(area) {
    const reply = await api(`/api/v1/photos/evidence${area ? `?area=${encodeURIComponent(area)}` : ""}`);
    return reply.indicators;
  }
  const evidenceText = (e) => fill("phEvidence", e.with_evidence, e.reached);

  function evidenceList(rows) {
    if (!rows.length) return `<p id="photo-evidence-none">${t("phNoEvidenceAsked")}</p>`;
    return `<ul id="photo-evidence">${rows.map((e) => `<li data-indicator="${esc(e.indicator)}" data-reached="${e.reached}"
      data-with-evidence="${e.with_evidence}"><strong>${esc(indName(e.indicator))}</strong>：${evidenceText(e)}</li>`).join("")}</ul>`;
  }

  async function page(q, after) {
    const params = { area: q.area, place: q.place, indicator: q.indicator, state: q.state || "all", limit: String(PAGE), after };
    return api(`/api/v1/photos?${query(params)}`);
  }

  async function galleryView(q) {
    const [reply, rows] = await Promise.all([page(q), evidence(q.area).catch(() => [])]);
    shown = { q, next: reply.next };
    const option = (value, label, selected) => `<option value="${esc(value)}"${selected ? " selected" : ""}>${esc(label)}</option>`;
    const place = q.place ? `<p id="photo-place-filter">${fill("phOfPlace", reply.photos[0]?.place_label || q.place, q.place)}
      <a href="#/photos/${query({ ...q, place: "" })}">${t("phAllPlaces")}</a></p>` : "";
    return `<h2 id="view-title" tabindex="-1">${q.place ? fill("phPlaceTitle", reply.photos[0]?.place_label || q.place) : t("phTitle")}</h2>
      <section aria-labelledby="photo-evidence-title"><h3 id="photo-evidence-title">${t("phEvidenceTitle")}</h3>${evidenceList(rows)}</section>
      <form id="photo-filters" class="controls no-print" style="max-width: none">
        <label for="ph-area">${t("phArea")}<input id="ph-area" name="area" value="${esc(q.area || "")}" autocomplete="off"></label>
        <label for="ph-indicator">${t("indicator")}<select id="ph-indicator" name="indicator">${option("", t("phAny"), !q.indicator)}${
          indicatorIds().map((i) => option(i, indName(i), i === q.indicator)).join("")}</select></label>
        <label for="ph-state">${t("statusCol")}<select id="ph-state" name="state">${
          STATES.map((s) => option(s, t("ph_" + s), s === (q.state || "all"))).join("")}</select></label>
        <button type="submit">${t("show")}</button></form>
      ${place}
      <p id="photo-result" role="status"></p>
      ${reply.photos.length ? `<ul id="photo-grid" aria-label="${t("phTitle")}" style="list-style: none; padding: 0; display: grid;
          grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .75rem">${reply.photos.map(tile).join("")}</ul>`
        : `<p id="photo-none">${t("phNone")}</p>`}
      <p class="no-print"><button type="button" id="photo-more"${reply.next ? "" : " hidden"}>${t("phMore")}</button></p>`;
  }

  function wireGallery() {
    $("view-title").focus();
    if (notice) { say(notice); notice = null; }
    lazyImages($("view"));
    $("photo-filters").addEventListener("submit", (e) => {
      e.preventDefault();
      const q = { area: $("ph-area").value.trim(), indicator: $("ph-indicator").value, state: $("ph-state").value,
        place: shown?.q.place || "" };
      if (q.state === "all") q.state = "";
      location.hash = `#/photos/${query(q)}`;
    });
    $("photo-more").addEventListener("click", async () => {
      const button = $("photo-more");
      if (!shown?.next) return;
      button.disabled = true;
      let reply;
      try {
        reply = await page(shown.q, shown.next);
      } catch (e) {
        button.disabled = false;
        say(t("error") + e.message, true);
        return;
      }
      const list = $("photo-grid");
      const before = list.children.length;
      list.insertAdjacentHTML("beforeend", reply.photos.map(tile).join(""));
      shown.next = reply.next;
      button.disabled = false;
      button.hidden = !reply.next;
      lazyImages(list);
      say(fill("phShown", list.children.length));
      // Keyboard users go on from the first photo added, not from the top of the page.
      list.children[before]?.querySelector("a")?.focus();
    });
  }

  // --- one photo ---------------------------------------------------------------------------------------------
  async function detailView(q) {
    // The place's photos (a place has a handful): this one among them, and the others beside it.
    const reply = await api(`/api/v1/photos?${query({ place: q.place, limit: "200" })}`);
    const p = reply.photos.find((x) => x.sha256 === q.sha && x.visit_id === q.visit);
    if (!p) return `<p class="crumbs"><a href="#/photos">${t("phTitle")}</a></p><h2 id="view-title" tabindex="-1">${t("phTitle")}</h2>
      <p id="photo-missing" class="error" role="alert">${t("phNotFound")}</p>`;
    const others = reply.photos.filter((x) => x !== p);
    const rejectable = session.role === "office" && !p.rejected_at;
    const state = p.rejected_at
      ? `<strong class="down">${t("phRejected")}</strong> · ${when(p.rejected_at)} · ${esc(p.rejected_by || "")}<br>${t("phReason")}：<span id="photo-reason">${esc(p.reason || "")}</span>`
      : t("phStanding");
    const picture = p.received
      ? `<img id="photo-full" data-src="/api/v1/photos/${esc(p.sha256)}/file" alt="${esc(alt(p))}"
          style="max-width: 100%; max-height: 70vh; background: #e5e7eb; min-width: 200px; min-height: 150px">`
      : `<p id="photo-full-missing">${t("phNotArrived")}</p>`;
    return `<p class="crumbs"><a href="#/photos">${t("phTitle")}</a> › <a id="photo-place-link" href="#/photos/${query({ place: p.place_id })}">${esc(p.place_label || p.place_id)}</a></p>
      <h2 id="view-title" tabindex="-1">${esc(fill("phDetailTitle", p.place_label || p.place_id, when(p.taken_at)))}</h2>
      <p id="photo-result" role="status"></p>
      <figure style="margin: 0 0 1rem">${picture}</figure>
      <dl class="facts" id="photo-facts" data-rejected="${p.rejected_at ? "true" : "false"}" data-received="${p.received ? "true" : "false"}">
        <dt>${t("phPlace")}</dt><dd>${esc(p.place_label)} (<code>${esc(p.place_id)}</code>) · ${esc(kindName(p.place_kind))}</dd>
        <dt>${t("grid")}</dt><dd><a href="#/grid/${encodeURIComponent(p.grid_code)}">${esc(p.grid_code)}</a> · ${esc(p.village_code)}</dd>
        <dt>${t("phVolunteer")}</dt><dd>${esc(p.volunteer)}</dd>
        <dt>${t("phVisitedAt")}</dt><dd>${when(p.visited_at)}</dd>
        <dt>${t("phTakenAt")}</dt><dd>${when(p.taken_at)}</dd>
        <dt>${t("phSize")}</dt><dd>${size(p.size)}${p.width ? ` · ${p.width}×${p.height}` : ""} · ${esc(p.media_type)}</dd>
        <dt>${t("phReceived")}</dt><dd id="photo-received">${p.received ? t("phArrived") : t(p.deleted ? "phDeleted" : "phOnPhone")}</dd>
        <dt>${t("statusCol")}</dt><dd id="photo-state">${state}</dd></dl>
      ${rejectable ? `<form id="photo-reject-form" class="no-print" novalidate style="max-width: 32rem">
          <h3 style="margin: 0">${t("phReject")}</h3><p class="sub" style="margin: 0">${t("phRejectHelp")}</p>
          <label for="photo-reason-input">${t("phReasonLabel")}</label>
          <textarea id="photo-reason-input" name="reason" rows="3" required maxlength="${MAX_REASON_BYTES}" style="font: inherit"></textarea>
          <div class="controls"><button type="submit" id="photo-reject">${t("phReject")}</button></div></form>` : ""}
      <section aria-labelledby="photo-others-title"><h3 id="photo-others-title">${t("phOthers")}</h3>
        ${others.length ? `<ul id="photo-others" style="list-style: none; padding: 0; display: grid;
          grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .75rem">${others.map(tile).join("")}</ul>` : `<p id="photo-others-none">${t("none")}</p>`}</section>`;
  }

  function wireDetail(q) {
    $("view-title").focus();
    if (notice) { say(notice); notice = null; }
    const full = $("photo-full");
    if (full) show(full);
    lazyImages($("view"));
    $("photo-reject-form")?.addEventListener("submit", async (e) => {
      e.preventDefault();
      const reason = $("photo-reason-input").value.trim();
      if (!reason) { say(t("phReasonMissing"), true); $("photo-reason-input").focus(); return; }
      if (new TextEncoder().encode(reason).length > MAX_REASON_BYTES) { say(fill("phReasonLong", MAX_REASON_BYTES), true); return; }
      if (!window.confirm(fill("phConfirmReject", $("view-title").textContent, reason))) return;
      const button = $("photo-reject");
      button.disabled = true;
      try {
        await api(`/api/v1/photos/${encodeURIComponent(q.sha)}/reject`, { visit: q.visit, reason });
      } catch (err) {
        button.disabled = false;
        say(t("error") + err.message, true);
        return;
      }
      notice = t("phRejectedDone");
      await render();
    });
  }

  // --- beside the other views --------------------------------------------------------------------------------
  // The overview's cards say, for indicators that ask for a photo, how many reached places have one as evidence;
  // the grid page's places link to their photos. Both are added once app.js has drawn the view.
  new MutationObserver(async () => {
    const ready = $("view").dataset.ready || "";
    if (!session || !["office", "lead", "viewer"].includes(session.role)) return;
    if (ready === "#/" || ready === "#") {
      const rows = await evidence("").catch(() => []);
      if ($("view").dataset.ready !== ready) return;
      for (const e of rows) {
        const card = document.querySelector(`#view .card[data-indicator="${CSS.escape(e.indicator)}"]`);
        if (!card || card.querySelector("[data-role=evidence]")) continue;
        card.insertAdjacentHTML("beforeend", `<div class="sub" data-role="evidence" data-reached="${e.reached}"
          data-with-evidence="${e.with_evidence}"><a href="#/photos/${query({ indicator: e.indicator })}">${evidenceText(e)}</a></div>`);
      }
    } else if (ready.startsWith("#/grid/")) {
      for (const row of document.querySelectorAll("#places tr[data-place]")) {
        const cell = row.children[1];
        if (!cell || cell.querySelector("[data-role=photos]")) continue;
        // The link says whose photos to a screen reader too, its visible word first.
        cell.insertAdjacentHTML("beforeend", ` <a data-role="photos" href="#/photos/${query({ place: row.dataset.place })}">${
          t("phNav")}<span class="sr">${esc(fill("phOfPlaceLink", cell.textContent.trim()))}</span></a>`);
      }
    }
  }).observe($("view"), { attributes: true, attributeFilter: ["data-ready"] });

  registerView("photos", {
    roles: ["office", "lead", "viewer"],
    nav: "phNav",
    text: {
      zh: {
        phNav: "照片", phTitle: "走访照片", phPlaceTitle: "{0}的照片", phAlt: "{0}，拍摄于 {1}", phArea: "区域或网格编码",
        phAny: "全部", ph_all: "全部", ph_standing: "有效", ph_rejected: "已退回", phMore: "更多", phNone: "没有符合条件的照片。",
        phShown: "已显示 {0} 张照片", phOfPlace: "只显示点位 {0}（{1}）的照片。", phAllPlaces: "显示全部点位", phOfPlaceLink: "（{0}）",
        phEvidenceTitle: "照片佐证", phEvidence: "有照片佐证 {0} / 已完成 {1}", phNoEvidenceAsked: "当前活动没有要求拍照的指标。",
        phRejected: "已退回", phStanding: "有效", phOnPhone: "照片还在手机上，尚未上传", phDeleted: "照片已删除（该处经核实不是点位）", phArrived: "已上传",
        phDetailTitle: "{0}，拍摄于 {1}", phPlace: "点位", phVolunteer: "志愿者", phVisitedAt: "走访时间", phTakenAt: "拍摄时间",
        phSize: "大小", phReceived: "上传情况", phReason: "原因", phNotArrived: "照片还在志愿者的手机上，下次同步时上传。",
        phNotFound: "没有找到这张照片，或您无权查看。", phOthers: "该点位的其他照片",
        phReject: "退回", phRejectHelp: "照片不能证明已完成走访事项时退回：该点位重新计入未完成名单，志愿者下次同步时在手机上看到原因。",
        phReasonLabel: "退回原因（必填，志愿者会看到）", phReasonMissing: "请填写退回原因。", phReasonLong: "原因最多 {0} 字节。",
        phConfirmReject: "退回“{0}”？原因：{1}。该点位将重新计入未完成名单。", phRejectedDone: "已退回。志愿者下次同步时收到。",
      },
      en: {
        phNav: "Photos", phTitle: "Visit photos", phPlaceTitle: "Photos of {0}", phAlt: "{0}, taken {1}", phArea: "Area or grid code",
        phAny: "Any", ph_all: "All", ph_standing: "Standing", ph_rejected: "Rejected", phMore: "More", phNone: "No photos match.",
        phShown: "{0} photos shown", phOfPlace: "Only the photos of place {0} ({1}).", phAllPlaces: "Show every place", phOfPlaceLink: " of {0}",
        phEvidenceTitle: "Photo evidence", phEvidence: "with photo evidence {0} / done {1}", phNoEvidenceAsked: "No indicator of the campaign asks for a photo.",
        phRejected: "Rejected", phStanding: "Standing", phOnPhone: "Still on the phone, not uploaded yet", phDeleted: "Deleted (the office found this is not a place)", phArrived: "Uploaded",
        phDetailTitle: "{0}, taken {1}", phPlace: "Place", phVolunteer: "Volunteer", phVisitedAt: "Visited", phTakenAt: "Taken",
        phSize: "Size", phReceived: "Upload", phReason: "Reason", phNotArrived: "The photo is still on the volunteer's phone; it is uploaded at the next sync.",
        phNotFound: "This photo was not found, or you may not see it.", phOthers: "Other photos of this place",
        phReject: "Reject", phRejectHelp: "Reject a photo that does not show the delivery: the place goes back on the gap list, and the volunteer reads why at the next sync.",
        phReasonLabel: "Why (required; the volunteer reads it)", phReasonMissing: "Say why the photo is rejected.", phReasonLong: "At most {0} bytes.",
        phConfirmReject: "Reject “{0}”? Reason: {1}. The place goes back on the gap list.", phRejectedDone: "Rejected. The volunteer learns it at the next sync.",
      },
    },
    async render(arg) {
      const q = parse(arg);
      return q.sha ? detailView(q) : galleryView(q);
    },
    wire(arg) {
      const q = parse(arg);
      return q.sha ? wireDetail(q) : wireGallery();
    },
  });
})();
