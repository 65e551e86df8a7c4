// Territory upload (#/territory, the office only): a CSV or .xlsx file is checked first (a dry run: what it would
// add and change per village, or every row to fix, by row and column), then imported; the page shows the upload's
// progress and then the server's (rows read, places applied) by following the import job it started. Import
// sends the file that was checked, and the server refuses any other (its SHA-256 is compared).
"use strict";

(() => {
  /** The file checked last and what the check said; Import sends that file only. */
  let checked = null;

  const columns = ["place_id", "kind", "label", "grid_code", "grid_name", "village_code", "village_name",
    "village_kind", "town_code", "town_name", "address", "contact_name", "contact_phone", "lat", "lon"];

  /** POSTs the file with its upload's progress reported, renewing the session once if it expired. */
  function send(path, file, onProgress) {
    const once = () => new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("authorization", "Bearer " + session.token);
      xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
      xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
      xhr.addEventListener("load", () => resolve(xhr));
      xhr.addEventListener("error", () => reject(new Error(t("tNetwork"))));
      xhr.send(file);
    });
    return once().then(async (xhr) => {
      if (xhr.status === 401 && (await refresh())) xhr = await once();
      let reply = null;
      try { reply = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch (e) { /* not JSON */ }
      if (xhr.status >= 400) throw new Error(reply?.error?.message || xhr.responseText || String(xhr.status));
      return reply;
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Follows an import job until it ends, showing each status. */
  async function follow(job, show) {
    for (;;) {
      show(job);
      if (job.phase === "done" || job.phase === "failed") return job;
      await sleep(400);
      job = await api(`/api/v1/territory/imports/${encodeURIComponent(job.id)}`);
    }
  }

  /** Shows where the work is: the upload's share, then the server's phase and counts. */
  function showProgress(phase, done, total, text) {
    const bar = $("territory-progress"), label = $("territory-progress-text");
    $("territory-progress-box").hidden = false;
    const seen = new Set((bar.dataset.seen || "").split(",").filter(Boolean));
    seen.add(phase);
    bar.dataset.seen = [...seen].join(",");
    bar.dataset.phase = phase;
    if (total > 0) { bar.max = total; bar.value = Math.min(done, total); } else bar.removeAttribute("value");
    label.textContent = text;
  }

  function showJob(job) {
    const n = (x) => Number(x).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
    if (job.phase === "reading") showProgress("reading", 0, 0, fill("tReading", n(job.rows_read)));
    else if (job.phase === "checking") showProgress("checking", 0, 0, fill("tCheckingRows", n(job.rows_read)));
    else if (job.phase === "applying") {
      showProgress("applying", job.places_applied, job.places_total, fill("tApplyingPlaces", n(job.places_applied), n(job.places_total)));
    } else showProgress(job.phase, 1, 1, t(job.phase === "done" ? "tFinished" : "tStopped"));
  }

  function summaryHtml(s) {
    const rows = s.villages.map((v) => `<tr data-village="${esc(v.village_code)}"><td>${esc(v.village_name)} <code>${esc(v.village_code)}</code></td>
      <td>${esc(v.town_code)}</td><td class="num" data-role="added">${v.places_added}</td>
      <td class="num" data-role="changed">${v.places_changed}</td><td class="num" data-role="moved">${v.places_moved}</td>
      <td class="num" data-role="unchanged">${v.places_unchanged}</td>
      <td class="num" data-role="not-in-file">${v.places_not_in_file}</td></tr>`).join("");
    return `<p id="territory-totals" data-rows="${s.rows}" data-added="${s.places_added}" data-changed="${s.places_changed}">
        ${esc(fill(s.dry_run ? "tWould" : "tDid", s.rows, s.places_added, s.places_changed, s.places_unchanged, s.areas_added, s.areas_changed))}</p>
      <table id="territory-villages"><caption>${t("tPerVillage")}</caption><thead><tr>
        <th scope="col">${t("tVillage")}</th><th scope="col">${t("tTown")}</th><th scope="col" class="num">${t("tAdded")}</th>
        <th scope="col" class="num">${t("tChanged")}</th><th scope="col" class="num">${t("tMoved")}</th>
        <th scope="col" class="num">${t("tUnchanged")}</th><th scope="col" class="num">${t("tNotInFile")}</th></tr></thead>
        <tbody>${rows}</tbody></table><p>${t("tNotInFileHelp")}</p>`;
  }

  function errorsHtml(errors) {
    const rows = errors.map((e) => `<tr data-line="${e.line}" data-column="${esc(e.column || "")}"><td class="num">${e.line}</td>
      <td>${e.column ? `<code>${esc(e.column)}</code>` : ""}</td><td>${esc(e.message)}</td></tr>`).join("");
    return `<p>${t("tFixRows")}</p><table id="territory-errors"><caption>${t("tRowErrors")}</caption><thead><tr>
      <th scope="col" class="num">${t("tRow")}</th><th scope="col">${t("tColumn")}</th><th scope="col">${t("tMessage")}</th></tr></thead>
      <tbody>${rows}</tbody></table>`;
  }

  /** Uploads the file, follows the job, and shows its outcome; returns the finished job (or null). */
  async function run(file, dryRun, say) {
    const query = new URLSearchParams({ dry_run: String(dryRun) });
    if (!dryRun) query.set("checked", checked.sha256);
    $("territory-progress").dataset.seen = "";
    showProgress("upload", 0, file.size, fill("tUploading", 0));
    const started = await send(`/api/v1/territory/imports?${query}`, file, (loaded, total) => {
      showProgress("upload", loaded, total, fill("tUploading", total ? Math.round((loaded / total) * 100) : 100));
    });
    const job = await follow(started, showJob);
    if (job.outcome === "imported") say(summaryHtml(job.summary));
    else if (job.outcome === "rows_to_fix") say(errorsHtml(job.errors), true);
    else say(`<p class="error">${esc(t("error") + (job.error?.message || ""))}</p>`, true);
    return job;
  }

  registerView("territory", {
    roles: ["office"],
    nav: "tNav",
    text: {
      zh: {
        tNav: "辖区导入", tTitle: "辖区导入", tFile: "辖区文件（.csv 或 .xlsx）", tCheck: "检查", tImport: "导入",
        tHelp: "上传辖区的点位清单：CSV（UTF-8）或 Excel/WPS 工作簿（.xlsx，读取第一个工作表）。第一行是表头，列名如下（顺序不限）；带 * 的为必填。先“检查”看会增加和修改哪些点位，再“导入”。",
        tTemplates: "下载模板：", tTemplateCsv: "CSV 模板", tTemplateXlsx: "Excel 模板",
        tChooseFile: "请先选择文件", tUploading: "上传中 {0}%", tReading: "读取工作簿：已读 {0} 行",
        tCheckingRows: "检查中：已读 {0} 行", tApplyingPlaces: "写入中：{0} / {1} 个点位", tFinished: "完成", tStopped: "已停止",
        tProgress: "进度", tNetwork: "网络错误，文件未上传", tFileChanged: "文件在检查后有改动，请重新检查",
        tWould: "共 {0} 个点位：将新增 {1}、修改 {2}、不变 {3}；区域新增 {4}、修改 {5}。（仅检查，未做任何改动）",
        tDid: "已导入 {0} 个点位：新增 {1}、修改 {2}、不变 {3}；区域新增 {4}、修改 {5}。",
        tPerVillage: "各村（社区）的点位变化", tVillage: "村（社区）", tTown: "镇", tAdded: "新增", tChanged: "修改",
        tMoved: "换网格", tUnchanged: "不变", tNotInFile: "文件中没有（保留）",
        tNotInFileHelp: "“文件中没有”的点位不会被删除，其走访记录照常计入；点位不能换网格，这样的行会被列为错误。",
        tFixRows: "文件有问题，未做任何改动。请改正以下各行后重新检查：", tRowErrors: "需要改正的行",
        tRow: "行", tColumn: "列", tMessage: "问题", tImported: "导入完成", tReadyToImport: "检查通过，可以导入。",
      },
      en: {
        tNav: "Territory", tTitle: "Territory import", tFile: "Territory file (.csv or .xlsx)", tCheck: "Check", tImport: "Import",
        tHelp: "Upload the list of places: CSV (UTF-8) or an Excel/WPS workbook (.xlsx, its first sheet). The first row is the header, with these columns in any order; those marked * are required. Check it first to see what it adds and changes, then import it.",
        tTemplates: "Templates: ", tTemplateCsv: "CSV template", tTemplateXlsx: "Excel template",
        tChooseFile: "Choose a file first", tUploading: "Uploading {0}%", tReading: "Reading the workbook: {0} rows",
        tCheckingRows: "Checking: {0} rows read", tApplyingPlaces: "Writing: {0} of {1} places", tFinished: "Finished", tStopped: "Stopped",
        tProgress: "Progress", tNetwork: "Network error; the file was not uploaded", tFileChanged: "The file changed since it was checked; check it again",
        tWould: "{0} places: {1} would be added, {2} changed, {3} unchanged; areas: {4} added, {5} changed. (Check only: nothing was changed.)",
        tDid: "Imported {0} places: {1} added, {2} changed, {3} unchanged; areas: {4} added, {5} changed.",
        tPerVillage: "Places per village or community", tVillage: "Village or community", tTown: "Town", tAdded: "Added",
        tChanged: "Changed", tMoved: "Moved grid", tUnchanged: "Unchanged", tNotInFile: "Not in the file (kept)",
        tNotInFileHelp: "Places not in the file are not removed, and their visits still count; a place cannot move to another grid (such a row is an error).",
        tFixRows: "The file has problems; nothing was changed. Fix these rows and check again:", tRowErrors: "Rows to fix",
        tRow: "Row", tColumn: "Column", tMessage: "Problem", tImported: "Import finished", tReadyToImport: "The file is valid; you can import it.",
      },
    },
    render: async () => {
      checked = null;
      const names = columns.map((c, i) => `<code>${c}</code>${i < 10 ? "*" : ""}`).join(", ");
      return `<h2 id="view-title" tabindex="-1">${t("tTitle")}</h2>
        <p id="territory-help">${t("tHelp")}</p><p id="territory-columns">${names}</p>
        <p>${t("tTemplates")}<a id="territory-template-csv" href="/api/v1/territory/template.csv" download="territory-template.csv">${t("tTemplateCsv")}</a>
          · <a id="territory-template-xlsx" href="/api/v1/territory/template.xlsx" download="territory-template.xlsx">${t("tTemplateXlsx")}</a></p>
        <div class="controls"><label for="territory-file">${t("tFile")}
          <input id="territory-file" type="file" accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"></label>
          <button type="button" id="territory-check">${t("tCheck")}</button>
          <button type="button" id="territory-import" class="primary" disabled>${t("tImport")}</button></div>
        <div id="territory-progress-box" hidden><label for="territory-progress">${t("tProgress")}</label>
          <progress id="territory-progress" max="1" value="0"></progress> <span id="territory-progress-text" role="status"></span></div>
        <div id="territory-result" role="status" aria-live="polite"></div>`;
    },
    wire: () => {
      const file = $("territory-file"), check = $("territory-check"), apply = $("territory-import"), out = $("territory-result");
      const say = (html, alert = false) => { out.setAttribute("role", alert ? "alert" : "status"); out.innerHTML = html; };
      const busy = (yes) => { check.disabled = yes; file.disabled = yes; if (yes) apply.disabled = true; };
      file.addEventListener("change", () => { checked = null; apply.disabled = true; say(""); });
      check.addEventListener("click", async () => {
        checked = null;
        apply.disabled = true;
        const f = file.files[0];
        if (!f) { say(esc(t("tChooseFile")), true); file.focus(); return; }
        say("");
        busy(true);
        try {
          const job = await run(f, true, say);
          if (job.outcome === "imported") {
            checked = { sha256: job.sha256, name: f.name, size: f.size, lastModified: f.lastModified };
            out.insertAdjacentHTML("beforeend", `<p id="territory-ready">${t("tReadyToImport")}</p>`);
          }
        } catch (e) {
          say(`<p class="error">${esc(t("error") + e.message)}</p>`, true);
        } finally {
          busy(false);
          apply.disabled = !checked;
        }
      });
      apply.addEventListener("click", async () => {
        const f = file.files[0];
        // Edited on disk since the check: the server would refuse it too (another SHA-256).
        if (!checked || !f || f.name !== checked.name || f.size !== checked.size || f.lastModified !== checked.lastModified) {
          checked = null;
          apply.disabled = true;
          say(esc(t("tFileChanged")), true);
          return;
        }
        busy(true);
        try {
          const job = await run(f, false, say);
          if (job.outcome === "imported") out.insertAdjacentHTML("afterbegin", `<p id="territory-imported">${t("tImported")}</p>`);
        } catch (e) {
          say(`<p class="error">${esc(t("error") + e.message)}</p>`, true);
        } finally {
          checked = null;
          busy(false);
          apply.disabled = true;
          // Every view counts the new territory from now on.
          scopeArea = null;
        }
      });
      $("view-title").focus();
    },
  });
})();
