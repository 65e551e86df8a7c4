// The app's words in Chinese (the default) and English. Place kinds and outcomes take their Chinese names from
// the server's rules table, so they are written once; their English names are the ids made readable.

const TEXT = {
  zh: {
    appName: "入户宣传", langSwitch: "EN", online: "在线", offline: "离线",
    enrolTitle: "登记本机", enrolHelp: "在有网络时登记一次。之后没有信号也能记录走访，回到有网络的地方再同步。",
    username: "用户名", password: "密码", deviceName: "设备名称", deviceNameDefault: "手机", enrol: "登记",
    enrolling: "正在登记…", enrolled: "已登记，正在下载本队的网格…",
    myGrids: "我的网格", noGrids: "本机还没有网格。请在有网络时点“同步”。", toDo: "未完成", revisitShort: "需回访",
    places: "个点位", pending: "待同步", sync: "同步", syncing: "正在同步…", lastSync: "上次同步",
    never: "从未", synced: "同步完成", syncFailed: "同步失败：", unreachable: "连不上服务器，走访都保存在本机，有网络时会自动同步。",
    refused: "服务器拒绝了本机：", reenrolHint: "请联系办公室后重新登记（未同步的走访会保留）。",
    search: "搜索名称、编号或地址", filterAll: "全部", filterTodo: "未完成", filterRevisit: "需回访",
    nothingHere: "没有符合条件的点位。", done: "已完成", gone: "已不存在（不计入）", visits: "次走访",
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
    yes: "是", no: "否", place: "点位", carried: "条走访来自上次登记，将在同步时上传",
    handbook: "手册", briefed: "讲解", poster: "海报", banner: "横幅", led_playing: "LED在播",
    you: "本机", unsynced: "待同步",
  },
  en: {
    appName: "Doorstep", langSwitch: "中", online: "Online", offline: "Offline",
    enrolTitle: "Enrol this phone", enrolHelp: "Enrol once while online. Then record visits with no signal and sync when you are back in range.",
    username: "Username", password: "Password", deviceName: "Device name", deviceNameDefault: "phone", enrol: "Enrol",
    enrolling: "Enrolling…", enrolled: "Enrolled; downloading your team's grids…",
    myGrids: "My grids", noGrids: "No grids on this phone yet. Tap “Sync” while online.", toDo: "to do", revisitShort: "revisit",
    places: "places", pending: "to sync", sync: "Sync", syncing: "Syncing…", lastSync: "Last sync",
    never: "never", synced: "Synced", syncFailed: "Sync failed: ", unreachable: "Cannot reach the server. Every visit is kept on this phone and syncs by itself once online.",
    refused: "The server refused this phone: ", reenrolHint: "Ask the office, then enrol again (unsynced visits are kept).",
    search: "Search name, id or address", filterAll: "All", filterTodo: "Not yet reached", filterRevisit: "Needs a revisit",
    nothingHere: "No places match.", done: "Done", gone: "Gone (not counted)", visits: "visits",
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
    yes: "Yes", no: "No", place: "Place", carried: "visits from the earlier enrolment go out with the next sync",
    handbook: "Handbook", briefed: "Briefed", poster: "Poster", banner: "Banner", led_playing: "LED playing",
    you: "this phone", unsynced: "to sync",
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

/** A place kind or outcome by its id: the rules table's Chinese name, or the id made readable in English. */
export function named(list, id) {
  if (lang === "zh") return list.find((n) => n.id === id)?.zh ?? id;
  return readable(id);
}

export const indicatorName = (ind) => (lang === "zh" ? ind.name_zh : ind.name_en);

export function formatTime(ms) {
  return new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
