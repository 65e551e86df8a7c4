//! From an empty server to a volunteer's visit without a terminal, in a real headless Chromium
//! (tests/browser/console_path.test.mjs): only the first office account is made with the CLI; the office then
//! imports the territory workbook, makes a team, its lead and a volunteer, assigns a village, prints the team's
//! enrolment sheet; the volunteer's phone enrols from the QR code's address with one tap and records a visit; the
//! lead reports the phone lost. Afterwards the CLI sees what the pages did. Screenshots go to test-artifacts/.
//! Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a machine without Chromium.

mod common;
use common::*;
use rust_xlsxwriter::Workbook;
use serde_json::Value;
use std::path::Path;

/// Village V1 (grids G1, G2) and village V2 (grid G3), as a town office's register would hold them.
fn workbook(path: &Path) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let rows = [
        [
            "place_id",
            "kind",
            "label",
            "grid_code",
            "grid_name",
            "village_code",
            "village_name",
            "village_kind",
            "town_code",
            "town_name",
        ],
        ["H1", "household", "1组1号", "G1", "一网格", "V1", "龙凤村", "village", "T1", "太安镇"],
        ["H2", "household", "1组2号", "G1", "一网格", "V1", "龙凤村", "village", "T1", "太安镇"],
        ["H3", "household", "2组1号", "G2", "二网格", "V1", "龙凤村", "village", "T1", "太安镇"],
        ["H4", "household", "3组1号", "G3", "三网格", "V2", "石桥村", "village", "T1", "太安镇"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).unwrap();
        }
    }
    book.save(path).unwrap();
}

#[test]
fn an_office_goes_from_an_empty_server_to_a_visit_in_the_browser() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let file = tmp.path().join("太安镇.xlsx");
    workbook(&file);
    let downloaded = tmp.path().join("monthly-downloaded.xlsx");

    let stdout = run_browser_script(
        "console_path.test.mjs",
        &[
            ("DOORSTEP_URL", server.url.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_TERRITORY", file.as_ref()),
            ("DOORSTEP_MONTHLY_XLSX", downloaded.as_ref()),
        ],
    );
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .expect("the browser test's RESULT line");
    let checked = result["accessibility_checked"].as_array().unwrap().len();
    assert!(checked >= 17, "axe checked {checked} pages: {result}");
    assert!(result["second_phone_message"].as_str().unwrap().contains("已经用过"), "{result}");
    let actions: Vec<&str> =
        result["audit_enrolment"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(actions.contains(&"enrolment.code.issue") && actions.contains(&"enrolment.code.refused"), "{actions:?}");

    // What the pages did is what the CLI sees.
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    // The monthly ranking downloaded from the page is the workbook the CLI exports, cell for cell.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let exported = tmp.path().join("monthly-cli.xlsx");
    let out = exported.to_str().unwrap();
    ok(&office, &["report", "monthly", "--month", &month, "--area", "T1", "--format", "xlsx", "--output", out], None);
    let cells = |path: &Path| -> Vec<Vec<String>> {
        use calamine::{Reader, Xlsx};
        let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
    };
    let (page, cli) = (cells(&downloaded), cells(&exported));
    assert_eq!(page, cli, "the page's workbook is the CLI's");
    assert_eq!(page.len(), 3, "a header and the two villages: {page:?}");
    assert!(
        page[0].contains(&"handbook".to_string()) && page.iter().any(|r| r.contains(&"龙凤村".to_string())),
        "{page:?}"
    );
    assert_eq!(figure(&coverage(&office, "village", None), "V1", "handbook"), (3, 1, 0), "zhang's visit counts");
    let devices: Value = serde_json::from_str(&ok(&office, &["device", "list", "--format", "json"], None)).unwrap();
    let phone = &devices.as_array().unwrap()[0];
    assert_eq!((phone["username"].as_str(), phone["app_version"].as_str()), (Some("zhang"), Some("web 0.1.0")));
    assert!(phone["revoked_at"].is_i64(), "reported lost by the lead: {phone}");
    let codes: Value = serde_json::from_str(&ok(&office, &["enrolment", "list", "--format", "json"], None)).unwrap();
    let zhang: Vec<(&str, &str)> = codes
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["username"] == "zhang")
        .map(|c| (c["state"].as_str().unwrap(), c["issued_by"].as_str().unwrap()))
        .collect();
    assert_eq!(zhang, [("unused", "li-lead"), ("used", "office")], "the new phone's code, then the one used");
    let shared: Vec<(i64, i64)> = codes
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["username"].is_null())
        .map(|c| (c["used"].as_i64().unwrap(), c["uses"].as_i64().unwrap()))
        .collect();
    assert_eq!(shared, [(1, 1)], "the team's shared code enrolled wang's phone, and no more");
    let audit = ok(&office, &["audit", "--format", "json"], None);
    for action in ["territory.import", "team.create", "user.create", "grid.assign", "device.enrol", "device.revoke"] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} not audited: {audit}");
    }
    assert!(audit.contains("(xlsx)") && audit.contains("with enrolment code"), "{audit}");
}
