//! The liaison roster, monthly submission and situation reports in a real headless Chromium
//! (tests/browser/roster.test.mjs): a village cadre files them from the keyboard, the office sees them (the
//! submission's state in the monthly ranking too), exports the roster and prints the submission, a town's viewer
//! sees the phones masked. Afterwards the exported file is read back and the writes are found in the audit log.
//! Screenshots go to test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium.

mod common;
use common::*;
use std::path::Path;

const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
P1,household,一号,G1,一组,V1,龙凤村,village,T1,青山镇
P2,household,二号,G1,一组,V1,龙凤村,village,T1,青山镇
P3,shop,三号,G1,一组,V1,龙凤村,village,T1,青山镇
P4,household,四号,G2,二组,C1,新街社区,community,T1,青山镇
";

#[test]
fn a_cadre_files_and_the_office_reads_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    let url = server.url.clone();
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    ok(&office, &["assign", "G2", "--team", "t"], None);
    for (user, role, extra) in [
        ("cadre-v1", "viewer", ["--area", "V1"]),
        ("town-viewer", "viewer", ["--area", "T1"]),
        ("vol", "volunteer", ["--team", "t"]),
    ] {
        ok(
            &office,
            &[&["user", "create", user, "--role", role][..], &extra[..], &["--password-stdin"]].concat(),
            Some(&pw()),
        );
    }
    // Visits, so that the submission has figures to carry.
    let vol = tmp.path().join("vol");
    ok(&vol, &["field", "login", "--server", &url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);
    ok(&vol, &["field", "visit", "P1", "--handbook", "--briefed"], None);
    ok(&vol, &["field", "visit", "P3", "--poster"], None);
    ok(&vol, &["field", "sync"], None);

    let export = root.join("test-artifacts/roster-export.xlsx");
    std::fs::create_dir_all(export.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&export);
    run_browser_script(
        "roster.test.mjs",
        &[
            ("DOORSTEP_URL", url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_EXPORT", export.as_ref()),
        ],
    );

    // The file the office downloaded is the seed's list, with the phones in full.
    use calamine::{Reader, Xlsx};
    let mut wb: Xlsx<_> = calamine::open_workbook(&export).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert!(rows[0][0].contains("联络员名单"), "{rows:?}");
    assert_eq!(rows[1], ["姓名", "职务", "联系电话", "备注"]);
    assert_eq!(rows[2][0], "龙凤村");
    assert_eq!(rows[4][..3], ["张三", "分管领导（副书记）", "13812341234"]);

    // Every write the pages made is in the audit log, under the person who made it.
    let audit: serde_json::Value = serde_json::from_str(&ok(&office, &["audit", "--format", "json"], None)).unwrap();
    let events: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["username"].as_str().unwrap_or("").to_string(), e["action"].as_str().unwrap().to_string()))
        .filter(|(_, a)| ["roster.", "submission.", "situation."].iter().any(|p| a.starts_with(p)))
        .collect();
    let expected = [
        ("cadre-v1", "roster.update"),
        ("cadre-v1", "submission.save"),
        ("cadre-v1", "submission.submit"),
        ("cadre-v1", "situation.file"),
        ("office", "situation.read"),
        ("office", "roster.deadline"),
        ("office", "roster.update"),
    ];
    assert_eq!(events, expected.map(|(u, a)| (u.to_string(), a.to_string())));
    drop(server);
}
