//! Bulletins end to end with the real binary: the office publishes one with an attachment to a village's teams,
//! phones of those teams (and no other) receive it at their next sync, directly or through the team's hub, read it
//! with the server down, and their receipts reach the office; a correction asks for a new read, a withdrawal
//! deletes it from the phones. Only permitted roles publish, and bad input publishes nothing.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,2号,G2,二网格,V2,石桥村,village,T1,太安镇\n";

/// A 1×1 PNG.
const PNG: &str =
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da636460f85f0f00\
02870180eb47ba920000000049454e44ae426082";

fn png() -> Vec<u8> {
    (0..PNG.len()).step_by(2).map(|i| u8::from_str_radix(&PNG[i..i + 2], 16).unwrap()).collect()
}

struct Town {
    tmp: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    server: Option<Server>,
    office: PathBuf,
    lead: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
    west: PathBuf,
}

impl Town {
    fn restart_server(&mut self) {
        self.server = Some(Server::start_with(&self.data, &format!("127.0.0.1:{}", self.port), &[]));
    }
    fn stop_server(&mut self) {
        self.server.take().expect("server running").kill();
    }
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        write_file(self.tmp.path(), name, bytes).to_str().unwrap().to_string()
    }
}

/// Team east (lead, v1, v2) works in 龙凤村, team west (w1) in 石桥村; every phone enrolled and synced.
fn town() -> Town {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let port = free_port();
    let server = Server::start_with(&data, &format!("127.0.0.1:{port}"), &[]);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "town.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "east", "--lead", "lead"], None);
    ok(&office, &["team", "create", "west"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["assign", "G2", "--team", "west"], None);
    for (name, team) in [("v1", "east"), ("v2", "east"), ("w1", "west")] {
        let args = ["user", "create", name, "--role", "volunteer", "--team", team, "--password-stdin"];
        ok(&office, &args, Some(&pw()));
    }
    let mut profiles = Vec::new();
    for name in ["lead", "v1", "v2", "w1"] {
        let profile = tmp.path().join(name);
        ok(&profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(&profile, &["field", "sync"], None);
        profiles.push(profile);
    }
    let [lead, v1, v2, west]: [PathBuf; 4] = profiles.try_into().unwrap();
    Town { tmp, data, port, server: Some(server), office, lead, v1, v2, west }
}

fn bulletins_on(profile: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(profile, &["field", "bulletins", "--format", "json"], None)).unwrap()
}

fn receipts(office: &Path, id: &str) -> Value {
    serde_json::from_str(&ok(office, &["bulletin", "receipts", id, "--format", "json"], None)).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|r| r["username"].as_str().unwrap().to_string()).collect()
}

/// Publishes the town's usual bulletin to 龙凤村 with the PNG attached; returns its id.
fn publish(t: &Town, title: &str, extra: &[&str]) -> String {
    let body = t.file("body.txt", "**不要**轻信“客服退款”电话\n- 先挂断，再核实".as_bytes());
    let poster = t.file("poster.png", &png());
    let mut args = vec!["bulletin", "publish", "--title", title, "--body-file", &body, "--kind", "fraud_method"];
    args.extend(["--fraud-type", "impersonation", "--village", "龙凤村", "--attach", &poster]);
    args.extend_from_slice(extra);
    ok(&t.office, &args, None).trim().to_string()
}

#[test]
fn a_bulletin_reaches_its_audience_is_read_offline_and_the_office_sees_who_read_it() {
    let mut t = town();
    let id = publish(&t, "新型诈骗：冒充客服退款", &["--urgent"]);
    assert_eq!(id.len(), 36, "{id}");

    // East's phones receive it with its attachment; west's phone does not.
    let out = ok(&t.v1, &["field", "sync"], None);
    assert!(out.contains("bulletin: 1 new"), "{out}");
    let held = bulletins_on(&t.v1);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["id"], id.as_str());
    assert_eq!(held[0]["read"], false);
    assert_eq!(held[0]["priority"], "urgent");
    assert_eq!((held[0]["attachments_here"].as_u64(), held[0]["attachments"].as_u64()), (Some(1), Some(1)));
    let kept = std::fs::read(t.v1.join("attachments").join(sha256_hex(&png()))).unwrap();
    assert_eq!(kept, png(), "the attachment is kept on the phone, as published");
    ok(&t.west, &["field", "sync"], None);
    assert!(bulletins_on(&t.west).is_empty(), "west's phone holds nothing of another village's bulletin");

    // Read with the server down: printed whole, the receipt kept on the phone.
    t.stop_server();
    let text = ok(&t.v1, &["field", "read", &id[..8]], None);
    assert!(text.contains("新型诈骗：冒充客服退款") && text.contains("先挂断，再核实"), "{text}");
    assert!(text.contains("fraud_method (诈骗手法)") && text.contains("impersonation (冒充公检法)"), "{text}");
    assert_eq!(bulletins_on(&t.v1)[0]["read"], true);
    assert!(fails(&t.v1, &["field", "sync"], None).contains("unsynced"), "the sync fails while the server is down");
    t.restart_server();
    ok(&t.v1, &["field", "sync"], None);

    let r = receipts(&t.office, &id);
    assert_eq!(names(&r["readers"]), ["v1"]);
    assert_eq!(r["readers"][0]["edition"], 1);
    let mut unread = names(&r["unread"]);
    unread.sort();
    assert_eq!(unread, ["lead", "v2"], "the east team's others, nobody of west");
    assert_eq!(r["unread"][0]["overdue"], false, "published moments ago");
    assert_eq!(r["by_team"], serde_json::json!([{"team": "east", "read": 1, "expected": 3}]));
    assert_eq!(r["by_village"][0]["village"], "龙凤村");
    assert_eq!((r["by_village"][0]["read"].as_u64(), r["by_village"][0]["expected"].as_u64()), (Some(1), Some(3)));
    let list: Vec<Value> =
        serde_json::from_str(&ok(&t.office, &["bulletin", "list", "--format", "json"], None)).unwrap();
    assert_eq!((list[0]["read"].as_u64(), list[0]["expected"].as_u64()), (Some(1), Some(3)));

    // The month's report (its rows, as JSON) carries each village's read rate beside its coverage: none for
    // 石桥村, meant nothing.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report: Value =
        serde_json::from_str(&ok(&t.office, &["report", "monthly", "--month", &month, "--format", "json"], None))
            .unwrap();
    let row = |area: &str| report.as_array().unwrap().iter().find(|r| r["area"] == area).unwrap().clone();
    assert_eq!(row("V1")["bulletins"], serde_json::json!({"read": 1, "expected": 3, "rate": 1.0 / 3.0}));
    assert_eq!(row("V2")["bulletins"], Value::Null);

    // A receipt travels once: syncing again changes nothing at the office.
    ok(&t.v1, &["field", "sync"], None);
    assert_eq!(names(&receipts(&t.office, &id)["readers"]), ["v1"]);
    assert_eq!(db_pairs(&t.data, "SELECT username, doc_id FROM document_entries").len(), 1);

    // A correction: phones show the new edition, unread again; v1's read counts for the first edition only.
    let body = t.file("body2.txt", "更正：请先挂断电话".as_bytes());
    let args =
        ["bulletin", "correct", &id, "--title", "更正：冒充客服退款", "--body-file", &body, "--kind", "reminder"];
    let mut args = args.to_vec();
    args.extend(["--village", "龙凤村"]);
    ok(&t.office, &args, None);
    ok(&t.v1, &["field", "sync"], None);
    let held = bulletins_on(&t.v1);
    assert_eq!((held[0]["edition"].as_i64(), held[0]["read"].as_bool()), (Some(2), Some(false)));
    assert_eq!(held[0]["title"], "更正：冒充客服退款");
    let r = receipts(&t.office, &id);
    assert!(names(&r["readers"]).contains(&"v1".to_string()));
    let v1 = r["unread"].as_array().unwrap().iter().find(|u| u["username"] == "v1").unwrap();
    assert_eq!(v1["read_edition"], 1);
    let xlsx = t.tmp.path().join("receipts.xlsx");
    let args = ["bulletin", "receipts", "--format", "xlsx", "--output", xlsx.to_str().unwrap(), &id];
    ok(&t.office, &args, None);
    assert!(std::fs::read(&xlsx).unwrap().starts_with(b"PK"), "a workbook");

    // Withdrawn: the phone deletes it at its next sync.
    ok(&t.office, &["bulletin", "withdraw", &id], None);
    let out = ok(&t.v1, &["field", "sync"], None);
    assert!(out.contains("1 deleted"), "{out}");
    assert!(bulletins_on(&t.v1).is_empty());
    let audit = ok(&t.office, &["audit", "--format", "json"], None);
    for action in ["bulletin.publish", "bulletin.correct", "bulletin.withdraw"] {
        assert!(audit.contains(action), "{action} audited");
    }
}

#[test]
fn through_the_hub_a_team_receives_reads_and_reports_with_the_server_down() {
    let mut t = town();
    let id = publish(&t, "入户宣讲要点：养老诈骗", &["--urgent"]);
    let hub = Hub::start(&t.lead, &["--upstream-every", "0"]);
    ok(&t.lead, &["hub", "sync"], None);
    t.stop_server();

    let out = ok(&t.v2, &["field", "sync", "--via", &hub.url], None);
    assert!(out.contains("bulletin: 1 new"), "{out}");
    let held = bulletins_on(&t.v2);
    assert_eq!(held[0]["id"], id.as_str());
    assert_eq!(held[0]["attachments_here"], 1, "the hub serves the attachment it cached");
    ok(&t.v2, &["field", "read", &id], None);
    ok(&t.v2, &["field", "sync", "--via", &hub.url], None);

    t.restart_server();
    ok(&t.lead, &["hub", "sync"], None);
    assert_eq!(names(&receipts(&t.office, &id)["readers"]), ["v2"], "the receipt went up through the hub");
}

#[test]
fn only_permitted_roles_publish_and_bad_input_publishes_nothing() {
    let t = town();
    let body = t.file("body.txt", "内容".as_bytes());
    let base = ["bulletin", "publish", "--body-file", &body];
    let publish_as = |profile: &Path, extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        run(profile, &args, None)
    };

    // A lead may not publish; a viewer the office lets publish (the police station's account) may.
    let lead_office = t.tmp.path().join("lead-office");
    let url = t.server.as_ref().unwrap().url.clone();
    ok(&lead_office, &["login", "--server", &url, "--username", "lead", "--password-stdin"], Some(&pw()));
    let out = publish_as(&lead_office, &["--title", "x", "--kind", "reminder", "--everyone"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("may not publish bulletins"), "{err}");
    ok(&t.office, &["user", "create", "police", "--role", "viewer", "--area", "T1", "--password-stdin"], Some(&pw()));
    let police = t.tmp.path().join("police");
    ok(&police, &["login", "--server", &url, "--username", "police", "--password-stdin"], Some(&pw()));
    let denied = publish_as(&police, &["--title", "派出所提醒", "--kind", "reminder", "--everyone"]);
    assert!(!denied.status.success());
    ok(&t.office, &["user", "edit", "police", "--may-publish", "true"], None);
    let allowed = publish_as(&police, &["--title", "派出所提醒", "--kind", "reminder", "--everyone"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    ok(&t.office, &["user", "edit", "police", "--may-publish", "false"], None);
    assert!(!publish_as(&police, &["--title", "again", "--kind", "reminder", "--everyone"]).status.success());
    let before = db_pairs(&t.data, "SELECT id, title FROM bulletins");
    assert_eq!(before.len(), 1);

    // Each mistake is named, and nothing is published.
    let text_file = t.file("notes.jpg", b"just text, named like a photo");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--title", "x", "--kind", "gossip", "--everyone"], "bulletin kind"),
        (vec!["--title", " ", "--kind", "reminder", "--everyone"], "needs a title"),
        (vec!["--title", "x", "--kind", "reminder"], "choose the audience"),
        (vec!["--title", "x", "--kind", "reminder", "--village", "不存在村"], "no village or community named"),
        (vec!["--title", "x", "--kind", "reminder", "--team", "nobody"], "no team named"),
        (vec!["--title", "x", "--kind", "reminder", "--everyone", "--fraud-type", "lottery"], "fraud type"),
        (vec!["--title", "x", "--kind", "reminder", "--everyone", "--expires", "2020-01-01"], "in the past"),
        (vec!["--title", "x", "--kind", "reminder", "--everyone", "--attach", &text_file], "not attached"),
    ];
    for (args, expected) in cases {
        let out = publish_as(&t.office, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expected), "{args:?}: {err}");
    }
    assert_eq!(db_pairs(&t.data, "SELECT id, title FROM bulletins"), before);
    assert!(db_pairs(&t.data, "SELECT sha256, content_type FROM blobs").is_empty(), "the text file was not stored");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A phone speaking the sync protocol itself: what a tampered app could send.
struct RawPhone {
    token: String,
    actor: automerge::ActorId,
    key: client_core::sign::KeyPair,
    device_id: String,
    store: client_core::store::DocStore<client_core::bulletin::doc::BulletinDoc>,
    _dir: tempfile::TempDir,
}

impl RawPhone {
    async fn enrol(http: &reqwest::Client, url: &str, username: &str) -> RawPhone {
        let key = client_core::sign::KeyPair::generate();
        let body = serde_json::json!({"username": username, "password": pw().trim_end(), "device_name": "raw",
            "public_key": key.public().to_hex()});
        let reply: Value =
            http.post(format!("{url}/api/v1/devices")).json(&body).send().await.unwrap().json().await.unwrap();
        assert!(reply["token"].is_string(), "{reply}");
        let dir = tempfile::tempdir().unwrap();
        RawPhone {
            token: reply["token"].as_str().unwrap().into(),
            actor: reply["actor"].as_str().unwrap().parse().unwrap(),
            device_id: reply["device_id"].as_str().unwrap().into(),
            key,
            store: client_core::store::DocStore::open(dir.path()).unwrap(),
            _dir: dir,
        }
    }

    /// One sync of the phone's bulletins: the status.
    async fn sync(&self, http: &reqwest::Client, url: &str) -> u16 {
        use client_core::docs::{device_apply, device_pushes, Writer};
        use client_core::protocol::{self, SyncRequest, SyncResponse, PROTOCOL_VERSION};
        let writer = Writer { actor: &self.actor, key: Some(&self.key), server_key: None };
        let none = std::collections::BTreeSet::new();
        let pushes = device_pushes(&self.store, &writer, &none).unwrap().into_iter().map(|(p, _)| p).collect();
        let docs = std::collections::BTreeMap::from([("bulletin".to_string(), pushes)]);
        let request = SyncRequest { protocol: PROTOCOL_VERSION, grids: vec![], tasks: None, docs };
        let resp = http
            .post(format!("{url}/api/v1/sync"))
            .bearer_auth(&self.token)
            .header("content-type", protocol::CONTENT_TYPE)
            .body(protocol::encode(&request))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == 200 {
            let reply: SyncResponse = protocol::decode(&resp.bytes().await.unwrap()).unwrap();
            let replies = reply.docs.get("bulletin").cloned().unwrap_or_default();
            device_apply(&self.store, &writer, false, &replies, &mut Default::default()).unwrap();
        }
        status
    }

    fn doc(&self, id: &str) -> client_core::bulletin::doc::BulletinDoc {
        use client_core::sync::DocKind;
        let mut doc = self.store.load(id).unwrap();
        doc.set_actor(self.actor.clone());
        doc
    }
}

#[test]
fn a_phone_writes_nothing_into_a_bulletin_but_its_own_receipt() {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    use client_core::sync::DocKind;
    let t = town();
    let id = publish(&t, "提醒", &[]);
    let url = t.server.as_ref().unwrap().url.clone();
    // Read on a thread of its own: the helper runs a runtime of its own.
    let query = |sql: &str| std::thread::scope(|s| s.spawn(|| db_pairs(&t.data, sql)).join().unwrap());
    let stored = || query("SELECT doc_id, heads FROM documents WHERE kind = 'bulletin'");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::new();
        let phone = RawPhone::enrol(&http, &url, "v2").await;
        assert_eq!(phone.sync(&http, &url).await, 200);
        let before = stored();

        // Rewriting the notice: refused, nothing stored.
        let doc = phone.doc(&id);
        let notice = doc.automerge().get(automerge::ROOT, "notice").unwrap().unwrap().1;
        let mut edited = automerge::Automerge::load(&doc.automerge().save()).unwrap().with_actor(phone.actor.clone());
        let mut tx = edited.transaction();
        tx.put(&notice, "title", "改过的标题").unwrap();
        tx.commit();
        phone.store.append(&id, &[edited.get_last_local_change().unwrap().clone()]).unwrap();
        assert_eq!(phone.sync(&http, &url).await, 422, "a rewritten notice is refused");
        assert_eq!(stored(), before);
        phone.store.replace(&id, &doc).unwrap();

        // A receipt in another volunteer's name: refused.
        let forged = phone.doc(&id).add_receipt("v1", &phone.device_id, 1_790_000_000_000, 1);
        phone.store.append(&id, &[forged]).unwrap();
        assert_eq!(phone.sync(&http, &url).await, 422, "a receipt in v1's name from v2's phone is refused");
        assert_eq!(stored(), before);
        assert!(query("SELECT username, doc_id FROM document_entries").is_empty());

        // Its own, from a phone with a clean copy: accepted once, however often it is sent again.
        let fresh = RawPhone::enrol(&http, &url, "v2").await;
        assert_eq!(fresh.sync(&http, &url).await, 200);
        let receipt = fresh.doc(&id).add_receipt("v2", &fresh.device_id, 1_790_000_000_000, 1);
        fresh.store.append(&id, &[receipt]).unwrap();
        assert_eq!(fresh.sync(&http, &url).await, 200);
        fresh.store.set_mark(&id, &Default::default()).unwrap();
        assert_eq!(fresh.sync(&http, &url).await, 200, "the whole history again: nothing new");
    });
    assert_eq!(db_pairs(&t.data, "SELECT username, doc_id FROM document_entries"), [("v2".to_string(), id)]);
}

#[test]
fn an_expired_bulletin_is_withdrawn_and_leaves_the_phones() {
    let mut t = town();
    let tomorrow = (chrono::Local::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let id = publish(&t, "本周提醒", &["--expires", &tomorrow]);
    ok(&t.v1, &["field", "sync"], None);
    assert_eq!(bulletins_on(&t.v1).len(), 1);
    let list: Vec<Value> =
        serde_json::from_str(&ok(&t.office, &["bulletin", "list", "--format", "json"], None)).unwrap();
    let expires = list[0]["expires_at"].as_i64().unwrap();
    let end_of_tomorrow = chrono::Local::now().date_naive().succ_opt().unwrap().succ_opt().unwrap();
    let end_of_tomorrow = end_of_tomorrow.and_hms_opt(0, 0, 0).unwrap().and_local_timezone(chrono::Local).unwrap();
    assert_eq!(expires, end_of_tomorrow.timestamp_millis(), "the end of the day given, in local time");

    // The server was down when it expired: it withdraws it as it starts.
    t.stop_server();
    db_execute(&t.data, &format!("UPDATE bulletins SET expires_at = 1 WHERE id = '{id}'"));
    t.restart_server();
    let out = ok(&t.v1, &["field", "sync"], None);
    assert!(out.contains("1 deleted"), "{out}");
    assert!(bulletins_on(&t.v1).is_empty());
    assert!(ok(&t.office, &["audit", "--format", "json"], None).contains("bulletin.expire"));
}
