// The app's words in Chinese (the default) and English. The campaign's place kinds, deliveries and indicators
// take both names from the server's rules table, and the outcomes and the urgent tasks' enumerations their
// Chinese names, so each is written once; those with no English name there show their id made readable.

const TEXT = {
  zh: {
    appName: "入户宣传", langSwitch: "EN", online: "在线", offline: "离线",
    enrolCodeTitle: "扫码登记本机", enrolCodeHelp: "这是发给您本人的一次性登记码。点“登记”即可，无需输入用户名和密码。",
    enrolCode: "登记码：", enrolWithPassword: "改用用户名和密码登记",
    enrolSharedHelp: "这是全队共用的登记码：点选您的名字，再点“登记”，无需输入用户名和密码。",
    enrolLooking: "正在查看登记码…", enrolAs: "登记为：", enrolChooseName: "{team}：请点选您的名字",
    enrolment_choose_member: "这是全队共用的登记码：请先点选您的名字。",
    enrolment_not_a_member: "这个登记码不能登记这个名字：请点选本队的志愿者。",
    enrolment_code_unknown: "这个登记码无效：请核对，或向队长、办公室索取新的登记表。",
    enrolment_code_used: "这个登记码已经用过了：每个码只能登记一部手机。请向队长或办公室索取新码。",
    enrolment_code_withdrawn: "这个登记码已作废：请用最新的登记表，或向队长、办公室索取。",
    enrolment_code_expired: "这个登记码已过期：请向队长或办公室索取新码。",
    account_disabled: "这个账号已停用，请联系办公室。",
    enrolTitle: "登记本机", enrolHelp: "在有网络时登记一次。之后没有信号也能记录走访，回到有网络的地方再同步。",
    caTitle: "安装本系统证书（每部手机一次）", caHelp: "在没有网络的驻地，手机通过队长的中转设备（HTTPS）使用本应用。为此每部手机需安装一次本系统的证书，它只对内网地址有效。",
    caDownload: "下载证书", caCheck: "安装前请核对证书名称和 SHA-256 指纹与队长或办公室公布的一致：",
    username: "用户名", password: "密码", deviceName: "设备名称", deviceNameDefault: "手机", enrol: "登记",
    enrolling: "正在登记…", enrolled: "已登记，正在下载本队的网格…",
    myGrids: "我的网格", noGrids: "本机还没有网格。请在有网络时点“同步”。", toDo: "未完成", revisitShort: "需回访",
    places: "个点位", pending: "待同步", sync: "同步", syncing: "正在同步…", lastSync: "上次同步",
    never: "从未", synced: "同步完成", syncFailed: "同步失败：", unreachable: "连不上服务器，走访都保存在本机，有网络时会自动同步。",
    refused: "服务器拒绝了本机：", reenrolHint: "请联系办公室后重新登记（未同步的走访会保留）。",
    clockHint: "手机的日期或时间不对：请把日期、时间和时区设对，然后重新登记（未同步的走访会保留，并按登记时的时间重新记录）。",
    search: "搜索名称、编号或地址", filterAll: "全部", filterTodo: "未完成", filterRevisit: "需回访",
    nothingHere: "没有符合条件的点位。", newKind: "新类型：同步后显示要做的事", done: "已完成", gone: "已不存在（不计入）", visits: "次走访",
    back: "返回", history: "走访记录", noVisits: "还没有走访记录。", contact: "联系人",
    quickAll: "全部完成", quickAllHelp: "送达并讲解：", nobodyHome: "无人在家", refusedOutcome: "拒绝", goneOutcome: "已不存在",
    details: "选择送达内容", outcome: "结果", note: "备注（可选）", attachGps: "附上位置（GPS）", save: "保存走访",
    gpsWaiting: "正在定位…", gpsOk: "已定位", gpsDenied: "无法定位：", saved: "已保存", savedPending: "已保存，待同步",
    quota: "手机存储空间已满，这次走访没有保存。之前记录的 {n} 条走访都还在。请先同步，或清理手机空间后再试。",
    saveFailed: "保存失败，这次走访没有保存：", goneWithDeliveries: "已不存在的点位不能同时记录送达内容。",
    settings: "设置", volunteer: "志愿者", team: "队伍", server: "服务器", device: "设备编号",
    reenrol: "重新登记", reenrolConfirm: "重新登记本机？未同步的走访会保留，并在下次同步时上传。",
    otherTab: "本应用已在另一个标签页中打开，请使用那个标签页。", loading: "正在打开…",
    needsHttps: "此页面需要通过 HTTPS 打开才能离线使用。", startError: "应用无法启动：",
    enrolOffline: "连不上服务器。请在有网络时登记。", wrongPassword: "用户名或密码错误。",
    urgent: "紧急任务", deadline: "期限", overdue: "已超时", person: "对象", phone: "电话", address: "地址",
    instructions: "要求", followUp: "办公室要求跟进：", taskNew: "新任务", taskOpened: "已查看", taskAttempted: "未联系上",
    taskDone: "已劝阻/已联系", outcomes: "处置记录", method: "方式", reached: "联系上本人", dissuaded: "已劝阻",
    moneyLost: "已有资金损失", amount: "损失金额（元，可选）", feedback: "反馈（可选）", saveOutcome: "保存处置结果",
    badAmount: "金额应为数字，例如 5000 或 1234.50。", notReachedDissuaded: "未联系上本人，就不能记为已劝阻。",
    notReachedMoney: "只有联系上本人，才能知道是否有资金损失。", amountWithoutLoss: "填写损失金额时，请勾选“已有资金损失”。",
    yes: "是", no: "否", place: "点位", carried: "条记录来自上次登记，将在同步时上传",
    you: "本机", unsynced: "待同步",
    syncedHub: "已与中转设备同步。{n} 条记录尚未到达服务器，中转设备联网后会转发。",
    carriedTasks: "条紧急任务记录来自上次登记，将在同步时上传",
    needsHttpsKey: "本机在此地址无法生成签名密钥。请通过 HTTPS 地址打开本应用后再登记。",
    noEd25519: "此浏览器不支持 Ed25519 签名，无法登记。请更新浏览器（Chrome 137、Safari 17、Firefox 129 或更新版本）。",
    signingKey: "签名密钥", noKey: "无（请重新登记以便通过中转设备同步）",
    addPlace: "新增点位", addPlaceTitle: "新增实地发现的点位",
    addPlaceHelp: "登记册里没有的户、门店等。保存后立即计入本机进度，同步后由办公室审核。",
    kind: "类型", label: "名称", addressOptional: "地址（可选）", savePlace: "保存点位",
    placeSaved: "点位已保存，待办公室审核", labelRequired: "请填写名称。", tooLong: "{what}太长（最多 {n} 字节）。",
    provisional: "待审核", provisionalHelp: "实地发现的点位（{who}），等待办公室审核。",
    corrections: "更正", correct: "提出更正", correctHelp: "名称或地址有误？填写正确的内容，办公室审核后更新。",
    newLabel: "正确的名称", newAddress: "正确的地址", saveCorrection: "提交更正",
    correctionNeedsText: "请填写正确的名称或地址。", correctionSaved: "更正已保存，待办公室审核",
    reviewConfirmed: "已采纳", reviewRejected: "未采纳",
    notSaved: "保存失败，这条记录没有保存：",
    quotaRecord: "手机存储空间已满，这条记录没有保存。之前记录的 {n} 条都还在。请先同步，或清理手机空间后再试。",
    bulletins: "通报", allBulletins: "全部通报", noBulletins: "本机还没有通报。", unreadCount: "未读 {n}",
    urgentBulletin: "紧急通报", bulletinUnread: "未读", bulletinRead: "已阅", edition: "第 {n} 版",
    corrected: "已更正", published: "发布", expires: "有效期至", attachments: "附件",
    markRead: "已阅", markedRead: "已阅，待同步", markedReadSynced: "已阅", readAt: "已阅于 {time}",
    attachmentWaiting: "附件尚未下载，同步后会自动下载", openPdf: "打开 PDF",
    talkingPoints: "宣讲要点", fraudTypeIs: "诈骗类型：{name}", readOlder: "此通报已更正：您读过第 {n} 版，请重新阅读后点“已阅”。",
    kind_fraud_method: "诈骗手法", kind_reminder: "提醒", kind_template: "宣传资料模板", kind_talking_points: "入户宣讲要点",
    takePhoto: "拍照", photoCount: "{n}/{max} 张", removePhoto: "删除第 {n} 张照片", remove: "删除",
    photoBusy: "正在处理照片…", photoNeeded: "需要照片才算完成：{names}", tooManyPhotos: "每次走访最多 {n} 张照片。",
    photoUnreadable: "无法读取这张照片，请重拍。", photoTooBig: "这张照片太大，无法保存，请重拍。",
    photoNeedsHttps: "此地址无法处理照片：请通过 HTTPS 地址打开本应用。", photoTwice: "这张照片已经加入了。",
    photosWaiting: "{n} 张照片待上传（{size}）", photoWaiting: "待上传", photoUploaded: "已上传",
    photoRefusedUpload: "服务器未接收这张照片：{why}", photoRejected: "照片被退回：{reason}", photoRejectedShort: "照片被退回",
    photoAlt: "走访照片 {n}", photoNotKept: "照片（本机未保存）",
  },
  en: {
    appName: "Doorstep", langSwitch: "中", online: "Online", offline: "Offline",
    enrolCodeTitle: "Enrol this phone with your code", enrolCodeHelp: "This one-time code was issued to you. Tap Enrol: no username or password needed.",
    enrolCode: "Code:", enrolWithPassword: "Enrol with a username and password instead",
    enrolSharedHelp: "This code is shared by your team: tap your name, then Enrol. No username or password needed.",
    enrolLooking: "Reading the code…", enrolAs: "Enrolling as:", enrolChooseName: "{team}: tap your name",
    enrolment_choose_member: "This code is shared by a team: tap your name first.",
    enrolment_not_a_member: "This code does not enrol that name: tap a volunteer of its team.",
    enrolment_code_unknown: "This enrolment code is not known: check it, or ask your lead or the office for a new sheet.",
    enrolment_code_used: "This enrolment code was used already: each code enrols one phone. Ask your lead or the office for a new one.",
    enrolment_code_withdrawn: "This enrolment code was withdrawn: use the newest sheet, or ask your lead or the office.",
    enrolment_code_expired: "This enrolment code has expired: ask your lead or the office for a new one.",
    account_disabled: "This account is disabled; ask the office.",
    enrolTitle: "Enrol this phone", enrolHelp: "Enrol once while online. Then record visits with no signal and sync when you are back in range.",
    caTitle: "Install the certificate (once per phone)", caHelp: "At a base without internet, phones use this app through the team lead's hub over HTTPS. For that, install this certificate once on each phone; it is valid for local network addresses only.",
    caDownload: "Download the certificate", caCheck: "Before installing, check that its name and SHA-256 fingerprint match those the lead or the office shows:",
    username: "Username", password: "Password", deviceName: "Device name", deviceNameDefault: "phone", enrol: "Enrol",
    enrolling: "Enrolling…", enrolled: "Enrolled; downloading your team's grids…",
    myGrids: "My grids", noGrids: "No grids on this phone yet. Tap “Sync” while online.", toDo: "to do", revisitShort: "revisit",
    places: "places", pending: "to sync", sync: "Sync", syncing: "Syncing…", lastSync: "Last sync",
    never: "never", synced: "Synced", syncFailed: "Sync failed: ", unreachable: "Cannot reach the server. Every visit is kept on this phone and syncs by itself once online.",
    refused: "The server refused this phone: ", reenrolHint: "Ask the office, then enrol again (unsynced visits are kept).",
    clockHint: "The phone's date or time is wrong: set its date, time and time zone right, then enrol again (unsynced visits are kept and recorded again at that time).",
    search: "Search name, id or address", filterAll: "All", filterTodo: "Not yet reached", filterRevisit: "Needs a revisit",
    nothingHere: "No places match.", newKind: "New kind: sync to see what to do", done: "Done", gone: "Gone (not counted)", visits: "visits",
    back: "Back", history: "Visits", noVisits: "No visits yet.", contact: "Contact",
    quickAll: "All done", quickAllHelp: "Delivered and briefed: ", nobodyHome: "Nobody home", refusedOutcome: "Refused", goneOutcome: "Gone",
    details: "Choose what was delivered", outcome: "Outcome", note: "Note (optional)", attachGps: "Attach location (GPS)", save: "Save visit",
    gpsWaiting: "Locating…", gpsOk: "Located", gpsDenied: "No location: ", saved: "Saved", savedPending: "Saved, waiting to sync",
    quota: "The phone's storage is full: this visit was NOT saved. The {n} visits recorded before are safe. Sync first, or free some space, then try again.",
    saveFailed: "Saving failed; this visit was not saved: ", goneWithDeliveries: "A place that is gone cannot also have received materials.",
    settings: "Settings", volunteer: "Volunteer", team: "Team", server: "Server", device: "Device id",
    reenrol: "Enrol again", reenrolConfirm: "Enrol this phone again? Unsynced visits are kept and go out with the next sync.",
    otherTab: "The app is already open in another tab; use that one.", loading: "Opening…",
    needsHttps: "Open this page over HTTPS to use it offline.", startError: "The app cannot start: ",
    enrolOffline: "Cannot reach the server. Enrol while online.", wrongPassword: "Wrong username or password.",
    urgent: "Urgent tasks", deadline: "Deadline", overdue: "Overdue", person: "Person", phone: "Phone", address: "Address",
    instructions: "Instructions", followUp: "The office asks for a follow-up: ", taskNew: "New", taskOpened: "Opened", taskAttempted: "Not reached yet",
    taskDone: "Reached", outcomes: "What was done", method: "Method", reached: "Reached the person", dissuaded: "Dissuaded",
    moneyLost: "Money already lost", amount: "Amount lost (yuan, optional)", feedback: "Feedback (optional)", saveOutcome: "Save the outcome",
    badAmount: "The amount is a number such as 5000 or 1234.50.", notReachedDissuaded: "A person who was not reached cannot have been dissuaded.",
    notReachedMoney: "Whether money was lost is known only when the person was reached.", amountWithoutLoss: "An amount lost needs “Money already lost”.",
    yes: "Yes", no: "No", place: "Place", carried: "records from the earlier enrolment go out with the next sync",
    you: "this phone", unsynced: "to sync",
    syncedHub: "Synced with the hub. {n} records are not at the server yet; the hub forwards them once online.",
    carriedTasks: "urgent task records from the earlier enrolment go out with the next sync",
    needsHttpsKey: "This phone cannot create its signing key at this address. Open the app at its HTTPS address, then enrol.",
    noEd25519: "This browser cannot sign (no Ed25519 in WebCrypto), so it cannot enrol. Update it (Chrome 137, Safari 17, Firefox 129 or later).",
    signingKey: "Signing key", noKey: "none (enrol again to sync through a hub)",
    addPlace: "Add a place", addPlaceTitle: "A place found in the field",
    addPlaceHelp: "A household, shop… the registry lacks. It counts on this phone at once; the office reviews it once synced.",
    kind: "Kind", label: "Name", addressOptional: "Address (optional)", savePlace: "Save the place",
    placeSaved: "Place saved; it awaits the office's review", labelRequired: "Give the place a name.", tooLong: "{what} is too long (at most {n} bytes).",
    provisional: "awaiting review", provisionalHelp: "Found in the field ({who}); it awaits the office's review.",
    corrections: "Corrections", correct: "Propose a correction", correctHelp: "Wrong name or address? Give the right one; the office reviews it.",
    newLabel: "Correct name", newAddress: "Correct address", saveCorrection: "Send the correction",
    correctionNeedsText: "Give the correct name, address or both.", correctionSaved: "Correction saved; it awaits the office's review",
    reviewConfirmed: "accepted", reviewRejected: "not accepted",
    notSaved: "Saving failed; this was not saved: ",
    quotaRecord: "The phone's storage is full: this was NOT saved. The {n} records before are safe. Sync first, or free some space, then try again.",
    bulletins: "Bulletins", allBulletins: "All bulletins", noBulletins: "No bulletins on this phone yet.", unreadCount: "{n} unread",
    urgentBulletin: "Urgent bulletin", bulletinUnread: "unread", bulletinRead: "read", edition: "edition {n}",
    corrected: "corrected", published: "Published", expires: "Valid until", attachments: "Attachments",
    markRead: "Mark read", markedRead: "Marked read; waiting to sync", markedReadSynced: "Marked read", readAt: "Read {time}",
    attachmentWaiting: "Not downloaded yet; it downloads by itself after a sync", openPdf: "Open the PDF",
    talkingPoints: "Talking points", fraudTypeIs: "Fraud type: {name}", readOlder: "This bulletin was corrected: you read edition {n}; read it again, then tap Mark read.",
    kind_fraud_method: "Fraud method", kind_reminder: "Reminder", kind_template: "Material template", kind_talking_points: "Talking points",
    takePhoto: "Take photo", photoCount: "{n}/{max}", removePhoto: "Remove photo {n}", remove: "Remove",
    photoBusy: "Processing the photo…", photoNeeded: "A photo is needed to count: {names}", tooManyPhotos: "At most {n} photos per visit.",
    photoUnreadable: "This picture cannot be read; take it again.", photoTooBig: "This picture is too big to keep; take it again.",
    photoNeedsHttps: "Photos cannot be made at this address: open the app at its HTTPS address.", photoTwice: "This photo is added already.",
    photosWaiting: "{n} photos to upload ({size})", photoWaiting: "to upload", photoUploaded: "uploaded",
    photoRefusedUpload: "The server did not accept this photo: {why}", photoRejected: "Photo sent back: {reason}", photoRejectedShort: "photo sent back",
    photoAlt: "Visit photo {n}", photoNotKept: "photo (not kept on this phone)",
  },
};

let lang = "zh";

export function setLang(l) {
  lang = TEXT[l] ? l : "zh";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

export const getLang = () => lang;

/** The word for `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const s = TEXT[lang][key] ?? TEXT.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

const readable = (id) => id.replace(/[_-]/g, " ").replace(/^./, (c) => c.toUpperCase());

/**
 * A place kind, delivery, outcome… by its id, as the rules table's `list` names it in the app's language. In
 * English, entries with no English name there (outcomes, the tasks' enumerations) and ids the list lacks (a
 * kind an earlier campaign had) show the id made readable; in Chinese, an id the list lacks shows as it is.
 */
export function named(list, id) {
  const n = list.find((x) => x.id === id);
  if (lang === "zh") return n?.zh ?? id;
  return n?.en ?? readable(id);
}

export const indicatorName = (ind) => (lang === "zh" ? ind.name_zh : ind.name_en);

/** A size in bytes as the screens show it: KB, or MB past one. */
export function formatSize(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

export function formatTime(ms) {
  return new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
