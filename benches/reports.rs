//! Report speed on a province-sized town: 1,000,000 places and 3,000,000 visits, generated straight into the
//! projection tables of a real SQLite database, then the dashboard overview's queries timed against a full
//! scan of the same data in the same run, and the gap list of every place exported through a real
//! `doorstep serve` process, with its time and the server's peak memory.
//!
//! `cargo bench --bench reports` (or `-- --places N --visits-per-place V --runs R`).

mod common;

use anyhow::{anyhow, bail, Context};
use server::reports::{coverage, scanned, GroupBy};
use server::{AppState, ServerConfig};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep");
const PASSWORD: &str = "a bench password";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let places = arg("--places", 1_000_000);
    let visits_per_place = arg("--visits-per-place", 3);
    let runs = arg("--runs", 21) as usize;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let tmp = tempfile::tempdir()?;
        let config = ServerConfig::with_defaults(tmp.path().to_path_buf(), None);
        let state = AppState::open(&config).await?;
        let started = Instant::now();
        for (i, sql) in common::GENERATE_TOWN.iter().enumerate() {
            let q = sqlx::query(sqlx::AssertSqlSafe(*sql));
            let q = match i {
                0 => q.bind(places as i64),
                2 => q.bind(visits_per_place as i64),
                _ => q,
            };
            q.execute(&state.db.pool).await?;
        }
        let (v,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visits").fetch_one(&state.db.pool).await?;
        println!("generated {places} places and {v} visits in {:.1} s", started.elapsed().as_secs_f64());

        println!("{:<38} {:>10} {:>10} {:>8}", "query (median of runs)", "counted", "full scan", "ratio");
        for (label, by, area) in [
            ("overview: coverage by town", GroupBy::Town, None),
            ("coverage by village, whole territory", GroupBy::Village, None),
            ("drill-down: grids of one village", GroupBy::Grid, Some("V0001")),
        ] {
            let mut fast = Vec::new();
            let mut slow = Vec::new();
            for run in 0..runs {
                let t = Instant::now();
                let a = coverage(&state, by, area, None).await?;
                fast.push(t.elapsed());
                // The scan is the baseline; a few runs are enough for it.
                if run < 3 {
                    let t = Instant::now();
                    let b = scanned(&state, by, area.unwrap_or(""), "").await?;
                    slow.push(t.elapsed());
                    anyhow::ensure!(a == b, "the counts and the scan disagree for {label}");
                }
            }
            let (f, s) = (median(fast), median(slow));
            println!(
                "{label:<38} {:>8.1}ms {:>8.1}ms {:>7.0}×",
                f.as_secs_f64() * 1e3,
                s.as_secs_f64() * 1e3,
                s.as_secs_f64() / f.as_secs_f64()
            );
        }
        // The overview's other query: the daily series of the last 30 days of the generated period, read from
        // the per-area changes, which the migration that creates them fills from the generated data.
        sqlx::query("DROP TABLE area_progress").execute(&state.db.pool).await?;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 8").execute(&state.db.pool).await?;
        state.db.pool.close().await;
        let started = Instant::now();
        let db = server::store::db::Db::connect(&server::store::db::sqlite_url(tmp.path())).await?;
        println!("migration 0008 filled the progress changes in {:.1} s", started.elapsed().as_secs_f64());
        let state = AppState { db, ..state };
        let levels: Vec<(String, i64)> =
            sqlx::query_as("SELECT level, COUNT(*) FROM area_progress GROUP BY level ORDER BY level")
                .fetch_all(&state.db.pool)
                .await?;
        println!("progress change rows per level: {levels:?}");
        let to = chrono::NaiveDate::from_ymd_opt(2023, 12, 14).expect("a date");
        let days = server::reports::time::day_range(to - chrono::Duration::days(29), to, 400)?;
        let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00");
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let t = Instant::now();
            let a = server::reports::progress::progress(&state, &days, offset, "", "").await?;
            fast.push(t.elapsed());
            if run < 3 {
                let t = Instant::now();
                let b = server::reports::progress::scanned(&state, &days, offset, "", "").await?;
                slow.push(t.elapsed());
                anyhow::ensure!(a == b, "the progress changes and the scan disagree");
            }
        }
        let (f, s) = (median(fast), median(slow));
        println!(
            "{:<38} {:>8.1}ms {:>8.1}ms {:>7.0}×",
            "overview: daily progress, 30 days",
            f.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3,
            s.as_secs_f64() / f.as_secs_f64()
        );
        println!("check: counted and scanned figures are identical for every query");
        apply_campaign(&state).await?;
        month_with_an_earlier_version(&state).await?;
        state.db.pool.close().await;
        export(tmp.path(), places).await
    })
}

/// What a past month counted with an earlier campaign version costs: the month-end coverage per village with
/// the version in force now (from the projected rows), and with a version whose poster indicator is reached
/// otherwise (the poster counted from the places and their visits, as that version defines it).
async fn month_with_an_earlier_version(state: &AppState) -> anyhow::Result<()> {
    let at = 1_700_000_000_000 + 2_592_000_000;
    let earlier = client_core::campaign::parse(
        &client_core::campaign::DEFAULT_TOML
            .replace("reached_by = { any_of = [\"poster\"] }", "reached_by = { any_of = [\"poster\", \"banner\"] }"),
    )?;
    let now = state.campaigns.current().campaign.clone();
    let mut times = Vec::new();
    for campaign in [&*now, &earlier] {
        let started = Instant::now();
        let figures = server::reports::monthly::coverage_at(state, campaign, at, "", "").await?;
        times.push(started.elapsed());
        anyhow::ensure!(figures.keys().any(|(_, i)| i == "poster"), "the poster is counted");
    }
    println!(
        "month-end coverage per village: {:.2} s with the version in force (rows), {:.2} s with an earlier \
         version whose poster differs (the poster from places and visits)",
        times[0].as_secs_f64(),
        times[1].as_secs_f64()
    );
    Ok(())
}

/// A campaign version that every household and shop counts toward once more (a new indicator reached by the
/// visits that briefed residents): the dry run and the apply, which recounts each of those places from its visits.
async fn apply_campaign(state: &AppState) -> anyhow::Result<()> {
    let definition = format!(
        "{}\n[[indicator]]\nid = \"talk\"\nzh = \"入户宣讲\"\nen = \"Talk given\"\n\
         counts = [{{ kinds = [\"household\", \"shop\"] }}]\nreached_by = {{ any_of = [\"briefed\"] }}\n",
        client_core::campaign::DEFAULT_TOML
    );
    let started = Instant::now();
    let (plan, _, _) = server::campaign::plan(state, &definition).await?;
    let dry = started.elapsed();
    let started = Instant::now();
    let applied = server::campaign::apply(state, &definition, "bench").await?;
    let apply = started.elapsed();
    anyhow::ensure!(applied.places_changing == plan.places_changing, "the apply and its dry run disagree");
    let longest = server::campaign::LONGEST_RECOUNT_CHUNK_US.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "campaign: a new indicator for {} places: dry run {:.1} s, apply (recount from their visits) {:.1} s, \
         longest hold of the write gate {:.2} s (chunks sized to hold it {} ms)",
        plan.places_changing,
        dry.as_secs_f64(),
        apply.as_secs_f64(),
        longest as f64 / 1e6,
        server::campaign::RECOUNT_HOLD.as_millis()
    );
    for by in [GroupBy::Town, GroupBy::Village] {
        let a = coverage(state, by, None, None).await?;
        let b = scanned(state, by, "", "").await?;
        anyhow::ensure!(a == b, "after the apply, the counts and the scan disagree");
        anyhow::ensure!(a.iter().any(|r| r.indicator == "talk"), "the new indicator is counted");
    }
    println!("check: after the apply, counted and scanned figures are identical");
    Ok(())
}

/// Exports the gap list of every place as CSV through a `doorstep serve` process on the generated database,
/// after one grid's, and prints the time and the server's memory.
async fn export(data_dir: &Path, places: u64) -> anyhow::Result<()> {
    common::create_office(BIN, data_dir, PASSWORD)?;
    let server = Server::start(data_dir)?;
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&serde_json::json!({"username": "office", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("a token")?.to_string();
    let (_, idle) = memory(server.child.id())?;
    println!("\nexport through doorstep serve (pid {}), CSV, gzip as the CLI asks for it", server.child.id());
    println!(
        "{:<34} {:>10} {:>12} {:>10} {:>10} {:>14}",
        "gap list", "rows", "bytes", "first row", "total", "server peak RSS"
    );
    println!(
        "{:<34} {:>10} {:>12} {:>10} {:>10} {:>11.0} MiB",
        "(server idle, after login)",
        "",
        "",
        "",
        "",
        mib(idle)
    );
    for (label, query) in
        [("one grid (G00000), every place", "grid=G00000&all=true"), ("everything, every place", "all=true")]
    {
        let started = Instant::now();
        let mut resp = client
            .get(format!("{}/api/v1/reports/gaps?{query}&format=csv", server.url))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        let (mut bytes, mut lines, mut first) = (0u64, 0u64, None);
        while let Some(chunk) = resp.chunk().await? {
            first.get_or_insert_with(|| started.elapsed());
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let total = started.elapsed();
        let (peak, _) = memory(server.child.id())?;
        println!(
            "{label:<34} {:>10} {:>12} {:>8.0}ms {:>9.1}s {:>11.0} MiB",
            lines - 1,
            bytes,
            first.unwrap_or_default().as_secs_f64() * 1e3,
            total.as_secs_f64(),
            mib(peak)
        );
        if query == "all=true" && lines - 1 != places {
            bail!("the export has {} rows, not {places}", lines - 1);
        }
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A `doorstep serve` process, killed when dropped.
struct Server {
    url: String,
    child: Child,
}

impl Server {
    fn start(data_dir: &Path) -> anyhow::Result<Server> {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        let (url, child) = common::spawn_server(cmd, "warn")?;
        Ok(Server { url, child })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Peak (`VmHWM`) and current (`VmRSS`) resident memory of a process, in bytes.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> anyhow::Result<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(key)).ok_or_else(|| anyhow!("no {key} for {pid}"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse::<u64>()? * 1024)
    };
    Ok((kib("VmHWM:")?, kib("VmRSS:")?))
}
