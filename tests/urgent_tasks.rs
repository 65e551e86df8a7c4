//! Urgent dissuasion tasks (预警劝阻) end to end with the real binary: the office issues a task, two devices of the
//! team receive and sign for it, one of them stays offline until after the deadline, the office sees it overdue,
//! then evaluates it; the devices delete every file of the closed task; another team never receives it; and the
//! monthly report carries the task figures.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address,contact_name,contact_phone\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组1号,张三,13800000001\n\
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组2号,,\n\
H3,household,3栋201,G2,二网格,C1,新街社区,community,T1,太安镇,新街3栋201,,\n";

/// The person and phone of the test task: they must reach team-a's devices only, and leave them once closed.
const PERSON: &str = "李四婆婆";
const PHONE: &str = "13912345678";

struct Town {
    tmp: tempfile::TempDir,
    server: Server,
    office: PathBuf,
}

/// A town with team-a on grid G1 (amy, ben) and team-b on grid G2 (zoe), every device enrolled and synced.
fn town() -> (Town, [PathBuf; 3]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let f = write_file(tmp.path(), "t.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    for (team, grid) in [("team-a", "G1"), ("team-b", "G2")] {
        ok(&office, &["team", "create", team], None);
        ok(&office, &["assign", grid, "--team", team], None);
    }
    let mut devices = Vec::new();
    for (user, team) in [("amy", "team-a"), ("ben", "team-a"), ("zoe", "team-b")] {
        ok(&office, &["user", "create", user, "--role", "volunteer", "--team", team, "--password-stdin"], Some(&pw()));
        let p = tmp.path().join(user);
        ok(&p, &["field", "login", "--server", &server.url, "--username", user, "--password-stdin"], Some(&pw()));
        ok(&p, &["field", "sync"], None);
        devices.push(p);
    }
    let devices: [PathBuf; 3] = devices.try_into().unwrap();
    (Town { tmp, server, office }, devices)
}

fn json(profile: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(profile, args, None)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn task_show(office: &Path, id: &str) -> Value {
    json(office, &["task", "show", id, "--format", "json"])
}

fn list_ids(office: &Path, status: &str) -> Vec<String> {
    let rows = json(office, &["task", "list", "--status", status, "--format", "json"]);
    rows.as_array().unwrap().iter().map(|r| r["task_id"].as_str().unwrap().to_string()).collect()
}

/// Every byte of every file under a directory, with its path.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

#[test]
fn a_task_from_creation_to_evaluation_with_one_device_offline_past_the_deadline() {
    let (town, [amy, ben, zoe]) = town();
    let office = &town.office;
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(8);
    let deadline_text = deadline.to_rfc3339();
    let id = ok(
        office,
        &[
            "task",
            "create",
            "--place",
            "H2",
            "--person",
            PERSON,
            "--phone",
            PHONE,
            "--fraud-type",
            "冒充公检法",
            "--deadline",
            &deadline_text,
            "--instructions",
            "自称法院来电要求转账，请立即上门劝阻",
        ],
        None,
    )
    .trim()
    .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "task create prints the id: {id}");
    let t = task_show(office, &id);
    assert_eq!((t["team"].as_str(), t["status"].as_str()), (Some("team-a"), Some("open")), "H2's grid G1 is team-a's");
    assert_eq!(t["address"], "龙凤村1组2号", "the place's address");
    assert_eq!(t["received_at"], Value::Null);

    // Both team-a devices receive it at their next sync and sign for it at once; team-b's does not.
    for p in [&amy, &ben] {
        let out = ok(p, &["field", "sync"], None);
        assert!(out.contains("1 urgent tasks on this device (1 new"), "{out}");
    }
    let out = ok(&zoe, &["field", "sync"], None);
    assert!(out.contains("0 urgent tasks"), "{out}");
    let t = task_show(office, &id);
    let received: Vec<&Value> = t["signs"].as_array().unwrap().iter().filter(|s| s["kind"] == "received").collect();
    assert_eq!(received.len(), 2, "each device signed for it: {t:#}");
    assert!(t["received_at"].is_string() && t["sign_minutes"].as_f64().unwrap() >= 0.0);
    assert_eq!(t["opened_at"], Value::Null, "nobody opened it yet");
    let devices = t["devices"].as_array().unwrap();
    let holders: Vec<&str> = devices.iter().map(|d| d["username"].as_str().unwrap()).collect();
    assert_eq!(holders.len(), 2);
    assert!(holders.contains(&"amy") && holders.contains(&"ben") && !holders.contains(&"zoe"), "{holders:?}");

    // The task is listed first on the device, and above the places.
    let tasks = json(&amy, &["field", "tasks", "--format", "json"]);
    assert_eq!(tasks[0]["task_id"], id.as_str());
    assert_eq!(tasks[0]["state"], "new");
    let places = ok(&amy, &["field", "places", "--todo"], None);
    assert!(places.starts_with("URGENT dissuasion tasks (1)"), "{places}");

    // Amy opens it (by a short id) and calls: nobody answers.
    let shown = ok(&amy, &["field", "task", &id[..8]], None);
    assert!(shown.contains(PHONE) && shown.contains(PERSON) && shown.contains("自称法院"), "{shown}");
    let attempt = ok(
        &amy,
        &["field", "task-done", &id[..8], "--method", "phone", "--reached", "no", "--feedback", "电话无人接听"],
        None,
    );
    assert!(uuid::Uuid::parse_str(attempt.trim()).is_ok(), "{attempt}");
    let err = fails(
        &amy,
        &["field", "task-done", &id[..8], "--method", "sms", "--reached", "no", "--dissuaded", "yes"],
        None,
    );
    assert!(err.contains("cannot have been dissuaded") && err.contains("nothing was recorded"), "{err}");
    ok(&amy, &["field", "sync"], None);
    let t = task_show(office, &id);
    assert!(t["opened_at"].is_string() && t["first_action_at"].is_string(), "{t:#}");
    assert_eq!(t["status"], "open", "an attempt that did not reach the person leaves the task open");
    assert_eq!(t["reached_at"], Value::Null);

    // Ben walks over with no signal. He can always read the task offline.
    let dead = "http://127.0.0.1:9";
    let err = fails(&ben, &["field", "sync", "--via", dead], None);
    assert!(err.contains("cannot reach the server"), "{err}");
    while chrono::Utc::now() < deadline + chrono::Duration::seconds(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    // The deadline has passed: the office sees the task overdue.
    assert_eq!(list_ids(office, "overdue"), std::slice::from_ref(&id));
    assert_eq!(task_show(office, &id)["overdue"], true);
    let done = ok(
        &ben,
        &[
            "field",
            "task-done",
            &id,
            "--method",
            "face-to-face",
            "--reached",
            "yes",
            "--dissuaded",
            "yes",
            "--money-lost",
            "yes",
            "--amount",
            "1200.50",
            "--feedback",
            "已转账1200.5元，劝阻了第二笔",
            "--gps",
            "30.18,105.83",
        ],
        None,
    );
    let outcome_id = done.trim().to_string();
    let status = json(&ben, &["field", "status", "--format", "json"]);
    assert_eq!(status["unsynced_task_entries"], 2, "opened and the outcome (the receipt went out at once): {status}");
    let err = fails(&ben, &["field", "sync", "--via", dead], None);
    assert!(err.contains("cannot reach the server"), "{err}");

    // Back in reach, after the deadline.
    ok(&ben, &["field", "sync"], None);
    let t = task_show(office, &id);
    assert_eq!(t["status"], "done", "{t:#}");
    assert_eq!(t["overdue"], false, "reached now");
    assert_eq!(t["late"], true, "but after the deadline");
    let outcomes = t["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2);
    let ben_outcome = outcomes.iter().find(|o| o["outcome_id"] == outcome_id.as_str()).unwrap();
    assert_eq!((ben_outcome["reached"].as_bool(), ben_outcome["money_lost"].as_bool()), (Some(true), Some(true)));
    assert_eq!(ben_outcome["amount_fen"], 120_050);
    assert_eq!(ben_outcome["method"], "face-to-face");
    assert!(time(&t["reached_at"]) > time(&t["deadline"]));
    assert!(t["reach_minutes"].as_f64().unwrap() >= t["response_minutes"].as_f64().unwrap());
    assert!(list_ids(office, "overdue").is_empty());
    assert_eq!(list_ids(office, "done"), std::slice::from_ref(&id));

    // The office evaluates: effective closes the task.
    let err = fails(office, &["task", "evaluate", "not-an-id", "--result", "effective"], None);
    assert!(err.contains("not a task id"), "{err}");
    ok(office, &["task", "evaluate", &id, "--result", "effective", "--comment", "及时止损"], None);
    let err = fails(office, &["task", "evaluate", &id, "--result", "ineffective"], None);
    assert!(err.contains("already closed"), "{err}");
    assert_eq!(list_ids(office, "closed"), std::slice::from_ref(&id));
    assert!(list_ids(office, "active").is_empty());

    // Before the devices sync, the task (and the phone) is still on them.
    for p in [&amy, &ben] {
        assert_eq!(json(p, &["field", "tasks", "--format", "json"]).as_array().unwrap().len(), 1);
    }
    // At their next sync they delete every file of it: nothing with the phone, the person or the id remains.
    for p in [&amy, &ben] {
        let out = ok(p, &["field", "sync"], None);
        assert!(out.contains("1 closed tasks deleted from this device"), "{out}");
        assert!(json(p, &["field", "tasks", "--format", "json"]).as_array().unwrap().is_empty());
        for (path, bytes) in files(p) {
            for secret in [PHONE, PERSON, id.as_str(), "自称法院"] {
                assert!(!contains(&bytes, secret), "{} still holds {secret}", path.display());
                assert!(!path.to_string_lossy().contains(secret), "{} is named after {secret}", path.display());
            }
        }
        ok(p, &["field", "sync"], None);
    }
    // The server records that both devices no longer hold it.
    let t = task_show(office, &id);
    for d in t["devices"].as_array().unwrap() {
        assert!(d["purged_at"].is_string(), "{d}");
    }
    let shown = ok(office, &["task", "show", &id], None);
    assert!(shown.contains("deleted by"), "{shown}");

    // Team-b's device never held anything of it.
    for (path, bytes) in files(&zoe) {
        assert!(!contains(&bytes, PHONE) && !contains(&bytes, &id), "{}", path.display());
    }
    // The audit log has the creation and the evaluation, without personal data.
    let audit = ok(office, &["audit", "--format", "json"], None);
    assert!(audit.contains("task.create") && audit.contains("task.evaluate"), "{audit}");
    assert!(!audit.contains(PHONE) && !audit.contains(PERSON), "{audit}");
    drop(town);
}

#[test]
fn roles_input_errors_and_follow_up() {
    let (town, [amy, _ben, zoe]) = town();
    let office = &town.office;
    let within = ["--within", "2h"];
    // Bad input: a clear message, and nothing created.
    let cases: [(&[&str], &str); 6] = [
        (&["--person", "x", "--fraud-type", "dating"], "--place PLACE_ID"),
        (&["--place", "NOPE", "--person", "x", "--fraud-type", "dating"], "no place \"NOPE\""),
        (&["--place", "H1", "--person", "x", "--fraud-type", "lottery"], "unknown fraud type"),
        (&["--address", "somewhere", "--person", "x", "--fraud-type", "dating"], "say who acts"),
        (&["--place", "H1", "--person", "x", "--fraud-type", "dating", "--phone", "call me"], "not a phone number"),
        (&["--place", "H1", "--person", " ", "--fraud-type", "dating"], "needs a label"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["task", "create"];
        all.extend_from_slice(args);
        all.extend_from_slice(&within);
        let err = fails(office, &all, None);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let err = fails(
        office,
        &["task", "create", "--place", "H1", "--person", "x", "--fraud-type", "dating", "--deadline", &past],
        None,
    );
    assert!(err.contains("deadline must be after"), "{err}");
    assert!(list_ids(office, "all").is_empty(), "nothing was created");

    // Someone outside the registry, given to a chosen team.
    let id = ok(
        office,
        &[
            "task",
            "create",
            "--address",
            "新街5栋3单元",
            "--grid",
            "G2",
            "--team",
            "team-a",
            "--person",
            "王某",
            "--fraud-type",
            "investment",
            "--priority",
            "high",
            "--within",
            "3h",
        ],
        None,
    )
    .trim()
    .to_string();
    let t = task_show(office, &id);
    assert_eq!(
        (t["team"].as_str(), t["village"].as_str(), t["priority"].as_str()),
        (Some("team-a"), Some("C1"), Some("high"))
    );

    // Volunteers and viewers do not read tasks; a lead reads only their own team's.
    ok(office, &["user", "create", "lead-b", "--role", "lead", "--team", "team-b", "--password-stdin"], Some(&pw()));
    ok(office, &["user", "create", "viewer", "--role", "viewer", "--area", "T1", "--password-stdin"], Some(&pw()));
    let lead = town.tmp.path().join("lead-b");
    ok(&lead, &["login", "--server", &town.server.url, "--username", "lead-b", "--password-stdin"], Some(&pw()));
    assert!(json(&lead, &["task", "list", "--status", "all", "--format", "json"]).as_array().unwrap().is_empty());
    let err = fails(&lead, &["task", "show", &id], None);
    assert!(err.contains("not your team's"), "{err}");
    let err = fails(&lead, &["task", "evaluate", &id, "--result", "effective"], None);
    assert!(err.contains("may not"), "{err}");
    let viewer = town.tmp.path().join("viewer");
    ok(&viewer, &["login", "--server", &town.server.url, "--username", "viewer", "--password-stdin"], Some(&pw()));
    let err = fails(&viewer, &["task", "list"], None);
    assert!(err.contains("may not"), "{err}");

    // No outcome yet: nothing to evaluate.
    let err = fails(office, &["task", "evaluate", &id, "--result", "effective"], None);
    assert!(err.contains("no outcome yet"), "{err}");

    // Follow-up: the comment and the new deadline reach the device; a later reached outcome makes it done again.
    ok(&amy, &["field", "sync"], None);
    ok(
        &amy,
        &[
            "field",
            "task-done",
            &id,
            "--method",
            "phone",
            "--reached",
            "yes",
            "--dissuaded",
            "no",
            "--feedback",
            "不听劝",
        ],
        None,
    );
    ok(&amy, &["field", "sync"], None);
    assert_eq!(task_show(office, &id)["status"], "done");
    let new_deadline = (chrono::Utc::now() + chrono::Duration::hours(5)).to_rfc3339();
    ok(
        office,
        &["task", "evaluate", &id, "--result", "follow-up", "--comment", "请再上门一次", "--deadline", &new_deadline],
        None,
    );
    let t = task_show(office, &id);
    assert_eq!((t["status"].as_str(), t["evaluation"].as_str()), (Some("follow_up"), Some("follow-up")));
    let wanted = chrono::DateTime::parse_from_rfc3339(&new_deadline).unwrap();
    assert_eq!(time(&t["deadline"]).timestamp_millis(), wanted.timestamp_millis());
    ok(&amy, &["field", "sync"], None);
    let line = &json(&amy, &["field", "tasks", "--format", "json"])[0];
    assert_eq!((line["follow_up"].as_str(), line["state"].as_str()), (Some("请再上门一次"), Some("opened")), "{line}");
    ok(&amy, &["field", "task-done", &id, "--method", "face-to-face", "--reached", "yes", "--dissuaded", "yes"], None);
    ok(&amy, &["field", "sync"], None);
    assert_eq!(task_show(office, &id)["status"], "done");
    assert_eq!(task_show(office, &id)["evaluations"].as_array().unwrap().len(), 1);

    // Team-b's device never received it.
    ok(&zoe, &["field", "sync"], None);
    assert!(json(&zoe, &["field", "tasks", "--format", "json"]).as_array().unwrap().is_empty());
    let err = fails(&zoe, &["field", "task", &id], None);
    assert!(err.contains("no urgent tasks on this device"), "{err}");
}

#[test]
fn the_monthly_report_counts_tasks_and_their_response_times() {
    let (town, [amy, _ben, _zoe]) = town();
    let office = &town.office;
    // Three tasks in V1 (grid G1): two reached after 30 and 90 minutes of device time, one without an outcome whose
    // deadline passes; and one for someone outside any unit, given to team-a only, whose deadline passes too.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = ok(
            office,
            &["task", "create", "--place", "H1", "--person", "x", "--fraud-type", "gambling", "--within", "2h"],
            None,
        );
        ids.push(out.trim().to_string());
    }
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    ok(
        office,
        &["task", "create", "--place", "H1", "--person", "z", "--fraud-type", "dating", "--deadline", &soon],
        None,
    );
    ok(
        office,
        &[
            "task",
            "create",
            "--address",
            "外地",
            "--team",
            "team-a",
            "--person",
            "y",
            "--fraud-type",
            "other",
            "--deadline",
            &soon,
        ],
        None,
    );
    ok(&amy, &["field", "sync"], None);
    for (id, minutes) in ids.iter().zip([30, 90]) {
        let created = time(&task_show(office, id)["created_at"]);
        let at = (created + chrono::Duration::minutes(minutes)).to_rfc3339();
        ok(
            &amy,
            &[
                "field",
                "task-done",
                id,
                "--method",
                "face-to-face",
                "--reached",
                "yes",
                "--dissuaded",
                "yes",
                "--at",
                &at,
            ],
            None,
        );
    }
    ok(&amy, &["field", "sync"], None);
    std::thread::sleep(Duration::from_secs(4));

    let month =
        chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y-%m").to_string();
    let rows = json(office, &["report", "monthly", "--month", &month, "--format", "json"]);
    let v1 = rows.as_array().unwrap().iter().find(|r| r["area"] == "V1").unwrap();
    let t = &v1["tasks"];
    assert_eq!((t["created"].as_u64(), t["completed"].as_u64()), (Some(3), Some(2)), "{t}");
    assert_eq!(t["overdue"], 1, "the task without an outcome: {t}");
    assert_eq!(t["median_response_minutes"], 60.0);
    assert_eq!(t["median_reach_minutes"], 60.0);
    assert!(v1["rank"].as_u64().is_some(), "rows keep their rank");
    let c1 = rows.as_array().unwrap().iter().find(|r| r["area"] == "C1").unwrap();
    assert_eq!(c1["tasks"]["created"], 0);

    // The table prints the totals, including the task outside any unit (overdue: its deadline passed).
    let table = ok(office, &["report", "monthly", "--month", &month], None);
    assert!(table.contains("Urgent dissuasion tasks: 4 issued, 2 completed, 2 overdue"), "{table}");
    let csv = ok(office, &["report", "monthly", "--month", &month, "--format", "csv"], None);
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with("tasks,tasks done,tasks overdue,median response (min),bulletins read"), "{header}");
    let v1_line = csv.lines().find(|l| l.contains(",V1,")).unwrap();
    assert!(v1_line.ends_with(",3,2,1,60,"), "{v1_line}");
    let xlsx = town.tmp.path().join("m.xlsx");
    ok(office, &["report", "monthly", "--month", &month, "--format", "xlsx", "--output", xlsx.to_str().unwrap()], None);
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let sheet = wb.worksheet_range_at(0).unwrap().unwrap();
    let header: Vec<String> = sheet.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
    assert!(header.contains(&"tasks overdue".to_string()), "{header:?}");
}

fn device_field(profile: &Path, key: &str) -> String {
    let d: Value = serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap();
    d[key].as_str().unwrap().to_string()
}

#[test]
fn an_outcome_recorded_before_re_enrolment_arrives_even_if_the_task_closed_meanwhile() {
    let (town, [amy, ben, _zoe]) = town();
    let office = &town.office;
    let id = ok(
        office,
        &[
            "task",
            "create",
            "--place",
            "H1",
            "--person",
            PERSON,
            "--phone",
            PHONE,
            "--fraud-type",
            "dating",
            "--within",
            "2h",
        ],
        None,
    )
    .trim()
    .to_string();
    ok(&amy, &["field", "sync"], None);
    ok(&ben, &["field", "sync"], None);
    // Amy records an outcome offline; meanwhile Ben's outcome arrives and the office closes the task.
    let amy_outcome = ok(
        &amy,
        &[
            "field",
            "task-done",
            &id,
            "--method",
            "sms",
            "--reached",
            "yes",
            "--dissuaded",
            "yes",
            "--feedback",
            "短信确认",
        ],
        None,
    );
    ok(&ben, &["field", "task-done", &id, "--method", "phone", "--reached", "yes", "--dissuaded", "yes"], None);
    ok(&ben, &["field", "sync"], None);
    ok(office, &["task", "evaluate", &id, "--result", "effective"], None);
    // Amy's device was revoked by mistake: she enrols the same profile again.
    ok(office, &["device", "revoke", &device_field(&amy, "device_id")], None);
    let err = fails(&amy, &["field", "sync"], None);
    assert!(err.contains("revoked"), "{err}");
    ok(&amy, &["field", "login", "--server", &town.server.url, "--username", "amy", "--password-stdin"], Some(&pw()));
    assert!(amy.join("task-carry-over.json").exists(), "the unsent outcome is set aside");
    let status = json(&amy, &["field", "status", "--format", "json"]);
    assert_eq!(status["tasks"], 0, "task files go with the old enrolment: {status}");

    // The next sync fetches the closed task's history, records the outcome again under the new enrolment, sends it,
    // and deletes everything of the task.
    ok(&amy, &["field", "sync"], None);
    let t = task_show(office, &id);
    let outcomes = t["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2, "{t:#}");
    let amys = outcomes.iter().find(|o| o["outcome_id"] == amy_outcome.trim()).expect("Amy's outcome arrived");
    assert_eq!(amys["device_id"], device_field(&amy, "device_id").as_str(), "recorded under the new enrolment");
    assert_eq!(amys["feedback"], "短信确认");
    assert!(!amy.join("task-carry-over.json").exists());
    for (path, bytes) in files(&amy) {
        assert!(!contains(&bytes, PHONE) && !contains(&bytes, &id), "{} still holds the task", path.display());
    }
}

#[test]
fn devices_may_not_reach_another_teams_task_or_rewrite_the_offices_part() {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    use client_core::protocol::{self, SyncRequest, TaskPush, PROTOCOL_VERSION};
    let (town, [amy, _ben, zoe]) = town();
    let office = &town.office;
    let id = ok(
        office,
        &["task", "create", "--place", "H1", "--person", PERSON, "--fraud-type", "other", "--within", "2h"],
        None,
    )
    .trim()
    .to_string();
    ok(&amy, &["field", "sync"], None);
    let before = task_show(office, &id);
    let sync_raw = |profile: &Path, tasks: Option<Vec<TaskPush>>| -> (u16, Vec<u8>) {
        let body = protocol::encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids: vec![],
            tasks,
            docs: Default::default(),
        });
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(format!("{}/api/v1/sync", town.server.url))
                .bearer_auth(device_field(profile, "token"))
                .header("content-type", protocol::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        })
    };
    let sync = |profile: &Path, push: TaskPush| -> (u16, String) {
        let (status, body) = sync_raw(profile, Some(vec![push]));
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    // A client that does not handle tasks (no `tasks` key, like one that predates them) is sent none.
    let (status, body) = sync_raw(&amy, None);
    assert_eq!(status, 200);
    let reply: client_core::protocol::SyncResponse = protocol::decode(&body).unwrap();
    assert!(reply.tasks.is_empty() && !reply.grids.is_empty());
    let (_, body) = sync_raw(&amy, Some(vec![]));
    let reply: client_core::protocol::SyncResponse = protocol::decode(&body).unwrap();
    assert_eq!(reply.tasks.len(), 1, "a client that handles tasks and holds none gets the open one");
    // Team-b's device asks for team-a's task: refused, nothing sent.
    let (status, body) = sync(&zoe, TaskPush { task: id.clone(), ..Default::default() });
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not issued to your team"), "{body}");
    assert!(!body.contains(PERSON));

    // Amy's device rewrites the deadline in the office's part of the document: refused, nothing stored.
    let store = client_core::task::store::TaskStore::open(&amy.join("tasks")).unwrap();
    let mut doc = store.load(&id).unwrap().automerge().clone();
    doc.set_actor(automerge::ActorId::try_from(device_field(&amy, "actor").as_str()).unwrap());
    let confirmed = store.mark(&id).unwrap().confirmed_heads();
    let task = doc.get(automerge::ROOT, "task").unwrap().unwrap().1;
    let mut tx = doc.transaction();
    tx.put(&task, "deadline", automerge::ScalarValue::Timestamp(4_102_444_800_000)).unwrap();
    tx.commit();
    drop(store);
    let push = TaskPush {
        task: id.clone(),
        have: protocol::hashes_to_wire(&doc.get_heads()),
        changes: doc
            .get_changes(&confirmed)
            .iter()
            .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
            .collect(),
        ..Default::default()
    };
    let (status, body) = sync(&amy, push);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("devices may not") || body.contains("devices may only"), "{body}");
    assert_eq!(task_show(office, &id)["deadline"], before["deadline"], "nothing stored");
    let audit = ok(office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.rejected"), "{audit}");
}

#[test]
fn a_field_client_killed_while_recording_outcomes_loses_no_acknowledged_one() {
    use std::process::{Command, Stdio};
    let (town, [amy, _ben, _zoe]) = town();
    let office = &town.office;
    let id = ok(
        office,
        &["task", "create", "--place", "H1", "--person", "x", "--fraud-type", "other", "--within", "2h"],
        None,
    )
    .trim()
    .to_string();
    ok(&amy, &["field", "sync"], None);
    let mut printed = Vec::new();
    for i in 0..40u64 {
        let feedback = format!("attempt {i}");
        let child = Command::new(BIN)
            .args(["--profile", amy.to_str().unwrap(), "field", "task-done", &id, "--method", "phone"])
            .args(["--reached", "no", "--feedback", &feedback])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros((i * 1999) % 40_000));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !stdout.is_empty() {
            printed.push(stdout);
        }
    }
    eprintln!("{} of 40 outcomes acknowledged before the kill", printed.len());
    // The profile stays readable, and everything acknowledged reaches the server once.
    assert_eq!(json(&amy, &["field", "tasks", "--format", "json"]).as_array().unwrap().len(), 1);
    ok(&amy, &["field", "sync"], None);
    let t = task_show(office, &id);
    let stored: Vec<&str> =
        t["outcomes"].as_array().unwrap().iter().map(|o| o["outcome_id"].as_str().unwrap()).collect();
    for p in &printed {
        assert!(stored.contains(&p.as_str()), "acknowledged outcome {p} lost; stored {stored:?}");
    }
    let unique: std::collections::BTreeSet<&&str> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "nothing stored twice");
    assert_eq!(json(&amy, &["field", "status", "--format", "json"])["unsynced_task_entries"], 0);
}
