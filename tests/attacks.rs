//! The attack suite: every forbidden action is tried against a real server and refused with the right status,
//! and nothing changes.

mod common;
use automerge::transaction::Transactable;
use automerge::{ActorId, ReadDoc};
use client_core::grid::model::{Deliveries, Outcome, Visit};
use client_core::protocol::{self, GridPush, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::store::GridStore;
use client_core::sync::build_push;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
A1,household,a1,GA,ga,V1,v1,village,T1,t\nA2,household,a2,GA,ga,V1,v1,village,T1,t\n\
B1,household,b1,GB,gb,V2,v2,community,T1,t\nB2,shop,b2,GB,gb,V2,v2,community,T1,t\n";

struct World {
    tmp: tempfile::TempDir,
    server: Server,
    office: PathBuf,
    /// Volunteers: a1 and a2 in team-a (grid GA), b1 in team-b (grid GB).
    a1: PathBuf,
    a2: PathBuf,
    b1: PathBuf,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

fn world_with(extra: &[&str]) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start_with(&data, "127.0.0.1:0", extra);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let f = write_file(tmp.path(), "t.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    for (team, grid) in [("team-a", "GA"), ("team-b", "GB")] {
        ok(&office, &["team", "create", team], None);
        ok(&office, &["assign", grid, "--team", team], None);
    }
    let mut profiles = Vec::new();
    for (user, team) in [("a1", "team-a"), ("a2", "team-a"), ("b1", "team-b")] {
        ok(&office, &["user", "create", user, "--role", "volunteer", "--team", team, "--password-stdin"], Some(&pw()));
        let p = tmp.path().join(user);
        ok(&p, &["field", "login", "--server", &server.url, "--username", user, "--password-stdin"], Some(&pw()));
        ok(&p, &["field", "sync"], None);
        profiles.push(p);
    }
    let b1 = profiles.pop().unwrap();
    let a2 = profiles.pop().unwrap();
    let a1 = profiles.pop().unwrap();
    World { tmp, server, office, a1, a2, b1, rt: tokio::runtime::Runtime::new().unwrap(), http: reqwest::Client::new() }
}

fn world() -> World {
    world_with(&[])
}

fn device(profile: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap()
}

fn session_token(profile: &Path) -> String {
    let s: Value = serde_json::from_slice(&std::fs::read(profile.join("session.json")).unwrap()).unwrap();
    s["token"].as_str().unwrap().to_string()
}

impl World {
    fn sync_raw(&self, token: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.rt.block_on(async {
            let resp = self
                .http
                .post(format!("{}/api/v1/sync", self.server.url))
                .bearer_auth(token)
                .header("content-type", protocol::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        })
    }

    fn sync(&self, token: &str, grids: Vec<GridPush>) -> (u16, Vec<u8>) {
        self.sync_raw(
            token,
            protocol::encode(&SyncRequest { protocol: PROTOCOL_VERSION, grids, tasks: None, docs: Default::default() }),
        )
    }

    fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let mut req = self.http.request(method, format!("{}{path}", self.server.url));
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

    fn town(&self) -> Vec<Value> {
        coverage(&self.office, "town", None)
    }

    /// A device's copy of a grid, with its own actor.
    fn grid(&self, profile: &Path, code: &str) -> client_core::GridDoc {
        let store = GridStore::open(&profile.join("grids")).unwrap();
        let mut doc = store.load(code).unwrap();
        doc.set_actor(ActorId::try_from(device(profile)["actor"].as_str().unwrap()).unwrap());
        doc
    }
}

fn error_message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn new_visit(profile: &Path, place: &str) -> Visit {
    let d = device(profile);
    Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.into(),
        volunteer: d["username"].as_str().unwrap().into(),
        device: d["device_id"].as_str().unwrap().into(),
        at: chrono::Utc::now(),
        outcome: Outcome::Completed,
        deliveries: Deliveries::of(["handbook"]),
        note: None,
        gps: None,
        photos: Vec::new(),
    }
}

#[test]
fn another_teams_grid_can_be_neither_pulled_nor_pushed() {
    let w = world();
    let before = w.town();
    let b_token = device(&w.b1)["token"].as_str().unwrap().to_string();
    // The team-b device never received GA.
    assert!(!w.b1.join("grids/GA.snapshot").exists());
    // Asking for GA by pushing an empty state for it.
    let (status, body) = w.sync(&b_token, vec![GridPush { grid: "GA".into(), ..Default::default() }]);
    assert_eq!(status, 403, "{}", error_message(&body));
    assert!(error_message(&body).contains("not assigned to your team"));
    // Pushing a visit into GA built on a stolen copy of the document.
    let mut stolen = w.grid(&w.a1, "GA");
    stolen.set_actor(ActorId::try_from(device(&w.b1)["actor"].as_str().unwrap()).unwrap());
    let base = stolen.heads();
    stolen.add_visit(&new_visit(&w.b1, "A1")).unwrap();
    let (status, _) = w.sync(&b_token, vec![build_push("GA", &stolen, Some(&base))]);
    assert_eq!(status, 403);
    assert_eq!(w.town(), before, "nothing changed");
}

#[test]
fn spoofed_actor_deletion_and_impersonation_are_rejected() {
    let w = world();
    // a2 records a real visit that a1 will then try to erase.
    ok(&w.a2, &["field", "visit", "A2", "--handbook", "--briefed", "--poster"], None);
    ok(&w.a2, &["field", "sync"], None);
    ok(&w.a1, &["field", "sync"], None);
    let before = w.town();
    assert_eq!(figure(&before, "T1", "handbook"), (4, 1, 0));
    let a1_token = device(&w.a1)["token"].as_str().unwrap().to_string();
    let doc = w.grid(&w.a1, "GA");
    let base = doc.heads();

    // 1. A change written under someone else's actor id.
    let mut spoof = doc.fork();
    spoof.set_actor(ActorId::try_from(device(&w.a2)["actor"].as_str().unwrap()).unwrap());
    spoof.add_visit(&new_visit(&w.a1, "A1")).unwrap();
    let (status, body) = w.sync(&a1_token, vec![build_push("GA", &spoof, Some(&base))]);
    assert_eq!(status, 422, "{}", error_message(&body));
    assert!(error_message(&body).contains("actor"), "{}", error_message(&body));

    // 2. Deleting another volunteer's visit, crafted directly with automerge.
    let mut am =
        doc.automerge().fork().with_actor(ActorId::try_from(device(&w.a1)["actor"].as_str().unwrap()).unwrap());
    let visits = am.get(automerge::ROOT, "visits").unwrap().unwrap().1;
    let key = am.keys(&visits).next().unwrap();
    let mut tx = am.transaction();
    tx.delete(&visits, key.as_str()).unwrap();
    tx.commit();
    let deleting = client_core::GridDoc::from_automerge(am);
    let (status, body) = w.sync(&a1_token, vec![build_push("GA", &deleting, Some(&base))]);
    assert_eq!(status, 422);
    assert!(error_message(&body).contains("overwrites or deletes"), "{}", error_message(&body));

    // 3. Rewriting a field of that visit.
    let mut am =
        doc.automerge().fork().with_actor(ActorId::try_from(device(&w.a1)["actor"].as_str().unwrap()).unwrap());
    let visit = am.get(&visits, key.as_str()).unwrap().unwrap().1;
    let mut tx = am.transaction();
    tx.put(&visit, "handbook", false).unwrap();
    tx.commit();
    let (status, _) = w.sync(&a1_token, vec![build_push("GA", &client_core::GridDoc::from_automerge(am), Some(&base))]);
    assert_eq!(status, 422);

    // 4. A visit in another volunteer's name, and 5. one for a place outside the grid.
    for (visit, reason) in [
        (Visit { volunteer: "a2".into(), ..new_visit(&w.a1, "A1") }, "claims volunteer"),
        (new_visit(&w.a1, "B1"), "not in this grid"),
    ] {
        let mut forged = doc.fork();
        forged.add_visit(&visit).unwrap();
        let (status, body) = w.sync(&a1_token, vec![build_push("GA", &forged, Some(&base))]);
        assert_eq!(status, 422);
        assert!(error_message(&body).contains(reason), "{}", error_message(&body));
    }

    // 6. Writing outside the schema: a new root key.
    let mut am =
        doc.automerge().fork().with_actor(ActorId::try_from(device(&w.a1)["actor"].as_str().unwrap()).unwrap());
    let mut tx = am.transaction();
    tx.put(automerge::ROOT, "owned", "yes").unwrap();
    tx.commit();
    let (status, _) = w.sync(&a1_token, vec![build_push("GA", &client_core::GridDoc::from_automerge(am), Some(&base))]);
    assert_eq!(status, 422);

    // 7. An oversized note.
    let mut big = doc.fork();
    big.add_visit(&Visit { note: Some("x".repeat(5000)), ..new_visit(&w.a1, "A1") }).unwrap();
    let (status, body) = w.sync(&a1_token, vec![build_push("GA", &big, Some(&base))]);
    assert_eq!(status, 422, "{}", error_message(&body));

    // 8. Garbage in place of a change, and garbage in place of CBOR.
    let push = GridPush {
        grid: "GA".into(),
        have: vec![],
        changes: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
        ..Default::default()
    };
    assert_eq!(w.sync(&a1_token, vec![push]).0, 400);
    assert_eq!(w.sync_raw(&a1_token, b"\xff\x00not cbor".to_vec()).0, 400);

    assert_eq!(w.town(), before, "nothing of any refused request was stored");
    // Nor kept in the server's copy of the document: a team-mate syncing now receives nothing new.
    ok(&w.a2, &["field", "sync"], None);
    assert_eq!(w.grid(&w.a2, "GA").heads(), base, "a refused change reached another device");
    // The real device still syncs normally afterwards, and the rejections are in the audit log.
    ok(&w.a1, &["field", "sync"], None);
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.rejected"), "{audit}");
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn tampered_expired_unsigned_and_misdirected_tokens_get_401() {
    let w = world();
    let office_token = session_token(&w.office);
    let device_token = device(&w.a1)["token"].as_str().unwrap().to_string();
    let coverage_with = |t: &str| w.call(reqwest::Method::GET, "/api/v1/reports/coverage", Some(t), None).0;
    assert_eq!(coverage_with(&office_token), 200);

    // Tampered: the payload says role office for a volunteer, the signature is the original.
    let parts: Vec<&str> = device_token.split('.').collect();
    use base64::Engine;
    let mut claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = "office".into();
    claims["aud"] = "doorstep-session".into();
    let tampered = format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2]);
    assert_eq!(coverage_with(&tampered), 401);

    // alg: none.
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    assert_eq!(coverage_with(&none), 401);

    // Expired, but correctly signed with the server's own secret.
    let secret = std::fs::read(w.server.data_dir.join("jwt-secret")).unwrap();
    let mut office_claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(office_token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    office_claims["exp"] = (chrono::Utc::now().timestamp() - 3600).into();
    let key = jsonwebtoken::EncodingKey::from_secret(&secret);
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &office_claims, &key).unwrap();
    assert_eq!(coverage_with(&expired), 401);
    // Signed with another secret.
    office_claims["exp"] = (chrono::Utc::now().timestamp() + 3600).into();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &office_claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(coverage_with(&forged), 401);
    // The same claims with the right secret work, so the refusals above are about the token alone.
    let fresh = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &office_claims, &key).unwrap();
    assert_eq!(coverage_with(&fresh), 200);

    // Wrong audience both ways.
    assert_eq!(coverage_with(&device_token), 401, "a device token is not a session");
    assert_eq!(w.sync(&office_token, vec![]).0, 401, "a session token cannot sync");
}

#[test]
fn revoked_devices_and_disabled_users_are_locked_out_and_keep_their_visits() {
    let w = world();
    let id = device(&w.a1)["device_id"].as_str().unwrap().to_string();
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    ok(&w.office, &["device", "revoke", &id], None);
    let err = fails(&w.a1, &["field", "sync"], None);
    assert!(err.contains("revoked") && err.contains("1 unsynced visits stay on this device"), "{err}");
    let status: Value = serde_json::from_str(&ok(&w.a1, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 1);
    let devices: Vec<Value> =
        serde_json::from_str(&ok(&w.office, &["device", "list", "--format", "json"], None)).unwrap();
    assert!(devices.iter().any(|d| d["device_id"] == id.as_str() && !d["revoked_at"].is_null()));

    // Re-enrolling keeps the unsynced visit and delivers it.
    ok(&w.a1, &["field", "login", "--server", &w.server.url, "--username", "a1", "--password-stdin"], Some(&pw()))
        .to_string();
    ok(&w.a1, &["field", "sync"], None);
    assert_eq!(figure(&w.town(), "T1", "handbook"), (4, 1, 0));

    // Disabling a user stops every device of theirs at once.
    ok(&w.office, &["user", "disable", "a2"], None);
    let err = fails(&w.a2, &["field", "sync"], None);
    assert!(err.contains("disabled"), "{err}");
    let err = fails(
        &w.a2,
        &["field", "login", "--server", &w.server.url, "--username", "a2", "--password-stdin"],
        Some(&pw()),
    );
    assert!(err.contains("wrong username or password"), "{err}");
}

#[test]
fn roles_are_enforced_on_every_endpoint() {
    let w = world();
    ok(&w.office, &["user", "create", "viewer1", "--role", "viewer", "--area", "V2", "--password-stdin"], Some(&pw()));
    ok(&w.office, &["user", "create", "lead-a", "--role", "lead", "--team", "team-a", "--password-stdin"], Some(&pw()));
    let viewer = w.tmp.path().join("viewer");
    let vol = w.tmp.path().join("vol-session");
    let lead = w.tmp.path().join("lead");
    for (p, u) in [(&viewer, "viewer1"), (&vol, "a1"), (&lead, "lead-a")] {
        ok(p, &["login", "--server", &w.server.url, "--username", u, "--password-stdin"], Some(&pw()));
    }
    let before = w.town();
    let f = write_file(w.tmp.path(), "evil.csv", TERRITORY.replace("a1,GA", "pwned,GA").as_bytes());
    for p in [&viewer, &vol, &lead] {
        let err = fails(p, &["territory", "import", f.to_str().unwrap()], None);
        assert!(err.contains("may not do this"), "{err}");
        let err = fails(p, &["assign", "GA", "--team", "team-b"], None);
        assert!(err.contains("may not do this"), "{err}");
    }
    let err = fails(&viewer, &["user", "create", "x1", "--role", "office", "--password-stdin"], Some(&pw()));
    assert!(err.contains("may not do this"), "{err}");
    let err = fails(&vol, &["report", "coverage"], None);
    assert!(err.contains("may not do this"), "{err}");
    assert_eq!(w.town(), before);

    // A viewer reads only their own area.
    let rows = coverage(&viewer, "grid", None);
    assert!(!rows.is_empty() && rows.iter().all(|r| r["area"] == "GB"), "{rows:?}");
    let err = fails(&viewer, &["report", "coverage", "--area", "V1"], None);
    assert!(err.contains("outside your area"), "{err}");
    // A viewer cannot enrol a device.
    let err = fails(
        &w.tmp.path().join("vp"),
        &["field", "login", "--server", &w.server.url, "--username", "viewer1", "--password-stdin"],
        Some(&pw()),
    );
    assert!(err.contains("viewers"), "{err}");

    // A lead sees the team's grids only, and adds volunteers to their own team only.
    let rows = coverage(&lead, "grid", None);
    assert!(!rows.is_empty() && rows.iter().all(|r| r["area"] == "GA"), "{rows:?}");
    ok(&lead, &["user", "create", "a3", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    let err = fails(
        &lead,
        &["user", "create", "b9", "--role", "volunteer", "--team", "team-b", "--password-stdin"],
        Some(&pw()),
    );
    assert!(err.contains("own team"), "{err}");
    let err = fails(
        &lead,
        &["user", "create", "boss", "--role", "office", "--team", "team-a", "--password-stdin"],
        Some(&pw()),
    );
    assert!(err.contains("own team"), "{err}");
}

/// Declares a 65 MiB sync body and sends only its first 64 KiB: the server refuses it on the declared length
/// alone, before reading the body. (Sending the whole body would race the server's close: once it has answered,
/// it closes with the rest of the body unread, and the client may see a reset instead of the 413.)
fn declared_too_large(w: &World, token: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = w.server.url.trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST /api/v1/sync HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {}\r\n\
         Content-Length: {}\r\n\r\n",
        protocol::CONTENT_TYPE,
        65 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(&[0u8; 64 * 1024]).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed without answering: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap().to_string();
    status_line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn oversized_bodies_get_413_and_the_server_keeps_serving() {
    let w = world();
    let token = device(&w.a1)["token"].as_str().unwrap().to_string();
    assert_eq!(declared_too_large(&w, &token), 413);
    // A small gzip body that inflates beyond the limit is refused too.
    let bomb = client_core::protocol::compress(&vec![0u8; 100 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let status = w.rt.block_on(async {
        w.http
            .post(format!("{}/api/v1/sync", w.server.url))
            .bearer_auth(&token)
            .header("content-type", protocol::CONTENT_TYPE)
            .header("content-encoding", "gzip")
            .body(bomb)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 413);
    let (status, _) = w.call(
        reqwest::Method::POST,
        "/api/v1/auth/login",
        None,
        Some(serde_json::json!({"username": "a1", "password": "x".repeat(100_000)})),
    );
    assert_eq!(status, 413);
    ok(&w.a1, &["field", "sync"], None);
}

#[test]
fn password_guessing_is_throttled_and_the_owner_gets_back_in() {
    // A window long enough that 1,000 attempts always fit in it, however loaded the machine is.
    let w = world_with(&["--login-max-failures", "5", "--login-window-secs", "120"]);
    let guess = |w: &World, i: usize| {
        let body = serde_json::json!({"username": "office", "password": format!("guess {i}")});
        w.call(reqwest::Method::POST, "/api/v1/auth/login", None, Some(body)).0
    };
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..1000 {
        *statuses.entry(guess(&w, i)).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&401), Some(&5), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&995), "{statuses:?}");
    // Even the right password is refused while the window lasts.
    let login = ["login", "--server", &w.server.url, "--username", "office", "--password-stdin"];
    let err = fails(&w.office, &login, Some(&pw()));
    assert!(err.contains("too many failed logins"), "{err}");
    let audit_rows = |w: &World| {
        let token = session_token(&w.office);
        w.call(reqwest::Method::GET, "/api/v1/audit", Some(&token), None).1
    };
    assert!(audit_rows(&w).to_string().contains("login.failed"));

    // Once the window has passed, the owner gets back in (a server with a short window).
    let w = world_with(&["--login-max-failures", "5", "--login-window-secs", "4"]);
    for i in 0..20 {
        guess(&w, i);
    }
    let login = ["login", "--server", &w.server.url, "--username", "office", "--password-stdin"];
    std::thread::sleep(std::time::Duration::from_millis(4500));
    ok(&w.office, &login, Some(&pw()));
}

#[test]
fn a_reassigned_grid_still_accepts_earlier_visits_then_leaves_the_device() {
    let w = world();
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None); // recorded before the reassignment is known
    ok(&w.office, &["assign", "GA", "--team", "team-b"], None);
    let out = ok(&w.a1, &["field", "sync"], None);
    assert!(out.contains("no longer assigned, removed: GA"), "{out}");
    assert!(!w.a1.join("grids/GA.snapshot").exists());
    assert_eq!(figure(&w.town(), "T1", "handbook"), (4, 1, 0), "the visit was accepted");
    let out = ok(&w.b1, &["field", "sync"], None);
    assert!(out.contains("new grids: GA"), "{out}");
    // The old team can no longer push to it.
    let token = device(&w.a2)["token"].as_str().unwrap().to_string();
    let doc = w.grid(&w.a2, "GA");
    let base = doc.heads();
    let mut late = doc.fork();
    late.add_visit(&new_visit(&w.a2, "A2")).unwrap();
    let (status, body) = w.sync(&token, vec![build_push("GA", &late, Some(&base))]);
    // a2 held GA before, so its visits recorded before learning of the change are still accepted.
    assert_eq!(status, 200, "{}", error_message(&body));
    let reply: SyncResponse = protocol::decode(&body).unwrap();
    assert_eq!(reply.grids.iter().find(|g| g.grid == "GA").unwrap().kind, protocol::ReplyKind::Unassigned);
}

#[test]
fn refresh_tokens_rotate_and_logout_revokes_them() {
    let w = world();
    let s: Value = serde_json::from_slice(&std::fs::read(w.office.join("session.json")).unwrap()).unwrap();
    let first = s["refresh_token"].as_str().unwrap().to_string();
    let body = |t: &str| Some(serde_json::json!({ "refresh_token": t }));
    let (status, renewed) = w.call(reqwest::Method::POST, "/api/v1/auth/refresh", None, body(&first));
    assert_eq!(status, 200);
    let access = renewed["token"].as_str().unwrap();
    assert_eq!(w.call(reqwest::Method::GET, "/api/v1/reports/coverage", Some(access), None).0, 200);
    // A refresh token works once: replaying it is refused.
    assert_eq!(w.call(reqwest::Method::POST, "/api/v1/auth/refresh", None, body(&first)).0, 401);
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_eq!(w.call(reqwest::Method::POST, "/api/v1/auth/logout", None, body(second)).0, 204);
    assert_eq!(w.call(reqwest::Method::POST, "/api/v1/auth/refresh", None, body(second)).0, 401);
    // The CLI renews an expired access token by itself.
    ok(&w.office, &["login", "--server", &w.server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let s: Value = serde_json::from_slice(&std::fs::read(w.office.join("session.json")).unwrap()).unwrap();
    let mut stale = s.clone();
    stale["expires_at"] = 0.into();
    std::fs::write(w.office.join("session.json"), stale.to_string()).unwrap();
    ok(&w.office, &["report", "coverage"], None);
    let renewed: Value = serde_json::from_slice(&std::fs::read(w.office.join("session.json")).unwrap()).unwrap();
    assert!(renewed["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    ok(&w.office, &["logout"], None);
    let err = fails(&w.office, &["report", "coverage"], None);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn contact_details_reach_devices_only_when_shared_and_never_reports() {
    let w = world();
    let csv = TERRITORY
        .replace(
            "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
            "",
        )
        .lines()
        .map(|l| format!("{l},张三{},1390000{}\n", &l[..2], &l[..2]))
        .collect::<String>();
    let csv = format!("place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,contact_name,contact_phone\n{csv}");
    let f = write_file(w.tmp.path(), "contacts.csv", csv.as_bytes());
    ok(&w.office, &["territory", "import", f.to_str().unwrap()], None);
    let phone = "1390000A1";
    let device_files = |p: &Path| -> Vec<u8> {
        let mut all = Vec::new();
        for e in std::fs::read_dir(p.join("grids")).unwrap() {
            all.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
        all
    };
    let contains = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());

    // Off by default: nothing reaches the device.
    ok(&w.a1, &["field", "sync"], None);
    assert!(!contains(&device_files(&w.a1), phone));
    assert_eq!(ok(&w.office, &["settings", "show"], None).trim(), "share_contacts = off");

    ok(&w.office, &["settings", "set", "share_contacts", "on"], None);
    ok(&w.a1, &["field", "sync"], None);
    let places: Vec<Value> = serde_json::from_str(&ok(&w.a1, &["field", "places", "--format", "json"], None)).unwrap();
    let a1 = places.iter().find(|p| p["place_id"] == "A1").unwrap();
    assert_eq!(a1["contact_phone"], phone);
    // Only the team holding the grid: b1 gets its own grid's contacts, not GA's.
    ok(&w.b1, &["field", "sync"], None);
    assert!(!contains(&device_files(&w.b1), phone));
    assert!(contains(&device_files(&w.b1), "1390000B1"));
    // Never in the grid documents themselves, and never in reports.
    let store = GridStore::open(&w.a1.join("grids")).unwrap();
    assert!(!contains(&store.load("GA").unwrap().save(), phone));
    drop(store);
    for by in ["town", "village", "grid", "team", "volunteer"] {
        let csv = ok(&w.office, &["report", "coverage", "--by", by, "--format", "csv"], None);
        assert!(!csv.contains("1390000") && !csv.contains("张三"), "{csv}");
    }

    // Turned off again: the next sync really removes them from the device.
    ok(&w.office, &["settings", "set", "share_contacts", "off"], None);
    ok(&w.a1, &["field", "sync"], None);
    assert!(!contains(&device_files(&w.a1), phone));
    let err = fails(&w.office, &["settings", "set", "share_contacts", "maybe"], None);
    assert!(err.contains("on, off"), "{err}");
}

// ---------- Grids taken from a team, and closed urgent tasks: served only to whoever may hold them ----------

fn contains_text(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn device_token(profile: &Path) -> String {
    device(profile)["token"].as_str().unwrap().to_string()
}

/// The reply for one grid of a sync answer.
fn grid_reply(body: &[u8], grid: &str) -> protocol::GridReply {
    let reply: SyncResponse = protocol::decode(body).unwrap();
    reply.grids.into_iter().find(|g| g.grid == grid).unwrap_or_else(|| panic!("no reply for grid {grid}"))
}

#[test]
fn a_grid_taken_from_a_team_sends_it_nothing_and_refuses_what_it_records_after_learning_it() {
    const NOTE: &str = "team-b's newest note";
    let w = world();
    // a1 records a visit offline; then the office gives GA to team-b, which works it.
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    let a1_copy = w.grid(&w.a1, "GA");
    ok(&w.office, &["assign", "GA", "--team", "team-b"], None);
    ok(&w.b1, &["field", "sync"], None);
    ok(&w.b1, &["field", "visit", "A2", "--handbook", "--note", NOTE], None);
    ok(&w.b1, &["field", "sync"], None);
    assert_eq!(figure(&w.town(), "T1", "handbook"), (4, 1, 0));

    // a2 held GA and was never told: asking for it with an empty state brings nothing of it.
    let (status, body) = w.sync(&device_token(&w.a2), vec![GridPush { grid: "GA".into(), ..Default::default() }]);
    assert_eq!(status, 200, "{}", error_message(&body));
    let ga = grid_reply(&body, "GA");
    assert_eq!(ga.kind, protocol::ReplyKind::Unassigned);
    let sent = (ga.changes.len(), ga.heads.len(), ga.snapshot.is_some());
    assert_eq!(sent, (0, 0, false), "changes, heads and a document of the grid were sent");
    assert!(!contains_text(&body, NOTE));

    // a1 syncs: the visit it recorded before is delivered and counted, and it learns that GA is gone.
    let out = ok(&w.a1, &["field", "sync"], None);
    assert!(out.contains("no longer assigned, removed: GA"), "{out}");
    assert_eq!(figure(&w.town(), "T1", "handbook"), (4, 2, 0), "a1's earlier visit counts");

    // The attack: a device that was told pushes an empty state, or its old one, and receives nothing of the
    // grid, not even heads it did not show.
    let a1_token = device_token(&w.a1);
    for push in [GridPush { grid: "GA".into(), ..Default::default() }, build_push("GA", &a1_copy, None)] {
        let (status, body) = w.sync(&a1_token, vec![push]);
        assert_eq!(status, 200, "{}", error_message(&body));
        let ga = grid_reply(&body, "GA");
        assert_eq!(ga.kind, protocol::ReplyKind::Unassigned);
        assert_eq!(
            (ga.changes.len(), ga.snapshot.is_some()),
            (0, false),
            "changes or a document of the grid were sent"
        );
        let heads = protocol::hashes_from_wire(&ga.heads).unwrap();
        assert!(a1_copy.contains_all(&heads), "heads the device did not hold: {heads:?}");
        assert!(!contains_text(&body, NOTE));
    }

    // A visit a1 records after learning it is refused with a reason, and nothing of that sync is stored.
    let before = w.town();
    let mut late = a1_copy.fork();
    late.add_visit(&new_visit(&w.a1, "A2")).unwrap();
    let (status, body) = w.sync(&a1_token, vec![build_push("GA", &late, Some(&a1_copy.heads()))]);
    assert_eq!(status, 422, "{}", error_message(&body));
    let message = error_message(&body);
    assert!(message.contains("GA was given to another team") && message.contains("A2"), "{message}");
    assert_eq!(w.town(), before, "nothing of the refused sync was stored");
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("given to another team"), "{audit}");

    // Given back to team-a, the grid comes back to a1, whose new visits count again.
    ok(&w.office, &["assign", "GA", "--team", "team-a"], None);
    let out = ok(&w.a1, &["field", "sync"], None);
    assert!(out.contains("new grids: GA"), "{out}");
    ok(&w.a1, &["field", "visit", "A2", "--poster"], None);
    ok(&w.a1, &["field", "sync"], None);
    assert_eq!(figure(&w.town(), "T1", "poster"), (2, 1, 0), "{:?}", w.town());
}

#[test]
fn visits_recorded_before_a_device_learns_of_a_reassignment_are_delivered_and_counted() {
    let w = world();
    // Recorded offline in the morning, before the office gives GA to team-b at noon...
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    ok(&w.office, &["assign", "GA", "--team", "team-b"], None);
    // ...and in the afternoon by a team-mate who has not synced since.
    ok(&w.a2, &["field", "visit", "A2", "--handbook", "--briefed"], None);
    for profile in [&w.a1, &w.a2] {
        let out = ok(profile, &["field", "sync"], None);
        assert!(out.contains("no longer assigned, removed: GA"), "{out}");
        let status: Value = serde_json::from_str(&ok(profile, &["field", "status", "--format", "json"], None)).unwrap();
        assert_eq!(status["unsynced_visits"], 0, "{status}");
    }
    let town = w.town();
    assert_eq!(figure(&town, "T1", "handbook"), (4, 2, 0), "{town:?}");
    assert_eq!(figure(&town, "T1", "awareness"), (4, 1, 0), "{town:?}");
    // The new team receives them with the grid.
    let out = ok(&w.b1, &["field", "sync"], None);
    assert!(out.contains("new grids: GA"), "{out}");
    let places: Vec<Value> =
        serde_json::from_str(&ok(&w.b1, &["field", "places", "--grid", "GA", "--format", "json"], None)).unwrap();
    assert!(places.iter().all(|p| p["visits"] == 1), "{places:?}");
}

#[test]
fn a_closed_task_reaches_no_device_that_does_not_hold_it() {
    const PHONE: &str = "13912345678";
    let w = world();
    let create = ["task", "create", "--place", "A1", "--person", "王婆婆", "--phone", PHONE, "--fraud-type", "dating"];
    let id = ok(&w.office, &[&create[..], &["--within", "2h"]].concat(), None).trim().to_string();
    ok(&w.a1, &["field", "sync"], None);
    ok(&w.a2, &["field", "sync"], None);
    ok(&w.a1, &["field", "task-done", &id, "--method", "phone", "--reached", "yes", "--dissuaded", "yes"], None);
    ok(&w.a1, &["field", "sync"], None);
    ok(&w.office, &["task", "evaluate", &id, "--result", "effective"], None);
    ok(&w.a1, &["field", "sync"], None);
    let holders = |w: &World| -> Vec<String> {
        let t: Value = serde_json::from_str(&ok(&w.office, &["task", "show", &id, "--format", "json"], None)).unwrap();
        t["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap().to_string()).collect()
    };
    let ask = |profile: &Path| {
        let push = protocol::TaskPush { task: id.clone(), ..Default::default() };
        let body = SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids: vec![],
            tasks: Some(vec![push]),
            docs: Default::default(),
        };
        w.sync_raw(&device_token(profile), protocol::encode(&body))
    };

    // A volunteer of the right team who joined after the closing, and a1 enrolled again after its device deleted
    // the task, name it: nothing of it comes back, and neither is recorded as holding it.
    ok(
        &w.office,
        &["user", "create", "a3", "--role", "volunteer", "--team", "team-a", "--password-stdin"],
        Some(&pw()),
    );
    let a3 = w.tmp.path().join("a3");
    ok(&a3, &["field", "login", "--server", &w.server.url, "--username", "a3", "--password-stdin"], Some(&pw()));
    ok(&w.a1, &["field", "login", "--server", &w.server.url, "--username", "a1", "--password-stdin"], Some(&pw()));
    for profile in [&a3, &w.a1] {
        let (status, body) = ask(profile);
        assert_eq!(status, 200, "{}", error_message(&body));
        let reply: SyncResponse = protocol::decode(&body).unwrap();
        let sent: Vec<_> = reply.tasks.iter().map(|t| (t.kind, t.changes.len(), t.snapshot.is_some())).collect();
        assert!(reply.tasks.iter().all(|t| t.changes.is_empty() && t.snapshot.is_none()), "{sent:?}");
        assert!(!contains_text(&body, PHONE), "the person's phone went to a device that never held the task");
        let device_id = device(profile)["device_id"].as_str().unwrap().to_string();
        assert!(!holders(&w).contains(&device_id), "{device_id} recorded as holding the task");
    }

    // a2 received it and has not synced since: it still holds it, and deletes it at its next sync.
    let a2_id = device(&w.a2)["device_id"].as_str().unwrap().to_string();
    assert!(holders(&w).contains(&a2_id));
    let out = ok(&w.a2, &["field", "sync"], None);
    assert!(out.contains("1 closed tasks deleted"), "{out}");
}

// ---------------------------------------------------------------------------------------------------------------
// Login limits, the office's unlock, and small leaks (metrics, volunteers' names, cached tokens)

/// What the server answered to one login attempt.
#[derive(Debug)]
struct Attempt {
    status: u16,
    retry_after: Option<u64>,
    message: String,
}

/// An HTTP client whose connections come from `from` (any address of the loopback network: each is another
/// client to the server).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(from.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

async fn attempt_login(
    http: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Attempt {
    let mut req = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    let body = resp.bytes().await.unwrap();
    Attempt { status, retry_after, message: error_message(&body) }
}

impl World {
    fn login_from(&self, from: &str, username: &str, password: &str) -> Attempt {
        self.rt.block_on(attempt_login(&client_from(from), &self.server.url, username, password, None))
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn count_statuses(attempts: &[Attempt]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for a in attempts {
        *counts.entry(a.status).or_insert(0) += 1;
    }
    counts
}

#[test]
fn login_guesses_sent_at_once_are_counted_before_the_password_is_checked() {
    let w = world_with(&["--login-max-failures", "5"]);
    // 200 wrong passwords for a1 from one address, all at once, with the right one in the middle.
    let http = client_from("127.0.0.2");
    let mut passwords: Vec<String> = (0..200).map(|i| format!("guess {i}")).collect();
    passwords.insert(100, PASSWORD.to_string());
    let sent: Vec<_> = passwords
        .into_iter()
        .map(|p| {
            let (http, url) = (http.clone(), w.server.url.clone());
            w.rt.spawn(async move { attempt_login(&http, &url, "a1", &p, None).await })
        })
        .collect();
    let attempts: Vec<Attempt> = w.rt.block_on(async { futures_join(sent).await });
    let counts = count_statuses(&attempts);
    let right = &attempts[100];
    // No more than the limit of passwords was checked, however many arrived at once; every other was refused
    // unchecked. The right one got in only if it came before the limit was reached: then it held a place while
    // its password was checked and gave it back, which a guess arriving after that may have taken (or none did,
    // if every other had been refused by then).
    let checked_wrong = counts.get(&401).copied().unwrap_or(0);
    match right.status {
        200 => assert!(checked_wrong == 4 || checked_wrong == 5, "{counts:?}"),
        429 => assert_eq!(checked_wrong, 5, "{counts:?}"),
        _ => panic!("{right:?}"),
    }
    let refused = counts.get(&429).copied().unwrap_or(0);
    assert_eq!(checked_wrong + refused + counts.get(&200).copied().unwrap_or(0), 201, "{counts:?}");
    let refused = attempts.iter().find(|a| a.status == 429).unwrap();
    assert!(refused.message.contains("try again in"), "{refused:?}");
    assert!(refused.retry_after.is_some_and(|s| s > 0 && s <= 900), "{refused:?}");
    // Now the limit is reached: the right password from that address is refused too, unchecked.
    let again = w.login_from("127.0.0.2", "a1", PASSWORD);
    assert_eq!(again.status, 429, "{again:?}");
    // The volunteer from their own address is not held back.
    let theirs = w.tmp.path().join("a1-new-phone");
    let login = ["field", "login", "--server", &w.server.url, "--username", "a1", "--password-stdin"];
    ok(&theirs, &login, Some(&pw()));
}

#[test]
fn a_strangers_guesses_do_not_lock_a_volunteer_out() {
    let w = world_with(&["--login-max-failures", "5"]);
    let stranger: Vec<Attempt> = (0..30).map(|i| w.login_from("127.0.0.3", "a2", &format!("guess {i}"))).collect();
    let counts = count_statuses(&stranger);
    assert_eq!(counts.get(&401), Some(&5), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&25), "{counts:?}");
    // The stranger's failures are theirs: a2 logs in from their own address, at once.
    let phone = w.tmp.path().join("a2-phone");
    ok(&phone, &["field", "login", "--server", &w.server.url, "--username", "a2", "--password-stdin"], Some(&pw()));
    ok(&phone, &["field", "sync"], None);
}

#[test]
fn guesses_from_many_addresses_pace_the_account_and_the_office_unlocks_it() {
    let w = world_with(&["--login-max-failures", "3", "--login-account-failures", "12", "--login-pace-secs", "3600"]);
    // Four addresses, three failures each: the account's twelve.
    for k in 0..4 {
        let from = format!("127.0.1.{}", k + 1);
        for i in 0..3 {
            assert_eq!(w.login_from(&from, "b1", &format!("guess {k}.{i}")).status, 401);
        }
    }
    // From now on one attempt per pace, from whatever address: a fifth address takes this one...
    assert_eq!(w.login_from("127.0.1.5", "b1", "guess 5").status, 401);
    // ...and the next is told when the next turn comes, even with the right password.
    let paced = w.login_from("127.0.1.6", "b1", PASSWORD);
    assert_eq!(paced.status, 429, "{paced:?}");
    assert!(paced.message.contains("one attempt every 3600 seconds"), "{paced:?}");
    assert!(paced.retry_after.is_some_and(|s| s > 3000 && s <= 3600), "{paced:?}");
    // A volunteer may not unlock; the office may, and it is audited.
    let vol = w.tmp.path().join("a1-session");
    ok(&vol, &["login", "--server", &w.server.url, "--username", "a1", "--password-stdin"], Some(&pw()));
    let err = fails(&vol, &["user", "unlock", "b1"], None);
    assert!(err.contains("may not do this"), "{err}");
    let err = fails(&w.office, &["user", "unlock", "nobody"], None);
    assert!(err.contains("no user named"), "{err}");
    ok(&w.office, &["user", "unlock", "b1"], None);
    let unlocked = w.login_from("127.0.1.6", "b1", PASSWORD);
    assert_eq!(unlocked.status, 200, "{unlocked:?}");
    let token = session_token(&w.office);
    let audit = w.call(reqwest::Method::GET, "/api/v1/audit", Some(&token), None).1;
    let unlock = audit.as_array().unwrap().iter().find(|e| e["action"] == "user.unlock").expect("audited");
    assert_eq!((unlock["username"].as_str(), unlock["detail"].as_str()), (Some("office"), Some("b1")));
}

#[test]
fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    let w = world_with(&["--login-max-failures", "3", "--trusted-proxy", "127.0.0.1"]);
    let run = |from: &str, forwarded: &str, password: &str| {
        w.rt.block_on(attempt_login(&client_from(from), &w.server.url, "a1", password, Some(forwarded)))
    };
    // A client that is not the proxy cannot choose its address: each forged header counts as its own address.
    let forged: Vec<Attempt> = (0..5).map(|i| run("127.0.0.4", &format!("198.51.100.{i}"), "wrong")).collect();
    assert_eq!(count_statuses(&forged).get(&401), Some(&3), "{forged:?}");
    // Through the proxy, the address it reports is the client's: one client's failures are not another's.
    let proxied: Vec<Attempt> = (0..5).map(|_| run("127.0.0.1", "203.0.113.7", "wrong")).collect();
    assert_eq!(count_statuses(&proxied).get(&401), Some(&3), "{proxied:?}");
    assert_eq!(run("127.0.0.1", "203.0.113.8", PASSWORD).status, 200);
    // A client's own entry before the proxy's is not believed.
    assert_eq!(run("127.0.0.1", "203.0.113.8, 203.0.113.7", PASSWORD).status, 429);
    let token = session_token(&w.office);
    let audit = w.call(reqwest::Method::GET, "/api/v1/audit", Some(&token), None).1.to_string();
    assert!(audit.contains("from 203.0.113.7") && audit.contains("from 127.0.0.4"), "{audit}");
}

#[test]
fn metrics_are_served_only_on_their_own_address() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    bootstrap_office(&data, &tmp.path().join("office"));
    let server = Server::start_with(&data, "127.0.0.1:0", &["--metrics-listen", "127.0.0.1:0"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |url: String| rt.block_on(async { reqwest::get(url).await.unwrap().status().as_u16() });
    assert_eq!(get(format!("{}/metrics", server.url)), 404, "the API's address serves no metrics");
    let metrics = server.metrics_url.clone().expect("the server says where its metrics are");
    assert_eq!(get(metrics.clone()), 200);
    // The metrics address serves nothing else.
    assert_eq!(get(metrics.replace("/metrics", "/api/v1/me")), 404);
    // Without --metrics-listen, no metrics anywhere.
    drop(server);
    let server = Server::start(&data);
    assert_eq!(get(format!("{}/metrics", server.url)), 404);
}

#[test]
fn a_viewer_sees_only_the_volunteers_who_worked_in_their_area() {
    let w = world();
    ok(
        &w.office,
        &["user", "create", "viewer-v1", "--role", "viewer", "--area", "V1", "--password-stdin"],
        Some(&pw()),
    );
    let viewer = w.tmp.path().join("viewer-v1");
    ok(&viewer, &["login", "--server", &w.server.url, "--username", "viewer-v1", "--password-stdin"], Some(&pw()));
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    ok(&w.a1, &["field", "sync"], None);
    ok(&w.b1, &["field", "visit", "B1", "--handbook"], None);
    ok(&w.b1, &["field", "sync"], None);
    let names = |rows: Vec<Value>| -> std::collections::BTreeSet<String> {
        rows.iter().map(|r| r["area"].as_str().unwrap().to_string()).collect()
    };
    // a2 (same team, no visit in V1) and b1 (working in V2) are none of this viewer's business.
    let only = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names(coverage(&viewer, "volunteer", None)), only(&["a1"]));
    assert_eq!(figure(&coverage(&viewer, "volunteer", None), "a1", "handbook").1, 1);
    // The office without an area still sees every team member, those who have not started too.
    assert_eq!(names(coverage(&w.office, "volunteer", None)), only(&["a1", "a2", "b1"]));
}

#[test]
fn replies_carrying_tokens_are_never_cached() {
    let w = world();
    let post = |path: &str, body: Value| {
        w.rt.block_on(async {
            let resp = w.http.post(format!("{}{path}", w.server.url)).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            let cache = resp.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string());
            (status, cache, resp.json::<Value>().await.unwrap())
        })
    };
    let credentials = serde_json::json!({ "username": "office", "password": PASSWORD });
    let (status, cache, session) = post("/api/v1/auth/login", credentials);
    assert_eq!((status, cache.as_deref()), (200, Some("no-store")));
    let refresh = serde_json::json!({ "refresh_token": session["refresh_token"] });
    let (status, cache, _) = post("/api/v1/auth/refresh", refresh);
    assert_eq!((status, cache.as_deref()), (200, Some("no-store")));
    let enrol = serde_json::json!({ "username": "a1", "password": PASSWORD, "device_name": "x" });
    let (status, cache, _) = post("/api/v1/devices", enrol);
    assert_eq!((status, cache.as_deref()), (200, Some("no-store")));
}

// ---------------------------------------------------------------------------------------------------------------
// Formulas in exports: every CSV Doorstep writes neutralises cells a spreadsheet would run.
// ---------------------------------------------------------------------------------------------------------------

/// Whether a spreadsheet could read the cell as a formula: it starts with `=`, `+`, `-`, `@`, tab or carriage
/// return and is not a plain number or a lone dash (checked here independently of the server's own function).
fn runs_in_a_spreadsheet(cell: &str) -> bool {
    let Some(first) = cell.chars().next() else { return false };
    if !"=+-@\t\r".contains(first) {
        return false;
    }
    let rest = &cell[1..];
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let plain_number = matches!(first, '+' | '-')
        && rest.split_once('.').map_or(digits(rest), |(whole, fraction)| digits(whole) && digits(fraction));
    !(cell == "-" || plain_number)
}

/// Every command of the CLI that writes CSV (`--format csv`), found by walking `doorstep help`.
fn commands_writing_csv(path: &mut Vec<String>, found: &mut Vec<String>) {
    let out = std::process::Command::new(BIN).args(path.iter()).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let mut in_commands = false;
    let mut subcommands = Vec::new();
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            match line.strip_prefix("  ").and_then(|l| l.split_whitespace().next()) {
                Some(name) if !line.starts_with("   ") => subcommands.push(name.to_string()),
                Some(_) => {}
                None => in_commands = false,
            }
        }
    }
    subcommands.retain(|s| s != "help");
    if subcommands.is_empty() {
        if help.lines().any(|l| l.contains("possible values:") && l.contains("csv")) {
            found.push(path.join(" "));
        }
        return;
    }
    for sub in subcommands {
        path.push(sub);
        commands_writing_csv(path, found);
        path.pop();
    }
}

#[test]
fn every_csv_export_writes_formulas_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    // Formulas wherever a territory file or a phone can put text: labels, addresses, area names, device names.
    let territory =
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address\n\
        P1,household,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",G1,+grid,V1,@village,village,T1,-town,=2+2\n\
        P2,household,2,G1,+grid,V1,@village,village,T1,-town,\n";
    let f = write_file(tmp.path(), "formulas.csv", territory.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    ok(&office, &["user", "create", "vol", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    let vol = tmp.path().join("vol");
    let login = ["field", "login", "--server", &server.url, "--username", "vol", "--password-stdin"];
    ok(&vol, &[&login[..], &["--device-name", "=cmd|' /C calc'!A0"]].concat(), Some(&pw()));
    ok(&vol, &["field", "sync"], None);
    let found = ok(&vol, &["field", "add-place", "--grid", "G1", "--kind", "household", "--label", "=1+2*3"], None);
    ok(&vol, &["field", "visit", found.trim(), "--handbook", "--note=-1+1"], None);
    ok(&vol, &["field", "visit", "P1", "--briefed", "--outcome", "nobody-home"], None);
    ok(&vol, &["field", "sync"], None);
    let task = ["task", "create", "--place", "P1", "--person", "@SUM(1)", "--fraud-type", "other", "--within", "2h"];
    ok(&office, &[&task[..], &["--instructions", "=x"]].concat(), None);

    let body = write_file(tmp.path(), "body.txt", "=1+1".as_bytes());
    let bulletin = ["bulletin", "publish", "--title", "=1+1", "--body-file", body.to_str().unwrap()];
    let bulletin = ok(&office, &[&bulletin[..], &["--kind", "reminder", "--everyone"]].concat(), None);
    ok(&vol, &["field", "sync"], None);
    ok(&vol, &["field", "read", bulletin.trim()], None);
    ok(&vol, &["field", "sync"], None);

    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let exports: Vec<Vec<&str>> = vec![
        vec!["bulletin", "receipts", "--days", "3", bulletin.trim()],
        vec!["audit"],
        vec!["device", "list"],
        vec!["enrolment", "issue", "--user", "vol"],
        vec!["enrolment", "list"],
        vec!["report", "coverage", "--by", "town"],
        vec!["report", "coverage", "--by", "village"],
        vec!["report", "coverage", "--by", "grid"],
        vec!["report", "coverage", "--by", "team"],
        vec!["report", "coverage", "--by", "volunteer"],
        vec!["report", "monthly", "--month", &month],
        vec!["report", "gaps", "--all"],
        vec!["report", "gaps", "--grid", "G1"],
        vec!["report", "progress"],
        vec!["report", "activity", "--by", "team"],
        vec!["report", "activity", "--by", "volunteer"],
        vec!["user", "list"],
        vec!["team", "list"],
        vec!["grid", "list"],
        vec!["task", "list", "--status", "all"],
        vec!["roster", "show"],
        vec!["submissions", "list", "--month", &month],
        vec!["submissions", "show", "--month", &month, "V1"],
        vec!["submissions", "situations"],
        vec!["photo", "list"],
        vec!["photo", "evidence"],
    ];
    // The list above is every command that writes CSV.
    let mut writing_csv = Vec::new();
    commands_writing_csv(&mut Vec::new(), &mut writing_csv);
    let tested: std::collections::BTreeSet<String> = exports
        .iter()
        .map(|e| e.iter().take_while(|w| !w.starts_with("--")).copied().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(!writing_csv.is_empty());
    for command in &writing_csv {
        assert!(tested.contains(command), "`doorstep {command}` writes CSV and is not tested here");
    }

    let token = session_token(&office);
    let api_gaps = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("{}/api/v1/reports/gaps?all=true&format=csv", server.url);
        reqwest::Client::new().get(url).bearer_auth(&token).send().await.unwrap().text().await.unwrap()
    });
    let mut outputs: Vec<(String, String)> = vec![("GET /api/v1/reports/gaps?format=csv".into(), api_gaps.clone())];
    for args in &exports {
        outputs.push((args.join(" "), ok(&office, &[&args[..], &["--format", "csv"]].concat(), None)));
    }
    let mut cells_seen = 0;
    for (what, csv) in &outputs {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(csv.as_bytes());
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                cells_seen += 1;
                assert!(!runs_in_a_spreadsheet(cell), "{what} writes {cell:?}:\n{csv}");
            }
        }
    }
    assert!(cells_seen > 100, "the exports hold data");
    // Neutralised, not dropped: the text is there behind a quote, in the API's list and the CLI's.
    for csv in [&api_gaps, &outputs.iter().find(|(w, _)| w == "report gaps --all").unwrap().1] {
        assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""), "{csv}");
        assert!(csv.contains(",'=1+2*3,"), "{csv}");
        assert!(csv.contains(",'=2+2,"), "{csv}");
    }
    let devices = &outputs.iter().find(|(w, _)| w == "device list").unwrap().1;
    assert!(devices.contains("'=cmd|"), "{devices}");
    let grids = &outputs.iter().find(|(w, _)| w == "grid list").unwrap().1;
    assert!(grids.contains(",'+grid,") && grids.contains(",'@village,") && grids.contains(",'-town,"), "{grids}");

    // XLSX keeps the text as it is, in text cells (a spreadsheet never runs a text cell).
    for args in [vec!["report", "gaps", "--all"], vec!["report", "coverage", "--by", "grid"]] {
        let file = tmp.path().join(format!("{}.xlsx", args[1]));
        ok(&office, &[&args[..], &["--format", "xlsx", "--output", file.to_str().unwrap()]].concat(), None);
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(&file).unwrap();
        let sheet = book.worksheet_range_at(0).unwrap().unwrap();
        let texts: Vec<String> = sheet
            .cells()
            .filter_map(|(_, _, c)| match c {
                calamine::Data::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let wanted = if args[1] == "gaps" { "=HYPERLINK(\"http://x\",\"y\")" } else { "+grid" };
        assert!(texts.iter().any(|t| t == wanted), "{args:?}: {texts:?}");
        assert!(texts.iter().all(|t| !t.starts_with('\'')), "{args:?}: {texts:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Files readable by every user of the machine: the data dir and every profile are the owner's alone.
// ---------------------------------------------------------------------------------------------------------------

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Every file and folder under `dir` (itself included) with a mode other than 0600 (files) or 0700 (folders).
#[cfg(unix)]
fn not_private(dir: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let is_dir = path.is_dir();
        let want = if is_dir { 0o700 } else { 0o600 };
        if mode(&path) != want {
            wrong.push(format!("{} is {:o}", path.display(), mode(&path)));
        }
        if is_dir {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    wrong
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn the_data_dir_and_every_profile_are_private_whatever_the_umask() {
    // The usual default, under which files are created readable by everyone (0644) unless a mode is given.
    // Each test runs in its own process under nextest, and the binaries started below inherit it.
    unsafe { libc::umask(0o022) };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    // On PostgreSQL the data dir holds the token secret only; the database's address is passed, not remembered
    // in the data dir as `database_args` does, so that the server makes the folder itself.
    let pg = std::env::var("DOORSTEP_TEST_PG_URL").ok().map(|_| fresh_pg_database());
    let on_sqlite = pg.is_none();
    let db_args: Vec<String> = pg.iter().flat_map(|url| ["--database-url".to_string(), url.clone()]).collect();
    let dir = data.to_str().unwrap();
    let mut create = vec!["admin", "create-user", "--data-dir", dir, "--username", "office", "--role", "office"];
    create.push("--password-stdin");
    create.extend(db_args.iter().map(String::as_str));
    ok(&office, &create, Some(&pw()));
    let server = Server::start_with(&data, "127.0.0.1:0", &db_args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let f = write_file(tmp.path(), "t.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "team-a", "--lead", "lead"], None);
    ok(&office, &["assign", "GA", "--team", "team-a"], None);
    ok(&office, &["user", "create", "a1", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    let (lead, a1) = (tmp.path().join("lead"), tmp.path().join("a1"));
    for (profile, user) in [(&lead, "lead"), (&a1, "a1")] {
        ok(profile, &["field", "login", "--server", &server.url, "--username", user, "--password-stdin"], Some(&pw()));
        ok(profile, &["field", "sync"], None);
    }
    ok(&a1, &["field", "visit", "A1", "--handbook"], None);
    ok(&a1, &["field", "sync"], None);
    ok(&lead, &["hub", "certificate", "--ip", "127.0.0.1"], None);
    ok(&lead, &["hub", "sync"], None);

    // The server's data dir, with its database, WAL and shared-memory files while it runs.
    assert_eq!(not_private(&data), Vec::<String>::new());
    if on_sqlite {
        for file in ["doorstep.db", "doorstep.db-wal", "doorstep.db-shm", "jwt-secret"] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
        let backup = tmp.path().join("backup.db");
        ok(&office, &["admin", "backup", "--data-dir", dir, "--output", backup.to_str().unwrap()], None);
        assert_eq!(mode(&backup), 0o600, "the backup");
    }
    // Every profile: the office's session, a volunteer's device, key and grids, the lead's hub files.
    for profile in [&office, &a1, &lead] {
        assert_eq!(not_private(profile), Vec::<String>::new());
    }
    for file in ["device.json", "roster.json", "hub-tls.pem"] {
        assert!(lead.join(file).exists(), "{file}");
    }
    assert!(office.join("session.json").exists());

    // Someone loosens them: every command says which and how to tighten them again, and still works.
    chmod(&a1, 0o755);
    chmod(&a1.join("device.json"), 0o644);
    let out = run(&a1, &["field", "status"], None);
    assert!(out.status.success());
    let warned = String::from_utf8(out.stderr).unwrap();
    assert!(warned.contains(&format!("chmod 700 {}", a1.display())), "{warned}");
    assert!(warned.contains(&format!("chmod 600 {}", a1.join("device.json").display())), "{warned}");
    assert!(warned.contains("other users of this machine"), "{warned}");
    chmod(&office.join("session.json"), 0o640);
    let out = run(&office, &["report", "coverage"], None);
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains(&format!("chmod 600 {}", office.join("session.json").display())));
    // Tightened again: nothing to say.
    chmod(&a1, 0o700);
    chmod(&a1.join("device.json"), 0o600);
    assert_eq!(String::from_utf8(run(&a1, &["field", "status"], None).stderr).unwrap(), "");

    // The server warns at start about its data dir and database.
    drop(server);
    chmod(&data, 0o755);
    let loosened = if on_sqlite { data.join("doorstep.db") } else { data.join("jwt-secret") };
    chmod(&loosened, 0o644);
    let mut serve = std::process::Command::new(BIN)
        .args(["serve", "--data-dir", dir, "--listen", "127.0.0.1:0"])
        .args(&db_args)
        .env("DOORSTEP_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(serve.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("Doorstep listening on") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0, "the server stopped");
    }
    serve.kill().unwrap();
    let out = serve.wait_with_output().unwrap();
    let logged = String::from_utf8(out.stderr).unwrap();
    assert!(logged.contains(&format!("chmod 700 {dir}")), "{logged}");
    assert!(logged.contains(&format!("chmod 600 {}", loosened.display())), "{logged}");
}

// ---------------------------------------------------------------------------------------------------------------
// Hubs: a lead of one team cannot pose as another team's hub.
// ---------------------------------------------------------------------------------------------------------------

/// An HTTPS listener on `addr` serving `tls_pem` (a hub's certificate and key), as a lead posing as another
/// team's hub would run: it records every request that reaches it (after the handshake) and refuses it.
fn posing_hub(addr: &str, tls_pem: &Path) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let config = server::http::listen::tls_config(tls_pem, tls_pem).unwrap();
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, record) = (config.clone(), record.clone());
            std::thread::spawn(move || {
                let connection = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut buf = [0u8; 4096];
                // Fails when the client gives up during the handshake: nothing was sent.
                if let Ok(n) = tls.read(&mut buf) {
                    if n > 0 {
                        record.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
                        let _ =
                            tls.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    }
                }
            });
        }
    });
    (url, seen)
}

/// The hub certificate a lead's profile holds, as DER.
fn hub_certificate_der(profile: &Path) -> Vec<u8> {
    let pem = std::fs::read(profile.join("hub-tls.pem")).unwrap();
    x509_parser::pem::Pem::iter_from_buffer(&pem)
        .map(Result::unwrap)
        .find(|block| block.label == "CERTIFICATE")
        .unwrap()
        .contents
}

#[test]
fn a_lead_can_pose_as_no_other_teams_hub_and_a_revoked_hub_is_refused() {
    let w = world();
    let lead = |name: &str, team: &str| {
        let create = ["user", "create", name, "--role", "lead", "--team", team, "--password-stdin"];
        ok(&w.office, &create, Some(&pw()));
        let p = w.tmp.path().join(name);
        ok(&p, &["field", "login", "--server", &w.server.url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(&p, &["field", "sync"], None);
        p
    };
    let (lead_a, lead_b) = (lead("lead-a", "team-a"), lead("lead-b", "team-b"));

    // Bounded names: no wildcard over a shared suffix, a few names at most.
    for wildcard in ["*.home.arpa", "*.internal", "*.lan"] {
        let refused = fails(&lead_b, &["hub", "certificate", "--name", wildcard], None);
        assert!(refused.contains("is a wildcard"), "{wildcard}: {refused}");
    }
    let five = ["--ip", "10.0.0.1", "--ip", "10.0.0.2", "--ip", "10.0.0.3", "--ip", "10.0.0.4", "--ip", "10.0.0.5"];
    let refused = fails(&lead_b, &[&["hub", "certificate"][..], &five].concat(), None);
    assert!(refused.contains("at most 4 addresses"), "{refused}");

    // Team A's hub: short-lived, naming its team and its lead's device.
    ok(
        &lead_a,
        &["hub", "certificate", "--ip", "127.0.0.1", "--ip", "192.168.77.20", "--name", "hub-a.home.arpa"],
        None,
    );
    let der = hub_certificate_der(&lead_a);
    let identity = server::tls::ca::HubIdentity::of_certificate(&der).expect("the certificate names its hub");
    assert_eq!(identity.team, "team-a");
    assert_eq!(identity.device_id, device(&lead_a)["device_id"].as_str().unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let lifetime = cert.validity().not_after.timestamp() - chrono::Utc::now().timestamp();
    assert!(lifetime <= 7 * 24 * 3600 + 60, "valid for days, not weeks: {lifetime} s");

    // Team A's addresses are team A's: team B's lead gets none of them, in any spelling. (Loopback addresses,
    // which reach the machine itself, are nobody's.)
    for taken in [&["--ip", "192.168.77.20"][..], &["--name", "HUB-A.home.arpa"]] {
        let refused = fails(&lead_b, &[&["hub", "certificate"][..], taken].concat(), None);
        assert!(refused.contains("is the address of another team's hub until"), "{taken:?}: {refused}");
    }
    // At another address team B's lead gets one, and serves it where team A's volunteer is sent: the volunteer
    // refuses it during the handshake, so neither its token nor its visits reach the posing hub.
    ok(&lead_b, &["hub", "certificate", "--ip", "127.0.0.2"], None);
    let (posing, seen) = posing_hub("127.0.0.2:0", &lead_b.join("hub-tls.pem"));
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    let refused = fails(&w.a1, &["field", "sync", "--via", &posing], None);
    assert!(refused.contains("issued to a hub of team team-b, not of your team (team-a)"), "{refused}");
    assert!(refused.contains("nothing was lost: 1 unsynced visits stay on this device"), "{refused}");
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new(), "nothing reached the posing hub");

    // Team A's own hub is accepted.
    let hub = Hub::start(&lead_a, &["--upstream-every", "0", "--tls"]);
    ok(&w.a1, &["field", "sync", "--via", &hub.url], None);

    // The office revokes the lead's device: the server renews nothing for it, and a volunteer who synced with the
    // server since refuses the hub, although its certificate has days left.
    let lead_a_device = device(&lead_a)["device_id"].as_str().unwrap().to_string();
    ok(&w.office, &["device", "revoke", &lead_a_device], None);
    let refused = fails(&lead_a, &["hub", "certificate"], None);
    assert!(refused.contains("revoked"), "{refused}");
    ok(&w.a1, &["field", "sync"], None);
    ok(&w.a1, &["field", "visit", "A2", "--handbook"], None);
    let refused = fails(&w.a1, &["field", "sync", "--via", &hub.url], None);
    assert!(refused.contains(&format!("device {lead_a_device}")) && refused.contains("revoked"), "{refused}");
    assert!(refused.contains("nothing was lost"), "{refused}");

    // The lead enrols again and serves a new hub (the address is still team A's). A volunteer who has not synced
    // with the server since the revocation learns it from that hub, and refuses the old one from then on.
    ok(
        &lead_a,
        &["field", "login", "--server", &w.server.url, "--username", "lead-a", "--password-stdin"],
        Some(&pw()),
    );
    ok(&lead_a, &["field", "sync"], None);
    ok(&lead_a, &["hub", "certificate", "--ip", "127.0.0.1"], None);
    ok(&lead_a, &["hub", "sync"], None);
    let new_hub = Hub::start(&lead_a, &["--upstream-every", "0", "--tls"]);
    ok(&w.a2, &["field", "sync", "--via", &new_hub.url], None);
    let refused = fails(&w.a2, &["field", "sync", "--via", &hub.url], None);
    assert!(refused.contains(&format!("device {lead_a_device}")) && refused.contains("revoked"), "{refused}");
    drop((hub, new_hub));
}

// ---------- Place ids across grids, the size of a sync, and clocks ahead ----------

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

fn device_str(profile: &Path, key: &str) -> String {
    device(profile)[key].as_str().unwrap().to_string()
}

/// A place found in the field by `profile`'s volunteer, under `id`.
fn found_place(profile: &Path, id: &str, label: &str) -> client_core::grid::found::FoundPlace {
    found_place_by(&device_str(profile, "username"), &device_str(profile, "device_id"), id, label)
}

fn found_place_by(username: &str, device: &str, id: &str, label: &str) -> client_core::grid::found::FoundPlace {
    client_core::grid::found::FoundPlace {
        place: client_core::grid::model::Place {
            id: id.into(),
            kind: client_core::grid::model::PlaceKind::Household,
            label: label.into(),
            address: None,
            lat: Some(30.2),
            lon: Some(105.9),
        },
        added_by: username.into(),
        device: device.into(),
        added_at: chrono::Utc::now(),
        review: None,
    }
}

/// `n` visits to `place` in `profile`'s name, all written as one change on `doc` (no device writes that).
fn visits_in_one_change(doc: &client_core::GridDoc, profile: &Path, place: &str, n: usize) -> client_core::GridDoc {
    let actor = ActorId::try_from(device_str(profile, "actor").as_str()).unwrap();
    let mut am = doc.automerge().fork().with_actor(actor);
    let visits = am.get(automerge::ROOT, "visits").unwrap().unwrap().1;
    let mut tx = am.transaction();
    for _ in 0..n {
        let v = new_visit(profile, place);
        let obj = tx.put_object(&visits, v.id.to_string(), automerge::ObjType::Map).unwrap();
        tx.put(&obj, "place", place).unwrap();
        tx.put(&obj, "volunteer", v.volunteer.as_str()).unwrap();
        tx.put(&obj, "device", v.device.as_str()).unwrap();
        tx.put(&obj, "at", automerge::ScalarValue::Timestamp(v.at.timestamp_millis())).unwrap();
        tx.put(&obj, "outcome", "completed").unwrap();
        for flag in ["handbook", "briefed", "poster", "banner", "led_playing"] {
            tx.put(&obj, flag, flag == "handbook").unwrap();
        }
    }
    tx.commit();
    client_core::GridDoc::from_automerge(am)
}

/// The places found in the field, as the server holds them: id -> "grid label added_by".
fn found_rows(w: &World) -> Vec<(String, String)> {
    db_pairs(
        &w.server.data_dir,
        "SELECT place_id, grid_code || ' ' || label || ' ' || COALESCE(added_by, '') FROM places \
         WHERE place_id LIKE 'F-%' ORDER BY place_id",
    )
}

#[test]
fn a_found_place_cannot_take_the_id_of_a_place_of_another_grid() {
    let w = world();
    // A registry place whose id has the shape of a found place's, and a place a1 found, both in team-a's GA.
    let registry_id = "F-0193a000-0000-7000-8000-00000000a11a";
    let row = format!(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
         {registry_id},household,r1,GA,ga,V1,v1,village,T1,t\n"
    );
    ok(&w.office, &["territory", "import", write_file(w.tmp.path(), "r.csv", row.as_bytes()).to_str().unwrap()], None);
    let args = ["field", "add-place", "--grid", "GA", "--kind", "household", "--label", "new house"];
    let found_id = ok(&w.a1, &args, None).trim().to_string();
    ok(&w.a1, &["field", "sync"], None);
    ok(&w.b1, &["field", "sync"], None);
    let (town, places) = (w.town(), found_rows(&w));
    assert_eq!(places.len(), 2, "{places:?}");

    // b1 (team-b) adds to its own grid GB a found place under each of those ids, to move it there relabelled.
    let token = device_str(&w.b1, "token");
    for id in [found_id.as_str(), registry_id] {
        let mut doc = w.grid(&w.b1, "GB");
        let base = doc.heads();
        doc.add_found_place(&found_place(&w.b1, id, "hijacked")).unwrap();
        let (status, body) = w.sync(&token, vec![build_push("GB", &doc, Some(&base))]);
        assert_eq!(status, 422, "{id}: {}", error_message(&body));
        assert_eq!(error_code(&body), "place_id_taken", "{}", error_message(&body));
        let message = error_message(&body);
        assert!(message.contains(&format!("place {id} already belongs to another grid")), "{message}");
        assert!(!message.contains("GA"), "another team's grid is not named: {message}");
    }
    // Nor may it propose a correction of that place, or record a visit to it, from its grid.
    let mut doc = w.grid(&w.b1, "GB");
    let base = doc.heads();
    doc.add_correction(&client_core::grid::found::Correction {
        id: uuid::Uuid::now_v7(),
        place_id: found_id.clone(),
        label: Some("hijacked".into()),
        address: None,
        volunteer: "b1".into(),
        device: device_str(&w.b1, "device_id"),
        at: chrono::Utc::now(),
        review: None,
    })
    .unwrap();
    doc.add_visit(&new_visit(&w.b1, &found_id)).unwrap();
    let (status, body) = w.sync(&token, vec![build_push("GB", &doc, Some(&base))]);
    assert_eq!(status, 422, "{}", error_message(&body));
    assert!(error_message(&body).contains("not in this grid"), "{}", error_message(&body));

    // Nothing moved: the place is a1's, in GA, awaiting review there; coverage is as it was.
    assert_eq!(found_rows(&w), places);
    assert_eq!(w.town(), town);
    let review: Value = serde_json::from_str(&ok(&w.office, &["place", "review", "--format", "json"], None)).unwrap();
    let pending = review["places"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{review}");
    assert_eq!((pending[0]["place_id"].as_str(), pending[0]["grid"].as_str()), (Some(found_id.as_str()), Some("GA")));
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.rejected") && audit.contains("already belongs to another grid"), "{audit}");
    // b1's team-mates receive nothing of it, and b1 itself syncs on.
    ok(&w.b1, &["field", "sync"], None);
}

/// Two syncs of different grids that add the same place id at the same moment both pass the check before the
/// write; the database has the last word. The projection itself never moves a place to another grid.
#[test]
fn the_projection_never_moves_a_place_to_another_grid() {
    use client_core::grid::model::{AreaKind, GridInfo};
    use server::store::projection::AreaDeltas;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let url = database_args(&data).get(1).cloned();
    let grid = |code: &str, village: &str, kind| GridInfo {
        code: code.into(),
        name: code.to_lowercase(),
        village_code: village.into(),
        village_name: village.to_lowercase(),
        village_kind: kind,
        town_code: "T1".into(),
        town_name: "t".into(),
    };
    let (ga, gb) = (grid("GA", "V1", AreaKind::Village), grid("GB", "V2", AreaKind::Community));
    let found_id = "F-0193a000-0000-7000-8000-0000000f0c0d";
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let state = server::AppState::open(&server::ServerConfig::with_defaults(data.clone(), url)).await.unwrap();
        server::territory::import(&state, TERRITORY.as_bytes(), false, "office").await.unwrap();
        let project = |info: &GridInfo, id: &str| {
            let place = found_place_by("a1", "d-a1", id, &format!("seen from {}", info.code));
            let (state, info) = (&state, info.clone());
            async move {
                let (_gate, mut tx) = state.db.begin_write().await.unwrap();
                let mut deltas = AreaDeltas::default();
                server::places::project_found_place(
                    &mut tx,
                    &state.campaigns.current().campaign,
                    &info,
                    &place,
                    &mut deltas,
                )
                .await?;
                deltas.flush(&mut tx).await?;
                tx.commit().await?;
                Ok::<_, server::http::error::ApiError>(())
            }
        };
        project(&ga, found_id).await.unwrap();
        let rows = || async {
            let sql = "SELECT place_id, grid_code || ' ' || label FROM places WHERE place_id IN ('A1', $1) ORDER BY 1";
            sqlx::query_as::<_, (String, String)>(sql).bind(found_id).fetch_all(&state.db.pool).await.unwrap()
        };
        let before = rows().await;
        assert_eq!(before[1], (found_id.to_string(), "GA seen from GA".to_string()));
        for id in [found_id, "A1"] {
            let err = project(&gb, id).await.unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (422, "place_id_taken"), "{id}: {}", err.message);
        }
        assert_eq!(rows().await, before, "nothing moved");
        // The same place again in its own grid is fine (a retried sync projects idempotently).
        project(&ga, found_id).await.unwrap();
    });
}

#[test]
fn one_change_cannot_carry_a_crowd_of_visits() {
    let w = world();
    let before = w.town();
    let token = device_str(&w.a1, "token");
    let doc = w.grid(&w.a1, "GA");
    let base = doc.heads();
    let crowd = visits_in_one_change(&doc, &w.a1, "A1", 2_000);
    let (status, body) = w.sync(&token, vec![build_push("GA", &crowd, Some(&base))]);
    assert_eq!(status, 422, "{}", error_message(&body));
    let message = error_message(&body);
    assert!(message.contains("holds 22000 operations") && message.contains("at most 64 operations"), "{message}");
    // Two visits in one change are refused as well: a device writes each visit as a change of its own.
    let (status, body) =
        w.sync(&token, vec![build_push("GA", &visits_in_one_change(&doc, &w.a1, "A1", 2), Some(&base))]);
    assert_eq!(status, 422, "{}", error_message(&body));
    assert!(error_message(&body).contains("adds more than one object"), "{}", error_message(&body));

    assert_eq!(w.town(), before, "nothing stored");
    ok(&w.a2, &["field", "sync"], None);
    assert_eq!(w.grid(&w.a2, "GA").heads(), base, "a team-mate receives nothing of it");
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    ok(&w.a1, &["field", "sync"], None);
    assert_eq!(figure(&w.town(), "T1", "handbook"), (4, 1, 0), "the device syncs on");
}

#[test]
fn a_sync_may_bring_at_most_a_teams_days_of_changes() {
    let w = world();
    let before = w.town();
    let token = device_str(&w.a1, "token");
    // 7,500 visits with the longest note: more bytes than a sync may bring; then 20,001 short ones.
    for (count, note, seen) in [(7_500, Some("n".repeat(2000)), "MiB) new"), (20_001, None, "at least 20001 changes")] {
        let mut doc = w.grid(&w.a1, "GA");
        let base = doc.heads();
        for _ in 0..count {
            doc.add_visit(&Visit { note: note.clone(), ..new_visit(&w.a1, "A1") }).unwrap();
        }
        let (status, body) = w.sync(&token, vec![build_push("GA", &doc, Some(&base))]);
        assert_eq!(status, 413, "{}", error_message(&body));
        assert_eq!(error_code(&body), "sync_too_large");
        let message = error_message(&body);
        assert!(message.contains(seen) && message.contains("at most 20000 changes and 16 MiB"), "{message}");
        assert!(message.contains("Sync more often"), "{message}");
    }
    // More urgent-task changes than a team's tasks can hold are refused before any is read.
    let task = protocol::TaskPush {
        task: uuid::Uuid::now_v7().to_string(),
        changes: vec![serde_bytes::ByteBuf::from(vec![0u8; 8]); 2_001],
        ..Default::default()
    };
    let request =
        SyncRequest { protocol: PROTOCOL_VERSION, grids: vec![], tasks: Some(vec![task]), docs: Default::default() };
    let (status, body) = w.sync_raw(&token, protocol::encode(&request));
    assert_eq!((status, error_code(&body).as_str()), (413, "sync_too_large"), "{}", error_message(&body));
    assert_eq!(w.town(), before, "nothing stored");
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.rejected") && audit.contains("at least 20001 changes"), "{audit}");
    ok(&w.a1, &["field", "sync"], None);
}

/// Appends a visit of `profile`'s to its copy of `grid`, as if its clock had read `at` when it was recorded.
fn plant_visit_at(w: &World, profile: &Path, grid: &str, place: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut doc = w.grid(profile, grid);
    let visit = Visit { at, ..new_visit(profile, place) };
    let change = doc.add_visit(&visit).unwrap();
    GridStore::open(&profile.join("grids")).unwrap().append(grid, &[change]).unwrap();
    visit.id.to_string()
}

#[test]
fn visits_dated_ahead_of_the_servers_clock_are_refused_and_the_phone_is_told_why() {
    let w = world();
    let before = w.town();
    let honest = ok(&w.a1, &["field", "visit", "A2", "--handbook"], None).trim().to_string();
    let year_2099 = chrono::DateTime::parse_from_rfc3339("2099-01-01T08:00:00Z").unwrap().to_utc();
    let future = plant_visit_at(&w, &w.a1, "GA", "A1", year_2099);
    let err = fails(&w.a1, &["field", "sync"], None);
    for words in [
        "dated 2099-01-01 08:00 UTC",
        "after the server's clock",
        "the phone's clock is probably wrong",
        "doorstep field login",
        "nothing was lost: 2 unsynced visits stay on this device",
    ] {
        assert!(err.contains(words), "{words:?} in {err}");
    }
    assert_eq!(w.town(), before, "neither visit is stored: a sync is all or nothing");
    assert!(db_pairs(&w.server.data_dir, "SELECT visit_id, volunteer FROM visits").is_empty());
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.rejected") && audit.contains("clock is probably wrong"), "{audit}");

    // A phone a few minutes fast syncs as usual.
    let fast = plant_visit_at(&w, &w.b1, "GB", "B1", chrono::Utc::now() + chrono::Duration::minutes(5));
    ok(&w.b1, &["field", "sync"], None);

    // With its clock set right, a1 enrols again: the visit dated in the future is recorded at that time.
    let enrolled = chrono::Utc::now();
    ok(&w.a1, &["field", "login", "--server", &w.server.url, "--username", "a1", "--password-stdin"], Some(&pw()));
    ok(&w.a1, &["field", "sync"], None);
    let stored: std::collections::BTreeMap<String, i64> =
        db_pairs(&w.server.data_dir, "SELECT visit_id, CAST(at AS TEXT) FROM visits")
            .into_iter()
            .map(|(id, at)| (id, at.parse().unwrap()))
            .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(stored.contains_key(&honest) && stored.contains_key(&fast));
    let at = chrono::DateTime::from_timestamp_millis(stored[&future]).unwrap();
    assert!(at >= enrolled && at <= chrono::Utc::now(), "dated at its recording again: {at}");
    assert_eq!(figure(&w.town(), "T1", "handbook"), (4, 3, 0));
}

/// Team a gets a second grid (GC), and a lead whose profile serves as the team's hub.
fn team_a_hub(w: &World) -> (PathBuf, Hub) {
    let row = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
               C1,household,c1,GC,gc,V1,v1,village,T1,t\n";
    ok(&w.office, &["territory", "import", write_file(w.tmp.path(), "c.csv", row.as_bytes()).to_str().unwrap()], None);
    ok(&w.office, &["assign", "GC", "--team", "team-a"], None);
    ok(&w.office, &["user", "create", "lead-a", "--role", "lead", "--team", "team-a", "--password-stdin"], Some(&pw()));
    let lead = w.tmp.path().join("lead-a");
    ok(&lead, &["field", "login", "--server", &w.server.url, "--username", "lead-a", "--password-stdin"], Some(&pw()));
    ok(&lead, &["field", "sync"], None);
    for p in [&w.a1, &w.a2] {
        ok(p, &["field", "sync"], None);
    }
    let hub = Hub::start(&lead, &["--upstream-every", "0"]);
    (lead, hub)
}

/// A team hub has its own clock, holds the team's grids, and checks what the server would.
#[test]
fn a_hub_refuses_what_the_server_would_of_place_ids_crowded_changes_and_clocks() {
    let w = world();
    let (lead, hub) = team_a_hub(&w);
    let args = ["field", "add-place", "--grid", "GA", "--kind", "household", "--label", "new house"];
    let found_id = ok(&w.a1, &args, None).trim().to_string();
    ok(&w.a1, &["field", "sync", "--via", &hub.url], None);

    let key = client_core::sign::KeyPair::from_hex(&device_str(&w.a1, "signing_key")).unwrap();
    let hub_sync = |grid: &str, doc: &client_core::GridDoc, base: &[automerge::ChangeHash]| {
        let mut push = build_push(grid, doc, Some(base));
        push.signatures = doc.changes_since(base).iter().map(|c| key.sign_change(&c.hash())).collect();
        let body = protocol::encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids: vec![push],
            tasks: None,
            docs: Default::default(),
        });
        w.rt.block_on(async {
            let resp = w
                .http
                .post(format!("{}/api/v1/sync", hub.url))
                .bearer_auth(device_str(&w.a1, "token"))
                .header("content-type", protocol::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        })
    };
    // The same place id in the team's other grid.
    let mut doc = w.grid(&w.a1, "GC");
    let base = doc.heads();
    doc.add_found_place(&found_place(&w.a1, &found_id, "moved")).unwrap();
    let (status, body) = hub_sync("GC", &doc, &base);
    assert_eq!((status, error_code(&body).as_str()), (422, "place_id_taken"), "{}", error_message(&body));
    // A change holding many visits.
    let doc = w.grid(&w.a1, "GA");
    let base = doc.heads();
    let (status, body) = hub_sync("GA", &visits_in_one_change(&doc, &w.a1, "A1", 100), &base);
    assert_eq!(status, 422, "{}", error_message(&body));
    assert!(error_message(&body).contains("at most 64 operations"), "{}", error_message(&body));
    // A visit dated tomorrow.
    let mut doc = w.grid(&w.a1, "GA");
    doc.add_visit(&Visit { at: chrono::Utc::now() + chrono::Duration::days(1), ..new_visit(&w.a1, "A1") }).unwrap();
    let (status, body) = hub_sync("GA", &doc, &base);
    assert_eq!((status, error_code(&body).as_str()), (422, "clock_ahead"), "{}", error_message(&body));
    assert!(error_message(&body).contains("after this hub's clock"), "{}", error_message(&body));

    // The hub stored none of it: the lead's copy holds a1's found place, in GA only, and no visit.
    let store = GridStore::open(&lead.join("grids")).unwrap();
    assert!(store.load("GA").unwrap().found_place(&found_id).unwrap().is_some());
    assert!(store.load("GC").unwrap().place(&found_id).unwrap().is_none());
    assert!(store.load("GA").unwrap().visits().unwrap().is_empty());
}

/// A hub cannot know another team's grids, so it may accept a found place under the id of one of their places.
/// The server stores it (the team's later work depends on it) but counts it nowhere: the place stays where it is,
/// visits recorded to it in the other grid count for nothing, and the team keeps syncing.
#[test]
fn a_found_place_relayed_under_another_teams_place_id_is_stored_but_moves_nothing() {
    let w = world();
    let (lead, hub) = team_a_hub(&w);
    let args = ["field", "add-place", "--grid", "GB", "--kind", "household", "--label", "b's house"];
    let taken = ok(&w.b1, &args, None).trim().to_string();
    ok(&w.b1, &["field", "sync"], None);
    let (town, places) = (w.town(), found_rows(&w));

    // a1 takes the id in GA, through the hub, which holds no grid of team b; a2 receives it there and visits it.
    let change = w.grid(&w.a1, "GA").add_found_place(&found_place(&w.a1, &taken, "hijacked")).unwrap();
    GridStore::open(&w.a1.join("grids")).unwrap().append("GA", &[change]).unwrap();
    ok(&w.a1, &["field", "sync", "--via", &hub.url], None);
    ok(&w.a2, &["field", "sync", "--via", &hub.url], None);
    ok(&w.a2, &["field", "visit", &taken, "--handbook"], None);
    ok(&w.a2, &["field", "sync", "--via", &hub.url], None);

    // Upstream, neither the lead's hub nor a2 is refused: the team's documents depend on those changes.
    ok(&lead, &["hub", "sync"], None);
    ok(&w.a2, &["field", "sync"], None);
    assert_eq!(found_rows(&w), places, "the place stays b1's, in GB");
    assert_eq!(w.town(), town, "nothing counted");
    assert!(db_pairs(&w.server.data_dir, "SELECT visit_id, grid_code FROM visits").is_empty());
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(audit.contains("sync.set_aside") && audit.contains("stored, not counted"), "{audit}");
    // a1's own direct sync brings nothing new any more; b1's team syncs on.
    ok(&w.a1, &["field", "sync"], None);
    ok(&w.b1, &["field", "sync"], None);
}

// ---- Request bodies and slow clients ----

/// The resident memory of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS in /proc/PID/status");
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// A valid gzip stream of `mib` MiB of zeros, about a thousandth of that on the wire. Built from one compressed
/// MiB repeated (with the CRC combined), as compressing 500 MiB would take most of a minute in a test build.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut next_block = |input: &[u8], flush: FlushCompress| {
        let before = deflate.total_in();
        let mut out = Vec::with_capacity(1 << 16);
        deflate.compress_vec(input, &mut out, flush).unwrap();
        assert_eq!(deflate.total_in() - before, input.len() as u64);
        out
    };
    let first = next_block(&zeros, FlushCompress::Sync);
    // With the window full of zeros, every further MiB compresses to the same bytes.
    let steady = next_block(&zeros, FlushCompress::Sync);
    assert_eq!(next_block(&zeros, FlushCompress::Sync), steady);
    let mut one_mib = Crc::new();
    one_mib.update(&zeros);
    let mut crc = Crc::new();
    let mut stream = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    stream.extend_from_slice(&first);
    crc.combine(&one_mib);
    for _ in 1..mib {
        stream.extend_from_slice(&steady);
        crc.combine(&one_mib);
    }
    stream.extend_from_slice(&next_block(&[], FlushCompress::Finish));
    stream.extend_from_slice(&crc.sum().to_le_bytes());
    stream.extend_from_slice(&crc.amount().to_le_bytes());
    stream
}

/// The status of the first answer on `socket` (an interim `100 Continue` included), read up to the end of its
/// head; `None` if the server closed the connection without answering.
fn first_status(socket: &mut std::net::TcpStream) -> Option<u16> {
    use std::io::Read;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) if answer.is_empty() => return None,
            Ok(0) => panic!("the answer broke off: {}", String::from_utf8_lossy(&answer)),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the answer: {e}: {}", String::from_utf8_lossy(&answer)),
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    Some(text.split(' ').nth(1).unwrap().parse().unwrap())
}

/// Sends a request's head and whole body at once, as an attacker would (without waiting for the server to ask
/// for the body), and returns the status of the answer. Writing may fail once the server has answered and closed.
fn send_whole(addr: &str, head: &str, body: &[u8]) -> u16 {
    use std::io::Write;
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(300))).unwrap();
    let mut writer = socket.try_clone().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(body));
        });
        first_status(&mut socket).expect("the server closed the connection without answering")
    })
}

/// Sends a request's head with `Expect: 100-continue` and returns the server's first answer: 100 if it asked for
/// the body (it began reading it), or the final status it gave without reading any of it.
fn status_before_body(addr: &str, head: &str) -> (u16, std::net::TcpStream) {
    use std::io::Write;
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let head = head.replacen("\r\n", "\r\nExpect: 100-continue\r\n", 1);
    socket.write_all(head.as_bytes()).unwrap();
    let status = first_status(&mut socket).expect("the server closed the connection without answering");
    (status, socket)
}

fn login_viewer(w: &World, area: &str) -> PathBuf {
    let args = ["user", "create", "viewer1", "--role", "viewer", "--area", area, "--password-stdin"];
    ok(&w.office, &args, Some(&pw()));
    let viewer = w.tmp.path().join("viewer");
    let args = ["login", "--server", &w.server.url, "--username", "viewer1", "--password-stdin"];
    ok(&viewer, &args, Some(&pw()));
    viewer
}

/// A viewer's territory imports of a gzip bomb (500 KB on the wire, 500 MiB inflated) are refused before any of
/// the body is read or inflated: a flood of them leaves the server's memory where it was, and a volunteer's sync
/// is served meanwhile. The office's import of a real file still works, with the file received on disk.
#[test]
fn a_viewers_gzip_bombs_are_refused_unread_and_the_server_keeps_its_memory() {
    let w = world();
    let token = session_token(&login_viewer(&w, "V1"));
    let addr = w.server.url.trim_start_matches("http://").to_string();
    let mut small = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzip_bomb(4)[..]), &mut small).unwrap();
    assert!(small.len() == 4 << 20 && small.iter().all(|b| *b == 0), "the bomb is a valid gzip stream");
    let import_head = |length: usize| {
        format!(
            "POST /api/v1/territory/import HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: text/csv\r\nContent-Encoding: gzip\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    let wave = |n: usize, body: &[u8]| -> Vec<u16> {
        let head = import_head(body.len());
        std::thread::scope(|s| {
            let sending: Vec<_> = (0..n).map(|_| s.spawn(|| send_whole(&addr, &head, body))).collect();
            sending.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    // A first wave of small files brings the server's buffers and threads to their working size.
    assert_eq!(wave(6, &gzip_bomb(1)), vec![403; 6]);
    let before = resident_kib(w.server.pid());
    let bomb = gzip_bomb(500);
    assert!(bomb.len() < 600 * 1024, "{}", bomb.len());
    ok(&w.a1, &["field", "visit", "A1", "--handbook"], None);
    std::thread::scope(|s| {
        let flood = s.spawn(|| {
            for _ in 0..5 {
                assert_eq!(wave(6, &bomb), vec![403; 6]);
                let now = resident_kib(w.server.pid());
                assert!(
                    now < before + 8 * 1024,
                    "the server's resident memory grew from {before} KiB to {now} KiB under a viewer's refused imports"
                );
            }
        });
        ok(&w.a1, &["field", "sync"], None);
        flood.join().unwrap();
    });
    eprintln!("server resident memory: {before} KiB before the flood, {} KiB after", resident_kib(w.server.pid()));
    assert_eq!(figure(&w.town(), "T1", "handbook").1, 1, "the volunteer's visit was stored");

    // The office imports a real file of 30,000 places (the CLI sends it gzipped).
    use std::fmt::Write as _;
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
    );
    for i in 0..30_000 {
        writeln!(csv, "T9-{i},household,house {i},T9-G{},grid {},T9-V,v9,village,T9,t9", i / 100, i / 100).unwrap();
    }
    let f = write_file(w.tmp.path(), "large.csv", csv.as_bytes());
    let out = ok(&w.office, &["territory", "import", f.to_str().unwrap()], None);
    assert!(out.contains("imported 30000 rows: 30000 places added"), "{out}");
    assert_eq!(figure(&w.town(), "T9", "handbook").0, 30_000);
}

/// Territory files in hand at once are bounded: past the bound an import is refused at once with 503 and
/// `Retry-After`, and once those in hand are done the next one is taken.
#[test]
fn territory_imports_in_flight_are_bounded() {
    let w = world();
    let token = session_token(&w.office);
    let addr = w.server.url.trim_start_matches("http://").to_string();
    let csv = TERRITORY.replace("a1,", "a1 renamed,");
    let head = format!(
        "POST /api/v1/territory/import?dry_run=true HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
        csv.len()
    );
    // Two imports whose bodies the server has asked for (so it holds their permits), their files still to come.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (status, socket) = status_before_body(&addr, &head);
        assert_eq!(status, 100);
        held.push(socket);
    }
    let refused = w.rt.block_on(async {
        w.http
            .post(format!("{}/api/v1/territory/import", w.server.url))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await
            .unwrap()
    });
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "30");
    let message = w.rt.block_on(refused.text()).unwrap();
    assert!(message.contains("territory imports are being received or applied already"), "{message}");
    // The two complete their files and are applied (as dry runs); then an import is taken again.
    for mut socket in held {
        use std::io::Write;
        socket.write_all(csv.as_bytes()).unwrap();
        assert_eq!(first_status(&mut socket), Some(200));
    }
    let f = write_file(w.tmp.path(), "renamed.csv", csv.as_bytes());
    let out = ok(&w.office, &["territory", "import", f.to_str().unwrap()], None);
    assert!(out.contains("1 changed"), "{out}");
}

/// Every route of the server's router that takes a body, as (method, path), read from the server's source so
/// that an endpoint added later is covered without being listed here.
fn routes_taking_bodies() -> Vec<(String, String)> {
    let mut sources = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("server/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                sources.push(path);
            }
        }
    }
    let mut routes = Vec::new();
    for file in sources {
        let source = std::fs::read_to_string(file).unwrap();
        for (at, _) in source.match_indices(".route(") {
            let rest = source[at + ".route(".len()..].trim_start();
            // A path built at run time (the dashboard's assets) may only serve GET: checked below.
            let path = rest.strip_prefix('"').and_then(|r| r.split('"').next()).unwrap_or("");
            // The method router: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .expect("the end of .route(")
                .0;
            let methods = &rest[..end];
            for method in ["post", "put", "patch", "delete"] {
                let called = methods.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0 || !methods.as_bytes()[i - 1].is_ascii_alphanumeric() && methods.as_bytes()[i - 1] != b'_'
                });
                if called {
                    assert!(!path.is_empty(), "a route taking a body must have a literal path: {}", &rest[..end]);
                    let mut concrete = String::new();
                    let mut in_param = false;
                    for c in path.chars() {
                        match c {
                            '{' => {
                                in_param = true;
                                concrete.push('x');
                            }
                            '}' => in_param = false,
                            c if !in_param => concrete.push(c),
                            _ => {}
                        }
                    }
                    routes.push((method.to_uppercase(), concrete));
                }
            }
        }
    }
    routes.sort();
    routes
}

/// On every endpoint that takes a body, the caller's token and role are checked before any of the body is read:
/// without a token, with a viewer's session and with a volunteer's device token, the answer is 401 or 403 and the
/// server never asks for the body (`Expect: 100-continue`). Only login, enrolment, refresh and logout read their
/// (small) body first: it carries the credentials.
#[test]
fn every_endpoint_that_takes_a_body_checks_the_caller_before_reading_it() {
    let w = world();
    let viewer = session_token(&login_viewer(&w, "V1"));
    let volunteer = device(&w.a1)["token"].as_str().unwrap().to_string();
    let addr = w.server.url.trim_start_matches("http://").to_string();
    let routes = routes_taking_bodies();
    for known in ["/api/v1/sync", "/api/v1/territory/import", "/api/v1/teams", "/api/v1/hub/certificate"] {
        assert!(routes.iter().any(|(_, p)| p == known), "{known} not found among {routes:?}");
    }
    let public = [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/devices",
        "/api/v1/enrolment-codes/lookup",
    ];
    let mut checked = 0;
    for (method, path) in &routes {
        if public.contains(&path.as_str()) {
            continue;
        }
        for (who, token) in [("no one", None), ("a viewer", Some(&viewer)), ("a volunteer's device", Some(&volunteer))]
        {
            // What a device may send: its sync, its status after one, and its visits' photos.
            let device_sends = ["/api/v1/sync", "/api/v1/devices/status", "/api/v1/photos/missing", "/api/v1/photos/x"];
            if who == "a volunteer's device" && device_sends.contains(&path.as_str()) {
                continue;
            }
            let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
                 Content-Length: 60000\r\n\r\n"
            );
            let (status, _) = status_before_body(&addr, &head);
            assert!(status == 401 || status == 403, "{method} {path} from {who}: {status} before the body was sent");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} requests checked: {routes:?}");
}

/// Raises this process's open-file limit to what 3,000 connections need (up to its hard limit).
fn raise_open_file_limit(needed: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(limit.rlim_max >= needed, "this test needs {needed} open files; the hard limit is {}", limit.rlim_max);
        limit.rlim_cur = limit.rlim_cur.max(needed);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// Sets another process's open-file limit.
fn set_open_file_limit(pid: u32, files: u64) {
    let limit = libc::rlimit { rlim_cur: files, rlim_max: files };
    // SAFETY: a system call on a local struct, for a child process of this one.
    let done = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(done, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// 3,000 slow connections from one address (a third sending nothing, a third part of their headers, a third a
/// login's headers and part of its body) do not stop a volunteer's sync from another address, and the server
/// closes every one of them: at once those past the bound of connections per address, after the header or body
/// timeout the others.
#[test]
fn slow_clients_are_cut_off_and_a_volunteers_sync_is_served_meanwhile() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SLOW: usize = 3_000;
    raise_open_file_limit(SLOW as u64 + 1_000);
    let w = world_with(&["--header-timeout-secs", "3", "--body-timeout-secs", "3"]);
    // The open-file limit a service gets by default (systemd's soft LimitNOFILE): without a bound per address,
    // slow connections from one address use it up and the server accepts no one else.
    set_open_file_limit(w.server.pid(), 1024);
    let addr: std::net::SocketAddr = w.server.url.trim_start_matches("http://").parse().unwrap();
    let token = device(&w.a1)["token"].as_str().unwrap().to_string();
    let mut doc = w.grid(&w.a1, "GA");
    let base = doc.heads();
    doc.add_visit(&new_visit(&w.a1, "A1")).unwrap();
    let push = build_push("GA", &doc, Some(&base));
    let sync_body = protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        grids: vec![push],
        tasks: None,
        docs: Default::default(),
    });
    let login_head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"username\": \"a1\", "
    );
    w.rt.block_on(async {
        let opening = std::time::Instant::now();
        let mut slow = Vec::with_capacity(SLOW);
        for i in 0..SLOW {
            let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let sent: &[u8] = match i % 3 {
                0 => b"",
                1 => b"POST /api/v1/auth/login HTTP/1.1\r\nHost: doorstep\r\n",
                _ => login_head.as_bytes(),
            };
            // The server may already have closed a connection past the bound.
            let _ = socket.write_all(sent).await;
            slow.push(socket);
        }
        let opened_in = opening.elapsed();
        // 127.0.0.2 is another address of the loopback interface.
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let reply = client
            .post(format!("{}/api/v1/sync", w.server.url))
            .bearer_auth(&token)
            .header("content-type", protocol::CONTENT_TYPE)
            .body(sync_body)
            .send()
            .await
            .expect("the volunteer's sync was not served");
        let status = reply.status().as_u16();
        let elapsed = started.elapsed();
        let body = reply.bytes().await.unwrap();
        assert_eq!(status, 200, "{}", error_message(&body));
        // A sync takes tens of milliseconds on an idle machine; a second leaves room for a loaded one (without
        // the limits the sync is not served at all while the slow connections hold the server).
        assert!(elapsed < std::time::Duration::from_secs(1), "the sync took {elapsed:?}");

        let mut timed_out = 0;
        for mut socket in slow {
            let mut answer = Vec::new();
            let closed = tokio::time::timeout(std::time::Duration::from_secs(30), socket.read_to_end(&mut answer));
            // A reset counts as closed too.
            let _ = closed.await.expect("a slow connection was still open 30 s after its timeout of 3 s");
            if answer.starts_with(b"HTTP/1.1 408") {
                timed_out += 1;
            }
        }
        // Those answered held a place in the address's bound. (Opening them takes a fraction of a second; on a
        // machine so loaded that it took longer than the timeout, the first ones' places were free again before
        // the last ones came, and more than the bound may have been answered.)
        assert!(timed_out >= 1, "no slow login body was answered 408");
        if opened_in < std::time::Duration::from_secs(3) {
            assert!(timed_out <= 256, "{timed_out} slow login bodies were answered 408; the bound per address is 256");
        }
    });
    assert_eq!(figure(&w.town(), "T1", "handbook").1, 1, "the volunteer's visit was stored");
}

/// A team hub checks a device's token and team before it reads (or inflates) the device's sync body.
#[test]
fn a_hub_checks_the_device_before_reading_its_sync() {
    let w = world();
    let args = ["user", "create", "lead-a", "--role", "lead", "--team", "team-a", "--password-stdin"];
    ok(&w.office, &args, Some(&pw()));
    let lead = w.tmp.path().join("lead");
    let args = ["field", "login", "--server", &w.server.url, "--username", "lead-a", "--password-stdin"];
    ok(&lead, &args, Some(&pw()));
    ok(&lead, &["field", "sync"], None);
    let hub = Hub::start(&lead, &["--upstream-every", "0"]);
    let addr = hub.url.trim_start_matches("http://").to_string();
    let other_team = device(&w.b1)["token"].as_str().unwrap().to_string();
    let own_team = device(&w.a1)["token"].as_str().unwrap().to_string();
    let head = |token: Option<&str>| {
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        format!(
            "POST /api/v1/sync HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {}\r\nContent-Encoding: gzip\r\n\
             Content-Length: 600000\r\n\r\n",
            protocol::CONTENT_TYPE
        )
    };
    assert_eq!(status_before_body(&addr, &head(None)).0, 401);
    assert_eq!(status_before_body(&addr, &head(Some("not.a.token"))).0, 401);
    assert_eq!(status_before_body(&addr, &head(Some(&other_team))).0, 403);
    // A device of the team is asked for its body.
    assert_eq!(status_before_body(&addr, &head(Some(&own_team))).0, 100);
}
