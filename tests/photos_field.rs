//! Photo evidence from the CLI field client with the real binary: `field visit --photo` shrinks and keeps the photo
//! before the visit, the visit carries only its reference, `field sync` uploads it after the visits, and a poster
//! counts where the campaign asks for a photo only with one. An upload cut short survives a server restart and the
//! next sync goes on from the server's offset; the same photo twice travels once.

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
B1,building,1栋,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
B2,building,2栋,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
B3,building,3栋,G1,一网格,V1,龙凤村,village,T1,太安镇\n";

/// A camera-sized JPEG (3000×2000): smooth shades with a little sensor noise, as photos of walls are.
fn camera_jpeg(dir: &Path, name: &str, seed: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(3000, 2000, |x, y| {
        let noise = ((x.wrapping_mul(31) ^ y.wrapping_mul(17) ^ seed.wrapping_mul(2654435761)).wrapping_mul(2246822519)
            >> 28) as u8;
        let shade = |v: u32| (v % 200) as u8 + noise;
        image::Rgb([shade(x / 12 + seed * 40), shade(y / 8), shade((x + y) / 20)])
    });
    let path = dir.join(name);
    img.save_with_format(&path, image::ImageFormat::Jpeg).unwrap();
    path
}

/// The default campaign with its poster counted only with a photo.
fn poster_with_photo(dir: &Path) -> PathBuf {
    let default = include_str!("../client-core/src/campaign/default.toml");
    let asked = default.replace(
        "reached_by = { any_of = [\"poster\"] }",
        "reached_by = { any_of = [\"poster\"] }\nphoto_required = true",
    );
    assert_ne!(asked, default, "the default campaign's poster indicator is where the test expects it");
    write_file(dir, "campaign.toml", asked.as_bytes())
}

fn status(profile: &Path) -> Value {
    serde_json::from_str(&ok(profile, &["field", "status", "--format", "json"], None)).unwrap()
}

fn device_token(profile: &Path) -> String {
    let device: Value = serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap();
    device["token"].as_str().unwrap().to_string()
}

/// An HTTP call from the test, as a phone would make it: (status, body).
fn call(method: reqwest::Method, url: &str, token: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, String) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut req = reqwest::Client::new().request(method, url).bearer_auth(token).body(body);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

fn put_photo(url: &str, token: &str, sha: &str, offset: usize, total: usize, body: &[u8]) -> (u16, String) {
    let headers = [("Upload-Offset", offset.to_string()), ("Upload-Length", total.to_string())];
    call(reqwest::Method::PUT, &format!("{url}/api/v1/photos/{sha}"), token, &headers, body.to_vec())
}

/// The office's evidence for the poster: (reached places, of them with a photo that arrived and stands).
fn poster_evidence(office: &Path) -> (u64, u64) {
    let rows: Value = serde_json::from_str(&ok(office, &["photo", "evidence", "--format", "json"], None)).unwrap();
    let row = rows.as_array().unwrap().iter().find(|r| r["indicator"] == "poster").expect("poster asks for a photo");
    (row["reached"].as_u64().unwrap(), row["with_evidence"].as_u64().unwrap())
}

fn poster(office: &Path) -> (u64, u64, u64) {
    figure(&coverage(office, "grid", None), "G1", "poster")
}

#[test]
fn a_poster_counts_with_its_photo_which_travels_apart_and_resumes_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server::start_with(&data, &listen, &[]);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "town.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    let campaign = poster_with_photo(tmp.path());
    ok(&office, &["campaign", "apply", campaign.to_str().unwrap()], None);
    ok(&office, &["team", "create", "east"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let v1 = tmp.path().join("v1");
    ok(&v1, &["field", "login", "--server", &url, "--username", "v1", "--password-stdin"], Some(&pw()));
    ok(&v1, &["field", "sync"], None);

    // A poster with a photo, offline: shrunk on the device and kept before the visit is written.
    let big = camera_jpeg(tmp.path(), "wall.jpg", 1);
    let original = std::fs::metadata(&big).unwrap().len();
    let first_visit = ok(&v1, &["field", "visit", "B1", "--poster", "--photo", big.to_str().unwrap()], None);
    let st = status(&v1);
    assert_eq!(st["photos_to_upload"], 1, "{st}");
    let kept = st["photo_bytes_to_upload"].as_u64().unwrap();
    assert!(kept < 400_000 && kept < original, "shrunk on the device: {kept} bytes (camera's {original})");
    // A poster without one does not count where the campaign asks for a photo.
    ok(&v1, &["field", "visit", "B2", "--poster"], None);
    // A file that is no photo is refused and records nothing.
    let text = write_file(tmp.path(), "notes.jpg", b"not a photo at all");
    let err = fails(&v1, &["field", "visit", "B3", "--poster", "--photo", text.to_str().unwrap()], None);
    assert!(err.contains("notes.jpg"), "{err}");
    assert_eq!(status(&v1)["unsynced_visits"], 2);

    let out = ok(&v1, &["field", "sync"], None);
    assert!(out.contains("photos: 1 uploaded, 0 waiting"), "{out}");
    assert_eq!(status(&v1)["photos_to_upload"], 0);
    assert_eq!(poster(&office), (3, 1, 0), "B1 with its photo counts; B2 without one does not");
    assert_eq!(poster_evidence(&office), (1, 1));
    let rows = db_pairs(&data, "SELECT sha256, media_type FROM photos");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "image/jpeg");
    assert!(v1.join("photos").join("sent").join(&rows[0].0).exists(), "the device remembers it was sent");

    // The same photo on two visits travels once.
    ok(&v1, &["field", "visit", "B1", "--briefed", "--photo", big.to_str().unwrap()], None);
    assert_eq!(status(&v1)["photos_to_upload"], 1, "kept again on the device (it was sent and let go)");
    let out = ok(&v1, &["field", "sync"], None);
    assert!(out.contains("photos: 0 uploaded, 0 waiting"), "held by the server already: {out}");
    assert_eq!(db_pairs(&data, "SELECT sha256, media_type FROM photos").len(), 1);
    assert_eq!(db_pairs(&data, "SELECT visit_id, sha256 FROM visit_photos").len(), 2);

    // A photo for B3: its visit goes now, the photo later; half of it arrives before the server stops.
    let wall3 = camera_jpeg(tmp.path(), "wall3.jpg", 3);
    ok(&v1, &["field", "visit", "B3", "--poster", "--photo", wall3.to_str().unwrap()], None);
    let out = ok(&v1, &["field", "sync", "--skip-photos"], None);
    assert!(out.contains("photos: 1 waiting (left for a later sync)"), "{out}");
    assert_eq!(poster(&office), (3, 2, 0), "B3's visit references a photo: it counts before the bytes arrive");
    assert_eq!(poster_evidence(&office), (2, 1), "but is not evidence until the photo arrives");
    let (sha, bytes) = {
        let dir = v1.join("photos");
        let name = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .find(|n| n.len() == 64)
            .unwrap();
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        (name, bytes)
    };
    let half = bytes.len() / 2;
    let token = device_token(&v1);
    let (status_code, answer) = put_photo(&url, &token, &sha, 0, bytes.len(), &bytes[..half]);
    assert_eq!(status_code, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["offset"].as_u64(), Some(half as u64), "{answer}");
    assert_eq!(answer["complete"], false);
    // Sent again from the start, it is refused: the server says where to go on from.
    let (status_code, refused) = put_photo(&url, &token, &sha, 0, bytes.len(), &bytes);
    assert_eq!(status_code, 409, "{refused}");
    assert!(refused.contains(&format!("send from byte {half}")), "{refused}");

    server.kill();
    server = Server::start_with(&data, &listen, &[]);
    let (_, state) = call(reqwest::Method::GET, &format!("{url}/api/v1/photos/{sha}/upload"), &token, &[], Vec::new());
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["offset"].as_u64(), Some(half as u64), "what arrived survived the restart: {state}");
    let out = ok(&v1, &["field", "sync"], None);
    assert!(out.contains("photos: 1 uploaded, 0 waiting"), "{out}");
    let stored = db_pairs(&data, &format!("SELECT sha256, media_type FROM photos WHERE sha256 = '{sha}'"));
    assert_eq!(stored.len(), 1, "whole and verified after going on from byte {half}");
    assert!(!data.join("photo-uploads").join(format!("{sha}.part")).exists(), "the partial file is gone");
    assert_eq!(poster_evidence(&office), (2, 2));

    // The office rejects B1's photo: B1's poster is to do again, and the phone learns why at its next sync.
    let b1_photo = &rows[0].0;
    let args = ["photo", "reject", b1_photo.as_str(), "--visit", first_visit.trim(), "--reason", "看不清海报"];
    ok(&office, &args, None);
    assert_eq!(poster(&office), (3, 1, 0), "only B3's photo stands");
    assert_eq!(poster_evidence(&office), (1, 1));
    ok(&v1, &["field", "sync"], None);
    let st = status(&v1);
    let rejected = st["photos_rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{st}");
    assert_eq!((rejected[0]["place_id"].as_str(), rejected[0]["reason"].as_str()), (Some("B1"), Some("看不清海报")));
    let todo = ok(&v1, &["field", "places", "--todo", "--format", "json"], None);
    assert!(todo.contains("\"B1\""), "B1 is to do again on the phone: {todo}");
    drop(server);
}

/// Another team's device may not upload a photo it has no visit of, and a hash mismatch is refused and audited.
#[test]
fn only_a_photo_a_visit_of_the_team_references_is_taken_and_only_as_its_hash_says() {
    let tmp = tempfile::tempdir().unwrap();
    let territory = format!("{TERRITORY}W1,building,西1栋,G2,二网格,V2,石桥村,village,T1,太安镇\n");
    let town = town(tmp.path(), &territory);
    let office = &town.office;
    ok(office, &["team", "create", "east"], None);
    ok(office, &["team", "create", "west"], None);
    ok(office, &["assign", "G1", "--team", "east"], None);
    ok(office, &["assign", "G2", "--team", "west"], None);
    let mut profiles = Vec::new();
    for (name, team) in [("v1", "east"), ("w1", "west")] {
        ok(office, &["user", "create", name, "--role", "volunteer", "--team", team, "--password-stdin"], Some(&pw()));
        let profile = tmp.path().join(name);
        let url = &town.server.url;
        ok(&profile, &["field", "login", "--server", url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(&profile, &["field", "sync"], None);
        profiles.push(profile);
    }
    let (v1, w1) = (&profiles[0], &profiles[1]);
    let wall = camera_jpeg(tmp.path(), "wall.jpg", 7);
    ok(v1, &["field", "visit", "B1", "--poster", "--photo", wall.to_str().unwrap()], None);
    ok(v1, &["field", "sync", "--skip-photos"], None);
    let name = std::fs::read_dir(v1.join("photos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.len() == 64)
        .unwrap();
    let bytes = std::fs::read(v1.join("photos").join(&name)).unwrap();
    let url = &town.server.url;
    let put = |token: String, body: Vec<u8>| put_photo(url, &token, &name, 0, body.len(), &body);
    let (code, other) = put(device_token(w1), bytes.clone());
    assert_eq!(code, 404, "west has no visit referencing it: {other}");
    assert!(other.contains("sync the visit first"), "{other}");
    let mut wrong = bytes.clone();
    let last = wrong.len() - 3;
    wrong[last] ^= 0xff;
    let (code, refused) = put(device_token(v1), wrong);
    assert_eq!(code, 422, "{refused}");
    assert!(refused.contains("the upload was discarded"), "{refused}");
    let audit = ok(office, &["audit", "--action", "blob.refused", "--format", "json"], None);
    assert!(audit.contains(&name) && audit.contains("v1"), "{audit}");
    assert!(db_pairs(&town.data, "SELECT sha256, media_type FROM photos").is_empty(), "nothing kept");
    // The right bytes are then taken, once.
    assert_eq!(put(device_token(v1), bytes.clone()).0, 200);
    assert_eq!(put(device_token(v1), bytes).0, 200, "the same photo again answers as held");
    assert_eq!(db_pairs(&town.data, "SELECT sha256, media_type FROM photos").len(), 1);
    let out = ok(v1, &["field", "sync"], None);
    assert!(out.contains("photos: 0 uploaded, 0 waiting"), "{out}");
}

/// At base with no internet: a phone uploads its photo to the team's hub, which keeps it and delivers it to the
/// server at its next upstream sync, after the visit; the photo is then evidence, and travels no second time.
#[test]
fn through_the_hub_a_photo_waits_at_base_and_reaches_the_server_later() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_with(&data, &listen, &[]);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "town.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    let campaign = poster_with_photo(tmp.path());
    ok(&office, &["campaign", "apply", campaign.to_str().unwrap()], None);
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "east", "--lead", "lead"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let (lead, v1) = (tmp.path().join("lead"), tmp.path().join("v1"));
    for (profile, name) in [(&lead, "lead"), (&v1, "v1")] {
        ok(profile, &["field", "login", "--server", &url, "--username", name, "--password-stdin"], Some(&pw()));
        ok(profile, &["field", "sync"], None);
    }
    let hub = Hub::start(&lead, &["--upstream-every", "0"]);
    ok(&lead, &["hub", "sync"], None);
    server.kill();

    let wall = camera_jpeg(tmp.path(), "wall.jpg", 5);
    ok(&v1, &["field", "visit", "B1", "--poster", "--photo", wall.to_str().unwrap()], None);
    let out = ok(&v1, &["field", "sync", "--via", &hub.url], None);
    assert!(out.contains("photos: 1 uploaded, 0 waiting"), "the hub took it: {out}");
    let lead_status = status(&lead);
    assert_eq!(lead_status["photos_to_upload"], 1, "kept in the lead's profile for the server: {lead_status}");
    let out = ok(&v1, &["field", "sync", "--via", &hub.url], None);
    assert!(!out.contains("photos:"), "nothing waits on the phone any more: {out}");

    server = Server::start_with(&data, &listen, &[]);
    let out = ok(&lead, &["hub", "sync"], None);
    assert!(out.contains("photos: 1 uploaded, 0 waiting"), "{out}");
    assert_eq!(status(&lead)["photos_to_upload"], 0);
    assert_eq!(db_pairs(&data, "SELECT sha256, media_type FROM photos").len(), 1, "the server holds it");
    assert_eq!(poster(&office), (3, 1, 0), "the visit counts with its photo");
    // Asked again through the hub (the phone re-enrolled with the photo still there, say), nothing travels.
    let out = ok(&lead, &["hub", "sync"], None);
    assert!(!out.contains("photos:"), "{out}");
    drop(hub);
    drop(server);
}

/// A place the office finds is not a place takes its photos with it: their files (and thumbnails) are deleted, the
/// deletion audited, and the phone that still holds one is told it arrived, so it is not sent again.
#[test]
fn the_photos_of_a_place_found_not_to_be_one_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), TERRITORY);
    let office = &town.office;
    ok(office, &["team", "create", "east"], None);
    ok(office, &["assign", "G1", "--team", "east"], None);
    ok(office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let v1 = tmp.path().join("v1");
    let url = &town.server.url;
    ok(&v1, &["field", "login", "--server", url, "--username", "v1", "--password-stdin"], Some(&pw()));
    ok(&v1, &["field", "sync"], None);
    let shed = ok(&v1, &["field", "add-place", "--grid", "G1", "--kind", "building", "--label", "棚子"], None);
    let shed = shed.trim();
    let (inside, wall) = (camera_jpeg(tmp.path(), "inside.jpg", 8), camera_jpeg(tmp.path(), "wall.jpg", 9));
    ok(&v1, &["field", "visit", shed, "--poster", "--photo", inside.to_str().unwrap()], None);
    ok(&v1, &["field", "visit", "B1", "--poster", "--photo", wall.to_str().unwrap()], None);
    let out = ok(&v1, &["field", "sync"], None);
    assert!(out.contains("photos: 2 uploaded, 0 waiting"), "{out}");
    let files = |data: &Path| walk(&data.join("blobs")).len();
    assert_eq!(files(&town.data), 4, "two photos and their thumbnails");

    ok(office, &["place", "reject", shed], None);
    assert_eq!(files(&town.data), 2, "B1's photo and thumbnail stay; the shed's are gone");
    let deleted = db_pairs(&town.data, "SELECT sha256, CAST(deleted_at IS NOT NULL AS TEXT) FROM photos ORDER BY 2");
    assert_eq!(deleted.iter().filter(|(_, d)| d == "1" || d == "true").count(), 1, "{deleted:?}");
    let audit = ok(office, &["audit", "--action", "photo.delete", "--format", "json"], None);
    assert!(audit.contains(&format!("1 photos of place {shed}")), "{audit}");
    let shed_photo = deleted.iter().find(|(_, d)| d == "1" || d == "true").unwrap().0.clone();
    let out = fails(office, &["photo", "get", &shed_photo, "--out", tmp.path().join("x.jpg").to_str().unwrap()], None);
    assert!(out.contains("404") || out.contains("no photo"), "{out}");
    let listed: Value =
        serde_json::from_str(&ok(office, &["photo", "list", "--place", shed, "--format", "json"], None)).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "the reference stays: {listed:?}");
    assert_eq!((listed[0]["deleted"].as_bool(), listed[0]["received"].as_bool()), (Some(true), Some(false)));
    // Still on a phone (say, kept before the photo was sent): answered as arrived, never uploaded again.
    let (code, state) = call(
        reqwest::Method::GET,
        &format!("{url}/api/v1/photos/{shed_photo}/upload"),
        &device_token(&v1),
        &[],
        Vec::new(),
    );
    assert_eq!(code, 200, "{state}");
    assert!(state.contains("\"complete\":true"), "{state}");
}

/// A request whose headers and the first `sent` bytes of its body have gone out, the rest held back: the server
/// has begun it and waits for the rest (`finish` sends it and reads the answer).
fn begun(
    url: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: &[u8],
    sent: usize,
) -> TcpStream {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..sent]).unwrap();
    stream
}

/// Whether the server answered on `stream` within `wait`.
fn answered_within(stream: &TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    let answered = matches!(stream.peek(&mut byte), Ok(n) if n > 0);
    stream.set_read_timeout(None).unwrap();
    answered
}

/// Sends the rest of a begun request's body and reads the answer: (status, body).
fn finish(mut stream: TcpStream, rest: &[u8]) -> (u16, String) {
    stream.write_all(rest).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_string()))
}

/// While a sync is in flight, photo uploads go one at a time: a second waits without a byte of its body read,
/// and goes on as soon as the sync ends; one that finds no turn in time is answered busy, and the CLI client then
/// leaves its photos for the next sync.
#[test]
fn while_a_sync_runs_photo_uploads_wait_their_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let extra = ["--metrics-listen", "127.0.0.1:0", "--upload-turn-wait-secs", "10"];
    let server = Server::start_with(&data, "127.0.0.1:0", &extra);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "town.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["team", "create", "east"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["user", "create", "v1", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let v1 = tmp.path().join("v1");
    ok(&v1, &["field", "login", "--server", &url, "--username", "v1", "--password-stdin"], Some(&pw()));
    ok(&v1, &["field", "sync"], None);
    for (place, seed) in [("B1", 11), ("B2", 12)] {
        let wall = camera_jpeg(tmp.path(), &format!("{place}.jpg"), seed);
        ok(&v1, &["field", "visit", place, "--poster", "--photo", wall.to_str().unwrap()], None);
    }
    ok(&v1, &["field", "sync", "--skip-photos"], None);
    let photos: Vec<(String, Vec<u8>)> = std::fs::read_dir(v1.join("photos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 64)
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    assert_eq!(photos.len(), 2);
    let token = device_token(&v1);
    let held = |sha: &str| -> u64 {
        let path = format!("{url}/api/v1/photos/{sha}/upload");
        let (code, state) = call(reqwest::Method::GET, &path, &token, &[], vec![]);
        assert_eq!(code, 200, "{state}");
        serde_json::from_str::<Value>(&state).unwrap()["offset"].as_u64().unwrap()
    };
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what} did not happen");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let complete = |answer: &(u16, String)| {
        answer.0 == 200 && serde_json::from_str::<Value>(&answer.1).is_ok_and(|v| v["complete"] == true)
    };
    // A sync in flight: its headers are in, its body is not.
    let sync_body = vec![0u8; 100];
    let cbor = [("Content-Type", "application/cbor".to_string())];
    let hold_a_sync = || {
        let sync = begun(&url, "POST", "/api/v1/sync", &token, &cbor, &sync_body, 0);
        until("the sync counted in flight", &|| metric(&server, "doorstep_syncs_in_flight") == 1.0);
        sync
    };
    let upload = |(sha, bytes): &(String, Vec<u8>), sent: usize| {
        let headers = [("Upload-Offset", "0".to_string()), ("Upload-Length", bytes.len().to_string())];
        begun(&url, "PUT", &format!("/api/v1/photos/{sha}"), &token, &headers, bytes, sent)
    };

    let sync = hold_a_sync();
    // The first upload goes on during the sync: half of its body arrives (and the rest is held back).
    let half = photos[0].1.len() / 2;
    let first = upload(&photos[0], half);
    until("half of the first photo received", &|| held(&photos[0].0) == half as u64);
    // The second, whole, waits for its turn: nothing of it is read.
    let second = upload(&photos[1], photos[1].1.len());
    until("the second upload waiting for its turn", &|| metric(&server, "doorstep_uploads_waiting") == 1.0);
    assert!(!answered_within(&second, Duration::from_millis(300)), "the second upload waits while the sync runs");
    assert_eq!(held(&photos[1].0), 0);
    // The sync ends (its body is no sync request: refused, and over): the second upload goes on at once.
    let (code, refused) = finish(sync, &sync_body);
    assert_eq!(code, 400, "{refused}");
    let answer = finish(second, &[]);
    assert!(complete(&answer), "{answer:?}");

    // Another sync in flight, the first upload still holding the turn: a phone's uploads find none within the
    // server's 10 s, are answered busy, and the phone leaves them for its next sync; its visits went through.
    let wall = camera_jpeg(tmp.path(), "B3.jpg", 13);
    ok(&v1, &["field", "visit", "B3", "--poster", "--photo", wall.to_str().unwrap()], None);
    let sync = hold_a_sync();
    let out = run(&v1, &["field", "sync"], None);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the server is busy") && stderr.matches("busy").count() == 1, "said once: {stderr}");
    assert!(stdout.contains("photos: 0 uploaded"), "{stdout}");
    assert_eq!(status(&v1)["unsynced_visits"], 0, "the visits went through");
    // B1's and B3's photos wait on the phone (and B2's, if the phone came to it after the refusal).
    let waiting = status(&v1)["photos_to_upload"].as_u64().unwrap();
    assert!((2..=3).contains(&waiting), "{waiting} photos waiting");
    assert!(metric(&server, "doorstep_uploads_turned_away_total") >= 1.0);
    assert_eq!(finish(sync, &sync_body).0, 400);
    let answer = finish(first, &photos[0].1[half..]);
    assert!(complete(&answer), "{answer:?}");
    // The next sync delivers what waited.
    let out = ok(&v1, &["field", "sync"], None);
    assert!(out.contains("photos: 1 uploaded, 0 waiting"), "B3's; B1's arrived meanwhile: {out}");
    assert_eq!(status(&v1)["photos_to_upload"], 0);
    assert_eq!(metric(&server, "doorstep_syncs_in_flight"), 0.0);
    assert_eq!(metric(&server, "doorstep_uploads_waiting"), 0.0);
    assert_eq!(db_pairs(&data, "SELECT sha256, media_type FROM photos").len(), 3);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            out.push(path);
        }
    }
    out
}
