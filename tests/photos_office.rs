//! Photos as evidence, end to end with the real binary: a volunteer's visit references a photo, its bytes are
//! uploaded and checked (corrupt or disguised uploads refused and audited), coverage of an indicator that asks for
//! a photo counts the place only with it, the office, the team's lead and the village's viewer see it (another
//! team's lead does not), and the office's rejection (`doorstep photo reject`) puts the place back on the gap list,
//! is audited and reaches the volunteer's phone at its next sync.

mod common;

use client_core::grid::model::{Deliveries, Outcome, PhotoRef, Visit};
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,2号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H3,household,3号,G2,二网格,V2,石桥村,village,T1,太安镇\n";

/// A real JPEG of `w`×`h` pixels, shaded by `seed` so that each is a different photo.
pub fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x as u8).wrapping_add(seed), y as u8, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn device(profile: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap()
}

/// A reference to `bytes` as a phone writes it into a visit, declared as `media_type`.
fn photo_ref(bytes: &[u8], media_type: &str) -> PhotoRef {
    PhotoRef {
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        media_type: media_type.into(),
        taken_at: chrono::Utc::now() - chrono::Duration::minutes(5),
        rejected: None,
    }
}

/// Records a visit with photos on the volunteer's device, as the field client does (its next `field sync` sends
/// it); returns the visit's id.
fn visit_with_photos(profile: &Path, grid: &str, place: &str, delivery: &str, photos: Vec<PhotoRef>) -> String {
    let d = device(profile);
    let store = client_core::store::GridStore::open(&profile.join("grids")).unwrap();
    let mut doc = store.load(grid).unwrap();
    doc.set_actor(d["actor"].as_str().unwrap().parse().unwrap());
    let visit = Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.into(),
        volunteer: d["username"].as_str().unwrap().into(),
        device: d["device_id"].as_str().unwrap().into(),
        at: chrono::Utc::now(),
        outcome: Outcome::Completed,
        deliveries: Deliveries::of([delivery]),
        note: None,
        gps: None,
        photos,
    };
    let change = doc.add_visit(&visit).unwrap();
    store.append(grid, &[change]).unwrap();
    visit.id.to_string()
}

/// A call to the server with a bearer token: (status, body).
fn call(method: reqwest::Method, url: &str, token: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Vec<u8>) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut req = reqwest::Client::new().request(method, url).bearer_auth(token);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.body(body).send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    })
}

/// Uploads a photo's bytes in one request with the device's token.
fn upload(server: &str, profile: &Path, sha256: &str, bytes: &[u8]) -> (u16, Value) {
    let token = device(profile)["token"].as_str().unwrap().to_string();
    let url = format!("{server}/api/v1/photos/{sha256}");
    let (status, body) =
        call(reqwest::Method::PUT, &url, &token, &[("upload-length", bytes.len().to_string())], bytes.to_vec());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn session_token(profile: &Path) -> String {
    let session: Value = serde_json::from_slice(&std::fs::read(profile.join("session.json")).unwrap()).unwrap();
    session["token"].as_str().unwrap().to_string()
}

fn photos(profile: &Path, extra: &[&str]) -> Vec<Value> {
    serde_json::from_str(&ok(profile, &[&["photo", "list", "--format", "json"], extra].concat(), None)).unwrap()
}

fn evidence(server: &str, office: &Path) -> Value {
    let (status, body) =
        call(reqwest::Method::GET, &format!("{server}/api/v1/photos/evidence"), &session_token(office), &[], vec![]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let reply: Value = serde_json::from_slice(&body).unwrap();
    reply["indicators"].as_array().unwrap().iter().find(|i| i["indicator"] == "poster").cloned().unwrap()
}

fn poster(office: &Path, area: &str) -> (u64, u64, u64) {
    figure(&coverage(office, "village", None), area, "poster")
}

#[test]
fn the_office_sees_checks_and_rejects_a_visit_s_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), TERRITORY);
    let (office, url) = (&town.office, town.server.url.clone());
    let p = |name: &str| tmp.path().join(name);

    // The poster counts only with a photo (docs/campaigns.md): the default campaign, its poster asking for one.
    let default = include_str!("../client-core/src/campaign/default.toml");
    let asking = default.replacen(
        "reached_by = { any_of = [\"poster\"] }",
        "reached_by = { any_of = [\"poster\"] }\nphoto_required = true",
        1,
    );
    assert_ne!(asking, default);
    let campaign = write_file(tmp.path(), "photos.toml", asking.as_bytes());
    ok(office, &["campaign", "apply", campaign.to_str().unwrap()], None);

    for (team, lead, grid) in [("east", "lead-east", "G1"), ("west", "lead-west", "G2")] {
        ok(office, &["user", "create", lead, "--role", "lead", "--password-stdin"], Some(&pw()));
        ok(office, &["team", "create", team, "--lead", lead], None);
        ok(office, &["assign", grid, "--team", team], None);
        ok(&p(lead), &["login", "--server", &url, "--username", lead, "--password-stdin"], Some(&pw()));
    }
    ok(office, &["user", "create", "cadre", "--role", "viewer", "--area", "V1", "--password-stdin"], Some(&pw()));
    ok(&p("cadre"), &["login", "--server", &url, "--username", "cadre", "--password-stdin"], Some(&pw()));
    ok(office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let v1 = p("v1");
    ok(&v1, &["field", "login", "--server", &url, "--username", "v1", "--password-stdin"], Some(&pw()));
    ok(&v1, &["field", "sync"], None);

    // H1: the poster with its photo. H2: a poster without one, and a visit whose photos will be refused.
    let photo = jpeg(640, 480, 7);
    let sha = sha256_hex(&photo);
    let visit = visit_with_photos(&v1, "G1", "H1", "poster", vec![photo_ref(&photo, "image/jpeg")]);
    visit_with_photos(&v1, "G1", "H2", "poster", Vec::new());
    let other = jpeg(320, 240, 99);
    let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n".to_vec();
    visit_with_photos(
        &v1,
        "G1",
        "H2",
        "handbook",
        vec![photo_ref(&other, "image/jpeg"), photo_ref(&pdf, "image/jpeg")],
    );
    ok(&v1, &["field", "sync"], None);
    assert_eq!(poster(office, "V1"), (2, 1, 0), "H1 counts with its photo, H2 does not without one");

    // Evidence: a reached place whose photo has not arrived is no evidence yet.
    let before = evidence(&url, office);
    assert_eq!((before["reached"].as_u64(), before["with_evidence"].as_u64()), (Some(1), Some(0)), "{before}");
    let listed = photos(office, &[]);
    let h1 = listed.iter().find(|x| x["sha256"] == sha.as_str()).expect("the photo is listed before it arrives");
    assert_eq!(h1["received"], false, "{h1}");
    let shown = ok(office, &["photo", "list"], None);
    assert!(shown.contains("on the phone"), "{shown}");

    // Bytes that are not the photo the visit names: refused, audited, nothing kept.
    let mut corrupt = other.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let (status, body) = upload(&url, &v1, &sha256_hex(&other), &corrupt);
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not photo"), "{body}");
    // A PDF named by its own hash and declared a JPEG: refused for what it is.
    let (status, body) = upload(&url, &v1, &sha256_hex(&pdf), &pdf);
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("PDF"), "{body}");
    let refused = ok(office, &["audit", "--action", "blob.refused", "--format", "json"], None);
    let refused: Vec<Value> = serde_json::from_str(&refused).unwrap();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().any(|e| e["detail"].as_str().unwrap().contains("PDF")), "{refused:?}");

    // The photo itself, twice: one photo.
    let (status, body) = upload(&url, &v1, &sha, &photo);
    assert_eq!((status, &body["complete"]), (200, &Value::Bool(true)), "{body}");
    let (status, body) = upload(&url, &v1, &sha, &photo);
    assert_eq!((status, &body["complete"]), (200, &Value::Bool(true)), "{body}");
    let held = db_pairs(&town.data, "SELECT sha256, media_type FROM photos");
    assert_eq!(held, vec![(sha.clone(), "image/jpeg".to_string())], "one photo held; the refused ones are not");
    let after = evidence(&url, office);
    assert_eq!((after["reached"].as_u64(), after["with_evidence"].as_u64()), (Some(1), Some(1)), "{after}");

    // Who sees it: the office, the team's lead, the village's viewer; not another team's lead.
    for reader in [office.clone(), p("lead-east"), p("cadre")] {
        let listed = photos(&reader, &["--indicator", "poster"]);
        assert_eq!(listed.len(), 1, "{}: {listed:?}", reader.display());
        assert_eq!(listed[0]["sha256"], sha.as_str());
        assert_eq!(listed[0]["received"], true);
        assert_eq!(listed[0]["place_id"], "H1");
    }
    assert!(photos(&p("lead-west"), &[]).is_empty(), "another team's lead lists nothing of G1");
    let saved = tmp.path().join("saved.jpg");
    let refused = fails(&p("lead-west"), &["photo", "get", &sha, "--out", saved.to_str().unwrap()], None);
    assert!(refused.contains("no photo") && !saved.exists(), "{refused}");
    let file_url = format!("{url}/api/v1/photos/{sha}/file");
    let (status, _) = call(reqwest::Method::GET, &file_url, &session_token(&p("lead-west")), &[], vec![]);
    assert_eq!(status, 404, "another team's lead gets nothing of the file");
    // The saved photo is the checked copy: a JPEG of the same size in pixels; the thumbnail is smaller.
    ok(&p("cadre"), &["photo", "get", &sha, "--out", saved.to_str().unwrap()], None);
    let full = image::load_from_memory(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!((full.width(), full.height()), (640, 480));
    let thumb = tmp.path().join("thumb.jpg");
    ok(office, &["photo", "get", &sha, "--out", thumb.to_str().unwrap(), "--thumbnail"], None);
    let small = image::load_from_memory(&std::fs::read(&thumb).unwrap()).unwrap();
    assert!(small.width() <= 320 && small.height() <= 320, "{}x{}", small.width(), small.height());

    // Refusals that change nothing: no reason (400), a lead (403), a photo the visit does not carry (404).
    let reject_url = format!("{url}/api/v1/photos/{sha}/reject");
    let no_reason = serde_json::json!({"visit": visit, "reason": "  "}).to_string().into_bytes();
    let json = [("content-type", "application/json".to_string())];
    let (status, body) = call(reqwest::Method::POST, &reject_url, &session_token(office), &json, no_reason);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("say why"));
    let refused = fails(&p("lead-east"), &["photo", "reject", &sha, "--visit", &visit, "--reason", "blurred"], None);
    assert!(refused.contains("the lead role may not"), "{refused}");
    let missing = fails(office, &["photo", "reject", &sha256_hex(&other), "--visit", &visit, "--reason", "x"], None);
    assert!(missing.contains("has no photo"), "{missing}");
    assert!(fails(office, &["photo", "reject", &sha, "--visit", &visit, "--reason", ""], None).contains("--reason"));
    assert_eq!(poster(office, "V1"), (2, 1, 0), "nothing changed");

    // The office rejects it: coverage drops, the place is a gap again, the audit says so, the phone learns why.
    ok(office, &["photo", "reject", &sha, "--visit", &visit, "--reason", "海报不在照片里"], None);
    assert_eq!(poster(office, "V1"), (2, 0, 0));
    let gaps = ok(office, &["report", "gaps", "--grid", "G1", "--indicator", "poster", "--format", "json"], None);
    let gaps: Vec<Value> = serde_json::from_str(&gaps).unwrap();
    assert!(gaps.iter().any(|g| g["place_id"] == "H1"), "{gaps:?}");
    let audit = ok(office, &["audit", "--action", "photo.reject", "--format", "json"], None);
    let audit: Vec<Value> = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0]["detail"].as_str().unwrap().contains(&sha) && audit[0]["username"] == "office", "{audit:?}");
    let rejected = photos(office, &["--state", "rejected"]);
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (&rejected[0]["reason"], &rejected[0]["rejected_by"]),
        (&Value::from("海报不在照片里"), &Value::from("office"))
    );
    assert!(photos(office, &["--state", "standing", "--place", "H1"]).is_empty());
    let after = evidence(&url, office);
    assert_eq!((after["reached"].as_u64(), after["with_evidence"].as_u64()), (Some(0), Some(0)), "{after}");

    ok(&v1, &["field", "sync"], None);
    let doc = client_core::store::GridStore::open(&v1.join("grids")).unwrap().load("G1").unwrap();
    let on_phone = doc.visit(&visit).unwrap().expect("the visit is on the phone");
    let rejection = on_phone.photos[0].rejected.as_ref().expect("the phone holds the rejection");
    assert_eq!(rejection.reason, "海报不在照片里");
    assert!(!on_phone.has_accepted_photo());

    // Twice: refused, and nothing more is recorded.
    let again = fails(office, &["photo", "reject", &sha, "--visit", &visit, "--reason", "again"], None);
    assert!(again.contains("rejected already"), "{again}");
    let (status, _) = call(
        reqwest::Method::POST,
        &reject_url,
        &session_token(office),
        &json,
        serde_json::json!({"visit": visit, "reason": "again"}).to_string().into_bytes(),
    );
    assert_eq!(status, 409);
    let audit = ok(office, &["audit", "--action", "photo.reject", "--format", "json"], None);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&audit).unwrap().len(), 1);

    // The list as CSV: one row per photo, behind its header.
    let csv = ok(office, &["photo", "list", "--format", "csv"], None);
    assert!(csv.starts_with("sha256,visit,place,label,"), "{csv}");
    assert_eq!(csv.lines().filter(|l| l.starts_with(&sha)).count(), 1, "{csv}");
}

#[test]
fn photo_commands_refuse_what_is_no_photo_s_name() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), TERRITORY);
    let out = tmp.path().join("x.jpg");
    let refused = fails(&town.office, &["photo", "get", "../etc/passwd", "--out", out.to_str().unwrap()], None);
    assert!(refused.contains("is not a photo's SHA-256"), "{refused}");
    let unknown = "0".repeat(64);
    let refused = fails(&town.office, &["photo", "get", &unknown, "--out", out.to_str().unwrap()], None);
    assert!(refused.contains("no photo"), "{refused}");
    assert!(!out.exists());
    let refused = fails(&town.office, &["photo", "list", "--area", "NOWHERE"], None);
    assert!(refused.contains("NOWHERE"), "{refused}");
}

#[test]
fn photo_list_reads_every_page_of_the_gallery() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), TERRITORY);
    let (office, url) = (&town.office, town.server.url.clone());
    ok(office, &["team", "create", "east"], None);
    ok(office, &["assign", "G1", "--team", "east"], None);
    ok(office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let v1 = tmp.path().join("v1");
    ok(&v1, &["field", "login", "--server", &url, "--username", "v1", "--password-stdin"], Some(&pw()));
    ok(&v1, &["field", "sync"], None);
    // 26 visits of 8 photos: more than the server's page of 200. Referenced only; none need to arrive to be listed.
    let mut made = std::collections::BTreeSet::new();
    for v in 0..26u32 {
        let refs: Vec<PhotoRef> = (0..8u32)
            .map(|k| {
                let bytes = format!("photo {v}/{k}").into_bytes();
                made.insert(sha256_hex(&bytes));
                PhotoRef { size: 1000, ..photo_ref(&bytes, "image/jpeg") }
            })
            .collect();
        visit_with_photos(&v1, "G1", if v % 2 == 0 { "H1" } else { "H2" }, "handbook", refs);
    }
    ok(&v1, &["field", "sync"], None);
    let listed = photos(office, &[]);
    let seen: std::collections::BTreeSet<String> =
        listed.iter().map(|p| p["sha256"].as_str().unwrap().to_string()).collect();
    assert_eq!((listed.len(), &seen), (208, &made), "every photo once, across pages");
    assert!(listed.iter().all(|p| p["received"] == false));
    assert_eq!(photos(office, &["--limit", "205"]).len(), 205);
    assert_eq!(photos(office, &["--place", "H2"]).len(), 104);
}
