//! Moving a town from SQLite to PostgreSQL with `doorstep migrate`, and backup/restore with pg_dump.

mod common;
use common::*;
use std::process::Command;

#[test]
fn migrate_from_sqlite_to_postgres_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    let sqlite = format!("sqlite://{}?mode=rwc", data.join("doorstep.db").display());
    let server = sqlite_server_with_office(&data, &office, &sqlite);
    let vol = small_town(tmp.path(), &server.url, &office, 25);
    let before = coverage(&office, "volunteer", None);
    server.kill();

    let pg = fresh_pg_database();
    let out = ok(&office, &["migrate", "--from", &sqlite, "--to", &pg], None);
    assert!(out.contains("all 2 grid documents have the same heads"), "{out}");
    assert!(out.contains("visits") && out.contains("25 rows"), "{out}");
    let err = fails(&office, &["migrate", "--from", &sqlite, "--to", &pg], None);
    assert!(err.contains("already holds data"), "{err}");

    let server = Server::start_with(&data, "127.0.0.1:0", &["--database-url", &pg]);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    assert_eq!(coverage(&office, "volunteer", None), before);
    // The enrolled device keeps working against the new database, and new visits arrive.
    ok(&vol, &["field", "visit", "P40", "--handbook"], None);
    ok(&vol, &["field", "sync", "--via", &server.url], None);
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "handbook"), (60, 26, 0));
    let audit = ok(&office, &["audit", "--format", "json"], None);
    assert!(audit.contains("territory.import"), "the audit log moved too");
}

#[test]
fn pg_dump_and_restore_bring_back_every_visit() {
    let bindir = std::env::var("PG_BINDIR").expect("PG_BINDIR is set by scripts/postgres.sh");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    small_town(tmp.path(), &server.url, &office, 20);
    let before = coverage(&office, "grid", None);
    let url = std::fs::read_to_string(data.join("test-database-url")).unwrap();
    let dump = tmp.path().join("town.dump");
    let st = Command::new(format!("{bindir}/pg_dump")).args(["-Fc", "-f"]).arg(&dump).arg(&url).status().unwrap();
    assert!(st.success());
    server.kill();

    let target = fresh_pg_database();
    let st =
        Command::new(format!("{bindir}/pg_restore")).args(["--no-owner", "-d", &target]).arg(&dump).status().unwrap();
    assert!(st.success());
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(data.join("jwt-secret"), restored.join("jwt-secret")).unwrap();
    let server = Server::start_with(&restored, "127.0.0.1:0", &["--database-url", &target]);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    assert_eq!(coverage(&office, "grid", None), before);
}
