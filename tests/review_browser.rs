//! The dashboard's review queue in a real headless Chromium (tests/browser/review.test.mjs): places a CLI field
//! client found and a correction it proposed appear on the page; the office merges a found place into the
//! registry place it duplicates (choosing it from the nearby places), confirms and accepts from the keyboard, and
//! the grid's coverage figures on the page follow the API's; viewers see only their area and cannot act.
//! Screenshots go to test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium.

mod common;
use common::*;

/// H1 and H2 carry coordinates, so the found duplicate of H1 lists H1 as its nearest place.
const TERRITORY: &str = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,\
town_name,address,contact_name,contact_phone,lat,lon\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组1号,,,30.1800,105.8300\n\
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇,龙凤村1组2号,,,30.1850,105.8400\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇,,,,,\n\
H9,household,新街9号,G2,二网格,C2,新街社区,community,T1,太安镇,,,,,\n";

#[test]
fn the_review_queue_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    ok(&office, &["team", "create", "east"], None);
    for grid in ["G1", "G2"] {
        ok(&office, &["assign", grid, "--team", "east"], None);
    }
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "east", "--password-stdin"], Some(&pw()));
    for (viewer, area) in [("viewer-v1", "V1"), ("viewer-c2", "C2")] {
        let args = ["user", "create", viewer, "--role", "viewer", "--area", area, "--password-stdin"];
        ok(&office, &args, Some(&pw()));
    }
    let amy = tmp.path().join("amy");
    ok(&amy, &["field", "login", "--server", &url, "--username", "amy", "--password-stdin"], Some(&pw()));
    ok(&amy, &["field", "sync"], None);

    // In the field: a duplicate of H1 a few metres from it, visited; a new shop; a corrected label for H2.
    let add = |args: &[&str]| {
        let mut all = vec!["field", "add-place", "--grid", "G1"];
        all.extend_from_slice(args);
        ok(&amy, &all, None).trim().to_string()
    };
    let duplicate = add(&["--kind", "household", "--label", "张家老屋", "--gps", "30.18003,105.83002"]);
    let new_shop = add(&["--kind", "shop", "--label", "桥头新店", "--gps", "30.1900,105.8500"]);
    ok(&amy, &["field", "visit", &duplicate, "--handbook", "--briefed", "--poster"], None);
    let correction = ok(&amy, &["field", "correct", "H2", "--label", "1组2号 王家"], None).trim().to_string();
    ok(&amy, &["field", "sync"], None);

    run_browser_script(
        "review.test.mjs",
        &[
            ("DOORSTEP_URL", url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_DUPLICATE", duplicate.as_ref()),
            ("DOORSTEP_NEW_SHOP", new_shop.as_ref()),
            ("DOORSTEP_CORRECTION", correction.as_ref()),
        ],
    );

    // What the page decided is what the CLI sees: nothing left to review, H1 counts the moved visit.
    let pending: serde_json::Value =
        serde_json::from_str(&ok(&office, &["place", "review", "--format", "json"], None)).unwrap();
    assert_eq!(pending["places"].as_array().unwrap().len(), 0, "{pending}");
    assert_eq!(pending["corrections"].as_array().unwrap().len(), 0, "{pending}");
    let audit = ok(&office, &["audit", "--format", "json"], None);
    assert!(audit.contains(&format!("{duplicate} merged into H1")), "{audit}");
    assert!(audit.contains(&format!("{new_shop} confirmed")) && audit.contains("correction.review"), "{audit}");
    drop(server);
}
