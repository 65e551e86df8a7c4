//! The dashboard's bulletin pages in a real headless Chromium (tests/browser/bulletins_dashboard.test.mjs), around
//! a phone (the real `doorstep field` client) reading the bulletin: the office publishes an urgent bulletin with an
//! attachment to one village (a file that is no image is refused by content and nothing is published), sees it
//! listed; a volunteer of that village's team syncs, reads it and syncs its receipt back; the receipts page shows
//! the reader and the unread, overdue ones highlighted, and downloads as a workbook; the office corrects and
//! withdraws it, and the phone drops it at its next sync; a lead and a viewer read but may not publish (no link, and
//! 403 from the API); the office lets a viewer publish from the people page. Screenshots go to test-artifacts/.
//! Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// Village 龙凤村 (grids G1, G2: team east), community 新街社区 (grid G3: team west).
const TERRITORY: &str = "\
place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇
H3,household,2组1号,G2,二网格,V1,龙凤村,village,T1,太安镇
H9,household,新街9号,G3,三网格,C2,新街社区,community,T1,太安镇
";

#[test]
fn the_office_publishes_and_follows_a_bulletin_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    for team in ["east", "west"] {
        ok(&office, &["team", "create", team], None);
    }
    for (grid, team) in [("G1", "east"), ("G2", "east"), ("G3", "west")] {
        ok(&office, &["assign", grid, "--team", team], None);
    }
    for (user, role, extra) in [
        ("lead-e", "lead", ["--team", "east"]),
        ("vol-a", "volunteer", ["--team", "east"]),
        ("vol-b", "volunteer", ["--team", "east"]),
        ("vol-w", "volunteer", ["--team", "west"]),
        ("viewer", "viewer", ["--area", "V1"]),
        ("police", "viewer", ["--area", "T1"]),
    ] {
        ok(
            &office,
            &[&["user", "create", user, "--role", role][..], &extra[..], &["--password-stdin"]].concat(),
            Some(&pw()),
        );
    }
    // The phones of a volunteer in the audience and of one outside it.
    let (phone_a, phone_w) = (tmp.path().join("vol-a"), tmp.path().join("vol-w"));
    for (phone, user) in [(&phone_a, "vol-a"), (&phone_w, "vol-w")] {
        ok(phone, &["field", "login", "--server", &url, "--username", user, "--password-stdin"], Some(&pw()));
        ok(phone, &["field", "sync"], None);
    }

    let published = run_browser_script(
        "bulletins_dashboard.test.mjs",
        &[
            ("DOORSTEP_URL", url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_PHASE", "publish".as_ref()),
        ],
    );
    let result: Value = serde_json::from_str(published.lines().last().unwrap()).unwrap();
    let id = result["id"].as_str().expect("the bulletin's id").to_string();

    // The phone in the audience receives it with its attachment, reads it offline and sends the receipt back;
    // the one outside the audience never sees it.
    ok(&phone_a, &["field", "sync"], None);
    ok(&phone_w, &["field", "sync"], None);
    let listed = ok(&phone_a, &["field", "bulletins"], None);
    assert!(listed.contains("新型冒充公检法诈骗"), "{listed}");
    assert!(!ok(&phone_w, &["field", "bulletins"], None).contains("新型冒充公检法诈骗"));
    let read = ok(&phone_a, &["field", "read", &id], None);
    assert!(read.contains("冒充公检法"), "{read}");
    ok(&phone_a, &["field", "sync"], None);

    let export = root.join("test-artifacts/bulletin-receipts.xlsx");
    std::fs::create_dir_all(export.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&export);
    run_browser_script(
        "bulletins_dashboard.test.mjs",
        &[
            ("DOORSTEP_URL", url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_PHASE", "receipts".as_ref()),
            ("DOORSTEP_BULLETIN", id.as_ref()),
            ("DOORSTEP_EXPORT", export.as_ref()),
        ],
    );

    // The workbook the office downloaded names the reader and the unread.
    use calamine::{Reader, Xlsx};
    let mut wb: Xlsx<_> = calamine::open_workbook(&export).unwrap();
    let cells: Vec<String> = wb
        .worksheets()
        .into_iter()
        .flat_map(|(_, range)| range.rows().flat_map(|r| r.iter().map(|c| c.to_string())).collect::<Vec<_>>())
        .collect();
    for user in ["vol-a", "vol-b", "lead-e"] {
        assert!(cells.iter().any(|c| c == user), "{user} in the workbook: {cells:?}");
    }
    assert!(!cells.iter().any(|c| c == "vol-w"), "vol-w is not in the audience");

    // Withdrawn: the phone drops it at its next sync.
    ok(&phone_a, &["field", "sync"], None);
    let listed = ok(&phone_a, &["field", "bulletins"], None);
    assert!(!listed.contains("新型冒充公检法诈骗"), "withdrawn, still on the phone: {listed}");

    // The people page's toggle is what the CLI sees.
    let users: Value = serde_json::from_str(&ok(&office, &["user", "list", "--format", "json"], None)).unwrap();
    let police = users.as_array().unwrap().iter().find(|u| u["username"] == "police").unwrap();
    assert_eq!(police["may_publish"], true, "{police}");
    assert_eq!(police["area"], "T1", "the town viewer keeps its area");

    // What the pages did is audited under the office.
    let audit: Value = serde_json::from_str(&ok(&office, &["audit", "--format", "json"], None)).unwrap();
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["username"].as_str().unwrap_or(""), e["action"].as_str().unwrap()))
        .filter(|(_, a)| a.starts_with("bulletin."))
        .collect();
    assert_eq!(
        actions,
        [("office", "bulletin.publish"), ("office", "bulletin.correct"), ("office", "bulletin.withdraw")]
    );
    drop(server);
}
