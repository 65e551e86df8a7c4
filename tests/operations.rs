//! Operations: health and readiness probes, Prometheus metrics, JSON logs, and a graceful shutdown on SIGTERM
//! that finishes the sync in flight, over plain HTTP and HTTPS.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = reqwest::get(url).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

#[test]
fn probes_and_metrics_report_what_happened() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start_with(&data, "127.0.0.1:0", &["--metrics-listen", "127.0.0.1:0"]);
    assert_eq!(get(&format!("{}/healthz", server.url)), (200, "ok".into()));
    assert_eq!(get(&format!("{}/readyz", server.url)), (200, "ready".into()));
    let vol = small_town(tmp.path(), &server.url, &office, 7);
    // Metrics are served on their own address only.
    assert_eq!(get(&format!("{}/metrics", server.url)).0, 404);
    let (status, text) = get(server.metrics_url.as_deref().unwrap());
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(value("doorstep_visits_ingested_total"), 7.0);
    assert_eq!(value("doorstep_sync_requests_total{outcome=\"ok\"}"), 2.0);
    assert!(text.contains("doorstep_sync_duration_seconds_bucket"), "{text}");
    drop(vol);
}

#[test]
fn sigterm_lets_the_sync_in_flight_finish() {
    sigterm_during_a_sync(false);
}

#[test]
fn sigterm_lets_the_sync_in_flight_finish_over_https() {
    sigterm_during_a_sync(true);
}

/// A server stopped by SIGTERM while a sync is in flight, over plain HTTP or HTTPS (`--tls-cert/--tls-key`, with
/// a certificate the installation's Doorstep CA signed, which the volunteer's profile trusts).
fn sigterm_during_a_sync(tls: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let first = Server::start(&data);
    let vol = small_town(tmp.path(), &first.url, &office, 0);
    let mut tls_args = Vec::new();
    if tls {
        let lead = tmp.path().join("lead");
        ok(&office, &["user", "create", "lead", "--role", "lead", "--team", "t", "--password-stdin"], Some(&pw()));
        ok(&lead, &["field", "login", "--server", &first.url, "--username", "lead", "--password-stdin"], Some(&pw()));
        ok(&lead, &["hub", "certificate", "--ip", "127.0.0.1"], None);
        let file = lead.join("hub-tls.pem").to_str().unwrap().to_string();
        tls_args = vec!["--tls-cert".to_string(), file.clone(), "--tls-key".to_string(), file];
    }
    for i in 0..400 {
        ok(&vol, &["field", "visit", &format!("P{:02}", i % 60), "--briefed"], None);
    }
    first.kill();

    // A server whose logs (JSON, request tracing on) tell us when the sync request has arrived.
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(database_args(&data))
        .args(&tls_args)
        .env("DOORSTEP_LOG", "warn,tower_http=debug")
        .env("DOORSTEP_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("Doorstep listening on ").unwrap().to_string();
    assert_eq!(url.starts_with("https://"), tls, "{url}");
    let sync = Command::new(BIN)
        .args(["--profile", vol.to_str().unwrap(), "field", "sync", "--via", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap());
    loop {
        line.clear();
        assert!(logs.read_line(&mut line).unwrap() > 0, "server log ended before the sync arrived");
        let event: serde_json::Value = serde_json::from_str(&line).expect("every log line is JSON");
        if event["span"]["uri"] == "/api/v1/sync" && event["fields"]["message"] == "started processing request" {
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let synced = sync.wait_with_output().unwrap();
    assert!(synced.status.success(), "the sync in flight finished: {}", String::from_utf8_lossy(&synced.stderr));
    assert!(String::from_utf8_lossy(&synced.stdout).contains("400 new to the server"));
    assert!(child.wait().unwrap().success(), "the server exits cleanly after SIGTERM");

    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "awareness"), (60, 60, 0));
}

/// On SQLite the runtime's threads run at a lower priority than the thread that drives write transactions and
/// SQLite's writing connection, so that a sync holding the write gate gets a CPU first; on PostgreSQL, where
/// writers do not queue behind one another, there is no writer thread and nothing is lowered.
#[cfg(target_os = "linux")]
#[test]
fn the_runtime_yields_the_cpu_to_the_sqlite_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    // (thread name, nice) of every thread of the server, from /proc (field 19 of `stat`).
    let threads: Vec<(String, i64)> = std::fs::read_dir(format!("/proc/{}/task", server.pid()))
        .unwrap()
        .map(|task| {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap().trim().to_string();
            let stat = std::fs::read_to_string(task.join("stat")).unwrap();
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            (comm, after_name.split(' ').nth(16).unwrap().parse().unwrap())
        })
        .collect();
    let nice_of = |name: &str| -> Vec<i64> { threads.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect() };
    let main = threads[0].1;
    let runtime = nice_of("tokio-rt-worker");
    assert!(!runtime.is_empty(), "no runtime threads among {threads:?}");
    if std::env::var("DOORSTEP_TEST_PG_URL").is_ok() {
        assert!(runtime.iter().all(|n| *n == main), "PostgreSQL: runtime lowered: {threads:?}");
        assert!(
            nice_of(server::store::db::WRITER_THREAD_NAME).is_empty(),
            "a writer thread on PostgreSQL: {threads:?}"
        );
    } else {
        let lowered = main + i64::from(server::store::db::RUNTIME_NICE);
        assert!(runtime.iter().all(|n| *n == lowered), "runtime threads not at {lowered}: {threads:?}");
        assert_eq!(nice_of(server::store::db::WRITER_THREAD_NAME), vec![main], "{threads:?}");
    }
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    bootstrap_office(&data, &tmp.path().join("office"));
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(database_args(&data))
        .env("DOORSTEP_LOG", "info,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("Doorstep listening on ").unwrap().to_string();
    assert_eq!(get(&format!("{url}/healthz")).0, 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("/healthz"), "the request was logged: {logs}");
    assert!(!logs.contains('\u{1b}'), "no ANSI escape codes in logs written to a pipe: {logs:?}");
}
