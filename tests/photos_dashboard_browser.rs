//! The dashboard's photo pages in a real headless Chromium (tests/browser/photos_dashboard.test.mjs): a volunteer's
//! visits carry more photos than a gallery page holds (all but one uploaded), the campaign's poster asks for a
//! photo; the office pages through the gallery, filters it, opens a photo, rejects it with a reason after
//! confirming; the lead and the village's viewer see the photos, the viewer without a reject button; the overview
//! counts the evidence and the grid page links each place to its photos. The rejection is then what the CLI and the
//! audit see. Screenshots go to test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without
//! Chromium.

mod common;

use client_core::grid::model::{Deliveries, Outcome, PhotoRef, Visit};
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H3,household,1组3号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H4,household,1组4号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H5,household,1组5号,G1,一网格,V1,龙凤村,village,T1,太安镇\n";

/// More than the gallery's page of 24.
const PHOTOS: usize = 30;

fn jpeg(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x as u8).wrapping_mul(seed), (y as u8).wrapping_add(seed), seed.wrapping_mul(37)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn device(profile: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(profile.join("device.json")).unwrap()).unwrap()
}

/// Records a visit with these photos on the volunteer's device, as the field client does.
fn visit_with_photos(profile: &Path, place: &str, photos: &[Vec<u8>], minutes_ago: i64) {
    let d = device(profile);
    let store = client_core::store::GridStore::open(&profile.join("grids")).unwrap();
    let mut doc = store.load("G1").unwrap();
    doc.set_actor(d["actor"].as_str().unwrap().parse().unwrap());
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let visit = Visit {
        id: uuid::Uuid::now_v7(),
        place_id: place.into(),
        volunteer: d["username"].as_str().unwrap().into(),
        device: d["device_id"].as_str().unwrap().into(),
        at,
        outcome: Outcome::Completed,
        deliveries: Deliveries::of(["poster"]),
        note: None,
        gps: None,
        photos: photos
            .iter()
            .map(|bytes| PhotoRef {
                sha256: format!("{:x}", Sha256::digest(bytes)),
                size: bytes.len() as u64,
                media_type: "image/jpeg".into(),
                taken_at: at - chrono::Duration::minutes(1),
                rejected: None,
            })
            .collect(),
    };
    let change = doc.add_visit(&visit).unwrap();
    store.append("G1", &[change]).unwrap();
}

fn upload(server: &str, profile: &Path, bytes: &[u8]) {
    let token = device(profile)["token"].as_str().unwrap().to_string();
    let url = format!("{server}/api/v1/photos/{:x}", Sha256::digest(bytes));
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let resp = reqwest::Client::new()
            .put(url)
            .bearer_auth(token)
            .header("upload-length", bytes.len().to_string())
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    });
    assert_eq!(status, 200);
}

#[test]
fn the_office_pages_through_and_rejects_photos_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    let default = include_str!("../client-core/src/campaign/default.toml");
    let asking = default.replacen(
        "reached_by = { any_of = [\"poster\"] }",
        "reached_by = { any_of = [\"poster\"] }\nphoto_required = true",
        1,
    );
    let campaign = write_file(tmp.path(), "photos.toml", asking.as_bytes());
    ok(&office, &["campaign", "apply", campaign.to_str().unwrap()], None);
    ok(&office, &["user", "create", "lead-e", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "east", "--lead", "lead-e"], None);
    ok(&office, &["assign", "G1", "--team", "east"], None);
    ok(&office, &["user", "create", "cadre", "--role", "viewer", "--area", "V1", "--password-stdin"], Some(&pw()));
    ok(&office, &["user", "create", "vol", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    let vol = tmp.path().join("vol");
    ok(&vol, &["field", "login", "--server", &url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);

    // Eight photos a visit at H1..H4 (the oldest first), the last one still on the phone.
    let photos: Vec<Vec<u8>> = (0..PHOTOS).map(|i| jpeg(i as u8 + 1)).collect();
    for (k, chunk) in photos.chunks(8).enumerate() {
        visit_with_photos(&vol, &format!("H{}", k + 1), chunk, 60 - k as i64 * 10);
    }
    ok(&vol, &["field", "sync"], None);
    for bytes in &photos[..PHOTOS - 1] {
        upload(&url, &vol, bytes);
    }
    let on_phone = format!("{:x}", Sha256::digest(&photos[PHOTOS - 1]));

    let out = run_browser_script(
        "photos_dashboard.test.mjs",
        &[
            ("DOORSTEP_URL", url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_PHOTOS", PHOTOS.to_string().as_ref()),
            ("DOORSTEP_ON_PHONE", on_phone.as_ref()),
        ],
    );
    let result: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let rejected = result["rejected"].as_str().expect("the photo the page rejected");

    // What the page did is what the CLI and the audit see.
    let listed: Vec<Value> =
        serde_json::from_str(&ok(&office, &["photo", "list", "--state", "rejected", "--format", "json"], None))
            .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["sha256"], rejected);
    assert_eq!(listed[0]["reason"], "照片里看不到海报");
    let audit: Vec<Value> =
        serde_json::from_str(&ok(&office, &["audit", "--action", "photo.reject", "--format", "json"], None)).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["username"], "office");
    drop(server);
}
