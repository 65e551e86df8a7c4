//! Photos in the volunteers' web app, in a real headless Chromium (tests/browser/photos.test.mjs) against the real
//! binary, under a campaign whose poster indicator asks for a photo: offline, the volunteer records a poster visit
//! with two camera pictures (3000×2000 JPEGs, one with EXIF orientation and GPS), which the phone turns upright,
//! shrinks to 1,600 px and strips; after a reload offline the visit and its photos are there and the place counts
//! as reached (a visit without a photo does not); online, the photos upload after the sync, one cut off mid-way
//! and resumed from the server's offset; the office's gallery lists them, each small and without metadata; a photo
//! the office rejects shows on the phone with its reason, and the place whose only photo it was is back among what
//! is left to do. A full phone refuses a visit with its photos whole; a photo the server refuses for its content
//! is shown and not sent again; a photo waiting keeps another volunteer from enrolling the phone. Screenshots go to
//! test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium; CI never sets it.

mod common;
use common::*;
use serde_json::Value;

const TERRITORY: &str = "\
place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇
H3,household,1组3号,G1,一网格,V1,龙凤村,village,T1,太安镇
H4,household,1组4号,G1,一网格,V1,龙凤村,village,T1,太安镇
";

/// The default campaign with the poster indicator asking for a photo.
fn poster_needs_a_photo() -> String {
    let default =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/client-core/src/campaign/default.toml"))
            .expect("the default campaign");
    let reach = "reached_by = { any_of = [\"poster\"] }";
    assert_eq!(default.matches(reach).count(), 1, "the poster indicator's reach is written once");
    default.replace(reach, &format!("{reach}\nphoto_required = true"))
}

#[test]
fn a_volunteer_takes_photos_offline_and_they_upload_after_the_sync() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    ok(&office, &["team", "create", "team-a"], None);
    for name in ["amy", "bob"] {
        ok(
            &office,
            &["user", "create", name, "--role", "volunteer", "--team", "team-a", "--password-stdin"],
            Some(&pw()),
        );
    }
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    let campaign = write_file(tmp.path(), "poster-photo.toml", poster_needs_a_photo().as_bytes());
    let applied = ok(&office, &["campaign", "apply", campaign.to_str().unwrap()], None);
    assert!(applied.contains("applied"), "{applied}");

    let profile = tmp.path().join("chromium-profile");
    let out = run_browser_script(
        "photos.test.mjs",
        &[
            ("DOORSTEP_URL", server.url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_BROWSER_PROFILE", profile.as_os_str()),
        ],
    );
    let line = out.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("the script prints its result");
    let result: Value = serde_json::from_str(line).unwrap();

    // The upload cut short went on from the server's offset, not from the start.
    let resumed = result["resumed"].as_array().unwrap();
    assert_eq!(resumed.len(), 2, "{result}");
    assert_eq!(resumed[0], 0, "{result}");
    assert!(resumed[1].as_u64().unwrap() > 0, "resumed from the bytes the server held: {result}");

    // The server counts as the phone does: H1 reached (a photo stands), H2 not (no photo), H3 not (its only photo
    // rejected), H4 reached by the visit recorded once there was room (the one refused on a full phone never
    // happened).
    let rows = coverage(&office, "grid", None);
    assert_eq!(figure(&rows, "G1", "poster"), (4, 2, 0), "{rows:#?}");
    assert_eq!(result["full"]["kept"], 3, "{result}");
    assert!(result["refused"]["stranded"].as_str().unwrap().contains("by amy"), "{result}");
    let audit = ok(&office, &["audit", "--format", "json"], None);
    assert!(audit.contains("photo.reject"), "the office's rejection is audited: {audit}");
    drop(server);
}
