//! A field client killed at random instants while recording: every visit whose id was printed survives,
//! the profile stays readable, and everything recorded reaches the server exactly once.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn killed_while_writing_loses_no_acknowledged_visit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let vol = tmp.path().join("vol");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
    );
    for i in 0..60 {
        csv.push_str(&format!("P{i:02},shop,{i},G1,g,V1,v,community,T1,t\n"));
    }
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    ok(&office, &["assign", "G1", "--team", "t"], None);
    ok(&office, &["user", "create", "vol", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "login", "--server", &server.url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);

    let mut printed = 0u64;
    for i in 0..60u64 {
        let child = Command::new(BIN)
            .args(["--profile", vol.to_str().unwrap(), "field", "visit", &format!("P{i:02}"), "--handbook"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros((i * 997) % 12_000));
        let pid = child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let out = child.wait_with_output().unwrap();
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            printed += 1;
        }
    }
    let status: serde_json::Value =
        serde_json::from_str(&ok(&vol, &["field", "status", "--format", "json"], None)).unwrap();
    let kept = status["unsynced_visits"].as_u64().unwrap();
    assert!(kept >= printed, "{kept} visits kept, {printed} acknowledged");
    assert!(kept <= 60);
    ok(&vol, &["field", "sync"], None);
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "handbook"), (60, kept, 0));
}
