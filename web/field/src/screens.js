// The app's screens, each built from the state: enrolment, my grids (with unread bulletins), a grid's places, a
// place (with its visit history and photos, the camera and the visit buttons, the current talking points and a
// proposed correction), a place
// found in the field, an urgent task, the bulletins and one bulletin, and settings. Sized for a 360 px wide phone
// with big touch targets.
import { h, $ } from "./dom.js";
import { t, named, indicatorName, formatTime } from "./i18n.js";
import { deliveriesForAll, relevantDeliveries, visitDeliveries, photoIndicators } from "./coverage.js";
import { makePhoto, PhotoError, MAX_PHOTOS_PER_VISIT } from "./photos.js";
import { StoreError } from "./store.js";
import { SigningUnavailable } from "./sign.js";
import { outcomeProblem, parseYuan, yuanText } from "./task.js";
import { receiptOf } from "./bulletin.js";
import { storedAttachment, dataUrl } from "./attachments.js";

const pct = (f) => Math.floor((f.eligible ? f.reached / f.eligible : 1) * 100);

function progress(rules, figures) {
  return h("ul", { class: "figures" }, figures.map((f) => {
    const ind = rules.indicators.find((i) => i.id === f.indicator);
    return h("li", { dataset: { indicator: f.indicator, eligible: f.eligible, reached: f.reached, excluded: f.excluded } },
      h("div", { class: "figure-label" }, h("span", {}, indicatorName(ind)), h("span", { class: "num" }, `${f.reached}/${f.eligible} · ${pct(f)}%`)),
      h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct(f), "aria-label": indicatorName(ind) },
        h("span", { style: { width: `${pct(f)}%` } })));
  }));
}

/** Enrolment with a username and password, or, opened from an enrolment sheet's QR code, with its one-time
 * code: the app asks the server what the code is for first, then the volunteer taps once (a person's code) or taps
 * their name, then once (a team's shared code); nothing is typed. */
export function enrolScreen(ctx, code) {
  const fields = code
    ? [h("p", { class: "help", id: "enrol-code-help" }, t("enrolCodeHelp")),
      h("p", {}, t("enrolCode"), " ", h("code", { id: "enrol-code" }, code)),
      h("div", { id: "enrol-who", "aria-live": "polite" }, t("enrolLooking"))]
    : [h("p", { class: "help" }, t("enrolHelp")),
      h("label", {}, t("username"), h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off" })),
      h("label", {}, t("password"), h("input", { name: "password", type: "password", autocomplete: "current-password", required: true }))];
  const form = h("form", { class: "stack", id: "enrol-form" },
    h("h2", {}, t(code ? "enrolCodeTitle" : "enrolTitle")),
    ...fields,
    h("label", {}, t("deviceName"), h("input", { name: "device", value: t("deviceNameDefault") })),
    h("button", { class: "big primary", type: "submit", disabled: !!code }, t("enrol")),
    h("p", { class: "message", role: "alert", id: "enrol-message" }),
    code ? h("a", { href: "#/enrol", id: "enrol-with-password" }, t("enrolWithPassword")) : null);
  const button = form.querySelector("button");
  const say = (err) => {
    $("#enrol-message", form).textContent = err instanceof SigningUnavailable ? t(err.message === "https" ? "needsHttpsKey" : "noEd25519")
      : err.unreachable ? t("enrolOffline") : err.status === 401 && !code ? t("wrongPassword")
      : code && err.code && t(err.code) !== err.code ? t(err.code) : err.message;
  };
  if (code) {
    ctx.lookupCode(code).then((found) => {
      const who = $("#enrol-who", form);
      if (found.kind === "team") {
        // A team's code: the volunteer taps their own name.
        $("#enrol-code-help", form).textContent = t("enrolSharedHelp");
        who.replaceChildren(h("fieldset", { id: "enrol-members" },
          h("legend", {}, t("enrolChooseName", { team: found.team })),
          ...found.members.map((name) => h("label", { class: "choice" },
            h("input", { type: "radio", name: "member", value: name, required: true }), " ", name))));
      } else {
        who.replaceChildren(h("p", { id: "enrol-person" }, t("enrolAs"), " ", h("strong", {}, found.members[0])));
      }
      button.disabled = false;
    }, (err) => {
      $("#enrol-who", form).textContent = "";
      say(err);
    });
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    button.disabled = true;
    $("#enrol-message", form).textContent = t("enrolling");
    try {
      const deviceName = data.get("device").trim();
      await ctx.enrol(code ? { code, member: data.get("member") || undefined, deviceName }
        : { username: data.get("username").trim(), password: data.get("password"), deviceName });
    } catch (err) {
      say(err);
      button.disabled = false;
    }
  });
  return h("div", { class: "stack" }, form, caSection());
}

/**
 * The installation's CA, which signs team hubs' HTTPS certificates: installed once on a phone, the app works from
 * the lead's hub at base. Shown with its fingerprint, to check against the one the lead or the office shows, once
 * whichever served the app (server or hub) has answered.
 */
function caSection() {
  const section = h("section", { class: "stack ca", id: "ca", hidden: true },
    h("h3", {}, t("caTitle")),
    h("p", { class: "help" }, t("caHelp")),
    h("a", { class: "big button", id: "ca-download", href: "/api/v1/ca.pem", download: "doorstep-ca.crt" }, t("caDownload")),
    h("p", { class: "help" }, t("caCheck")),
    h("p", {}, h("strong", { id: "ca-name" }), h("br"), h("code", { class: "fingerprint", id: "ca-sha256" })));
  fetch("/api/v1/ca").then((r) => (r.ok ? r.json() : null)).then((ca) => {
    if (!ca) return;
    $("#ca-name", section).textContent = ca.name;
    $("#ca-sha256", section).textContent = ca.sha256;
    section.hidden = false;
  }).catch(() => { /* offline: nothing to show */ });
  return section;
}

const STATE_WORD = { new: "taskNew", opened: "taskOpened", attempted: "taskAttempted", done: "taskDone" };

/** The team's urgent tasks, still-to-do and most urgent first; shown above everything else. */
function taskList(ctx) {
  const { state } = ctx;
  const tasks = state.sortedTasks();
  if (!tasks.length) return null;
  const now = Date.now();
  return h("section", { class: "stack urgent", id: "tasks" },
    h("h2", {}, `⚠ ${t("urgent")}`),
    h("ul", { class: "cards" }, tasks.map((v) => {
      const overdue = v.state !== "done" && v.info.deadline < now;
      return h("li", {}, h("a", { class: `card task ${v.state}`, href: `#/task/${v.info.id}`, dataset: { task: v.info.id, state: v.state, priority: v.info.priority } },
        h("div", { class: "counts" },
          h("span", { class: `pill priority-${v.info.priority}` }, named(state.rules.priorities, v.info.priority)),
          h("span", { class: "pill" }, named(state.rules.fraud_types, v.info.fraud_type)),
          h("span", { class: `pill ${v.state === "done" ? "done" : "todo"}` }, t(STATE_WORD[v.state]))),
        h("div", { class: "card-title" }, h("strong", {}, v.info.target_label)),
        h("div", { class: overdue ? "overdue" : "muted" }, `${t("deadline")} ${formatTime(v.info.deadline)}${overdue ? ` · ${t("overdue")}` : ""}`)));
    })));
}

/** A bulletin's kind in the app's language; a kind this app does not know yet shows as it is. */
const kindName = (kind) => (t(`kind_${kind}`) === `kind_${kind}` ? kind : t(`kind_${kind}`));

/** One bulletin as a card of a list. */
function bulletinCard(ctx, v) {
  const n = v.notice;
  return h("li", {}, h("a", { class: `card bulletin ${n.priority}${v.read ? " read" : ""}`, href: `#/bulletin/${v.id}`,
    dataset: { bulletin: v.id, priority: n.priority, kind: n.kind, read: v.read, edition: n.edition } },
  h("div", { class: "counts" },
    n.priority === "urgent" ? h("span", { class: "pill priority-urgent" }, t("urgentBulletin")) : null,
    h("span", { class: "pill" }, kindName(n.kind)),
    h("span", { class: `pill ${v.read ? "done" : "todo"}` }, t(v.read ? "bulletinRead" : "bulletinUnread")),
    n.edition > 1 ? h("span", { class: "pill" }, `${t("corrected")} · ${t("edition", { n: n.edition })}`) : null),
  h("div", { class: "card-title" }, h("strong", {}, n.title)),
  h("div", { class: "muted" }, `${t("published")} ${formatTime(n.published_at)}`)));
}

/**
 * The unread bulletins (urgent first, then newest) with their count, and the way to every bulletin; above them,
 * the first urgent unread one as a banner until it is read.
 */
function bulletinSection(ctx) {
  const all = ctx.state.bulletins();
  if (!all.length) return [null, null];
  const unread = all.filter((v) => !v.read);
  const urgent = unread.find((v) => v.notice.priority === "urgent");
  const banner = urgent ? h("a", { class: "banner", id: "urgent-bulletin", href: `#/bulletin/${urgent.id}`, dataset: { bulletin: urgent.id } },
    h("strong", {}, `⚠ ${t("urgentBulletin")}`), " ", urgent.notice.title) : null;
  const section = h("section", { class: "stack", id: "bulletins", dataset: { unread: unread.length } },
    h("h2", {}, t("bulletins"), " ", h("span", { class: `pill ${unread.length ? "todo" : "done"}`, id: "unread-count", dataset: { count: unread.length } },
      t("unreadCount", { n: unread.length }))),
    unread.length ? h("ul", { class: "cards" }, unread.map((v) => bulletinCard(ctx, v))) : null,
    h("a", { class: "back", href: "#/bulletins", id: "all-bulletins" }, `${t("allBulletins")} (${all.length}) ›`));
  return [banner, section];
}

export function homeScreen(ctx) {
  const { state } = ctx;
  const codes = state.sortedGrids();
  const carried = [
    state.carried.length ? h("p", { class: "notice" }, `${state.carried.length} ${t("carried")}`) : null,
    state.carriedTasks.length ? h("p", { class: "notice" }, `${state.carriedTasks.length} ${t("carriedTasks")}`) : null,
  ];
  const [banner, bulletins] = bulletinSection(ctx);
  if (!codes.length) return h("section", { class: "stack" }, banner, taskList(ctx), bulletins, h("h2", {}, t("myGrids")), carried, h("p", { class: "empty" }, t("noGrids")));
  return h("section", { class: "stack" },
    banner,
    taskList(ctx),
    bulletins,
    h("h2", {}, t("myGrids")),
    carried,
    h("ul", { class: "cards", id: "grids" }, codes.map((code) => {
      const v = state.view(code);
      const todo = v.places.filter((p) => !p.cov.done).length;
      const revisit = v.places.filter((p) => p.cov.needsRevisit).length;
      return h("li", {},
        h("a", { class: "card", href: `#/grid/${encodeURIComponent(code)}`, dataset: { grid: code, todo, revisit } },
          h("div", { class: "card-title" }, h("strong", {}, v.info.name || code), h("span", { class: "muted" }, ` ${code}`)),
          h("div", { class: "muted" }, [v.info.village_name, `${v.places.length} ${t("places")}`].filter(Boolean).join(" · ")),
          h("div", { class: "counts" },
            h("span", { class: "pill todo" }, `${t("toDo")} ${todo}`),
            revisit ? h("span", { class: "pill revisit" }, `${t("revisitShort")} ${revisit}`) : null),
          progress(state.rules, v.figures)));
    })));
}

function placeStatus(rules, p) {
  // A kind the rules the app holds do not name (a campaign version it has not read yet): nothing is known of
  // what counts there, so it is neither "done" nor anything to do until the next sync brings the rules.
  if (!rules.place_kinds.some((k) => k.id === p.kind)) return h("span", { class: "status todo new-kind" }, t("newKind"));
  if (p.cov.excluded) return h("span", { class: "status gone" }, t("gone"));
  if (!p.cov.missing.length) return h("span", { class: "status done" }, `✓ ${t("done")}`);
  const names = p.cov.missing.map((id) => indicatorName(rules.indicators.find((i) => i.id === id)));
  return h("span", { class: `status ${p.cov.needsRevisit ? "revisit" : "todo"}` },
    p.cov.needsRevisit ? `↻ ${t("revisitShort")} · ` : "", names.join("、"));
}

const FILTERS = { all: () => true, todo: (p) => !p.cov.done, revisit: (p) => p.cov.needsRevisit };

export function gridScreen(ctx, code) {
  const { state } = ctx;
  const view = state.view(code);
  if (!view) return h("p", { class: "empty" }, t(state.loaded ? "nothingHere" : "loading"));
  const ui = ctx.gridUi(code); // remembers the filter and search per grid while the app is open
  const list = h("ul", { class: "places", id: "places" });
  const fill = () => {
    const q = ui.search.trim().toLowerCase();
    const rows = view.places.filter(FILTERS[ui.filter]).filter((p) =>
      !q || [p.id, p.label, p.address].some((s) => s && s.toLowerCase().includes(q)));
    list.replaceChildren(...(rows.length ? rows.map((p) => h("li", {},
      h("a", { class: "place", href: `#/place/${encodeURIComponent(code)}/${encodeURIComponent(p.id)}`, dataset: {
        place: p.id, done: p.cov.done, revisit: p.cov.needsRevisit, excluded: p.cov.excluded,
        reached: p.cov.reached.join(","), missing: p.cov.missing.join(","), visits: p.cov.visitCount, provisional: p.provisional,
      } },
        h("div", { class: "place-title" }, h("strong", {}, p.label || p.id), h("span", { class: "muted" }, ` ${named(state.rules.place_kinds, p.kind)}`),
          p.provisional ? h("span", { class: "pill pending" }, t("provisional")) : null),
        h("div", { class: "place-sub" }, h("span", { class: "muted" }, p.id), placeStatus(state.rules, p),
          !p.cov.done && rejectedPhotos(p).length ? h("span", { class: "pill todo photo-back" }, t("photoRejectedShort")) : null,
          p.cov.visitCount ? h("span", { class: "muted" }, ` · ${p.cov.visitCount} ${t("visits")}`) : null))))
      : [h("li", { class: "empty" }, t("nothingHere"))]));
    list.dataset.count = rows.length;
  };
  const chips = h("div", { class: "chips", role: "group" }, Object.keys(FILTERS).map((f) =>
    h("button", { type: "button", class: "chip", dataset: { filter: f }, "aria-pressed": String(ui.filter === f), onclick: (e) => {
      ui.filter = f;
      for (const b of chips.children) b.setAttribute("aria-pressed", String(b === e.currentTarget));
      fill();
    } }, t(`filter${f[0].toUpperCase()}${f.slice(1)}`))));
  const search = h("input", { type: "search", id: "search", placeholder: t("search"), "aria-label": t("search"), value: ui.search,
    oninput: (e) => { ui.search = e.target.value; fill(); } });
  fill();
  return h("section", { class: "stack" },
    h("a", { class: "back", href: "#/" }, `‹ ${t("back")}`),
    h("h2", {}, view.info.name || code, h("span", { class: "muted" }, ` ${code}`)),
    progress(state.rules, view.figures),
    search, chips, list,
    h("a", { class: "big button", id: "add-place", href: `#/add-place/${encodeURIComponent(code)}` }, `＋ ${t("addPlace")}`));
}

/** The UTF-8 length limit of a place's texts (client_core::model::MAX_TEXT_BYTES), or null when within it. */
function tooLong(rules, what, text) {
  return new TextEncoder().encode(text).length > rules.max_text_bytes ? t("tooLong", { what, n: rules.max_text_bytes }) : null;
}

/** Why a write was refused, for the screen: a full phone, or the error itself. */
const notSaved = (state, err) => (err instanceof StoreError && err.quota ? t("quotaRecord", { n: state.pendingCount() }) : t("notSaved") + err.message);

/** A place the registry lacks, found in the field (`doorstep field add-place`): kind, name, address, location. */
export function addPlaceScreen(ctx, code) {
  const { state } = ctx;
  const view = state.view(code);
  if (!view) return h("p", { class: "empty" }, t(state.loaded ? "nothingHere" : "loading"));
  const rules = state.rules;
  const kind = h("select", { id: "place-kind", name: "kind" }, rules.place_kinds.map((k) => h("option", { value: k.id }, named(rules.place_kinds, k.id))));
  const label = h("input", { id: "place-label", name: "label", required: true, autocomplete: "off" });
  const address = h("input", { id: "place-address", name: "address", autocomplete: "off" });
  const gpsBox = h("input", { type: "checkbox", id: "gps", checked: ctx.gps.wanted() });
  const gpsState = h("span", { class: "muted", id: "gps-state" });
  const showFix = () => { gpsState.textContent = ctx.gps.describe(); };
  gpsBox.addEventListener("change", () => { ctx.gps.setWanted(gpsBox.checked); showFix(); });
  ctx.gps.onUpdate = showFix;
  showFix();
  ctx.gps.locate();
  const message = h("p", { class: "message", role: "status", id: "add-place-message" });
  const fail = (text) => { message.textContent = text; message.className = "message error"; };
  const save = h("button", { type: "button", class: "big primary", id: "save-place", onclick: async () => {
    const fields = { kind: kind.value, label: label.value.trim() };
    if (!fields.label) return fail(t("labelRequired"));
    if (address.value.trim()) fields.address = address.value.trim();
    const problem = tooLong(rules, t("label"), fields.label) || (fields.address && tooLong(rules, t("address"), fields.address));
    if (problem) return fail(problem);
    const fix = gpsBox.checked ? ctx.gps.fix() : null;
    if (fix) Object.assign(fields, { lat: fix.lat, lon: fix.lon });
    save.disabled = true;
    try {
      const found = await state.recordFoundPlace(code, fields);
      ctx.placeAdded(found, code);
    } catch (err) {
      save.disabled = false;
      fail(notSaved(state, err));
    }
  } }, t("savePlace"));
  return h("section", { class: "stack", id: "add-place-form", dataset: { grid: code } },
    h("a", { class: "back", href: `#/grid/${encodeURIComponent(code)}` }, `‹ ${t("back")}`),
    h("h2", {}, t("addPlaceTitle")),
    h("p", { class: "help" }, t("addPlaceHelp")),
    h("label", {}, t("kind"), kind),
    h("label", {}, t("label"), label),
    h("label", {}, t("addressOptional"), address),
    h("label", { class: "check" }, gpsBox, t("attachGps")), gpsState,
    save, message);
}

const REVIEW_WORD = { confirmed: "reviewConfirmed", rejected: "reviewRejected" };

/** Proposed corrections of a place, and the form to propose one (`doorstep field correct`). */
function corrections(ctx, code, p) {
  const { state } = ctx;
  const label = h("input", { id: "correct-label", autocomplete: "off", placeholder: p.label || "" });
  const address = h("input", { id: "correct-address", autocomplete: "off", placeholder: p.address || "" });
  const message = h("p", { class: "message", role: "status", id: "correct-message" });
  const fail = (text) => { message.textContent = text; message.className = "message error"; };
  const send = h("button", { type: "button", class: "big", id: "save-correction", onclick: async () => {
    const fields = {};
    if (label.value.trim()) fields.label = label.value.trim();
    if (address.value.trim()) fields.address = address.value.trim();
    if (!fields.label && !fields.address) return fail(t("correctionNeedsText"));
    const problem = (fields.label && tooLong(state.rules, t("label"), fields.label)) || (fields.address && tooLong(state.rules, t("address"), fields.address));
    if (problem) return fail(problem);
    send.disabled = true;
    try {
      await state.recordCorrection(code, p.id, fields);
      ctx.recorded(t("correctionSaved"));
    } catch (err) {
      send.disabled = false;
      fail(notSaved(state, err));
    }
  } }, t("saveCorrection"));
  return [
    p.corrections.length ? h("ul", { class: "history", id: "corrections" }, p.corrections.map((c) => h("li", { dataset: { correction: c.id, review: c.review || "" } },
      h("div", {}, h("strong", {}, [c.label, c.address].filter(Boolean).join(" · ")),
        h("span", { class: `pill ${c.review === "confirmed" ? "done" : c.review ? "todo" : "pending"}` }, t(REVIEW_WORD[c.review] || "provisional"))),
      h("div", { class: "muted" }, `${formatTime(c.at)} · ${c.volunteer}`)))) : null,
    h("details", { class: "details", id: "correct" },
      h("summary", {}, t("correct")),
      h("div", { class: "stack" }, h("p", { class: "help" }, t("correctHelp")),
        h("label", {}, t("newLabel"), label), h("label", {}, t("newAddress"), address), send, message)),
  ];
}

/** The photos of a place's visits that the office sent back (rejected), newest visit first. */
const rejectedPhotos = (p) => p.visits.flatMap((v) => (v.photos || []).filter((ph) => ph.rejected));

/** A photo's thumbnail, drawn once read from its Blob (the page's content security policy allows `data:` images). */
function thumbnail(blob, alt) {
  const img = h("img", { class: "photo-thumb", alt, width: 96, height: 96 });
  if (blob) dataUrl(blob).then((url) => { img.src = url; }).catch(() => {});
  return img;
}

/**
 * The camera: "拍照" opens the phone's camera (a file input with `capture`), each picture is made into the photo the
 * visit keeps (photos.js) and shown as a thumbnail with a remove button until the visit is saved. The photos taken
 * are kept in `draft` while the app is open, so a screen drawn again (after a sync) keeps them.
 */
function photoPicker(ctx, draft, needing) {
  const list = h("ul", { class: "photo-strip", id: "photo-draft" });
  const count = h("span", { class: "muted", id: "photo-count" });
  const message = h("p", { class: "message", role: "status", id: "photo-message" });
  const input = h("input", { type: "file", id: "photo-input", accept: "image/*", capture: "environment", multiple: true, class: "file-input", tabindex: "-1", "aria-hidden": "true" });
  const take = h("button", { type: "button", class: "big", id: "take-photo", onclick: () => input.click() }, t("takePhoto"));
  const show = () => {
    list.replaceChildren(...draft.photos.map((ph, i) => h("li", { dataset: { sha256: ph.sha256, width: ph.width, height: ph.height, size: ph.size } },
      thumbnail(ph.thumb, t("photoAlt", { n: i + 1 })),
      h("button", { type: "button", class: "remove-photo", "aria-label": t("removePhoto", { n: i + 1 }), onclick: () => {
        draft.photos = draft.photos.filter((x) => x !== ph);
        draft.message = "";
        show();
        take.focus();
      } }, `✕ ${t("remove")}`))));
    list.dataset.count = draft.photos.length;
    list.dataset.busy = String(!!draft.busy);
    count.textContent = draft.busy ? t("photoBusy") : t("photoCount", { n: draft.photos.length, max: MAX_PHOTOS_PER_VISIT });
    take.disabled = draft.photos.length >= MAX_PHOTOS_PER_VISIT;
    message.textContent = draft.message || "";
    message.className = draft.message ? "message error" : "message";
  };
  draft.render = show; // the screen drawn last shows what the photos being made become
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    draft.message = "";
    const work = (async () => {
      for (const file of files) {
        if (draft.photos.length >= MAX_PHOTOS_PER_VISIT) {
          draft.message = t("tooManyPhotos", { n: MAX_PHOTOS_PER_VISIT });
          break;
        }
        try {
          const photo = await makePhoto(file);
          if (draft.photos.some((x) => x.sha256 === photo.sha256)) draft.message = t("photoTwice");
          else draft.photos = [...draft.photos, photo];
        } catch (e) {
          draft.message = e instanceof PhotoError ? t(e.code) : `${t("photoUnreadable")} (${e.message})`;
        }
        draft.render?.();
      }
    })();
    const busy = Promise.all([draft.busy, work]).then(() => {
      if (draft.busy === busy) draft.busy = null;
      draft.render?.();
    });
    draft.busy = busy;
    show();
  });
  show();
  return h("section", { class: "stack photos", id: "photos" },
    h("div", { class: "photo-bar" }, take, count),
    needing.length ? h("p", { class: "help", id: "photo-needed" }, t("photoNeeded", { names: needing.map(indicatorName).join("、") })) : null,
    input, list, message);
}

/** A photo of a visit in its history: its thumbnail when the phone keeps one, and where it stands. */
function visitPhoto(ctx, ph, i) {
  const held = ctx.state.photos.get(ph.sha256);
  const where = ph.rejected ? "rejected" : held?.refused ? "refused" : held?.uploaded ? "uploaded" : held ? "waiting" : "elsewhere";
  const words = {
    rejected: () => h("span", { class: "photo-rejected" }, t("photoRejected", { reason: ph.rejected.reason })),
    refused: () => h("span", { class: "photo-rejected" }, t("photoRefusedUpload", { why: held.refused })),
    uploaded: () => h("span", { class: "pill done" }, t("photoUploaded")),
    waiting: () => h("span", { class: "pill pending" }, t("photoWaiting")),
    elsewhere: () => h("span", { class: "muted" }, t("photoNotKept")),
  };
  return h("li", { dataset: { sha256: ph.sha256, state: where } },
    held ? thumbnail(held.thumb, t("photoAlt", { n: i + 1 })) : null, words[where]());
}

export function placeScreen(ctx, code, placeId) {
  const { state } = ctx;
  const view = state.view(code);
  const p = view?.byId.get(placeId);
  if (!p) return h("p", { class: "empty" }, t(state.loaded ? "nothingHere" : "loading"));
  const rules = state.rules;
  const pending = state.pendingIds(code);
  const contact = (state.grids.get(code).record.contacts || []).find((c) => c.place_id === placeId);
  const message = h("p", { class: "message", role: "status", id: "visit-message" });
  const note = h("textarea", { id: "note", rows: 2, maxlength: 2000, "aria-label": t("note"), placeholder: t("note") });
  const gpsBox = h("input", { type: "checkbox", id: "gps", checked: ctx.gps.wanted() });
  const gpsState = h("span", { class: "muted", id: "gps-state" });
  const showFix = () => { gpsState.textContent = ctx.gps.describe(); };
  gpsBox.addEventListener("change", () => { ctx.gps.setWanted(gpsBox.checked); showFix(); });
  ctx.gps.onUpdate = showFix;
  showFix();

  const draft = ctx.photoDraft(code, placeId);
  const save = async (fields, button) => {
    const started = performance.now();
    for (const b of document.querySelectorAll("[data-quick], #save")) b.disabled = true;
    const text = note.value.trim();
    const fix = gpsBox.checked ? ctx.gps.fix() : null;
    try {
      // Photos still being shrunk go with the visit they were taken for.
      await draft.busy;
      const visit = await state.recordVisit(code, {
        place: placeId, ...fields,
        ...(text ? { note: text } : {}),
        ...(fix ? { lat: fix.lat, lon: fix.lon } : {}),
      }, draft.photos);
      performance.measure("doorstep:visit-durable", { start: started, end: performance.now() });
      draft.photos = [];
      ctx.saved(visit, code);
    } catch (err) {
      message.textContent = err instanceof StoreError && err.quota
        ? t("quota", { n: state.pendingCount() })
        : t("saveFailed") + err.message;
      message.className = "message error";
      for (const b of document.querySelectorAll("[data-quick], #save")) b.disabled = false;
    }
    button?.blur();
  };
  // A visit keeps what it delivered as `true` fields named by the deliveries' ids, as the document does.
  const flags = (ids) => Object.fromEntries(ids.map((id) => [id, true]));
  const deliveryName = (id) => named(rules.deliveries, id);
  const all = deliveriesForAll(rules, p.kind, view.rural);
  const quick = h("div", { class: "quick" },
    h("button", { type: "button", class: "big primary wide", dataset: { quick: "all" }, onclick: (e) => save({ outcome: "completed", ...flags(all) }, e.currentTarget) },
      `✓ ${t("quickAll")}`, h("small", {}, all.map(deliveryName).join(" + "))),
    ...[["nobody-home", "nobodyHome"], ["refused", "refusedOutcome"], ["gone", "goneOutcome"]].map(([outcome, key]) =>
      h("button", { type: "button", class: "big", dataset: { quick: outcome }, onclick: (e) => save({ outcome }, e.currentTarget) }, t(key))));

  const relevant = relevantDeliveries(rules, p.kind, view.rural);
  const boxes = relevant.map((id) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "delivery", value: id }), deliveryName(id)));
  const outcome = h("select", { id: "outcome", "aria-label": t("outcome") }, rules.outcomes.map((o) => h("option", { value: o.id }, named(rules.outcomes, o.id))));
  const details = h("details", { class: "details" },
    h("summary", {}, t("details")),
    h("div", { class: "stack" }, boxes, h("label", {}, t("outcome"), outcome),
      h("button", { type: "button", class: "big primary", id: "save", onclick: (e) => {
        const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
        if (rules.excluding_outcomes.includes(outcome.value) && chosen.length) {
          message.textContent = t("goneWithDeliveries");
          message.className = "message error";
          return;
        }
        save({ outcome: outcome.value, ...flags(chosen) }, e.currentTarget);
      } }, t("save"))));

  const chip = (id, ok) => h("span", { class: `pill ${ok ? "done" : "todo"}` }, `${ok ? "✓" : "○"} ${indicatorName(rules.indicators.find((i) => i.id === id))}`);
  const sentBack = rejectedPhotos(p);
  return h("section", { class: "stack", id: "place", dataset: { place: placeId, grid: code } },
    h("a", { class: "back", href: `#/grid/${encodeURIComponent(code)}` }, `‹ ${t("back")}`),
    h("h2", {}, p.label || p.id),
    h("div", { class: "muted" }, `${named(rules.place_kinds, p.kind)} · ${p.id}${p.address ? ` · ${p.address}` : ""}`),
    p.provisional ? h("p", { class: "notice", id: "provisional" }, t("provisionalHelp", { who: p.added_by || "" })) : null,
    contact && (contact.name || contact.phone)
      ? h("div", { class: "muted" }, `${t("contact")}: ${contact.name || ""} `, contact.phone ? h("a", { href: `tel:${contact.phone}` }, contact.phone) : null) : null,
    h("div", { class: "counts", id: "place-status" }, p.cov.excluded ? h("span", { class: "pill gone" }, t("gone")) : null,
      p.cov.reached.map((id) => chip(id, true)), p.cov.missing.map((id) => chip(id, false))),
    sentBack.length ? h("ul", { class: "notice photo-rejections", id: "photo-rejected" },
      sentBack.map((ph) => h("li", { dataset: { sha256: ph.sha256 } }, t("photoRejected", { reason: ph.rejected.reason })))) : null,
    talkingPoints(ctx),
    photoPicker(ctx, draft, photoIndicators(rules, p.kind, view.rural).filter((ind) => p.cov.missing.includes(ind.id))),
    quick,
    h("div", { class: "extras" }, note, h("label", { class: "check" }, gpsBox, t("attachGps")), gpsState),
    details, message,
    h("h3", {}, t("history")),
    p.visits.length
      ? h("ul", { class: "history", id: "history" }, p.visits.map((v) => h("li", { dataset: { visit: v.id, outcome: v.outcome, pending: pending.has(v.id) } },
        h("div", {}, h("strong", {}, named(rules.outcomes, v.outcome)), h("span", { class: "muted" }, ` ${formatTime(v.at)} · ${v.volunteer}`),
          pending.has(v.id) ? h("span", { class: "pill pending" }, t("unsynced")) : null),
        h("div", {}, visitDeliveries(rules, v).map(deliveryName).join(" + ")),
        v.note ? h("div", { class: "note" }, v.note) : null,
        v.lat != null ? h("div", { class: "muted" }, `GPS ${v.lat.toFixed(5)}, ${v.lon.toFixed(5)}`) : null,
        v.photos ? h("ul", { class: "photo-strip visit-photos" }, v.photos.map((ph, i) => visitPhoto(ctx, ph, i))) : null)))
      : h("p", { class: "empty", id: "history" }, t("noVisits")),
    h("h3", {}, t("corrections")),
    corrections(ctx, code, p));
}

export function taskScreen(ctx, id) {
  const { state } = ctx;
  const v = state.taskView(id);
  if (!v) return h("p", { class: "empty" }, t(state.loaded ? "nothingHere" : "loading"));
  const rules = state.rules;
  const i = v.info;
  const message = h("p", { class: "message", role: "status", id: "outcome-message" });
  const fail = (text) => {
    message.textContent = text;
    message.className = "message error";
  };
  const method = h("div", { class: "chips", role: "radiogroup", "aria-label": t("method") }, rules.contact_methods.map((m, n) =>
    h("label", { class: "chip check" }, h("input", { type: "radio", name: "method", value: m.id, checked: n === 0 }), named(rules.contact_methods, m.id))));
  const box = (name, label) => h("label", { class: "check" }, h("input", { type: "checkbox", name }), label);
  const reached = box("reached", t("reached"));
  const dissuaded = box("dissuaded", t("dissuaded"));
  const lost = box("money_lost", t("moneyLost"));
  const amount = h("input", { id: "amount", inputmode: "decimal", "aria-label": t("amount"), placeholder: t("amount") });
  const feedback = h("textarea", { id: "feedback", rows: 2, maxlength: 2000, "aria-label": t("feedback"), placeholder: t("feedback") });
  const gpsBox = h("input", { type: "checkbox", id: "gps", checked: ctx.gps.wanted() });
  gpsBox.addEventListener("change", () => ctx.gps.setWanted(gpsBox.checked));
  const checked = (label) => label.querySelector("input").checked;
  const save = h("button", { type: "button", class: "big primary", id: "save-outcome", onclick: async () => {
    const amountText = amount.value.trim();
    const fen = amountText ? parseYuan(amountText) : undefined;
    if (fen === null) return fail(t("badAmount"));
    const fields = {
      method: method.querySelector("input:checked").value,
      reached: checked(reached), dissuaded: checked(dissuaded), money_lost: checked(lost),
      ...(fen != null ? { amount_fen: fen } : {}),
      ...(feedback.value.trim() ? { feedback: feedback.value.trim() } : {}),
    };
    const problem = outcomeProblem(fields);
    if (problem) return fail(t(problem));
    const fix = gpsBox.checked ? ctx.gps.fix() : null;
    if (fix) Object.assign(fields, { lat: fix.lat, lon: fix.lon });
    save.disabled = true;
    try {
      await state.recordOutcome(id, fields);
      ctx.recorded(t(navigator.onLine ? "saved" : "savedPending"));
    } catch (err) {
      save.disabled = false;
      fail(err instanceof StoreError && err.quota ? t("quota", { n: state.pendingCount() }) : t("saveFailed") + err.message);
    }
  } }, t("saveOutcome"));
  const fact = (k, val) => (val ? [h("dt", {}, t(k)), h("dd", {}, val)] : null);
  return h("section", { class: "stack", id: "task", dataset: { task: id, state: v.state } },
    h("a", { class: "back", href: "#/" }, `‹ ${t("back")}`),
    h("div", { class: "counts" },
      h("span", { class: `pill priority-${i.priority}` }, named(rules.priorities, i.priority)),
      h("span", { class: "pill" }, named(rules.fraud_types, i.fraud_type)),
      h("span", { class: `pill ${v.state === "done" ? "done" : "todo"}` }, t(STATE_WORD[v.state]))),
    h("h2", {}, i.target_label),
    h("dl", { class: "facts" },
      fact("deadline", `${formatTime(i.deadline)}${v.state !== "done" && i.deadline < Date.now() ? ` · ${t("overdue")}` : ""}`),
      i.target_phone ? [h("dt", {}, t("phone")), h("dd", {}, h("a", { href: `tel:${i.target_phone}` }, i.target_phone))] : null,
      fact("address", i.target_address),
      i.place_id && i.grid && state.grids.has(i.grid)
        ? [h("dt", {}, t("place")), h("dd", {}, h("a", { href: `#/place/${encodeURIComponent(i.grid)}/${encodeURIComponent(i.place_id)}` }, state.view(i.grid).byId.get(i.place_id)?.label || i.place_id))]
        : fact("place", i.place_id),
      fact("instructions", i.instructions)),
    i.follow_up_at ? h("p", { class: "notice" }, `${t("followUp")}${i.follow_up_comment || ""}`) : null,
    h("h3", {}, t("saveOutcome")),
    method, reached, dissuaded, lost, amount, feedback,
    h("label", { class: "check" }, gpsBox, t("attachGps")),
    save, message,
    h("h3", {}, t("outcomes")),
    v.outcomes.length
      ? h("ul", { class: "history", id: "outcomes" }, v.outcomes.map((o) => h("li", { dataset: { outcome: o.id, reached: o.reached } },
        h("div", {}, h("strong", {}, named(rules.contact_methods, o.method)), h("span", { class: "muted" }, ` ${formatTime(o.at)} · ${o.volunteer}`)),
        h("div", {}, [o.reached ? t("reached") : `${t("reached")}: ${t("no")}`, o.dissuaded ? t("dissuaded") : null,
          o.money_lost ? `${t("moneyLost")}${o.amount_fen != null ? ` ${yuanText(o.amount_fen)}` : ""}` : null].filter(Boolean).join(" · ")),
        o.feedback ? h("div", { class: "note" }, o.feedback) : null)))
      : h("p", { class: "empty", id: "outcomes" }, t("noVisits")));
}

/** A bulletin's body: plain text lines, where `**bold**` and lines starting with `- ` are the only formatting. Every
 * piece goes in as text, never as HTML. */
export function bulletinBody(body) {
  const out = [];
  let list = null;
  for (const line of body.split(/\r?\n/)) {
    if (line.startsWith("- ")) {
      if (!list) out.push(list = h("ul", { class: "body-list" }));
      list.append(h("li", {}, inline(line.slice(2))));
      continue;
    }
    list = null;
    if (line.trim()) out.push(h("p", {}, inline(line)));
  }
  return h("div", { class: "bulletin-body" }, out);
}

/** `**bold**` pieces of a line; an unpaired `**` stays as it is. */
function inline(line) {
  const parts = line.split("**");
  if (parts.length % 2 === 0) parts.splice(-2, 2, `${parts.at(-2)}**${parts.at(-1)}`);
  return parts.map((p, i) => (i % 2 ? h("strong", {}, p) : p));
}

/** The current talking points (入户宣讲要点), newest first, folded until the volunteer opens them. */
function talkingPoints(ctx) {
  const points = ctx.state.talkingPoints();
  if (!points.length) return null;
  return h("details", { class: "details talking-points", id: "talking-points", dataset: { count: points.length } },
    h("summary", {}, `${t("talkingPoints")} (${points.length})`),
    h("div", { class: "stack" }, points.map((v) => h("article", { class: "talking-point", dataset: { bulletin: v.id } },
      h("h3", {}, v.notice.title), bulletinBody(v.notice.body)))));
}

/** Every current bulletin: unread first, urgent first, newest first. */
export function bulletinsScreen(ctx) {
  const all = ctx.state.bulletins();
  return h("section", { class: "stack", id: "bulletin-list" },
    h("a", { class: "back", href: "#/" }, `‹ ${t("back")}`),
    h("h2", {}, t("allBulletins")),
    all.length ? h("ul", { class: "cards" }, all.map((v) => bulletinCard(ctx, v))) : h("p", { class: "empty" }, t(ctx.state.loaded ? "noBulletins" : "loading")));
}

/** An attachment: an image shown inline, a PDF as a link that opens the stored file; each once downloaded and verified. */
function attachmentView(ctx, a) {
  const li = h("li", { class: "attachment", dataset: { sha256: a.sha256, type: a.type, stored: false } },
    h("div", { class: "muted" }, `${a.name} · ${Math.max(1, Math.round(a.size / 1024))} KB`),
    h("p", { class: "help waiting" }, t("attachmentWaiting")));
  storedAttachment(ctx.state, a.sha256).then(async (blob) => {
    if (!blob) return;
    const shown = a.type.startsWith("image/")
      ? h("img", { src: await dataUrl(blob), alt: a.name, class: "attachment-image" })
      : h("a", { class: "big button", href: ctx.objectUrl(blob), target: "_blank", rel: "noopener", dataset: { pdf: a.sha256 } }, `${t("openPdf")} · ${a.name}`);
    li.querySelector(".waiting").replaceWith(shown);
    li.dataset.stored = "true";
  }).catch(() => { /* not readable: it stays "not downloaded yet" */ });
  return li;
}

/** One bulletin: what it says, its attachments, and 已阅 (a receipt of this edition, durable before it says so). */
export function bulletinScreen(ctx, id) {
  const { state } = ctx;
  const v = state.bulletins().find((b) => b.id === id);
  if (!v) return h("p", { class: "empty" }, t(state.loaded ? "nothingHere" : "loading"));
  const n = v.notice;
  const receipt = receiptOf(v, state.device.username);
  const older = v.receipts.filter((r) => r.volunteer === state.device.username).sort((a, b) => b.edition - a.edition)[0];
  const message = h("p", { class: "message", role: "status", id: "read-message" });
  const button = h("button", { type: "button", class: "big primary", id: "mark-read", onclick: async () => {
    button.disabled = true;
    try {
      await state.markRead(id);
      ctx.markedRead(id);
    } catch (err) {
      button.disabled = false;
      message.textContent = notSaved(state, err);
      message.className = "message error";
    }
  } }, `✓ ${t("markRead")}`);
  return h("article", { class: "stack", id: "bulletin", dataset: { bulletin: id, read: v.read, edition: n.edition, priority: n.priority, pending: v.pending } },
    h("a", { class: "back", href: "#/" }, `‹ ${t("back")}`),
    h("div", { class: "counts" },
      n.priority === "urgent" ? h("span", { class: "pill priority-urgent" }, t("urgentBulletin")) : null,
      h("span", { class: "pill", id: "bulletin-kind" }, kindName(n.kind)),
      n.fraud_type ? h("span", { class: "pill", id: "bulletin-fraud-type" }, t("fraudTypeIs", { name: named(state.rules.fraud_types || [], n.fraud_type) })) : null,
      h("span", { class: "pill", id: "bulletin-edition" }, t("edition", { n: n.edition }))),
    h("h2", { id: "bulletin-title" }, n.title),
    // Read before a correction: read again.
    !v.read && older ? h("p", { class: "notice", id: "bulletin-corrected" }, t("readOlder", { n: older.edition })) : null,
    h("div", { class: "muted" }, `${t("published")} ${formatTime(n.published_at)}`, n.expires_at ? ` · ${t("expires")} ${formatTime(n.expires_at)}` : ""),
    bulletinBody(n.body),
    n.attachments.length ? [h("h3", {}, t("attachments")), h("ul", { class: "attachments", id: "attachments" }, n.attachments.map((a) => attachmentView(ctx, a)))] : null,
    v.read
      ? h("p", { class: "read-mark", id: "read-mark" }, `✓ ${t("readAt", { time: formatTime(receipt.read_at) })}`, v.pending ? h("span", { class: "pill pending" }, t("unsynced")) : null)
      : button,
    message);
}

export function settingsScreen(ctx) {
  const d = ctx.state.device;
  const row = (k, v) => [h("dt", {}, t(k)), h("dd", { dataset: { key: k } }, v ?? "—")];
  return h("section", { class: "stack" },
    h("a", { class: "back", href: "#/" }, `‹ ${t("back")}`),
    h("h2", {}, t("settings")),
    h("dl", { class: "facts" }, row("volunteer", d.username), row("team", d.team), row("server", d.server),
      row("device", d.device_id), row("signingKey", d.public_key ? `${d.public_key.slice(0, 16)}…` : t("noKey")),
      row("lastSync", d.last_sync ? formatTime(d.last_sync) : t("never")),
      row("pending", String(ctx.state.pendingCount()))),
    h("button", { type: "button", class: "big", id: "reenrol", onclick: () => {
      if (confirm(t("reenrolConfirm"))) ctx.go("#/enrol");
    } }, t("reenrol")));
}
