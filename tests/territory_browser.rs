//! The dashboard's territory upload in a real headless Chromium (tests/browser/territory.test.mjs): the office
//! checks a workbook with row errors (shown by row and column, nothing changed), checks the fixed workbook (the
//! summary per village), imports it with its progress shown, and the overview's figures follow; then the CLI sees
//! exactly the places the workbook holds. Labels, keyboard use, the English texts and the office-only link are
//! checked too. Screenshots go to test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip without Chromium.

mod common;
use common::*;
use rust_xlsxwriter::Workbook;

/// The town before the upload: one village, two places.
const TERRITORY: &str = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,\
town_name\n\
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇\n";

/// The upload: H1 unchanged, S1 relabelled, three households added in V1 (ids typed as numbers) and two in a
/// new community; `broken` spells one kind wrong (row 5) and gives one place half a coordinate (row 8).
fn upload(broken: bool) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let header = ["place_id", "kind", "label", "grid_code", "grid_name", "village_code", "village_name"];
    let header = [&header[..], &["village_kind", "town_code", "town_name", "lat", "lon"]].concat();
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let v1 = ["G1", "一网格", "V1", "龙凤村", "village", "T1", "太安镇"];
    let c2 = ["G2", "二网格", "C2", "新街社区", "community", "T1", "太安镇"];
    let rows: Vec<(&str, &str, &str, [&str; 7])> = vec![
        ("H1", "household", "1组1号", v1),
        ("S1", "shop", "村口小卖部", v1),
        ("101", "household", "1组3号", v1),
        ("102", if broken { "castle" } else { "household" }, "1组4号", v1),
        ("103", "household", "1组5号", v1),
        ("201", "household", "新街1号", c2),
        ("202", "household", "新街2号", c2),
    ];
    for (r, (id, kind, label, area)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        match id.parse::<f64>() {
            Ok(n) => sheet.write_number(r, 0, n).unwrap(),
            Err(_) => sheet.write_string(r, 0, *id).unwrap(),
        };
        for (c, text) in [*kind, *label].iter().chain(area.iter()).enumerate() {
            sheet.write_string(r, c as u16 + 1, *text).unwrap();
        }
        if *id == "202" {
            sheet.write_number(r, 10, 30.25).unwrap();
            if !broken {
                sheet.write_number(r, 11, 105.5).unwrap();
            }
        }
    }
    book.save_to_buffer().unwrap()
}

#[test]
fn territory_upload_in_headless_chromium() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, .. } = town(tmp.path(), TERRITORY);
    ok(&office, &["user", "create", "watcher", "--role", "viewer", "--password-stdin"], Some(&pw()));
    let broken = write_file(tmp.path(), "辖区-有错.xlsx", &upload(true));
    let fixed = write_file(tmp.path(), "辖区.xlsx", &upload(false));

    run_browser_script(
        "territory.test.mjs",
        &[
            ("DOORSTEP_URL", server.url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_BROKEN_FILE", broken.as_ref()),
            ("DOORSTEP_FIXED_FILE", fixed.as_ref()),
        ],
    );

    // What the page imported is the workbook: importing it again from the CLI changes nothing.
    let again = ok(&office, &["territory", "import", fixed.to_str().unwrap(), "--dry-run"], None);
    assert!(again.contains("7 rows: 0 places added, 0 changed, 7 unchanged"), "{again}");
    let audit = ok(&office, &["audit", "--action", "territory.import"], None);
    assert!(audit.contains("7 rows (xlsx): 5 places added, 1 changed, 1 unchanged"), "{audit}");
}
