//! Test harness: runs the real `doorstep` binary as server and clients, on loopback, with real SQLite files.
#![allow(dead_code)]

/// A real S3-compatible server (moto) for the blob store's S3 backend.
pub mod s3;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_doorstep");
pub const PASSWORD: &str = "correct horse battery";

/// A running `doorstep serve` on a free loopback port. Killed when dropped.
pub struct Server {
    pub url: String,
    /// The metrics endpoint's URL, when the server was started with `--metrics-listen`.
    pub metrics_url: Option<String>,
    pub data_dir: PathBuf,
    child: Child,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, "127.0.0.1:0", &[])
    }

    pub fn start_with(data_dir: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", listen])
            .args(if extra.contains(&"--database-url") { Vec::new() } else { database_args(data_dir) })
            .args(extra)
            .env("DOORSTEP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start doorstep serve");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut line = String::new();
        let mut metrics_url = None;
        let url = loop {
            line.clear();
            assert!(Instant::now() < deadline, "server did not start");
            if reader.read_line(&mut line).expect("read server stdout") == 0 {
                panic!("server exited before listening: {:?}", child.wait());
            }
            if let Some(rest) = line.trim().strip_prefix("Doorstep metrics on ") {
                metrics_url = Some(rest.to_string());
            }
            if let Some(rest) = line.trim().strip_prefix("Doorstep listening on ") {
                break rest.to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Server { url, metrics_url, data_dir: data_dir.to_path_buf(), child }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Runs `doorstep` with a profile, optional stdin, and returns its output.
pub fn run(profile: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env("DOORSTEP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run doorstep");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().expect("wait doorstep")
}

/// Runs `doorstep` and panics with its stderr unless it succeeded; returns stdout.
pub fn ok(profile: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(profile, args, stdin);
    assert!(
        out.status.success(),
        "doorstep {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `doorstep` expecting failure; returns stderr.
pub fn fails(profile: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(profile, args, stdin);
    assert!(
        !out.status.success(),
        "doorstep {args:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

pub fn pw() -> String {
    format!("{PASSWORD}\n")
}

/// Creates the bootstrap office account directly in the data dir (or the test's PostgreSQL database).
pub fn bootstrap_office(data_dir: &Path, scratch: &Path) {
    let dir = data_dir.to_str().unwrap();
    let db = database_args(data_dir);
    let mut args =
        vec!["admin", "create-user", "--data-dir", dir, "--username", "office", "--role", "office", "--password-stdin"];
    args.extend(db.iter().map(String::as_str));
    ok(scratch, &args, Some(&pw()));
}

/// A running server with its office logged in and a territory imported: the start most end-to-end tests share.
pub struct Town {
    pub server: Server,
    pub data: PathBuf,
    /// The office's CLI profile.
    pub office: PathBuf,
}

/// Starts a server in `dir/data`, logs its office in (profile `dir/office`) and imports `territory` (CSV text).
pub fn town(dir: &Path, territory: &str) -> Town {
    let (data, office) = (dir.join("data"), dir.join("office"));
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let file = write_file(dir, "territory.csv", territory.as_bytes());
    ok(&office, &["territory", "import", file.to_str().unwrap()], None);
    Town { server, data, office }
}

/// A fresh, empty PostgreSQL database on the test server (for tests that need one whatever the backend).
pub fn fresh_pg_database() -> String {
    let admin_url = std::env::var("DOORSTEP_TEST_PG_URL").expect("this test needs PostgreSQL: run ./scripts/test");
    let name = format!("doorstep_test_{}", uuid::Uuid::new_v4().simple());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::postgres::PgConnection::connect(&admin_url).await.expect("connect to test PostgreSQL");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    });
    let (base, _) = admin_url.rsplit_once('/').expect("DOORSTEP_TEST_PG_URL ends with /DATABASE");
    format!("{base}/{name}")
}

/// Makes `second` the data dir of another instance of the installation in `first` (on PostgreSQL): the same
/// database and token secret, nothing else.
pub fn share_installation(first: &Path, second: &Path) {
    std::fs::create_dir_all(second).unwrap();
    for file in ["jwt-secret", "test-database-url"] {
        std::fs::copy(first.join(file), second.join(file)).unwrap();
    }
}

/// The backend under test. With `DOORSTEP_TEST_PG_URL` set (an admin URL of a PostgreSQL server), every data
/// dir gets its own fresh PostgreSQL database, remembered in the data dir so a restarted server finds it again;
/// otherwise the server uses its embedded SQLite file.
pub fn database_args(data_dir: &Path) -> Vec<String> {
    let Ok(admin_url) = std::env::var("DOORSTEP_TEST_PG_URL") else { return Vec::new() };
    std::fs::create_dir_all(data_dir).unwrap();
    let remembered = data_dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return vec!["--database-url".into(), url];
    }
    let _ = admin_url;
    let url = fresh_pg_database();
    std::fs::write(&remembered, &url).unwrap();
    vec!["--database-url".into(), url]
}

pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The coverage report as JSON rows.
pub fn coverage(profile: &Path, by: &str, area: Option<&str>) -> Vec<serde_json::Value> {
    let mut args = vec!["report", "coverage", "--by", by, "--format", "json"];
    if let Some(a) = area {
        args.extend(["--area", a]);
    }
    serde_json::from_str(&ok(profile, &args, None)).expect("coverage JSON")
}

/// `(eligible, reached, excluded)` of one report row, panicking if it is absent.
pub fn figure(rows: &[serde_json::Value], area: &str, indicator: &str) -> (u64, u64, u64) {
    let r = rows
        .iter()
        .find(|r| r["area"] == area && r["indicator"] == indicator)
        .unwrap_or_else(|| panic!("no row for {area}/{indicator} in {rows:#?}"));
    (r["eligible"].as_u64().unwrap(), r["reached"].as_u64().unwrap(), r["excluded"].as_u64().unwrap())
}

/// A server on an SQLite file whatever the backend under test (for SQLite-specific tests and migrations),
/// with the bootstrap office account, serving its metrics on a port of their own.
pub fn sqlite_server_with_office(data: &Path, office: &Path, sqlite_url: &str) -> Server {
    let dir = data.to_str().unwrap();
    let args = ["admin", "create-user", "--data-dir", dir, "--database-url", sqlite_url];
    let mut args = args.to_vec();
    args.extend(["--username", "office", "--role", "office", "--password-stdin"]);
    ok(office, &args, Some(&pw()));
    Server::start_with(data, "127.0.0.1:0", &["--database-url", sqlite_url, "--metrics-listen", "127.0.0.1:0"])
}

/// A small town with one volunteer who recorded and synced `visits` visits. Returns the volunteer's profile.
pub fn small_town(tmp: &Path, url: &str, office: &Path, visits: usize) -> PathBuf {
    use std::fmt::Write as _;
    ok(office, &["login", "--server", url, "--username", "office", "--password-stdin"], Some(&pw()));
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
    );
    for i in 0..60 {
        writeln!(csv, "P{i:02},household,{i},G{},g,V1,v,village,T1,t", i % 2).unwrap();
    }
    let f = write_file(tmp, "town.csv", csv.as_bytes());
    ok(office, &["territory", "import", f.to_str().unwrap()], None);
    ok(office, &["team", "create", "t"], None);
    ok(office, &["assign", "G0", "--team", "t"], None);
    ok(office, &["assign", "G1", "--team", "t"], None);
    ok(office, &["user", "create", "vol", "--role", "volunteer", "--team", "t", "--password-stdin"], Some(&pw()));
    let vol = tmp.join("vol");
    ok(&vol, &["field", "login", "--server", url, "--username", "vol", "--password-stdin"], Some(&pw()));
    ok(&vol, &["field", "sync"], None);
    for i in 0..visits {
        ok(&vol, &["field", "visit", &format!("P{:02}", i % 60), "--handbook", "--poster"], None);
    }
    ok(&vol, &["field", "sync"], None);
    vol
}

/// A loopback port that was free a moment ago (for a server that must come back on the same address). Chosen at
/// random below the system's ephemeral range (32768 and up on Linux), where the system never hands out ports by
/// itself: a port it gave one test's bind to `:0` could otherwise be given again to another test's, between this
/// check and the server's bind ("Address already in use").
pub fn free_port() -> u16 {
    loop {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `doorstep hub serve` with a lead's profile, on a free loopback port. Killed when dropped.
pub struct Hub {
    pub url: String,
    child: Child,
}

impl Hub {
    pub fn start(profile: &Path, extra: &[&str]) -> Hub {
        let mut child = Command::new(BIN)
            .arg("--profile")
            .arg(profile)
            .args(["hub", "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("DOORSTEP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start doorstep hub serve");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            if reader.read_line(&mut line).expect("read hub stdout") == 0 {
                panic!("hub exited before listening: {:?}", child.wait());
            }
            if let Some(rest) = line.trim().strip_prefix("Doorstep hub listening on ") {
                break rest.to_string();
            }
        };
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Hub { url, child }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Rows of two text columns read straight from the server's database (SQLite file or the test's PostgreSQL).
pub fn db_pairs(data_dir: &Path, sql: &str) -> Vec<(String, String)> {
    let url = match database_args(data_dir).get(1) {
        Some(pg) => pg.clone(),
        None => format!("sqlite://{}?mode=ro", data_dir.join("doorstep.db").display()),
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.expect("open the server's database");
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows
    })
}

/// Runs one statement straight on the server's database (to put a row where no API may, e.g. a time past).
pub fn db_execute(data_dir: &Path, sql: &str) {
    let url = match database_args(data_dir).get(1) {
        Some(pg) => pg.clone(),
        None => format!("sqlite://{}", data_dir.join("doorstep.db").display()),
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.expect("open the server's database");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.expect("statement");
        pool.close().await;
    })
}

/// Whether the browser tests are skipped on this machine (`DOORSTEP_SKIP_BROWSER_TESTS=1`; CI never sets it).
pub fn browser_tests_skipped() -> bool {
    let skip = std::env::var("DOORSTEP_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: DOORSTEP_SKIP_BROWSER_TESTS=1");
    }
    skip
}

/// Runs `node <script>` in tests/browser (playwright-core driving Debian's Chromium) with `env`, screenshots
/// going to test-artifacts/; panics with its output if it fails, and returns what it printed.
pub fn run_browser_script(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in tests/browser first (./scripts/test does), or set DOORSTEP_SKIP_BROWSER_TESTS=1"
    );
    let out = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .env("DOORSTEP_ARTIFACTS", root.join("test-artifacts"))
        .envs(env.iter().copied())
        .output()
        .expect("run node (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "browser test {script} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A value of the server's metrics (it must serve them: `--metrics-listen`).
pub fn metric(server: &Server, name: &str) -> f64 {
    let url = server.metrics_url.as_deref().expect("the server serves its metrics (--metrics-listen)");
    let text = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() });
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

/// The server's database held against writers until dropped (SQLite: a write transaction; PostgreSQL: the table
/// of stored changes, which every writing sync writes, locked against writes): the server's writes wait, its
/// reads do not. SQLite's writers wait at most their busy timeout (10 s).
pub struct WritesHeld {
    runtime: tokio::runtime::Runtime,
    conn: Option<sqlx::AnyConnection>,
}

pub fn hold_writes(data_dir: &Path) -> WritesHeld {
    let pg = database_args(data_dir).get(1).cloned();
    let url = pg.clone().unwrap_or_else(|| format!("sqlite://{}", data_dir.join("doorstep.db").display()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let conn = runtime.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("open the server's database");
        let statements: &[&str] =
            if pg.is_some() { &["BEGIN", "LOCK TABLE grid_changes IN EXCLUSIVE MODE"] } else { &["BEGIN IMMEDIATE"] };
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.expect("hold the writes");
        }
        conn
    });
    WritesHeld { runtime, conn: Some(conn) }
}

impl Drop for WritesHeld {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            self.runtime.block_on(async {
                use sqlx::Connection;
                sqlx::query("ROLLBACK").execute(&mut conn).await.expect("let the writes go");
                conn.close().await.ok();
            });
        }
    }
}
