//! The attack suite: every forbidden action is tried against a real server and refused with the right status,
//! and nothing changes.

mod common;
use automerge::transaction::Transactable;
use automerge::{ActorId, ReadDoc};
use client_core::model::{Deliveries, Outcome, Visit};
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
        self.sync_raw(token, protocol::encode(&SyncRequest { protocol: PROTOCOL_VERSION, grids, tasks: None }))
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
        deliveries: Deliveries { handbook: true, ..Default::default() },
        note: None,
        gps: None,
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("server/src");
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (at, _) in source.match_indices(".route(") {
            let rest = source[at + ".route(".len()..].trim_start();
            let path = rest.strip_prefix('"').and_then(|r| r.split('"').next()).expect("a route's path literal");
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
    let public = ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/devices"];
    let mut checked = 0;
    for (method, path) in &routes {
        if public.contains(&path.as_str()) {
            continue;
        }
        for (who, token) in [("no one", None), ("a viewer", Some(&viewer)), ("a volunteer's device", Some(&volunteer))]
        {
            if who == "a volunteer's device" && path == "/api/v1/sync" {
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
    let sync_body = protocol::encode(&SyncRequest { protocol: PROTOCOL_VERSION, grids: vec![push], tasks: None });
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
