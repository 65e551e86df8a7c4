//! The server killed with SIGKILL in the middle of syncs, restarted, synced again: no visit lost or duplicated.

mod common;
use common::*;
use std::fmt::Write;

#[test]
fn server_killed_mid_sync_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let vol = tmp.path().join("vol");
    let other = tmp.path().join("other");
    bootstrap_office(&data, &office);
    let mut server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
    );
    for i in 0..240 {
        let grid = i % 3;
        writeln!(csv, "P{i:03},household,{i}号,G{grid},网格{grid},V1,村,village,T1,镇").unwrap();
    }
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    for g in 0..3 {
        ok(&office, &["assign", &format!("G{g}"), "--team", "t"], None);
    }
    for u in ["vol", "other"] {
        ok(&office, &["user", "create", u, "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    }
    ok(&vol, &["field", "login", "--server", &server.url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&other, &["field", "login", "--server", &server.url, "--username", "other", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);

    // Rounds of: record visits, start a sync, kill the server at a varying instant, restart.
    let mut recorded = 0;
    for round in 0..6u64 {
        for i in 0..40 {
            let place = format!("P{:03}", round * 40 + i);
            ok(&vol, &["field", "visit", &place, "--handbook"], None);
            recorded += 1;
        }
        let url = server.url.clone();
        let sync = std::process::Command::new(BIN)
            .args(["--profile", vol.to_str().unwrap(), "field", "sync", "--via", &url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + round * 15));
        server.kill();
        let mut sync = sync;
        sync.wait().unwrap();
        server = Server::start(&data);
    }
    // Whatever the kills interrupted, the next sync completes it.
    ok(&vol, &["field", "sync", "--via", &server.url], None);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&vol, &["field", "status", "--format", "json"], None)).unwrap();
    assert_eq!(status["unsynced_visits"], 0);

    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (240, recorded, 0), "every visit arrived");

    // Another device sees each visit exactly once.
    ok(&other, &["field", "sync", "--via", &server.url], None);
    let places: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&other, &["field", "places", "--format", "json"], None)).unwrap();
    let total: u64 = places.iter().map(|p| p["visits"].as_u64().unwrap()).sum();
    assert_eq!(total, recorded, "no visit lost or duplicated");
    assert!(places.iter().all(|p| p["visits"].as_u64().unwrap() == 1));
}
