//! The liaison roster, monthly submissions and situation reports through the real server and CLI: each role's
//! rights and refusals (a village cadre is a viewer scoped to their village), phone masking, the roster's deadline
//! and who has not filed, the XLSX export read back, pre-filled figures equal to the monthly report's, on time and
//! late submissions, situation reports with their unread count, and the audit of every write.

mod common;
use chrono::Datelike;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
P1,household,一号,G1,一组,V1,龙凤村,village,T1,青山镇
P2,household,二号,G1,一组,V1,龙凤村,village,T1,青山镇
P3,shop,三号,G1,一组,V1,龙凤村,village,T1,青山镇
P4,household,四号,G2,二组,C1,新街社区,community,T1,青山镇
P5,household,五号,G2,二组,C1,新街社区,community,T1,青山镇
";

const V1_LEADER_PHONE: &str = "13812341234";

struct World {
    _tmp: tempfile::TempDir,
    town: Town,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let town = town(tmp.path(), TERRITORY);
        World::with(tmp, town)
    }

    /// The users and teams of the tests, in a town already imported.
    fn with(tmp: tempfile::TempDir, town: Town) -> World {
        let office = &town.office;
        ok(office, &["team", "create", "t"], None);
        ok(office, &["assign", "G1", "--team", "t"], None);
        ok(office, &["assign", "G2", "--team", "t"], None);
        for (user, role, extra) in [
            ("cadre-v1", "viewer", ["--area", "V1"]),
            ("cadre-c1", "viewer", ["--area", "C1"]),
            ("town-viewer", "viewer", ["--area", "T1"]),
            ("vol", "volunteer", ["--team", "t"]),
            ("lead", "lead", ["--team", "t"]),
        ] {
            let args = [&["user", "create", user, "--role", role][..], &extra[..], &["--password-stdin"]].concat();
            ok(office, &args, Some(&pw()));
        }
        World { _tmp: tmp, town, rt: tokio::runtime::Runtime::new().unwrap(), http: reqwest::Client::new() }
    }

    fn dir(&self) -> &Path {
        self._tmp.path()
    }

    fn token(&self, user: &str) -> String {
        let (status, body) =
            self.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": user, "password": PASSWORD})));
        assert_eq!(status, 200, "login {user}: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self.http.request(method, format!("{}{path}", self.town.server.url));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        })
    }

    fn get(&self, token: &str, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, Some(token), None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(token), Some(body))
    }

    fn bytes(&self, token: &str, path: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let resp =
                self.http.get(format!("{}{path}", self.town.server.url)).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            resp.bytes().await.unwrap().to_vec()
        })
    }
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn entries_v1() -> Value {
    json!({"entries": [
        {"duty": "leader", "name": "张三", "unit": "龙凤村委会", "post": "副书记", "phone": V1_LEADER_PHONE, "note": "分管平安建设"},
        {"duty": "liaison", "name": "李四", "unit": "龙凤村委会", "post": "综治专干", "phone": "13900005678"},
        {"duty": "liaison", "name": "王五", "unit": "龙凤村小学", "post": "教导主任", "phone": "0571-8888-6666"},
    ]})
}

fn area<'a>(roster: &'a Value, code: &str) -> Option<&'a Value> {
    roster["areas"].as_array().unwrap().iter().find(|a| a["area"] == code)
}

fn phones(roster: &Value, code: &str) -> Vec<String> {
    area(roster, code).unwrap()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phone"].as_str().unwrap().into())
        .collect()
}

/// The month in the server's default local time (+08:00), and the one before it.
fn this_and_previous_month() -> (String, String) {
    let now = chrono::Utc::now() + chrono::Duration::hours(8);
    let first = now.date_naive().with_day0(0).unwrap();
    let previous = first.checked_sub_months(chrono::Months::new(1)).unwrap();
    (first.format("%Y-%m").to_string(), previous.format("%Y-%m").to_string())
}

#[test]
fn roster_rights_masking_deadline_and_export() {
    let w = World::new();
    let (office, v1, c1, town_viewer) =
        (w.token("office"), w.token("cadre-v1"), w.token("cadre-c1"), w.token("town-viewer"));
    let (vol, lead) = (w.token("vol"), w.token("lead"));

    // Before anyone files: both units are missing both duties.
    let roster = w.get(&office, "/api/v1/roster");
    assert_eq!(roster["not_filed"], json!(["C1", "V1"]));
    assert_eq!(area(&roster, "V1").unwrap()["missing"], json!(["leader", "liaison"]));

    // The cadre files their own village's roster.
    let (status, body) = w.post(&v1, "/api/v1/roster/areas/V1", entries_v1());
    assert_eq!(status, 200, "{body}");
    assert_eq!(area(&body, "V1").unwrap()["entries"].as_array().unwrap().len(), 3);
    assert_eq!(body["not_filed"], json!([]), "a cadre of V1 reads V1 only: {body}");

    // Not another village's, and volunteers and leads not at all; nothing is written.
    let (status, body) = w.post(&v1, "/api/v1/roster/areas/C1", entries_v1());
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("your own area (V1)"), "{body}");
    for token in [&vol, &lead] {
        assert_eq!(w.call(Method::GET, "/api/v1/roster", Some(token), None).0, 403);
        assert_eq!(w.post(token, "/api/v1/roster/areas/V1", entries_v1()).0, 403);
    }
    let roster = w.get(&office, "/api/v1/roster");
    assert!(area(&roster, "C1").unwrap()["entries"].as_array().unwrap().is_empty());
    assert_eq!(roster["not_filed"], json!(["C1"]));

    // Bad input is refused with the entry and field named, and changes nothing.
    let bad =
        json!({"entries": [{"duty": "leader", "name": "赵六", "unit": "村委", "post": "主任", "phone": "call me"}]});
    let (status, body) = w.post(&v1, "/api/v1/roster/areas/V1", bad);
    assert_eq!(status, 400);
    assert!(message(&body).contains("entry 1: phone \"call me\""), "{body}");
    let bad = json!({"entries": [{"duty": "boss", "name": "赵六", "unit": "村委", "post": "主任", "phone": "110"}]});
    assert!(message(&w.post(&v1, "/api/v1/roster/areas/V1", bad).1).contains("duty \"boss\""));
    assert_eq!(w.post(&office, "/api/v1/roster/areas/G1", entries_v1()).0, 400, "a grid names no roster");
    assert_eq!(w.post(&office, "/api/v1/roster/areas/NOPE", entries_v1()).0, 404);
    assert_eq!(phones(&w.get(&office, "/api/v1/roster"), "V1").len(), 3);

    // The office writes any area's roster.
    let c1_entries = json!({"entries": [
        {"duty": "leader", "name": "陈七", "unit": "新街社区居委会", "post": "主任", "phone": "13700001111"},
        {"duty": "liaison", "name": "周八", "unit": "新街社区居委会", "post": "网格长", "phone": "13700002222"},
    ]});
    assert_eq!(w.post(&office, "/api/v1/roster/areas/C1", c1_entries).0, 200);

    // Phones: in full for the office and the area's own cadre; masked for a town's viewer; and a cadre does not
    // see another village's roster at all.
    assert_eq!(phones(&w.get(&office, "/api/v1/roster"), "V1")[0], V1_LEADER_PHONE);
    assert_eq!(phones(&w.get(&v1, "/api/v1/roster"), "V1")[0], V1_LEADER_PHONE);
    assert!(area(&w.get(&v1, "/api/v1/roster"), "C1").is_none());
    let seen = w.get(&town_viewer, "/api/v1/roster");
    assert_eq!(phones(&seen, "V1"), ["138****1234", "139****5678", "057****6666"]);
    assert_eq!(phones(&seen, "C1"), ["137****1111", "137****2222"]);
    assert_eq!(area(&seen, "V1").unwrap()["entries"][0]["phone_masked"], true);
    assert_eq!(area(&seen, "V1").unwrap()["writable"], false);
    assert_eq!(phones(&w.get(&c1, "/api/v1/roster"), "C1")[0], "13700001111");
    let town_sheet = w.bytes(&town_viewer, "/api/v1/roster/export.xlsx");
    let town_cells = read_rows(&town_sheet).concat().join("|");
    assert!(town_cells.contains("138****1234") && !town_cells.contains(V1_LEADER_PHONE), "{town_cells}");

    // The deadline: the office's to set; a past one marks the unfiled as late.
    let (status, _) = w.post(&v1, "/api/v1/roster/deadline", json!({"deadline": "2026-12-31"}));
    assert_eq!(status, 403);
    let (status, body) = w.post(&office, "/api/v1/roster/deadline", json!({"deadline": "31/12/2026"}));
    assert_eq!(status, 400);
    assert!(message(&body).contains("YYYY-MM-DD"), "{body}");
    assert_eq!(w.get(&office, "/api/v1/roster")["deadline"], Value::Null);
    let (status, body) = w.post(&office, "/api/v1/roster/deadline", json!({"deadline": "2000-01-31"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["deadline"].as_str(), body["past_deadline"].as_bool()), (Some("2000-01-31"), Some(true)));
    let soon = ((chrono::Utc::now() + chrono::Duration::hours(8)).date_naive() + chrono::Days::new(30)).to_string();
    ok(&w.town.office, &["roster", "deadline", &soon], None);
    let err = fails(&w.town.office, &["roster", "deadline", "2200-01-01"], None);
    assert!(err.contains("more than a year away"), "{err}");
    let roster = w.get(&office, "/api/v1/roster");
    assert_eq!((roster["deadline"].as_str(), roster["past_deadline"].as_bool()), (Some(soon.as_str()), Some(false)));

    // The export, read back: the seed's title row and columns, grouped by village and unit, phones in full.
    let file = w.dir().join("roster.xlsx");
    ok(&w.town.office, &["roster", "export", "--output", file.to_str().unwrap()], None);
    let rows = read_rows(&std::fs::read(&file).unwrap());
    assert!(rows[0][0].contains("青山镇") && rows[0][0].contains("联络员名单"), "{:?}", rows[0]);
    assert_eq!(rows[1], ["姓名", "职务", "联系电话", "备注"]);
    let expected: Vec<Vec<&str>> = vec![
        vec!["新街社区", "", "", ""],
        vec!["新街社区居委会", "", "", ""],
        vec!["陈七", "分管领导（主任）", "13700001111", ""],
        vec!["周八", "联络员（网格长）", "13700002222", ""],
        vec!["龙凤村", "", "", ""],
        vec!["龙凤村委会", "", "", ""],
        vec!["张三", "分管领导（副书记）", V1_LEADER_PHONE, "分管平安建设"],
        vec!["李四", "联络员（综治专干）", "13900005678", ""],
        vec!["龙凤村小学", "", "", ""],
        vec!["王五", "联络员（教导主任）", "0571-8888-6666", ""],
    ];
    assert_eq!(rows[2..], expected);

    // The CLI shows the same, as the office reads it.
    let shown: Value =
        serde_json::from_str(&ok(&w.town.office, &["roster", "show", "--format", "json"], None)).unwrap();
    assert_eq!(phones(&shown, "V1")[0], V1_LEADER_PHONE);
    let table = ok(&w.town.office, &["roster", "show"], None);
    assert!(table.contains("张三") && table.contains("13700002222"), "{table}");

    // Every write audited, without the phones.
    let events = w.get(&office, "/api/v1/audit?action=roster");
    let details: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(details.len(), 4, "{details:?}");
    assert!(details.iter().any(|d| d.starts_with("V1 龙凤村: 3 entries (leader 张三")), "{details:?}");
    assert!(details.iter().all(|d| !d.contains(V1_LEADER_PHONE)), "{details:?}");
    let users: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["username"].as_str().unwrap()).collect();
    assert_eq!(users[0], "cadre-v1");
}

/// A workbook's first sheet as text rows, padded to four columns.
fn read_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|r| {
            let mut cells: Vec<String> = r.iter().map(|c| c.to_string()).collect();
            cells.resize(4, String::new());
            cells
        })
        .collect()
}

#[test]
fn submissions_figures_deadlines_and_situations() {
    let w = World::new();
    let (office, v1, c1, town_viewer) =
        (w.token("office"), w.token("cadre-v1"), w.token("cadre-c1"), w.token("town-viewer"));
    let vol_token = w.token("vol");
    let (month, previous) = this_and_previous_month();

    // Visits in both units, and an urgent task in V1.
    let vol = w.dir().join("vol");
    let url = w.town.server.url.clone();
    ok(&vol, &["field", "login", "--server", &url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);
    for (place, flags) in
        [("P1", vec!["--handbook", "--briefed"]), ("P2", vec!["--handbook"]), ("P4", vec!["--poster"])]
    {
        ok(&vol, &[&["field", "visit", place][..], &flags[..]].concat(), None);
    }
    ok(&vol, &["field", "sync"], None);
    let create = ["task", "create", "--place", "P3", "--person", "刘奶奶", "--fraud-type", "dating", "--within", "2h"];
    ok(&w.town.office, &create, None);

    // From the 1st the cadre opens the month's submission, pre-filled with the monthly report's figures.
    let path = format!("/api/v1/submissions/V1/{month}");
    let opened = w.get(&v1, &path);
    assert_eq!((opened["state"].as_str(), opened["status"].as_str()), (Some("new"), Some("not_yet")));
    assert_eq!(opened["writable"], true);
    let report: Value = serde_json::from_str(&ok(
        &w.town.office,
        &["report", "monthly", "--month", &month, "--area", "T1", "--format", "json"],
        None,
    ))
    .unwrap();
    let row = report.as_array().unwrap().iter().find(|r| r["area"] == "V1").unwrap();
    let figures = &opened["figures"];
    for key in ["visits", "places_visited", "score", "previous_score", "indicators", "tasks"] {
        assert_eq!(figures[key], row[key], "{key}: submission {figures} vs report {row}");
    }
    assert_eq!(figures["visits"], 2);
    assert_eq!(figures["tasks"]["created"], 1);
    let task = &figures["task_list"][0];
    assert_eq!((task["fraud_type"].as_str(), task["status"].as_str()), (Some("dating"), Some("open")));
    assert!(!figures.to_string().contains("刘奶奶"), "the submission names no person at risk: {figures}");

    // Who may write it: its own cadre only.
    let texts = json!({"work_done": "入户宣传 2 户", "problems": "外出务工人员多", "plans": "下月补访"});
    for (token, code) in [(&c1, 403), (&office, 403), (&vol_token, 403), (&town_viewer, 403)] {
        let (status, body) = w.post(token, &path, texts.clone());
        assert_eq!(status, code, "{body}");
    }
    assert_eq!(w.call(Method::GET, &format!("/api/v1/submissions/C1/{month}"), Some(&v1), None).0, 403);
    assert_eq!(w.call(Method::GET, &format!("/api/v1/submissions?month={month}"), Some(&vol_token), None).0, 403);

    // A month not begun, a grid, a bad month: refused with the reason.
    let (status, body) = w.call(Method::GET, "/api/v1/submissions/V1/2199-01", Some(&v1), None);
    assert_eq!(status, 400);
    assert!(message(&body).contains("has not begun"), "{body}");
    assert_eq!(w.call(Method::GET, &format!("/api/v1/submissions/G1/{month}"), Some(&office), None).0, 400);
    assert_eq!(w.call(Method::GET, "/api/v1/submissions/V1/2026-13", Some(&v1), None).0, 400);

    // A draft, then a submission; submitting needs the work done.
    let (status, draft) = w.post(&v1, &path, texts.clone());
    assert_eq!(status, 200, "{draft}");
    assert_eq!((draft["state"].as_str(), draft["updated_by"].as_str()), (Some("draft"), Some("cadre-v1")));
    let list = w.get(&office, &format!("/api/v1/submissions?month={month}"));
    let line = |list: &Value, code: &str| list.as_array().unwrap().iter().find(|r| r["area"] == code).unwrap().clone();
    assert_eq!(
        (line(&list, "V1")["state"].as_str(), line(&list, "V1")["status"].as_str()),
        (Some("draft"), Some("not_yet"))
    );
    let (status, body) = w.post(&v1, &format!("{path}/submit"), json!({"work_done": " ", "plans": "x"}));
    assert_eq!(status, 400);
    assert!(message(&body).contains("work_done is required"), "{body}");
    assert_eq!(w.get(&office, &path)["state"], "draft");
    assert_eq!(w.get(&office, &path)["plans"], "下月补访", "a refused submit leaves the draft as it was");

    let (status, submitted) = w.post(&v1, &format!("{path}/submit"), texts.clone());
    assert_eq!(status, 200, "{submitted}");
    assert_eq!((submitted["state"].as_str(), submitted["writable"].as_bool()), (Some("submitted"), Some(false)));
    // On time when submitted before the due time (the end of the 20th, local time): checked from the stored times.
    let at = chrono::DateTime::parse_from_rfc3339(submitted["submitted_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(submitted["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due.format("%d %H:%M %:z").to_string(), "21 00:00 +08:00");
    assert_eq!(submitted["status"], if at < due { "on_time" } else { "late" });
    let (status, body) = w.post(&v1, &format!("{path}/submit"), texts.clone());
    assert_eq!(status, 409, "{body}");
    assert!(message(&body).contains("can no longer be changed"), "{body}");
    assert_eq!(w.post(&v1, &path, texts.clone()).0, 409);

    // The previous month, submitted now: accepted, and late. Not submitted at all: overdue.
    let (status, late) = w.post(&v1, &format!("/api/v1/submissions/V1/{previous}/submit"), texts.clone());
    assert_eq!(status, 200, "{late}");
    assert_eq!(late["status"], "late");
    let list = w.get(&office, &format!("/api/v1/submissions?month={previous}"));
    assert_eq!(line(&list, "V1")["status"], "late");
    assert_eq!(
        (line(&list, "C1")["status"].as_str(), line(&list, "C1")["overdue"].as_bool()),
        (Some("not_yet"), Some(true))
    );
    // A cadre's list is their own area only; the town's viewer reads both.
    let mine = w.get(&v1, &format!("/api/v1/submissions?month={month}"));
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(w.get(&town_viewer, &format!("/api/v1/submissions?month={month}")).as_array().unwrap().len(), 2);
    // The office reads the submission as submitted; the CLI lists the month.
    let read = w.get(&office, &path);
    assert_eq!((read["work_done"].as_str(), read["writable"].as_bool()), (Some("入户宣传 2 户"), Some(false)));
    let listed: Value = serde_json::from_str(&ok(
        &w.town.office,
        &["submissions", "list", "--month", &month, "--format", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(line(&listed, "V1")["state"], "submitted");
    assert_eq!(line(&listed, "C1")["state"], "none");
    let shown = ok(&w.town.office, &["submissions", "show", "V1", "--month", &month], None);
    assert!(shown.contains("入户宣传 2 户") && shown.contains("submitted"), "{shown}");

    // Situation reports: a cadre files for their own area; the office sees them at once, newest first, unread.
    let filed = |token: &str, area: &str, body: Value| w.post(token, &format!("/api/v1/situations/{area}"), body);
    let (status, first) =
        filed(&v1, "V1", json!({"title": "疑似电诈窝点", "body": "村东出租屋多人使用大量手机卡", "urgency": "urgent"}));
    assert_eq!(status, 200, "{first}");
    let (status, second) =
        filed(&c1, "C1", json!({"title": "老人被骗", "body": "独居老人转账 5 万元", "urgency": "major"}));
    assert_eq!(status, 200, "{second}");
    assert_eq!(filed(&v1, "C1", json!({"title": "x", "body": "y", "urgency": "urgent"})).0, 403);
    assert_eq!(filed(&town_viewer, "V1", json!({"title": "x", "body": "y", "urgency": "urgent"})).0, 403);
    assert_eq!(filed(&office, "V1", json!({"title": "x", "body": "y", "urgency": "urgent"})).0, 403);
    assert_eq!(filed(&vol_token, "V1", json!({"title": "x", "body": "y", "urgency": "urgent"})).0, 403);
    let (status, body) = filed(&v1, "V1", json!({"title": "x", "body": "y", "urgency": "soon"}));
    assert_eq!(status, 400);
    assert!(message(&body).contains("urgency \"soon\""), "{body}");
    assert_eq!(filed(&v1, "V1", json!({"title": "", "body": "y", "urgency": "urgent"})).0, 400);
    let seen = w.get(&office, "/api/v1/situations");
    assert_eq!(seen["unread"], 2);
    let titles: Vec<&str> = seen["reports"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["老人被骗", "疑似电诈窝点"]);
    let own = w.get(&v1, "/api/v1/situations");
    assert_eq!(own["reports"].as_array().unwrap().len(), 1, "a cadre reads their own area's reports: {own}");
    // Opening one marks it read, once; a cadre cannot.
    let read_path = format!("/api/v1/situations/{}/read", first["report_id"].as_str().unwrap());
    assert_eq!(w.post(&v1, &read_path, json!({})).0, 403);
    let (status, opened) = w.post(&office, &read_path, json!({}));
    assert_eq!((status, opened["read_by"].as_str()), (200, Some("office")));
    assert_eq!(w.get(&office, "/api/v1/situations")["unread"], 1);
    assert_eq!(w.post(&office, "/api/v1/situations/nope/read", json!({})).0, 404);
    let cli = ok(&w.town.office, &["submissions", "situations"], None);
    assert!(cli.contains("1 unread") && cli.contains("UNREAD"), "{cli}");

    // Every write audited.
    let actions: Vec<String> = w
        .get(&office, "/api/v1/audit")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .filter(|a| a.starts_with("submission") || a.starts_with("situation"))
        .collect();
    assert_eq!(
        actions,
        [
            "submission.save",
            "submission.submit",
            "submission.submit",
            "situation.file",
            "situation.file",
            "situation.read"
        ]
    );
}

/// The new tables are carried by `admin backup` (SQLite's `VACUUM INTO`) and by `doorstep migrate` (which copies
/// every table it finds), with no list of tables to keep up to date: checked, not assumed.
#[test]
fn backup_and_migrate_carry_the_roster_submissions_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    let sqlite = format!("sqlite://{}?mode=rwc", data.join("doorstep.db").display());
    let server = sqlite_server_with_office(&data, &office, &sqlite);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "territory.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    let w = World::with(tmp, Town { server, data: data.clone(), office: office.clone() });
    let (v1, month) = (w.token("cadre-v1"), this_and_previous_month().0);
    assert_eq!(w.post(&v1, "/api/v1/roster/areas/V1", entries_v1()).0, 200);
    assert_eq!(w.post(&v1, &format!("/api/v1/submissions/V1/{month}"), json!({"work_done": "x"})).0, 200);
    let situation = json!({"title": "t", "body": "b", "urgency": "major"});
    assert_eq!(w.post(&v1, "/api/v1/situations/V1", situation).0, 200);
    let counts = |url: &str| -> Vec<i64> {
        w.rt.block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(url).await.unwrap();
            let mut out = Vec::new();
            for table in ["roster_entries", "monthly_submissions", "situation_reports"] {
                let sql = format!("SELECT COUNT(*) FROM {table}");
                out.push(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap());
            }
            pool.close().await;
            out
        })
    };

    let backup = w.dir().join("backup.db");
    ok(&office, &["admin", "backup", "--data-dir", data.to_str().unwrap(), "--output", backup.to_str().unwrap()], None);
    assert_eq!(counts(&format!("sqlite://{}?mode=ro", backup.display())), [3, 1, 1]);

    // Names are anyone's text: the CSV neutralises a formula, the XLSX keeps it as a text cell.
    let office_token = w.token("office");
    let formula =
        json!({"entries": [{"duty": "leader", "name": "=HYPERLINK(1)", "unit": "+u", "post": "p", "phone": "110"}]});
    assert_eq!(w.post(&office_token, "/api/v1/roster/areas/C1", formula).0, 200);
    let csv = ok(&office, &["roster", "show", "--format", "csv"], None);
    assert!(csv.contains(",'=HYPERLINK(1),'+u,"), "{csv}");
    let sheet = w.bytes(&office_token, "/api/v1/roster/export.xlsx");
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(sheet)).unwrap();
    let cells = book.worksheet_range_at(0).unwrap().unwrap();
    assert!(cells.cells().any(|(_, _, c)| *c == calamine::Data::String("=HYPERLINK(1)".into())));

    if std::env::var("DOORSTEP_TEST_PG_URL").is_ok() {
        let pg = fresh_pg_database();
        let out = ok(&office, &["migrate", "--from", &sqlite, "--to", &pg], None);
        for table in ["roster_entries", "monthly_submissions", "situation_reports"] {
            assert!(out.contains(table), "{out}");
        }
        assert_eq!(counts(&pg), [4, 1, 1]);
    }
}

/// The first status line the server answers a request head with (before any of its body is sent).
fn status_before_body(addr: &str, head: &str) -> u16 {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    socket.write_all(head.as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert_eq!(socket.read(&mut byte).expect("an answer before the body"), 1, "closed without answering");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap().split(' ').nth(1).unwrap().parse().unwrap()
}

/// Whoever may not write is refused on the session alone, before the server reads (or asks for, with
/// `Expect: 100-continue`) any of the body: a 100 Continue first would mean the body was wanted.
#[test]
fn writes_are_refused_before_their_body_is_read() {
    let w = World::new();
    let addr = w.town.server.url.trim_start_matches("http://").to_string();
    let month = this_and_previous_month().0;
    let (office, v1, c1, town_viewer) =
        (w.token("office"), w.token("cadre-v1"), w.token("cadre-c1"), w.token("town-viewer"));
    let (vol, lead) = (w.token("vol"), w.token("lead"));
    let draft = format!("/api/v1/submissions/V1/{month}");
    let submit = format!("{draft}/submit");
    for (who, token, path) in [
        ("another village's cadre", &c1, "/api/v1/roster/areas/V1"),
        ("a town's viewer", &town_viewer, "/api/v1/roster/areas/V1"),
        ("a cadre", &v1, "/api/v1/roster/deadline"),
        ("the office", &office, draft.as_str()),
        ("another village's cadre", &c1, submit.as_str()),
        ("a town's viewer", &town_viewer, "/api/v1/situations/V1"),
        ("another village's cadre", &c1, "/api/v1/situations/V1"),
        ("a volunteer", &vol, "/api/v1/situations/V1"),
        ("a lead", &lead, "/api/v1/roster/areas/V1"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nExpect: 100-continue\r\n\
             Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
        );
        assert_eq!(status_before_body(&addr, &head), 403, "POST {path} by {who}");
    }
    // The one allowed is asked for the body.
    let head = format!(
        "POST /api/v1/situations/V1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {v1}\r\nExpect: 100-continue\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
    );
    assert_eq!(status_before_body(&addr, &head), 100);
}
