//! The server's disk fills up (a file-size limit on the server process): syncs get a clear error, nothing is
//! half-written, the server keeps serving (and writing what still fits), the devices keep their visits, and
//! everything arrives once the disk has room again.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Starts `doorstep serve` on SQLite with the largest file it may write limited to `max_file_bytes`.
fn start_limited(data: &std::path::Path, sqlite: &str, max_file_bytes: u64) -> (std::process::Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", sqlite, "--data-dir"])
        .arg(data)
        .env("DOORSTEP_LOG", "error")
        .stdout(Stdio::piped());
    unsafe {
        cmd.pre_exec(move || {
            // A refused write must fail with EFBIG rather than kill the process with SIGXFSZ.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: max_file_bytes, rlim_max: max_file_bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("Doorstep listening on ").expect("server started").to_string();
    (child, url)
}

#[test]
fn a_full_disk_gives_a_clear_error_and_corrupts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let db_file = data.join("doorstep.db");
    let sqlite = format!("sqlite://{}?mode=rwc", db_file.display());
    let server = sqlite_server_with_office(&data, &office, &sqlite);
    let vol = small_town(tmp.path(), &server.url, &office, 5);
    server.kill();
    let largest = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).max().unwrap();

    // Room for a little more than what is there: the next big sync cannot fit.
    let (mut child, url) = start_limited(&data, &sqlite, largest + 16 * 1024);
    let note = "x".repeat(1500);
    for i in 0..300 {
        ok(&vol, &["field", "visit", &format!("P{:02}", i % 60), "--briefed", "--note", &note], None);
    }
    let err = fails(&vol, &["field", "sync", "--via", &url], None);
    assert!(err.contains("cannot write to its disk") && err.contains("nothing was lost: 300 unsynced visits"), "{err}");
    // The server still answers, and reads still work (with the session opened before the disk filled up).
    let session: serde_json::Value =
        serde_json::from_slice(&std::fs::read(office.join("session.json")).unwrap()).unwrap();
    let rows: Vec<serde_json::Value> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/api/v1/reports/coverage?by=town"))
            .bearer_auth(session["token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(figure(&rows, "T1", "awareness"), (60, 0, 0), "nothing half-applied");
    // The same server, without a restart, still writes what fits: the failed commit left its writing
    // connection in a transaction nothing would end, so every later write failed until a restart.
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "create", "after-the-full-disk"], None);
    let err = fails(&vol, &["field", "sync", "--via", &url], None);
    assert!(err.contains("cannot write to its disk"), "the same clear error again, not an internal one: {err}");
    ok(&office, &["team", "create", "after-the-second-refusal"], None);
    child.kill().unwrap();
    child.wait().unwrap();

    // Room again: the same sync goes through and the database is intact.
    let server = Server::start_with(&data, "127.0.0.1:0", &["--database-url", &sqlite]);
    let out = ok(&vol, &["field", "sync", "--via", &server.url], None);
    assert!(out.contains("0 visits unsynced"), "{out}");
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "awareness"), (60, 60, 0));
    server.kill();
    let check: String = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::sqlite::SqliteConnection::connect(&sqlite).await.unwrap();
        let (r,): (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
        r
    });
    assert_eq!(check, "ok");
}
