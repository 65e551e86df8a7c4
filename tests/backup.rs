//! Online backup of the embedded SQLite database while the server runs, and a restore from it.

mod common;
use common::*;

#[test]
fn online_sqlite_backup_restores_every_visit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let sqlite = format!("sqlite://{}?mode=rwc", data.join("doorstep.db").display());
    let dir = data.to_str().unwrap();
    let server = sqlite_server_with_office(&data, &office, &sqlite);
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

    // Restore: a new data dir with the backup as its database and the same token secret.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&backup, restored.join("doorstep.db")).unwrap();
    std::fs::copy(data.join("jwt-secret"), restored.join("jwt-secret")).unwrap();
    let sqlite2 = format!("sqlite://{}?mode=rwc", restored.join("doorstep.db").display());
    let server = Server::start_with(&restored, "127.0.0.1:0", &["--database-url", &sqlite2]);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    assert_eq!(coverage(&office, "grid", None), before, "the restored figures are the backed-up ones");
    // The device's later visit comes back at its next sync (its history reaches the restored server again).
    ok(&vol, &["field", "sync", "--via", &server.url], None);
    let town = coverage(&office, "town", None);
    assert_eq!(figure(&town, "T1", "awareness"), (60, 1, 0));
    assert_eq!(figure(&town, "T1", "handbook"), (60, 30, 0));
}
