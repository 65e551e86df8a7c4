//! The office console's speed at scale: 1,000,000 places, 10,000 volunteers with a phone each, 500 teams, an
//! enrolment code per volunteer, a roster and a month's submission per village, 200 situation reports and 200,000
//! audit events, generated straight into a real SQLite database; then
//! every call the console's pages make is timed against a real `doorstep serve` over HTTP (median of the runs),
//! beside `/healthz` on the same connection as the baseline.
//!
//! `cargo bench --bench console` (or `-- --places N --volunteers V --runs R`).

mod common;

use anyhow::{bail, Context};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep");
const PASSWORD: &str = "a bench password";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The people and their phones: `$1` volunteers in `$2` teams (each with a lead), a phone per volunteer that
/// synced and reported itself, nine grids in ten assigned (round the teams), a code per volunteer issued in the
/// last days (a volunteer a minute, one in three unused), and `$3`
/// audit events. Passwords all take the office's hash.
const PEOPLE: &[&str] = &[
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
     INSERT INTO teams (name, lead, created_at) SELECT printf('team-%04d', i), printf('lead-%04d', i), 0 FROM n",
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
     INSERT INTO users (id, username, password_hash, role, team, area, created_at)
     SELECT printf('lead%06d', i), printf('lead-%04d', i), (SELECT password_hash FROM users WHERE username = 'office'),
            'lead', printf('team-%04d', i), NULL, 0 FROM n",
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1)
     INSERT INTO users (id, username, password_hash, role, team, area, created_at)
     SELECT printf('vol%06d', i), printf('vol-%05d', i), (SELECT password_hash FROM users WHERE username = 'office'),
            'volunteer', printf('team-%04d', i % $2), NULL, 1700000000000 + i FROM n",
    "INSERT INTO devices (device_id, user_id, actor, name, created_at, last_seen_at, app_version, unsent_hint, status_at)
     SELECT 'dev-' || id, id, printf('%032d', CAST(substr(id, 4) AS INTEGER)), 'phone', created_at,
            1700000000000 + abs(random()) % 2592000000, 'web 0.1.0', abs(random()) % 3, 1700000000000
     FROM users WHERE role = 'volunteer'",
    "INSERT INTO assignments (grid_code, team, assigned_at)
     SELECT code, printf('team-%04d', CAST(substr(code, 2) AS INTEGER) % $2), 0 FROM areas
     WHERE kind = 'grid' AND CAST(substr(code, 2) AS INTEGER) % 10 <> 0",
    "INSERT INTO enrolment_codes (id, code_hash, user_id, uses, used, issued_by, issued_at, expires_at, used_at,
                                  device_id)
     SELECT 'code-' || id, printf('%064d', CAST(substr(id, 4) AS INTEGER)), id, 1, CASE WHEN (n / 60000) % 3 = 0 THEN 0 ELSE 1 END,
            'office', now - n, now - n + 86400000, CASE WHEN (n / 60000) % 3 = 0 THEN NULL ELSE now - n + 3600000 END, 'dev-' || id
     FROM (SELECT id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS now,
                  CAST(substr(id, 4) AS INTEGER) * 60000 AS n FROM users WHERE role = 'volunteer')",
    "INSERT INTO roster_entries (entry_id, area_code, position, duty, name, unit, post, phone, note, updated_by, updated_at)
     SELECT code || '-' || d.position, code, d.position, d.duty, '王' || code, code || '村委会', '副书记', '13800138000', '',
            'office', 0
     FROM areas, (SELECT 0 AS position, '分管领导' AS duty UNION ALL SELECT 1, '联络员') AS d WHERE kind = 'village'",
    "INSERT INTO monthly_submissions (area_code, month, figures, work_done, problems, plans, state, submitted_at,
                                      submitted_by, updated_by, updated_at)
     SELECT code, strftime('%Y-%m', 'now'), '{}', '本月入户宣传', '无', '下月继续', 'submitted', 0, 'cadre', 'cadre', 0
     FROM areas WHERE kind = 'village' AND CAST(substr(code, 2) AS INTEGER) % 3 <> 0",
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 200 - 1)
     INSERT INTO situation_reports (report_id, area_code, title, body, urgency, filed_at, filed_by)
     SELECT printf('s%04d', i), printf('V%04d', i % 300), '疑似诈骗窝点', '详情', 'urgent', 1700000000000 + i, 'cadre' FROM n",
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $3 - 1)
     INSERT INTO audit (at, username, action, detail)
     SELECT 1700000000000 + i * 10000, printf('vol-%05d', i % $1),
            CASE i % 4 WHEN 0 THEN 'login' WHEN 1 THEN 'device.enrol' WHEN 2 THEN 'sync.rejected' ELSE 'grid.assign' END,
            printf('event %d', i) FROM n",
    // 50 bulletins to everyone, each read by four volunteers in five (the list's read counts; its receipts page).
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 50 - 1)
     INSERT INTO bulletins (id, edition, title, body, kind, fraud_type, priority, audience, expires_at, published_at,
                            published_by, updated_at, withdrawn_at)
     SELECT printf('b%04d', i), 1, printf('通报 %d', i), '正文', 'reminder', '', 'normal', '{\"everyone\":true}', NULL,
            1700000000000 + i, 'office', 1700000000000 + i, NULL FROM n",
    "INSERT INTO documents (kind, doc_id, doc, version, updated_at) SELECT 'bulletin', id, x'00', 1, 0 FROM bulletins",
    "INSERT INTO document_audience (kind, doc_id, team) SELECT 'bulletin', id, '*' FROM bulletins",
    "INSERT INTO document_entries (kind, doc_id, entry, device_id, username, team, at, detail, received_at)
     SELECT 'bulletin', b.id, b.id || '-' || u.id, 'dev-' || u.id, u.username, u.team, 1700000000000, '{\"edition\":1}', 0
     FROM bulletins b, users u WHERE u.role = 'volunteer' AND CAST(substr(u.id, 4) AS INTEGER) % 5 <> 0",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let places = arg("--places", 1_000_000);
    let volunteers = arg("--volunteers", 10_000);
    let teams = (volunteers / 20).max(1);
    let events = arg("--audit-events", 200_000);
    let runs = arg("--runs", 21) as usize;
    let tmp = tempfile::tempdir()?;
    common::create_office(BIN, tmp.path(), PASSWORD)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let started = Instant::now();
        let db = server::store::db::Db::connect(&server::store::db::sqlite_url(tmp.path())).await?;
        for (i, sql) in common::GENERATE_TOWN.iter().enumerate() {
            let q = sqlx::query(sqlx::AssertSqlSafe(*sql));
            let q = match i {
                0 => q.bind(places as i64),
                2 => q.bind(1_i64),
                _ => q,
            };
            q.execute(&db.pool).await?;
        }
        for sql in PEOPLE {
            let q = sqlx::query(sqlx::AssertSqlSafe(*sql));
            q.bind(volunteers as i64).bind(teams as i64).bind(events as i64).execute(&db.pool).await?;
        }
        db.pool.close().await;
        println!(
            "generated {places} places, {volunteers} volunteers and phones in {teams} teams, {events} audit events \
             in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok::<_, anyhow::Error>(())
    })?;

    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(tmp.path());
    let (url, mut child) = common::spawn_server(cmd, "warn")?;
    let result = rt.block_on(async {
        time_pages(&url, runs).await?;
        check_counts(&url, volunteers, teams).await
    });
    child.kill().ok();
    child.wait().ok();
    result
}

/// Each page's calls, as the dashboard makes them (the office's session, gzip accepted); `{month}` is this month.
const PAGES: &[(&str, &str)] = &[
    ("overview: coverage by town", "/api/v1/reports/coverage?by=town"),
    ("campaign in force", "/api/v1/campaign"),
    ("people: first 200", "/api/v1/users?limit=200"),
    ("people: a name searched", "/api/v1/users?limit=200&q=vol-0004"),
    ("people, teams: every team", "/api/v1/teams"),
    ("people, teams: every village", "/api/v1/villages"),
    ("teams: first 1,000 grids", "/api/v1/grids?limit=1000"),
    ("teams: unassigned grids", "/api/v1/grids?limit=1000&unassigned=true"),
    ("teams: one village's grids", "/api/v1/grids?limit=1000&village=V0042"),
    ("devices: every phone", "/api/v1/devices"),
    ("enrolment: codes of 30 days", "/api/v1/enrolment-codes"),
    ("roster: every village", "/api/v1/roster"),
    ("submissions of the month", "/api/v1/submissions?month={month}"),
    ("situation reports", "/api/v1/situations"),
    ("audit: newest 500", "/api/v1/audit?order=newest&limit=501"),
    ("audit: one person, newest", "/api/v1/audit?order=newest&limit=501&user=vol-00042"),
    ("bulletins: 50, with read counts", "/api/v1/bulletins"),
    ("bulletin: its receipts", "/api/v1/bulletins/b0007/receipts"),
];

async fn office_token(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let login: serde_json::Value = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "office", "password": PASSWORD }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(login["token"].as_str().context("a session token")?.to_string())
}

/// The lists hold what was generated: every phone, every person.
async fn check_counts(url: &str, volunteers: u64, teams: u64) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let token = office_token(&http, url).await?;
    let read = |path: &str| http.get(format!("{url}{path}")).bearer_auth(&token).send();
    let devices: serde_json::Value = read("/api/v1/devices").await?.error_for_status()?.json().await?;
    anyhow::ensure!(devices.as_array().map(Vec::len) == Some(volunteers as usize), "a phone per volunteer listed");
    let users: serde_json::Value = read("/api/v1/users?limit=1").await?.error_for_status()?.json().await?;
    anyhow::ensure!(users["total"] == volunteers + teams + 1, "every person counted: {}", users["total"]);
    println!("check: {volunteers} phones listed, {} people counted", users["total"]);
    Ok(())
}

async fn time_pages(url: &str, runs: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().gzip(true).build()?;
    let token = office_token(&http, url).await?;
    let get = |path: String| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let t = Instant::now();
            let resp = http.get(path).bearer_auth(token).send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            if !status.is_success() {
                bail!("{status}: {}", String::from_utf8_lossy(&body));
            }
            Ok::<_, anyhow::Error>((t.elapsed(), body.len()))
        }
    };
    let mut base = Vec::new();
    for _ in 0..runs {
        base.push(get(format!("{url}/healthz")).await?.0);
    }
    let base = median(base);
    println!("{:<36} {:>9} {:>10} {:>8}", "page call (median of runs)", "time", "bytes", "÷ healthz");
    println!("{:<36} {:>7.1}ms {:>10} {:>8}", "baseline: /healthz", base.as_secs_f64() * 1e3, "", "1×");
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    for (label, path) in PAGES {
        let path = path.replace("{month}", &month);
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let (time, len) = get(format!("{url}{path}")).await.with_context(|| format!("GET {path}"))?;
            times.push(time);
            bytes = len;
        }
        let m = median(times);
        println!(
            "{label:<36} {:>7.1}ms {bytes:>10} {:>7.0}×",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    Ok(())
}
