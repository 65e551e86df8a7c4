//! Bulletins (通报) in the volunteers' web app, in a real headless Chromium (tests/browser/bulletins.test.mjs)
//! against the real binary: the office publishes an urgent bulletin with a PNG and a PDF attachment and talking
//! points through the HTTP API; the phone syncs them, downloads the attachments (resuming a download cut short with
//! `Range`, discarding one whose SHA-256 does not check), reads the urgent one offline with its image shown, marks
//! it read (已阅) offline, keeps the receipt across a reload, and once online the server lists the volunteer as a
//! reader; the visit screen shows the talking points; withdrawn ones disappear after the next sync; a correction
//! shows as unread again, and its receipt, written while the server is out of reach, is carried over when the
//! phone is enrolled again. Screenshots go to test-artifacts/. Set DOORSTEP_SKIP_BROWSER_TESTS=1 to skip on a
//! machine without Chromium; CI never sets it.

mod common;
use common::*;
use serde_json::Value;

const TERRITORY: &str = "\
place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name
H1,household,1组1号,G1,一网格,V1,龙凤村,village,T1,太安镇
H2,household,1组2号,G1,一网格,V1,龙凤村,village,T1,太安镇
";

#[test]
fn a_volunteer_reads_bulletins_offline_in_the_field_app() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Town { server, office, data } = town(tmp.path(), TERRITORY);
    ok(&office, &["team", "create", "team-a"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    ok(&office, &["assign", "G1", "--team", "team-a"], None);

    let out = run_browser_script(
        "bulletins.test.mjs",
        &[("DOORSTEP_URL", server.url.as_ref()), ("DOORSTEP_PASSWORD", PASSWORD.as_ref())],
    );
    let line = out.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("the script prints its result");
    let result: Value = serde_json::from_str(line).unwrap();
    let urgent = result["urgent"].as_str().unwrap();

    // The receipts written on the phone are the server's record of amy reading edition 1, and edition 2 (the
    // correction) carried over to the phone's new enrolment: each from the device that wrote it.
    let readers = result["readers"].as_array().unwrap();
    assert!(readers.iter().any(|r| r["username"] == "amy" && r["edition"] == 1), "{result}");
    let entries = db_pairs(
        &data,
        &format!(
            "SELECT detail, device_id FROM document_entries WHERE kind = 'bulletin' AND doc_id = '{urgent}' \
             AND username = 'amy' ORDER BY at"
        ),
    );
    let editions: Vec<(i64, String)> = entries
        .iter()
        .map(|(detail, device)| {
            let detail: Value = serde_json::from_str(detail).unwrap();
            (detail["edition"].as_i64().unwrap(), device.clone())
        })
        .collect();
    assert_eq!(editions.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2], "{entries:?}");
    assert_ne!(editions[0].1, editions[1].1, "the second under the new enrolment: {entries:?}");
    drop(server);
}

/// Runs one step of tests/browser/bulletins.test.mjs with the app loaded from `url`, the office at `server`,
/// and the phone's storage kept in `profile` between steps; returns its result.
fn step(name: &str, url: &str, server: &str, profile: &std::path::Path, bulletin: &str) -> Value {
    let out = run_browser_script(
        "bulletins.test.mjs",
        &[
            ("DOORSTEP_STEP", name.as_ref()),
            ("DOORSTEP_URL", url.as_ref()),
            ("DOORSTEP_SERVER_URL", server.as_ref()),
            ("DOORSTEP_PASSWORD", PASSWORD.as_ref()),
            ("DOORSTEP_BROWSER_PROFILE", profile.as_os_str()),
            ("DOORSTEP_BULLETIN", bulletin.as_ref()),
        ],
    );
    let line = out.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("the step prints its result");
    serde_json::from_str(line).unwrap()
}

/// The app loaded from a team hub: the bulletin comes through the hub, its attachments from the hub's cache with
/// the server down, and the receipt the volunteer writes stays pending on the phone (a hub's heads confirm
/// nothing) until the hub has delivered it and brought back the server's signed statement of the bulletin.
#[test]
fn bulletins_reach_the_app_through_a_team_hub() {
    if browser_tests_skipped() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let lead = tmp.path().join("lead");
    let profile = tmp.path().join("chromium-profile");
    bootstrap_office(&data, &office);
    let listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(&data, &listen, &[]);
    let url = server.url.clone();
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(tmp.path(), "territory.csv", TERRITORY.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "team-a", "--lead", "lead"], None);
    ok(&office, &["user", "create", "amy", "--role", "volunteer", "--team", "team-a", "--password-stdin"], Some(&pw()));
    ok(&office, &["assign", "G1", "--team", "team-a"], None);
    ok(&lead, &["field", "login", "--server", &url, "--username", "lead", "--password-stdin"], Some(&pw()));

    let published = step("hub-publish", &url, &url, &profile, "");
    let urgent = published["urgent"].as_str().unwrap().to_string();
    ok(&lead, &["field", "sync"], None);
    let hub = Hub::start(&lead, &["--upstream-every", "0"]);
    ok(&lead, &["hub", "sync"], None);
    let enrolled = step("hub-enrol", &hub.url, &url, &profile, &urgent);
    assert_eq!(enrolled["unread"], 2, "{enrolled}");

    // The server is gone: the hub is all the phone reaches, and it serves the attachments it cached.
    server.kill();
    let read = step("hub-read", &hub.url, &url, &profile, &urgent);
    assert_eq!(read["pending"], 1, "the hub's answer confirms nothing: {read}");

    // Back online, the hub delivers the receipt; the phone's next sync with the hub confirms it.
    let server = Server::start_with(&data, &listen, &[]);
    ok(&lead, &["hub", "sync"], None);
    let readers = db_pairs(
        &data,
        &format!("SELECT username, device_id FROM document_entries WHERE kind = 'bulletin' AND doc_id = '{urgent}'"),
    );
    assert_eq!(readers.len(), 1, "{readers:?}");
    assert_eq!(readers[0].0, "amy");
    step("hub-confirmed", &hub.url, &url, &profile, &urgent);
    drop(hub);
    drop(server);
}
