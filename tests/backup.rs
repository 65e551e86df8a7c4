//! Online backup of the embedded SQLite database while the server runs, and a restore from it.

mod common;
use common::*;

/// A server on its embedded SQLite file in `tmp/data`, with the office's profile in `tmp/office`.
fn embedded_server(tmp: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Server) {
    let (data, office) = (tmp.join("data"), tmp.join("office"));
    let sqlite = format!("sqlite://{}?mode=rwc", data.join("doorstep.db").display());
    let server = sqlite_server_with_office(&data, &office, &sqlite);
    (data, office, server)
}

/// Restores a backup: a new data dir with the backup as its database and the same token secret, served on a new
/// port, the office logged in to it.
fn restore(
    tmp: &std::path::Path,
    data: &std::path::Path,
    backup: &std::path::Path,
    office: &std::path::Path,
) -> Server {
    let restored = tmp.join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(backup, restored.join("doorstep.db")).unwrap();
    std::fs::copy(data.join("jwt-secret"), restored.join("jwt-secret")).unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", restored.join("doorstep.db").display());
    let server = Server::start_with(&restored, "127.0.0.1:0", &["--database-url", &sqlite]);
    ok(office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    server
}

#[test]
fn online_sqlite_backup_restores_every_visit() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office, server) = embedded_server(tmp.path());
    let dir = data.to_str().unwrap();
    let vol = small_town(tmp.path(), &server.url, &office, 30);
    let before = coverage(&office, "grid", None);

    // Back up while the server keeps running.
    let backup = tmp.path().join("backup.db");
    let out = ok(&office, &["admin", "backup", "--data-dir", dir, "--output", backup.to_str().unwrap()], None);
    assert!(out.contains("backed up"), "{out}");
    let err = fails(&office, &["admin", "backup", "--data-dir", dir, "--output", backup.to_str().unwrap()], None);
    assert!(err.contains("already exists"), "{err}");
    // Work after the backup is not in it.
    ok(&vol, &["field", "visit", "P59", "--briefed"], None);
    ok(&vol, &["field", "sync"], None);
    server.kill();

    let server = restore(tmp.path(), &data, &backup, &office);
    assert_eq!(coverage(&office, "grid", None), before, "the restored figures are the backed-up ones");
    // The device's later visit comes back at its next sync (its history reaches the restored server again).
    ok(&vol, &["field", "sync", "--via", &server.url], None);
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "awareness"), (60, 1, 0));
    assert_eq!(figure(&town, "T1", "handbook"), (60, 30, 0));
}

/// A server restored from a backup older than the interleaved work of two volunteers (each visit recorded after
/// receiving the other's) gets every visit back from their devices, team-mates' changes included, and counts
/// each once.
#[test]
fn a_restored_server_gets_back_interleaved_visits_of_two_volunteers() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office, server) = embedded_server(tmp.path());
    let dir = data.to_str().unwrap();
    let amy = small_town(tmp.path(), &server.url, &office, 0);
    ok(&office, &["user", "create", "ben", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    let ben = tmp.path().join("ben");
    ok(&ben, &["field", "login", "--server", &server.url, "--username", "ben", "--password-stdin"], Some(&pw()));
    ok(&ben, &["field", "sync"], None);
    let backup = tmp.path().join("backup.db");
    ok(&office, &["admin", "backup", "--data-dir", dir, "--output", backup.to_str().unwrap()], None);

    // In one grid (G0), each visit after the other volunteer's: the histories interleave.
    ok(&amy, &["field", "visit", "P00", "--handbook"], None);
    ok(&amy, &["field", "sync"], None);
    ok(&ben, &["field", "sync"], None);
    ok(&ben, &["field", "visit", "P02", "--handbook"], None);
    ok(&ben, &["field", "sync"], None);
    ok(&amy, &["field", "sync"], None);
    ok(&amy, &["field", "visit", "P04", "--handbook"], None);
    ok(&amy, &["field", "sync"], None);
    server.kill();

    let server = restore(tmp.path(), &data, &backup, &office);
    assert_eq!(
        figure(&coverage(&office, "town", None), "T1", "handbook"),
        (60, 0, 0),
        "the backup predates the visits"
    );
    // Ben's device holds only two of the three visits, Amy's all three; either order brings all back.
    ok(&ben, &["field", "sync", "--via", &server.url], None);
    ok(&amy, &["field", "sync", "--via", &server.url], None);
    ok(&ben, &["field", "sync", "--via", &server.url], None);
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "handbook"), (60, 3, 0), "every visit counted once");
}
