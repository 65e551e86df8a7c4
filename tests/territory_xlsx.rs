//! Territory files as Excel workbooks (.xlsx), built with rust_xlsxwriter and imported through the real CLI and the
//! real server: a workbook imports exactly as the same CSV (codes and phone numbers typed as numbers included), its
//! row errors name the worksheet's row and the column with the CSV's messages, a corrupt, legacy, password-protected
//! or empty workbook is refused with nothing changed, a CSV named .xlsx is read as CSV, and the dashboard's import
//! jobs (dry run, per-village summary, row errors, the checked file only, the office only) and templates work over
//! HTTP.

mod common;
use common::*;
use rust_xlsxwriter::Workbook;
use serde_json::Value;
use std::path::Path;

const HEADER: [&str; 15] = [
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
    "address",
    "contact_name",
    "contact_phone",
    "lat",
    "lon",
];

/// The territory as CSV: a household whose id and phone are digits, a shop without the optional columns, and a
/// place of an urban community with a comma in its label and negative coordinates.
const CSV: &str = "\
place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address,contact_name,contact_phone,lat,lon
1001,household,1组3号,G1,一网格,V1,东村,village,T1,城关镇,东村 12 号,王伟,13800000000,30.5,114.25
1002,shop,小卖部,G1,一网格,V1,东村,village,T1,城关镇,,,,,
P-3,household,\"Li's, north\",G2,二网格,C1,河畔社区,community,T1,城关镇,,,,-12.125,100
";

#[derive(Clone, Copy)]
enum Cell<'a> {
    Text(&'a str),
    Number(f64),
    Empty,
}
use Cell::{Empty, Number, Text};

/// A workbook whose first sheet holds `rows`, the first at row 1; `None` leaves a row blank.
fn workbook(rows: &[Option<Vec<Cell>>]) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().flatten().enumerate() {
            match *cell {
                Text(s) => {
                    sheet.write_string(r as u32, c as u16, s).unwrap();
                }
                Number(n) => {
                    sheet.write_number(r as u32, c as u16, n).unwrap();
                }
                Empty => {}
            }
        }
    }
    // A second sheet, which the import ignores: only the first is the territory.
    book.add_worksheet().write_string(0, 0, "notes").unwrap();
    book.save_to_buffer().unwrap()
}

fn header() -> Option<Vec<Cell<'static>>> {
    Some(HEADER.iter().map(|h| Text(h)).collect())
}

/// The grid G1 of village V1 as cells, after the place's id, kind and label.
fn in_g1<'a>(id: Cell<'a>, kind: &'a str, label: &'a str, tail: [Cell<'a>; 5]) -> Option<Vec<Cell<'a>>> {
    let mut row =
        vec![id, Text(kind), Text(label), Text("G1"), Text("一网格"), Text("V1"), Text("东村"), Text("village")];
    row.extend([Text("T1"), Text("城关镇")]);
    row.extend(tail);
    Some(row)
}

/// `CSV` as a workbook: the place id 1001 and the phone number typed as numbers, coordinates as numbers.
fn same_as_csv() -> Vec<u8> {
    workbook(&[
        header(),
        in_g1(
            Number(1001.0),
            "household",
            "1组3号",
            [Text("东村 12 号"), Text("王伟"), Number(13_800_000_000.0), Number(30.5), Number(114.25)],
        ),
        in_g1(Number(1002.0), "shop", "小卖部", [Empty; 5]),
        Some(vec![
            Text("P-3"),
            Text("household"),
            Text("Li's, north"),
            Text("G2"),
            Text("二网格"),
            Text("C1"),
            Text("河畔社区"),
            Text("community"),
            Text("T1"),
            Text("城关镇"),
            Empty,
            Empty,
            Empty,
            Number(-12.125),
            Number(100.0),
        ]),
    ])
}

fn import(office: &Path, file: &Path, dry_run: bool) -> String {
    let mut args = vec!["territory", "import", file.to_str().unwrap()];
    if dry_run {
        args.push("--dry-run");
    }
    ok(office, &args, None)
}

fn import_fails(office: &Path, file: &Path) -> String {
    fails(office, &["territory", "import", file.to_str().unwrap()], None)
}

/// Everything the office reads of the places: coverage by grid and the list of every place.
fn places_report(office: &Path) -> (Vec<Value>, String) {
    let all = ok(office, &["report", "gaps", "--area", "T1", "--all", "--format", "csv"], None);
    (coverage(office, "grid", None), all)
}

/// A server with its office logged in and nothing imported.
fn empty_town(dir: &Path) -> (Server, std::path::PathBuf) {
    let (data, office) = (dir.join("data"), dir.join("office"));
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    (server, office)
}

#[test]
fn a_workbook_imports_exactly_as_the_same_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let from_csv = town(&tmp.path().join("csv"), CSV);
    let (_server, office) = empty_town(&tmp.path().join("xlsx"));
    let xlsx = write_file(tmp.path(), "town.xlsx", &same_as_csv());

    let dry = import(&office, &xlsx, true);
    assert!(dry.contains("would import (dry run, nothing changed) 3 rows: 3 places added"), "{dry}");
    assert!(dry.contains("V1 东村: 2 added, 0 changed, 0 moved, 0 unchanged, 0 not in the file (kept)"), "{dry}");
    assert!(dry.contains("C1 河畔社区: 1 added"), "{dry}");
    let first = import(&office, &xlsx, false);
    assert!(first.contains("imported 3 rows: 3 places added, 0 changed, 0 unchanged; 5 areas added"), "{first}");
    assert_eq!(places_report(&office), places_report(&from_csv.office), "the same places, counted alike");

    // The CSV read onto the workbook's import changes nothing, and the other way round: the same records.
    let csv = write_file(tmp.path(), "town.csv", CSV.as_bytes());
    let again = import(&office, &csv, false);
    assert!(
        again.contains("0 places added, 0 changed, 3 unchanged; 0 areas added, 0 changed; 0 grids updated"),
        "{again}"
    );
    let back = import(&from_csv.office, &xlsx, false);
    assert!(
        back.contains("0 places added, 0 changed, 3 unchanged; 0 areas added, 0 changed; 0 grids updated"),
        "{back}"
    );

    // Numbers typed where codes go read as typed: no "1001.0", no "1.38E+10".
    let (_, all) = places_report(&office);
    assert!(all.contains("1001") && !all.contains("1001.0"), "{all}");
    let audit = ok(&office, &["audit", "--action", "territory.import"], None);
    assert!(audit.contains("3 rows (xlsx): 3 places added"), "{audit}");
}

#[test]
fn row_errors_name_the_worksheet_row_and_column_with_the_csv_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), CSV);
    let before = places_report(&town.office);

    // The CSV's message for an unknown kind, on its line 3.
    let bad_csv = format!(
        "{}1004,castle,门楼,G1,一网格,V1,东村,village,T1,城关镇,,,,,\n",
        CSV.lines().take(2).collect::<Vec<_>>().join("\n") + "\n"
    );
    let csv_error = import_fails(&town.office, &write_file(tmp.path(), "bad.csv", bad_csv.as_bytes()));
    let kind_message = csv_error.lines().find_map(|l| l.trim().strip_prefix("line 3: ")).expect(&csv_error).to_string();
    assert!(kind_message.starts_with("column kind: "), "{csv_error}");

    // The same row in a workbook, after a cell holding a line break (row 3) and a blank row (4): row 5, as
    // Excel numbers it, and a line break in a cell does not shift the rows after it.
    let bad = workbook(&[
        header(),
        in_g1(Number(1001.0), "household", "1组3号", [Empty; 5]),
        in_g1(Text("1003"), "household", "two\nlines", [Empty; 5]),
        None,
        in_g1(Number(1004.0), "castle", "门楼", [Empty; 5]),
    ]);
    let error = import_fails(&town.office, &write_file(tmp.path(), "bad.xlsx", &bad));
    assert!(error.contains("the file was not imported; fix these rows and try again"), "{error}");
    assert!(error.contains("line 3: column label: contains the control character U+000A"), "{error}");
    assert!(error.contains(&format!("line 5: {kind_message}")), "{error}");
    assert_eq!(places_report(&town.office), before, "nothing changed");
}

#[test]
fn unreadable_workbooks_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), CSV);
    let before = places_report(&town.office);
    let audit_before = ok(&town.office, &["audit", "--action", "territory.import"], None);

    let whole = same_as_csv();
    let cut = write_file(tmp.path(), "cut.xlsx", &whole[..whole.len() / 2]);
    let error = import_fails(&town.office, &cut);
    assert!(error.contains("the file was not imported: the file is not a readable .xlsx workbook"), "{error}");
    assert!(error.contains("save it as \"Excel Workbook (.xlsx)\" or as \"CSV UTF-8\""), "{error}");

    // An OLE compound file: an Excel 97-2003 workbook, or what Excel makes of a password-protected one.
    let mut ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    ole.resize(4096, 0);
    let error = import_fails(&town.office, &write_file(tmp.path(), "old.xls", &ole));
    assert!(error.contains("the file was not imported: the file is not a readable .xlsx workbook"), "{error}");

    let error = import_fails(&town.office, &write_file(tmp.path(), "locked.xlsx", &password_protected()));
    assert!(error.contains("the file was not imported: the workbook is password-protected; open it in Excel or WPS, remove the password"), "{error}");

    let mut empty = Workbook::new();
    empty.add_worksheet();
    let empty = write_file(tmp.path(), "empty.xlsx", &empty.save_to_buffer().unwrap());
    let error = import_fails(&town.office, &empty);
    assert!(error.contains("is empty: it needs a header row naming the columns"), "{error}");

    let headless =
        write_file(tmp.path(), "headless.xlsx", &workbook(&[in_g1(Number(1.0), "household", "x", [Empty; 5])]));
    let error = import_fails(&town.office, &headless);
    assert!(error.contains("line 1: unknown column \"1\""), "{error}");

    assert_eq!(places_report(&town.office), before, "nothing changed");
    assert_eq!(ok(&town.office, &["audit", "--action", "territory.import"], None), audit_before, "nothing imported");
}

/// What Excel saves for a workbook with a password: an OLE compound file (512-byte sectors: the header, one FAT
/// sector, one directory sector) whose directory holds the encrypted workbook as the stream `EncryptedPackage`.
fn password_protected() -> Vec<u8> {
    const FREE: u32 = 0xFFFF_FFFF;
    const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
    const FAT_SECTOR: u32 = 0xFFFF_FFFD;
    let mut file = vec![0u8; 512 * 3];
    let mut put = |at: usize, bytes: &[u8]| file[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
    put(24, &0x3Eu16.to_le_bytes()); // minor version
    put(26, &3u16.to_le_bytes()); // major version 3: 512-byte sectors
    put(28, &0xFFFEu16.to_le_bytes()); // little-endian
    put(30, &9u16.to_le_bytes()); // sector shift
    put(32, &6u16.to_le_bytes()); // mini sector shift
    put(44, &1u32.to_le_bytes()); // one FAT sector
    put(48, &1u32.to_le_bytes()); // the directory in sector 1
    put(56, &4096u32.to_le_bytes()); // mini stream cutoff
    put(60, &END_OF_CHAIN.to_le_bytes()); // no mini FAT
    put(68, &END_OF_CHAIN.to_le_bytes()); // no DIFAT sectors
    put(76, &0u32.to_le_bytes()); // the FAT in sector 0
    for slot in 1..109 {
        put(76 + 4 * slot, &FREE.to_le_bytes());
    }
    for (i, entry) in [FAT_SECTOR, END_OF_CHAIN].into_iter().chain(std::iter::repeat_n(FREE, 126)).enumerate() {
        put(512 + 4 * i, &entry.to_le_bytes());
    }
    for (i, (name, kind)) in [("Root Entry", 5u8), ("EncryptedPackage", 2u8)].into_iter().enumerate() {
        let at = 1024 + 128 * i;
        let utf16: Vec<u8> = name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
        put(at, &utf16);
        put(at + 64, &(utf16.len() as u16).to_le_bytes());
        put(at + 66, &[kind, 1]);
        put(at + 68, &[0xFF; 12]); // no siblings or child but the root's
        put(at + 116, &END_OF_CHAIN.to_le_bytes());
    }
    put(1024 + 76, &1u32.to_le_bytes()); // the root's child: EncryptedPackage
    file
}

#[test]
fn a_csv_named_xlsx_is_read_as_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, office) = empty_town(tmp.path());
    let renamed = write_file(tmp.path(), "town.xlsx", CSV.as_bytes());
    let out = import(&office, &renamed, false);
    assert!(out.contains("imported 3 rows: 3 places added"), "{out}");
    let audit = ok(&office, &["audit", "--action", "territory.import"], None);
    assert!(audit.contains("3 rows: 3 places added") && !audit.contains("(xlsx)"), "{audit}");
}

/// The dashboard's API, over HTTP: a blocking client with the office's (or another's) token.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
}

impl Http {
    fn new(url: &str) -> Http {
        Http { rt: tokio::runtime::Runtime::new().unwrap(), client: reqwest::Client::new(), url: url.to_string() }
    }

    fn login(&self, username: &str, password: &str) -> String {
        let (status, body) =
            self.send(self.client.post(format!("{}/api/v1/auth/login", self.url)).json(&serde_json::json!({
                "username": username, "password": password
            })));
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.rt.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        })
    }

    fn start(&self, token: &str, query: &str, file: Vec<u8>) -> (u16, Value) {
        self.send(
            self.client.post(format!("{}/api/v1/territory/imports?{query}", self.url)).bearer_auth(token).body(file),
        )
    }

    fn status(&self, token: &str, id: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}/api/v1/territory/imports/{id}", self.url)).bearer_auth(token))
    }

    /// Starts an import job and follows it until it ends.
    fn run(&self, token: &str, query: &str, file: Vec<u8>) -> Value {
        let (status, mut job) = self.start(token, query, file);
        assert_eq!(status, 202, "{job}");
        for _ in 0..600 {
            if job["phase"] == "done" || job["phase"] == "failed" {
                return job;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            let (status, next) = self.status(token, job["id"].as_str().unwrap());
            assert_eq!(status, 200, "{next}");
            job = next;
        }
        panic!("the import did not end: {job}");
    }
}

#[test]
fn import_jobs_check_then_import_the_checked_file_only() {
    let tmp = tempfile::tempdir().unwrap();
    let town = town(tmp.path(), CSV);
    let http = Http::new(&town.server.url);
    let office = http.login("office", PASSWORD);

    // One place more, one relabelled, one left out (P-3, of C1).
    let next = workbook(&[
        header(),
        in_g1(
            Number(1001.0),
            "household",
            "1组3号",
            [Text("东村 12 号"), Text("王伟"), Number(13_800_000_000.0), Number(30.5), Number(114.25)],
        ),
        in_g1(Number(1002.0), "shop", "东村小卖部", [Empty; 5]),
        in_g1(Number(1005.0), "household", "1组5号", [Empty; 5]),
    ]);
    let before = places_report(&town.office);
    let checked = http.run(&office, "dry_run=true", next.clone());
    assert_eq!(checked["outcome"], "imported", "{checked}");
    assert_eq!((checked["format"].as_str(), checked["dry_run"].as_bool()), (Some("xlsx"), Some(true)));
    let summary = &checked["summary"];
    assert_eq!((summary["places_added"].as_u64(), summary["places_changed"].as_u64()), (Some(1), Some(1)), "{summary}");
    let villages: Vec<(&str, u64, u64, u64, u64, u64)> = summary["villages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let n = |k: &str| v[k].as_u64().unwrap();
            let code = v["village_code"].as_str().unwrap();
            (
                code,
                n("places_added"),
                n("places_changed"),
                n("places_moved"),
                n("places_unchanged"),
                n("places_not_in_file"),
            )
        })
        .collect();
    assert_eq!(villages, vec![("V1", 1, 1, 0, 1, 0)], "C1 is not in the file, so not in the summary");
    assert_eq!(
        (checked["places_total"].as_u64(), checked["places_applied"].as_u64(), checked["rows_read"].as_u64()),
        (Some(3), Some(3), Some(4)),
        "{checked}"
    );
    assert_eq!(places_report(&town.office), before, "a check changes nothing");

    // Another file than the one checked is refused before anything is done.
    let sha = checked["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let (status, body) = http.start(&office, &format!("dry_run=false&checked={sha}"), same_as_csv());
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("the file changed since it was checked"));
    assert_eq!(places_report(&town.office), before);

    let imported = http.run(&office, &format!("dry_run=false&checked={sha}"), next.clone());
    assert_eq!(imported["outcome"], "imported", "{imported}");
    assert_eq!(imported["summary"]["places_added"], 1);
    let again = import(&town.office, &write_file(tmp.path(), "next.xlsx", &next), true);
    assert!(again.contains("0 places added, 0 changed, 3 unchanged"), "{again}");
    // The one village whose grid lists fewer places than the server holds says so.
    let fewer = workbook(&[
        header(),
        in_g1(
            Number(1001.0),
            "household",
            "1组3号",
            [Text("东村 12 号"), Text("王伟"), Number(13_800_000_000.0), Number(30.5), Number(114.25)],
        ),
    ]);
    let fewer = import(&town.office, &write_file(tmp.path(), "fewer.xlsx", &fewer), true);
    assert!(fewer.contains("V1 东村: 0 added, 0 changed, 0 moved, 1 unchanged, 2 not in the file (kept)"), "{fewer}");

    // Rows to fix come back by row and column.
    let bad = workbook(&[header(), None, in_g1(Number(1006.0), "castle", "门楼", [Empty; 5])]);
    let failed = http.run(&office, "dry_run=true", bad);
    assert_eq!(
        (failed["phase"].as_str(), failed["outcome"].as_str()),
        (Some("failed"), Some("rows_to_fix")),
        "{failed}"
    );
    let error = &failed["errors"][0];
    assert_eq!((error["line"].as_u64(), error["column"].as_str()), (Some(3), Some("kind")), "{failed}");
    assert!(error["message"].as_str().unwrap().starts_with("column kind: "), "{failed}");
    let corrupt = http.run(&office, "dry_run=true", next[..next.len() / 2].to_vec());
    assert_eq!(corrupt["outcome"], "refused", "{corrupt}");
    assert_eq!(corrupt["error"]["code"], "invalid_workbook", "{corrupt}");

    // The office's only.
    ok(&town.office, &["user", "create", "watcher", "--role", "viewer", "--password-stdin"], Some(&pw()));
    let viewer = http.login("watcher", PASSWORD);
    let (status, _) = http.start(&viewer, "dry_run=true", next.clone());
    assert_eq!(status, 403);
    let (status, _) = http.status(&viewer, checked["id"].as_str().unwrap());
    assert_eq!(status, 403);
    let (status, body) = http.status(&office, "00000000-0000-0000-0000-000000000000");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn the_templates_import_as_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, office) = empty_town(tmp.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for name in ["template.csv", "template.xlsx"] {
        let bytes = rt.block_on(async {
            let response = reqwest::get(format!("{}/api/v1/territory/{name}", server.url)).await.unwrap();
            assert_eq!(response.status(), 200);
            let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
            assert!(disposition.contains(&format!("territory-{name}")), "{disposition}");
            response.bytes().await.unwrap()
        });
        let file = write_file(tmp.path(), name, &bytes);
        let out = import(&office, &file, true);
        assert!(out.contains("2 rows: 2 places added"), "{name}: {out}");
    }
}
