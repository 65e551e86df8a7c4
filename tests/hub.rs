//! Sync at base without internet: three volunteers sync through the team lead's hub while the server is down;
//! the hub then forwards everything upstream, where every visit arrives once, attributed to the device that
//! recorded it. A hub cannot forge a team-mate's visit, and the hub refuses what the server would refuse.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,2号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H3,household,3号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H4,household,4号,G2,二网格,V1,龙凤村,village,T1,太安镇\n\
M1,market,市场,G2,二网格,V1,龙凤村,village,T1,太安镇\n\
M3,market,三号市场,G3,三网格,V1,龙凤村,village,T1,太安镇\n";

struct Team {
    tmp: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    server: Option<Server>,
    office: PathBuf,
    lead: PathBuf,
    volunteers: Vec<PathBuf>,
}

impl Team {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server comes back on the same address with the same data.
    fn restart_server(&mut self) {
        self.server = Some(Server::start_with(&self.data, &format!("127.0.0.1:{}", self.port), &[]));
    }

    fn stop_server(&mut self) {
        self.server.take().expect("server running").kill();
    }
}

/// A team of a lead and three volunteers, everyone enrolled and synced at the start of the day.
fn team() -> Team {
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
    for grid in ["G1", "G2"] {
        ok(&office, &["assign", grid, "--team", "east"], None);
    }
    let mut profiles = Vec::new();
    for name in ["lead", "v1", "v2", "v3"] {
        if name != "lead" {
            let args = ["user", "create", name, "--role", "volunteer", "--team", "east", "--password-stdin"];
            ok(&office, &args, Some(&pw()));
        }
        let profile = tmp.path().join(name);
        ok(&profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(&profile, &["field", "sync"], None);
        profiles.push(profile);
    }
    let lead = profiles.remove(0);
    Team { tmp, data, port, server: Some(server), office, lead, volunteers: profiles }
}

fn device_id(profile: &Path) -> String {
    let device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap();
    device["device_id"].as_str().unwrap().to_string()
}

/// Records a visit offline and returns its id.
fn visit(profile: &Path, args: &[&str]) -> String {
    let mut all = vec!["field", "visit"];
    all.extend_from_slice(args);
    ok(profile, &all, None).trim().to_string()
}

/// Every visit the server holds, with the device it is attributed to.
fn server_visits(data: &Path) -> BTreeMap<String, String> {
    db_pairs(data, "SELECT visit_id, device_id FROM visits").into_iter().collect()
}

fn visits_on(profile: &Path, place: &str) -> u64 {
    let places: Vec<serde_json::Value> =
        serde_json::from_str(&ok(profile, &["field", "places", "--format", "json"], None)).unwrap();
    places.iter().find(|p| p["place_id"] == place).unwrap()["visits"].as_u64().unwrap()
}

#[test]
fn three_volunteers_sync_through_the_hub_offline_and_every_visit_arrives_once_upstream() {
    let mut t = team();
    let hub = Hub::start(&t.lead, &["--upstream-every", "1"]);
    t.stop_server();
    let volunteers = t.volunteers.clone();
    let (v1, v2, v3) = (&volunteers[0], &volunteers[1], &volunteers[2]);
    let err = fails(v1, &["field", "sync"], None);
    assert!(err.contains("cannot reach the server"), "the server is really down: {err}");

    // The day's work, recorded offline; two volunteers visit the same door.
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let mut record = |profile: &Path, args: &[&str]| {
        expected.insert(visit(profile, args), device_id(profile));
    };
    record(v1, &["H1", "--handbook", "--briefed", "--poster"]);
    record(v1, &["H2", "--handbook"]);
    record(v1, &["M1", "--banner"]);
    record(v2, &["H2", "--briefed", "--poster"]);
    record(v2, &["S1", "--outcome", "gone"]);
    record(v3, &["H3", "--outcome", "nobody-home"]);
    record(v3, &["H4", "--handbook", "--briefed"]);
    record(&t.lead, &["H3", "--handbook"]);

    // At base: everyone syncs through the hub; a second round brings each the visits of those after it.
    for profile in [v1, v2, v3] {
        let out = ok(profile, &["field", "sync", "--via", &hub.url], None);
        assert!(out.contains("through the hub") && out.contains("not yet at the server"), "{out}");
    }
    for profile in [v1, v2] {
        ok(profile, &["field", "sync", "--via", &hub.url], None);
    }
    for profile in [v1, v2, v3] {
        assert_eq!(visits_on(profile, "H2"), 2, "both visits to H2 reached every device");
        assert_eq!(visits_on(profile, "H3"), 2, "the lead's visit too");
    }
    let status: serde_json::Value =
        serde_json::from_str(&ok(v1, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 3, "visits handed to the hub are not yet at the server");

    // The server comes back: the hub forwards everything by itself.
    t.restart_server();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server_visits(&t.data).len() < expected.len() {
        assert!(Instant::now() < deadline, "the hub did not forward the visits: {:?}", server_visits(&t.data));
        std::thread::sleep(Duration::from_millis(200));
    }
    // One volunteer also syncs directly: what the hub already forwarded is not stored twice.
    let out = ok(v3, &["field", "sync"], None);
    assert!(out.contains("0 new to the server") && out.contains("0 visits unsynced"), "{out}");
    let out = ok(&t.lead, &["hub", "sync"], None);
    assert!(out.contains("0 new to the server"), "{out}");
    assert_eq!(server_visits(&t.data), expected, "every visit once, attributed to the device that recorded it");

    ok(&t.office, &["login", "--server", &t.url(), "--username", "office", "--password-stdin"], Some(&pw()));
    let town = coverage(&t.office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (4, 4, 1), "H1 H2 H3 H4 reached, S1 gone");
    assert_eq!(figure(&town, "T1", "awareness"), (4, 3, 1));
    let audit = ok(&t.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.relayed"), "relaying is audited: {audit}");
    drop(hub);
    drop(t.tmp);
}

/// Appends a change to a profile's copy of a grid as if the device had written it, with an optional signature.
fn plant(
    profile: &Path,
    grid: &str,
    change: &automerge::Change,
    signature: Option<client_core::protocol::ChangeSignature>,
) {
    let store = client_core::store::GridStore::open(&profile.join("grids")).unwrap();
    if let Some(s) = signature {
        store.add_signatures(grid, &[s]).unwrap();
    }
    store.append(grid, std::slice::from_ref(change)).unwrap();
}

fn profile_value(profile: &Path, key: &str) -> String {
    let device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap();
    device[key].as_str().unwrap().to_string()
}

/// A visit in `victim`'s name, written under the victim's actor on `forger`'s copy of G1.
fn forged_visit(forger: &Path, victim: &Path) -> automerge::Change {
    let store = client_core::store::GridStore::open(&forger.join("grids")).unwrap();
    let mut doc = store.load("G1").unwrap();
    doc.set_actor(profile_value(victim, "actor").parse().unwrap());
    let visit = client_core::grid::model::Visit {
        id: uuid::Uuid::now_v7(),
        place_id: "H1".into(),
        volunteer: profile_value(victim, "username"),
        device: device_id(victim),
        at: chrono::Utc::now(),
        outcome: client_core::grid::model::Outcome::Completed,
        deliveries: client_core::grid::model::Deliveries::of(["handbook"]),
        note: None,
        gps: None,
        photos: Vec::new(),
    };
    doc.add_visit(&visit).unwrap()
}

fn signing_key(profile: &Path) -> client_core::sign::KeyPair {
    client_core::sign::KeyPair::from_hex(&profile_value(profile, "signing_key")).unwrap()
}

#[test]
fn a_hub_cannot_forge_a_visit_for_another_device() {
    let t = team();
    let v1 = &t.volunteers[0];
    let before = server_visits(&t.data);

    // The lead's hub writes a visit in v1's name under v1's actor: without v1's signature, ...
    let forged = forged_visit(&t.lead, v1);
    plant(&t.lead, "G1", &forged, None);
    let err = fails(&t.lead, &["hub", "sync"], None);
    assert!(err.contains("refused the sync") && err.contains("relayed without that device's signature"), "{err}");
    // ... and signed with a key that is not v1's.
    let bogus = signing_key(&t.lead).sign_change(&forged.hash());
    plant(&t.lead, "G1", &forged, Some(bogus));
    let err = fails(&t.lead, &["hub", "sync"], None);
    assert!(err.contains("its signature is not that device's"), "{err}");

    assert_eq!(server_visits(&t.data), before, "nothing of the forged sync was stored");
    let audit = ok(&t.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.rejected") && audit.contains("signature"), "{audit}");
}

#[test]
fn the_hub_checks_offline_what_the_server_would() {
    let t = team();
    let (v1, v2, v3) = (&t.volunteers[0], &t.volunteers[1], &t.volunteers[2]);
    let hub = Hub::start(&t.lead, &["--upstream-every", "0"]);

    // The lead's own profile is the hub's copy: syncing it through the hub is refused at once.
    let err = fails(&t.lead, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("on the hub already"), "{err}");

    // A grid assigned after the lead last synced is left for the server; the others still sync through the hub.
    ok(&t.office, &["assign", "G3", "--team", "east"], None);
    ok(v1, &["field", "sync"], None);
    visit(v1, &["M3", "--banner"]);
    visit(v1, &["H1", "--handbook"]);
    let out = ok(v1, &["field", "sync", "--via", &hub.url], None);
    assert!(out.contains("synced 2 grids through the hub") && out.contains("left for the server: G3"), "{out}");
    assert_eq!(visits_on(&t.lead, "H1"), 1, "the hub holds v1's visit to H1");
    let status: serde_json::Value =
        serde_json::from_str(&ok(v1, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 2, "neither is at the server yet");

    // v2 forges a visit of v1's, signing it with its own key: the hub checks like the server.
    let forged = forged_visit(v2, v1);
    plant(v2, "G1", &forged, Some(signing_key(v2).sign_change(&forged.hash())));
    let err = fails(v2, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("its signature is not that device's"), "{err}");
    let err = fails(v2, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("nothing was lost"), "the device keeps its data: {err}");

    // v3 syncs through the hub, then the office revokes it before the hub forwards: its visit is stored
    // upstream (later work depends on it) but not counted.
    let quarantined = visit(v3, &["H3", "--handbook"]);
    ok(v3, &["field", "sync", "--via", &hub.url], None);
    ok(&t.office, &["device", "revoke", &device_id(v3)], None);
    ok(&t.lead, &["hub", "sync"], None);
    let stored = server_visits(&t.data);
    assert!(!stored.contains_key(&quarantined) && stored.len() == 1, "only v1's H1 visit counts: {stored:?}");
    let gaps = ok(&t.office, &["report", "gaps", "--grid", "G1", "--indicator", "handbook", "--format", "json"], None);
    assert!(gaps.contains("\"H3\""), "H3 is still to reach: {gaps}");
    let audit = ok(&t.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("1 visits of revoked devices stored, not counted"), "{audit}");
    // Once the hub has read the roster, it refuses the revoked device itself.
    visit(v3, &["H4", "--handbook"]);
    let err = fails(v3, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("revoked"), "{err}");

    // The others still sync; a token the server signed the old way (HS256, which a hub cannot check) is refused.
    ok(v1, &["field", "sync", "--via", &hub.url], None);
    let legacy = t.tmp.path().join("legacy");
    std::fs::create_dir_all(&legacy).unwrap();
    let mut device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v1.join("device.json")).unwrap()).unwrap();
    let token = device["token"].as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token).unwrap().claims;
    let secret = std::fs::read(t.data.join("jwt-secret")).unwrap();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    device["token"] = serde_json::Value::String(hs256);
    std::fs::write(legacy.join("device.json"), serde_json::to_vec(&device).unwrap()).unwrap();
    let err = fails(&legacy, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("enrol it again"), "{err}");
}

/// What the field web app does, at the protocol level: it enrols at the hub (passed on to the server) with a
/// public key, then pushes its own visit to the hub. The hub takes it only with the signature of that key: not
/// without one, not with another key's. Enrolment through a hub needs the server, and says so when it is down.
#[test]
fn a_hub_takes_a_web_app_s_visit_only_with_its_own_signature() {
    use client_core::protocol::{self, GridPush, SyncRequest, PROTOCOL_VERSION};
    use client_core::sign::KeyPair;
    let mut t = team();
    let hub = Hub::start(&t.lead, &["--upstream-every", "0"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let enrol = |password: &str, key: &KeyPair| -> (u16, serde_json::Value) {
        let body = serde_json::json!({
            "username": "v1", "password": password, "device_name": "phone", "public_key": key.public().to_hex()
        });
        rt.block_on(async {
            let resp = http.post(format!("{}/api/v1/devices", hub.url)).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json().await.unwrap())
        })
    };
    let key = KeyPair::generate();
    assert_eq!(enrol("not the password", &key).0, 401, "the server's answer comes back through the hub");
    let (status, device) = enrol(PASSWORD, &key);
    assert_eq!(status, 200, "{device}");
    let str_of = |k: &str| device[k].as_str().unwrap().to_string();

    // The app's first visit, on the hub's copy of G1 (which it received there).
    let mut doc = client_core::store::GridStore::open(&t.lead.join("grids")).unwrap().load("G1").unwrap();
    doc.set_actor(str_of("actor").parse().unwrap());
    let visit = client_core::grid::model::Visit {
        id: uuid::Uuid::now_v7(),
        place_id: "H2".into(),
        volunteer: "v1".into(),
        device: str_of("device_id"),
        at: chrono::Utc::now(),
        outcome: client_core::grid::model::Outcome::Completed,
        deliveries: client_core::grid::model::Deliveries::of(["handbook"]),
        note: None,
        gps: None,
        photos: Vec::new(),
    };
    let change = doc.add_visit(&visit).unwrap();
    let push = |signatures| {
        let grids = vec![GridPush {
            grid: "G1".into(),
            have: protocol::hashes_to_wire(&doc.heads()),
            changes: vec![serde_bytes::ByteBuf::from(change.raw_bytes().to_vec())],
            signatures,
            attestation: None,
        }];
        let body = protocol::encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids,
            tasks: Some(Vec::new()),
            docs: Default::default(),
        });
        rt.block_on(async {
            let resp = http
                .post(format!("{}/api/v1/sync", hub.url))
                .bearer_auth(str_of("token"))
                .header("content-type", protocol::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        })
    };
    let (status, body) = push(Vec::new());
    assert_eq!(status, 422, "unsigned: {}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("carries no valid signature"));
    let (status, body) = push(vec![KeyPair::generate().sign_change(&change.hash())]);
    assert_eq!(status, 422, "signed by another key: {}", String::from_utf8_lossy(&body));
    assert_eq!(visits_on(&t.lead, "H2"), 0, "nothing of a refused push is kept");
    let (status, body) = push(vec![key.sign_change(&change.hash())]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let reply: client_core::protocol::SyncResponse = protocol::decode(&body).unwrap();
    assert_eq!(reply.grids.iter().find(|g| g.grid == "G1").unwrap().stored, 1);
    assert_eq!(visits_on(&t.lead, "H2"), 1);

    t.stop_server();
    let (status, body) = enrol(PASSWORD, &KeyPair::generate());
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("only the server can enrol a device"), "{body}");
}

const PERSON: &str = "李四婆婆";
const PHONE: &str = "13912345678";
const INSTRUCTIONS: &str = "自称法院来电要求转账，请立即上门劝阻";

/// Paths of the files under `dir` whose name or content holds one of `secrets`.
fn files_holding(dir: &Path, secrets: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_holding(&path, secrets));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.to_string_lossy();
        if secrets.iter().any(|s| name.contains(s) || bytes.windows(s.len()).any(|w| w == s.as_bytes())) {
            out.push(name.into_owned());
        }
    }
    out
}

fn copy_profile(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_profile(&path, &target);
        } else if !path.file_name().unwrap().to_string_lossy().ends_with(".lock") {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Appends to `profile`'s copy of a task an outcome in `victim`'s name under the victim's actor, with an optional
/// signature by `key`, as a device or hub bent on forging would.
fn plant_forged_outcome(profile: &Path, task: &str, victim: &Path, key: Option<&client_core::sign::KeyPair>) {
    let store = client_core::task::store::TaskStore::open(&profile.join("tasks")).unwrap();
    let mut doc = store.load(task).unwrap();
    doc.set_actor(profile_value(victim, "actor").parse().unwrap());
    let outcome = client_core::task::model::TaskOutcome {
        id: uuid::Uuid::now_v7(),
        volunteer: profile_value(victim, "username"),
        device: device_id(victim),
        at: chrono::Utc::now(),
        method: client_core::task::model::ContactMethod::Phone,
        reached: true,
        dissuaded: true,
        money_lost: false,
        amount_fen: None,
        feedback: Some("forged".into()),
        gps: None,
    };
    let change = doc.add_outcome(&outcome).unwrap();
    if let Some(key) = key {
        store.files().add_signatures(task, &[key.sign_change(&change.hash())]).unwrap();
    }
    store.append(task, &[change]).unwrap();
}

/// The sign-fors a device holds in its copy of a task, as (kind, milliseconds) pairs it wrote.
fn own_signs(profile: &Path, task: &str) -> std::collections::BTreeSet<(String, String)> {
    let store = client_core::task::store::TaskStore::open(&profile.join("tasks")).unwrap();
    let device = device_id(profile);
    let signs = store.load(task).unwrap().signs().unwrap();
    signs
        .into_iter()
        .filter(|s| s.device == device)
        .map(|s| (s.kind.id().to_string(), s.at.timestamp_millis().to_string()))
        .collect()
}

#[test]
fn urgent_tasks_go_out_through_the_hub_and_their_outcomes_come_back_attributed_to_the_volunteer() {
    let mut t = team();
    let office = t.office.clone();
    let args = ["--person", PERSON, "--phone", PHONE, "--fraud-type", "impersonation", "--within", "2h"];
    let mut create = vec!["task", "create", "--place", "H2", "--instructions", INSTRUCTIONS];
    create.extend_from_slice(&args);
    let id = ok(&office, &create, None).trim().to_string();
    // The lead's copy receives the task; then the server goes down.
    ok(&t.lead, &["field", "sync"], None);
    let hub = Hub::start(&t.lead, &["--upstream-every", "0"]);
    t.stop_server();
    let (v1, v2) = (t.volunteers[0].clone(), t.volunteers[1].clone());

    // v1 receives it through the hub and signs for it at once, opens it and records an outcome, all offline.
    let out = ok(&v1, &["field", "sync", "--via", &hub.url], None);
    assert!(out.contains("1 urgent tasks on this device (1 new"), "{out}");
    let shown = ok(&v1, &["field", "task", &id[..8]], None);
    assert!(shown.contains(PHONE) && shown.contains(PERSON), "{shown}");
    let done = ["--method", "face-to-face", "--reached", "yes", "--dissuaded", "yes", "--feedback", "已劝阻"];
    let mut record = vec!["field", "task-done", &id[..8]];
    record.extend_from_slice(&done);
    let outcome = ok(&v1, &record, None).trim().to_string();
    let out = ok(&v1, &["field", "sync", "--via", &hub.url], None);
    assert!(out.contains("3 sign-fors and outcomes not yet at the server"), "{out}");
    // v2 receives it from the hub with v1's outcome in it.
    ok(&v2, &["field", "sync", "--via", &hub.url], None);
    let tasks: serde_json::Value =
        serde_json::from_str(&ok(&v2, &["field", "tasks", "--format", "json"], None)).unwrap();
    assert_eq!(tasks[0]["state"], "done", "v1's outcome reached v2 through the hub: {tasks}");

    // A volunteer cannot pass off an outcome in v1's name at the hub, signed with its own key.
    let forger = t.tmp.path().join("v2-forger");
    copy_profile(&v2, &forger);
    plant_forged_outcome(&forger, &id, &v1, Some(&signing_key(&v2)));
    let err = fails(&forger, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("its signature is not that device's"), "{err}");

    // The server is back. A hub that writes an outcome in v1's name cannot sign it: refused, nothing stored.
    t.restart_server();
    let forged_hub = t.tmp.path().join("lead-forger");
    copy_profile(&t.lead, &forged_hub);
    plant_forged_outcome(&forged_hub, &id, &v1, None);
    let err = fails(&forged_hub, &["hub", "sync"], None);
    assert!(err.contains("refused the sync") && err.contains("relayed without that device's signature"), "{err}");
    let outcomes = |data: &Path| {
        db_pairs(data, &format!("SELECT outcome_id, device_id FROM task_outcomes WHERE task_id = '{id}'"))
    };
    assert!(outcomes(&t.data).is_empty(), "nothing of the forged sync was stored");

    // The hub forwards: the server has v1's sign-fors and outcome once, in v1's name, at v1's device times.
    let out = ok(&t.lead, &["hub", "sync"], None);
    assert!(out.contains("1 urgent tasks on this device"), "{out}");
    assert_eq!(outcomes(&t.data), vec![(outcome.clone(), device_id(&v1))]);
    let signs = db_pairs(
        &t.data,
        &format!(
            "SELECT kind, CAST(at AS TEXT) FROM task_signs WHERE task_id = '{id}' AND device_id = '{}'",
            device_id(&v1)
        ),
    );
    assert_eq!(signs.len(), 2, "received and opened, once each: {signs:?}");
    assert_eq!(signs.into_iter().collect::<std::collections::BTreeSet<_>>(), own_signs(&v1, &id));
    let outcome_at =
        db_pairs(&t.data, &format!("SELECT outcome_id, CAST(at AS TEXT) FROM task_outcomes WHERE task_id = '{id}'"));
    let v1_doc = client_core::task::store::TaskStore::open(&v1.join("tasks")).unwrap().load(&id).unwrap();
    assert_eq!(outcome_at[0].1, v1_doc.outcomes().unwrap()[0].at.timestamp_millis().to_string());
    drop(v1_doc);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&office, &["task", "show", &id, "--format", "json"], None)).unwrap();
    assert_eq!(shown["status"], "done", "{shown:#}");
    // v2 syncs directly too: what the hub forwarded is not stored twice.
    ok(&v2, &["field", "sync"], None);
    assert_eq!(outcomes(&t.data).len(), 1);

    // The office closes the task: the hub's next upstream sync deletes it from the lead's profile, ...
    ok(&office, &["task", "evaluate", &id, "--result", "effective"], None);
    let out = ok(&t.lead, &["hub", "sync"], None);
    assert!(out.contains("1 closed tasks deleted"), "{out}");
    assert_eq!(files_holding(&t.lead, &[PHONE, PERSON, INSTRUCTIONS]), Vec::<String>::new());
    // ... and devices that sync only through the hub delete theirs, with no server in reach.
    t.stop_server();
    for p in [&v1, &v2] {
        let out = ok(p, &["field", "sync", "--via", &hub.url], None);
        assert!(out.contains("1 closed tasks deleted"), "{out}");
        assert_eq!(files_holding(p, &[PHONE, PERSON, INSTRUCTIONS, &id]), Vec::<String>::new());
    }
    assert_eq!(files_holding(&t.lead, &[PHONE, PERSON, INSTRUCTIONS]), Vec::<String>::new());

    // A device that the roster (read from the server after the device enrolled) no longer lists has left the
    // team: the hub gives it nothing, as the server would not.
    let roster_path = t.lead.join("roster.json");
    let mut roster: serde_json::Value = serde_json::from_slice(&std::fs::read(&roster_path).unwrap()).unwrap();
    roster["devices"].as_array_mut().unwrap().retain(|d| d["device_id"] != device_id(&v2).as_str());
    std::fs::write(&roster_path, serde_json::to_vec(&roster).unwrap()).unwrap();
    let err = fails(&v2, &["field", "sync", "--via", &hub.url], None);
    assert!(err.contains("not in team east"), "{err}");
    drop(hub);
}

/// The office gives a grid to another team while the hub serves: the hub takes the team's visits until its next
/// upstream sync tells it, forwards them, and from then on holds and serves nothing of the grid; volunteers
/// deliver what they recorded before they learnt of it to the server, and nothing of the other team reaches them.
#[test]
fn a_hub_stops_serving_a_grid_taken_from_its_team_once_its_upstream_sync_tells_it() {
    const NOTE: &str = "west's note on the market";
    let t = team();
    let hub = Hub::start(&t.lead, &["--upstream-every", "0"]);
    let (v1, v2) = (&t.volunteers[0], &t.volunteers[1]);
    let west = t.tmp.path().join("w1");
    ok(&t.office, &["team", "create", "west"], None);
    ok(&t.office, &["user", "create", "w1", "--role", "volunteer", "--team", "west", "--password-stdin"], Some(&pw()));
    ok(&west, &["field", "login", "--server", &t.url(), "--username", "w1", "--password-stdin"], Some(&pw()));
    ok(&t.office, &["assign", "G2", "--team", "west"], None);
    ok(&west, &["field", "sync"], None);
    visit(&west, &["M1", "--banner", "--note", NOTE]);
    ok(&west, &["field", "sync"], None);

    // East's volunteers have not heard: they record on G2 offline, and v1 syncs at base before the hub has.
    let early = visit(v1, &["H4", "--handbook"]);
    let later = visit(v2, &["H4", "--briefed"]);
    ok(v1, &["field", "sync", "--via", &hub.url], None);
    // The hub forwards v1's visit and learns that G2 is gone: its profile keeps nothing of G2.
    ok(&t.lead, &["hub", "sync"], None);
    assert!(!t.lead.join("grids/G2.snapshot").exists(), "the hub still holds G2");
    assert_eq!(files_holding(&t.lead, &[NOTE]), Vec::<String>::new());
    // Through the hub, G2 is left for the server: v2's visit stays on v2, unsynced, and nothing of G2 comes back.
    let out = ok(v2, &["field", "sync", "--via", &hub.url], None);
    assert!(out.contains("not on the hub, left for the server: G2"), "{out}");
    assert!(out.contains("1 visits not yet at the server"), "{out}");
    // With the server, each delivers what it recorded before it learnt, and drops the grid.
    for profile in [v1, v2] {
        let out = ok(profile, &["field", "sync"], None);
        assert!(out.contains("no longer assigned, removed: G2"), "{out}");
        assert_eq!(files_holding(profile, &[NOTE]), Vec::<String>::new());
    }
    let stored = server_visits(&t.data);
    assert_eq!(stored.get(&early), Some(&device_id(v1)));
    assert_eq!(stored.get(&later), Some(&device_id(v2)));
    drop(hub);
}
