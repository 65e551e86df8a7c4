//! Territory import benchmark: a province-sized registry of places imported with the real `doorstep territory
//! import` into a real `doorstep serve`, then imported again with about 1% of it changed, then a third time
//! unchanged. Run: `cargo bench --bench import [-- --grids 10000 --runs 1 --server-bin PATH --split-towns
//! --database-url postgres://…/postgres]`.
//!
//! The file is generated: villages of 10 grids, towns of 30 villages, five rural villages in eight, and in each
//! grid the demo town's mix of kinds (80–110 households, 3–10 shops, a market in the first grid of a rural
//! village, buildings, street blocks and a residential complex in urban ones, a pedestrian street and an LED
//! screen in the first grid of a community), about 100 places per grid, one in 20 with a contact. The changed
//! file relabels one place in 400, turns one in 400 from a household into a shop or back, adds a household to
//! one grid in 400, moves one grid in 400 to the next village of its town and renames one village in 400.
//!
//! With `--server-bin OLD` every run imports the same files with both builds (each build's own CLI and server,
//! each on a fresh data dir, alternating which goes first), so that the ratio is measured under the same load.
//! `--split-towns` imports each town as a file of its own (a build that refuses files over 64 MiB needs it at
//! province size). With `--database-url` (a PostgreSQL URL the bench may create databases with) every import
//! runs on a new database, dropped afterwards.
//!
//! The run fails unless the server's summary counts what the generator changed and the coverage report by
//! village (eligible places per indicator) equals the counts recomputed here from the file with the coverage
//! rules.

mod common;

use common::Rng;

use anyhow::{anyhow, bail, Context, Result};
use client_core::campaign::Campaign;
use client_core::grid::model::PlaceKind;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep");
const PASSWORD: &str = "bench-password";
const OFFICE: &str = "bench-office";
const USAGE: &str = "usage: cargo bench --bench import [-- --grids N --runs R --server-bin PATH --split-towns \
                     --database-url postgres://… --xlsx]";
const GRIDS_PER_VILLAGE: usize = 10;
const VILLAGES_PER_TOWN: usize = 30;
/// One in this many places, grids and villages is changed in the second file.
const CHANGE_EVERY: usize = 400;

struct Args {
    grids: usize,
    runs: usize,
    old_bin: Option<PathBuf>,
    split_towns: bool,
    database_url: Option<String>,
    /// Import the same territory as CSV and as an XLSX workbook in turn, with this build.
    xlsx: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { grids: 1000, runs: 1, old_bin: None, split_towns: false, database_url: None, xlsx: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| anyhow!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<usize> {
            v.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("{name} {v:?} is not a positive number"))
        };
        match arg.as_str() {
            "--grids" => args.grids = number("--grids", value("--grids")?)?,
            "--runs" => args.runs = number("--runs", value("--runs")?)?,
            "--split-towns" => args.split_towns = true,
            "--xlsx" => args.xlsx = true,
            "--database-url" => args.database_url = Some(value("--database-url")?),
            "--server-bin" => {
                let bin = PathBuf::from(value("--server-bin")?);
                if !bin.is_file() {
                    bail!("--server-bin {}: no such file", bin.display());
                }
                args.old_bin = Some(bin);
            }
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if args.xlsx && args.old_bin.is_some() {
        bail!("--xlsx compares the two formats with this build; compare builds without it\n{USAGE}");
    }
    Ok(args)
}

#[derive(Clone)]
struct Row {
    place_id: String,
    kind: PlaceKind,
    label: String,
    grid: String,
    grid_name: String,
    village: String,
    village_name: String,
    rural: bool,
    town: String,
    town_name: String,
    address: String,
    contact_name: String,
    contact_phone: String,
    lat: f64,
    lon: f64,
}

const HEADER: &str = "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,\
                      town_name,address,contact_name,contact_phone,lat,lon";

fn village_name(town: usize, village: usize, rural: bool) -> String {
    let suffix = if rural { "村" } else { "社区" };
    format!("第{town}镇{village}号{suffix}")
}

/// The territory of `grids` grids, in file order (grid by grid).
fn generate(grids: usize) -> Vec<Row> {
    let mut rng = Rng(2021);
    let mut rows = Vec::with_capacity(grids * 100);
    for g in 0..grids {
        let (v, gi) = (g / GRIDS_PER_VILLAGE, g % GRIDS_PER_VILLAGE + 1);
        let (t, vi) = (v / VILLAGES_PER_TOWN + 1, v % VILLAGES_PER_TOWN + 1);
        // Five villages in eight are rural, as in the demo town.
        let rural = v % 8 < 5;
        let (town, village) = (format!("T{t:04}"), format!("T{t:04}-V{vi:02}"));
        let grid = format!("{village}-G{gi:02}");
        let mut kinds: Vec<PlaceKind> = Vec::new();
        kinds.extend(std::iter::repeat_n(PlaceKind::Household, rng.range(80, 110)));
        kinds.extend(std::iter::repeat_n(PlaceKind::Shop, rng.range(3, 10)));
        if rural {
            if gi == 1 {
                kinds.push(PlaceKind::Market);
            }
        } else {
            kinds.extend(std::iter::repeat_n(PlaceKind::Building, rng.range(5, 12)));
            kinds.extend(std::iter::repeat_n(PlaceKind::StreetBlock, 2));
            kinds.push(PlaceKind::ResidentialComplex);
            if gi == 1 {
                kinds.push(PlaceKind::PedestrianStreet);
                kinds.push(PlaceKind::LedScreen);
            }
        }
        let vname = village_name(t, vi, rural);
        for (i, kind) in kinds.into_iter().enumerate() {
            let label = match kind {
                PlaceKind::Household => format!("{}组{}号", i / 20 + 1, i % 20 + 1),
                other => format!("{}{}", other.zh(), i + 1),
            };
            let contact = rows.len() % 20 == 0;
            rows.push(Row {
                place_id: format!("{grid}-P{:03}", i + 1),
                kind,
                address: format!("{vname}{label}"),
                label,
                grid: grid.clone(),
                grid_name: format!("{vname}第{gi}网格"),
                village: village.clone(),
                village_name: vname.clone(),
                rural,
                town: town.clone(),
                town_name: format!("第{t}镇"),
                contact_name: if contact { format!("联系人{}", rows.len()) } else { String::new() },
                contact_phone: if contact { format!("138{:08}", rows.len()) } else { String::new() },
                lat: rng.coordinate(30.18),
                lon: rng.coordinate(105.83),
            });
        }
    }
    rows
}

/// What the second file changes, as the server's summary should count it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Changes {
    places_added: u64,
    places_changed: u64,
    grids_changed: u64,
}

/// About 1% of the territory changed: labels, kinds, a new household, grids moved, villages renamed.
fn change(rows: &[Row]) -> (Vec<Row>, Changes) {
    let mut out = Vec::with_capacity(rows.len() + rows.len() / 100 / CHANGE_EVERY + 1);
    let mut changes = Changes::default();
    let mut changed_grids = std::collections::BTreeSet::new();
    let (mut grid_index, mut last_grid) = (0usize, String::new());
    for (i, row) in rows.iter().enumerate() {
        if row.grid != last_grid {
            if !last_grid.is_empty() {
                grid_index += 1;
            }
            last_grid = row.grid.clone();
        }
        let mut row = row.clone();
        if i % CHANGE_EVERY == 17 {
            row.label.push('改');
            changes.places_changed += 1;
            changed_grids.insert(row.grid.clone());
        }
        if i % CHANGE_EVERY == 217 {
            row.kind = if row.kind == PlaceKind::Household { PlaceKind::Shop } else { PlaceKind::Household };
            changes.places_changed += 1;
            changed_grids.insert(row.grid.clone());
        }
        let mut village_index = grid_index / GRIDS_PER_VILLAGE;
        if grid_index % CHANGE_EVERY == 123 {
            // To the next village of the same town (the first if it is the last), rural or urban as that one is.
            let first_of_town = village_index - village_index % VILLAGES_PER_TOWN;
            village_index = first_of_town + (village_index + 1 - first_of_town) % VILLAGES_PER_TOWN;
            let (town, vi) = (village_index / VILLAGES_PER_TOWN + 1, village_index % VILLAGES_PER_TOWN + 1);
            row.rural = village_index % 8 < 5;
            row.village = format!("T{town:04}-V{vi:02}");
            row.village_name = village_name(town, vi, row.rural);
            changed_grids.insert(row.grid.clone());
        }
        if village_index % CHANGE_EVERY == 77 {
            row.village_name.push('新');
            changed_grids.insert(row.grid.clone());
        }
        let next_grid = rows.get(i + 1).map(|r| &r.grid);
        let end_of_grid = next_grid != Some(&row.grid);
        if end_of_grid && grid_index % CHANGE_EVERY == 251 {
            let mut added = row.clone();
            added.place_id = format!("{}-P999", row.grid);
            added.kind = PlaceKind::Household;
            added.label = "新增户".into();
            changes.places_added += 1;
            changed_grids.insert(row.grid.clone());
            out.push(row);
            out.push(added);
            continue;
        }
        out.push(row);
    }
    changes.grids_changed = changed_grids.len() as u64;
    (out, changes)
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn write_csv(path: &Path, rows: &[&Row]) -> Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    for r in rows {
        let fields = [
            r.place_id.as_str(),
            r.kind.id(),
            &r.label,
            &r.grid,
            &r.grid_name,
            &r.village,
            &r.village_name,
            if r.rural { "village" } else { "community" },
            &r.town,
            &r.town_name,
            &r.address,
            &r.contact_name,
            &r.contact_phone,
        ];
        let text: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{},{:.5},{:.5}", text.join(","), r.lat, r.lon)?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The same rows as an office's workbook: text cells, coordinates as numbers, written in constant memory.
fn write_xlsx(path: &Path, rows: &[&Row]) -> Result<u64> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory();
    for (c, h) in HEADER.split(',').enumerate() {
        sheet.write_string(0, c as u16, h)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let kind = if r.rural { "village" } else { "community" };
        let texts = [
            r.place_id.as_str(),
            r.kind.id(),
            &r.label,
            &r.grid,
            &r.grid_name,
            &r.village,
            &r.village_name,
            kind,
            &r.town,
            &r.town_name,
            &r.address,
            &r.contact_name,
            &r.contact_phone,
        ];
        for (c, text) in texts.iter().enumerate() {
            if !text.is_empty() {
                sheet.write_string(row, c as u16, *text)?;
            }
        }
        // Rounded as the CSV writes them, so both files hold the same places.
        sheet.write_number(row, 13, (r.lat * 1e5).round() / 1e5)?;
        sheet.write_number(row, 14, (r.lon * 1e5).round() / 1e5)?;
    }
    book.save(path)?;
    Ok(std::fs::metadata(path)?.len())
}

/// The files of one territory: the whole file, or one per town; CSV, or XLSX workbooks.
fn write_files(dir: &Path, name: &str, rows: &[Row], split_towns: bool, xlsx: bool) -> Result<(Vec<PathBuf>, u64)> {
    let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(if split_towns { r.town.as_str() } else { "" }).or_default().push(r);
    }
    let mut paths = Vec::new();
    let mut bytes = 0;
    for (town, group) in groups {
        let extension = if xlsx { "xlsx" } else { "csv" };
        let path = dir.join(format!("{name}{}{town}.{extension}", if town.is_empty() { "" } else { "-" }));
        bytes += if xlsx { write_xlsx(&path, &group)? } else { write_csv(&path, &group)? };
        paths.push(path);
    }
    Ok((paths, bytes))
}

/// Eligible places per (village, indicator), recomputed from the rows with the coverage rules.
fn expected_eligible(rows: &[Row]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for r in rows {
        for ind in Campaign::default_campaign().eligible_indicators(r.kind, r.rural) {
            *out.entry((r.village.clone(), ind.id.to_string())).or_default() += 1;
        }
    }
    out
}

/// One `doorstep serve` process. Killed when dropped, so a failed run leaves no server behind.
struct Server {
    url: String,
    child: Child,
}

impl Server {
    fn start(bin: &Path, data_dir: &Path, database_url: Option<&str>) -> Result<Server> {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        database_arg(&mut cmd, database_url);
        let (url, child) = common::spawn_server(cmd, "warn,sqlx::query=error")?;
        Ok(Server { url, child })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Passes the database URL on, and keeps one from the environment from reaching an SQLite run.
fn database_arg(cmd: &mut Command, database_url: Option<&str>) {
    match database_url {
        Some(url) => cmd.args(["--database-url", url]),
        None => cmd.env_remove("DOORSTEP_DATABASE_URL"),
    };
}

/// Runs the CLI with a password on stdin if given; fails with its stderr unless it succeeds.
fn cli(bin: &Path, profile: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = Command::new(bin)
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env("DOORSTEP_LOG", "warn")
        .env_remove("DOORSTEP_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running doorstep {}", args.join(" ")))?;
    if let Some(text) = stdin {
        child.stdin.take().context("stdin")?.write_all(format!("{text}\n").as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("doorstep {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Peak resident memory (`VmHWM`) of a process, in bytes.
fn peak_rss(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).ok_or_else(|| anyhow!("no VmHWM for {pid}"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse::<u64>()? * 1024)
}

/// Resets a process's peak RSS to its current RSS (`clear_refs`, Linux 4.0 on).
fn reset_peak(pid: &str) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").with_context(|| format!("resetting the peak RSS of {pid}"))
}

/// User plus system CPU time of a process, all threads.
fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("unexpected /proc stat")?.1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// One timed import of a territory (one or several files).
struct Timing {
    wall: Duration,
    server_cpu: Duration,
    peak_rss: u64,
    /// The CLI's summary line of each file.
    summaries: Vec<String>,
}

fn import(bin: &Path, profile: &Path, server: &Server, files: &[PathBuf]) -> Result<Timing> {
    let pid = server.pid();
    reset_peak(&pid)?;
    let cpu = cpu_time(&pid)?;
    let start = Instant::now();
    let mut summaries = Vec::new();
    for file in files {
        let path = file.to_str().context("file path")?;
        summaries.push(cli(bin, profile, &["territory", "import", path], None)?.trim().to_string());
    }
    Ok(Timing { wall: start.elapsed(), server_cpu: cpu_time(&pid)? - cpu, peak_rss: peak_rss(&pid)?, summaries })
}

/// The figures of the CLI's summary lines, added up over the files of a split import: rows, places added,
/// changed, unchanged, areas added, changed, grids updated.
fn summed(summaries: &[String]) -> Result<[u64; 7]> {
    let mut total = [0u64; 7];
    for line in summaries {
        let numbers: Vec<u64> =
            line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        if numbers.len() != 7 {
            bail!("unexpected summary {line:?}");
        }
        for (t, n) in total.iter_mut().zip(numbers) {
            *t += n;
        }
    }
    Ok(total)
}

fn check_summary(t: &Timing, expected: &Changes, phase: &str) -> Result<()> {
    let [_, places_added, places_changed, _, _, _, grids_changed] = summed(&t.summaries)?;
    let got = Changes { places_added, places_changed, grids_changed };
    if &got != expected {
        bail!("{phase}: the server counted {got:?}, the generator {expected:?}: {:?}", t.summaries);
    }
    Ok(())
}

/// The coverage report by village as the office's CLI prints it, eligible places per (village, indicator).
fn reported_eligible(bin: &Path, profile: &Path) -> Result<BTreeMap<(String, String), u64>> {
    let json = cli(bin, profile, &["report", "coverage", "--by", "village", "--format", "json"], None)?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).context("coverage JSON")?;
    let mut out = BTreeMap::new();
    for r in rows {
        let field = |k: &str| r[k].as_str().map(str::to_string).ok_or_else(|| anyhow!("row lacks {k}: {r}"));
        let eligible = r["eligible"].as_u64().ok_or_else(|| anyhow!("row lacks eligible: {r}"))?;
        if eligible > 0 {
            out.insert((field("area")?, field("indicator")?), eligible);
        }
    }
    Ok(out)
}

/// A fresh PostgreSQL database for one import run, dropped when done.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str, name: String) -> Result<PgDatabase> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(admin_url).await.context("connecting to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut conn).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
        Ok(PgDatabase { admin_url: admin_url.to_string(), url: format!("{base}/{name}"), name })
    }

    async fn drop_now(self) -> Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

/// What one build measured in one run: first import, re-import with changes, same file again.
struct Measured {
    build: &'static str,
    phases: Vec<(&'static str, Timing)>,
    database_bytes: Option<u64>,
}

#[derive(Clone)]
struct Files {
    places: usize,
    first: Vec<PathBuf>,
    changed: Vec<PathBuf>,
    first_changes: Changes,
    second_changes: Changes,
    expected: BTreeMap<(String, String), u64>,
}

async fn measure(build: &'static str, bin: &Path, files: &Files, tmp: &Path, args: &Args) -> Result<Measured> {
    let run_dir = tempfile::tempdir_in(tmp)?;
    let data_dir = run_dir.path().join("data");
    let profile = run_dir.path().join("profile");
    let pg = match &args.database_url {
        Some(admin) => Some(PgDatabase::create(admin, format!("doorstep_import_bench_{}", std::process::id())).await?),
        None => None,
    };
    let database_url = pg.as_ref().map(|d| d.url.as_str());
    let mut cmd = Command::new(bin);
    cmd.arg("--profile").arg(&profile).args(["admin", "create-user", "--data-dir"]).arg(&data_dir);
    cmd.args(["--username", OFFICE, "--role", "office", "--password-stdin"]);
    database_arg(&mut cmd, database_url);
    let mut child = cmd.env("DOORSTEP_LOG", "warn").stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
    child.stdin.take().context("stdin")?.write_all(format!("{PASSWORD}\n").as_bytes())?;
    if !child.wait()?.success() {
        bail!("doorstep admin create-user failed");
    }
    let server = Server::start(bin, &data_dir, database_url)?;
    cli(bin, &profile, &["login", "--server", &server.url, "--username", OFFICE, "--password-stdin"], Some(PASSWORD))?;

    let mut phases = Vec::new();
    let first = import(bin, &profile, &server, &files.first)?;
    check_summary(&first, &files.first_changes, "first import")?;
    phases.push(("first import", first));
    let changed = import(bin, &profile, &server, &files.changed)?;
    check_summary(&changed, &files.second_changes, "re-import, ~1% changed")?;
    phases.push(("re-import, ~1% changed", changed));
    let again = import(bin, &profile, &server, &files.changed)?;
    check_summary(&again, &Changes::default(), "same file again")?;
    phases.push(("same file again", again));
    let reported = reported_eligible(bin, &profile)?;
    if reported != files.expected {
        let wrong: Vec<_> = files
            .expected
            .iter()
            .filter(|(k, v)| reported.get(*k) != Some(*v))
            .take(5)
            .map(|(k, v)| format!("{k:?}: expected {v}, reported {:?}", reported.get(k)))
            .collect();
        bail!("{build}: eligible places by village differ from the file: {wrong:?}");
    }
    let database_bytes = match database_url {
        None => {
            let mut total = 0;
            for entry in std::fs::read_dir(&data_dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with("doorstep.db") {
                    total += entry.metadata()?.len();
                }
            }
            Some(total)
        }
        Some(_) => None,
    };
    drop(server);
    if let Some(pg) = pg {
        pg.drop_now().await?;
    }
    Ok(Measured { build, phases, database_bytes })
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print(m: &Measured, grids: usize, places: usize) {
    let db = m.database_bytes.map(|b| format!(", database files {}", mib(b))).unwrap_or_default();
    println!("\n{}{db}", m.build);
    println!("| phase | wall | grids/s | places/s | server CPU | server peak RSS | summary |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, t) in &m.phases {
        let s = t.wall.as_secs_f64();
        let summary =
            if t.summaries.len() == 1 { t.summaries[0].clone() } else { format!("{} files", t.summaries.len()) };
        println!(
            "| {name} | {} | {:.0} | {:.0} | {} | {} | {summary} |",
            secs(t.wall),
            grids as f64 / s,
            places as f64 / s,
            secs(t.server_cpu),
            mib(t.peak_rss)
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let tmp = tempfile::tempdir()?;
    let started = Instant::now();
    let rows = generate(args.grids);
    let (changed, second_changes) = change(&rows);
    let grids = args.grids;
    let first_changes = Changes { places_added: rows.len() as u64, places_changed: 0, grids_changed: grids as u64 };
    let (first, first_bytes) = write_files(tmp.path(), "territory", &rows, args.split_towns, false)?;
    let (changed_files, _) = write_files(tmp.path(), "changed", &changed, args.split_towns, false)?;
    let workbooks = if args.xlsx {
        let (first, bytes) = write_files(tmp.path(), "territory", &rows, args.split_towns, true)?;
        let (changed, _) = write_files(tmp.path(), "changed", &changed, args.split_towns, true)?;
        println!("the same territory as XLSX: {} in {} file(s)", mib(bytes), first.len());
        Some((first, changed))
    } else {
        None
    };
    let files = Files {
        places: rows.len(),
        first,
        changed: changed_files,
        first_changes,
        second_changes,
        expected: expected_eligible(&changed),
    };
    let villages = grids.div_ceil(GRIDS_PER_VILLAGE);
    println!(
        "territory: {grids} grids, {villages} villages, {} towns, {} places, {} in {} file(s); re-import changes \
         {:?} (generated in {})",
        villages.div_ceil(VILLAGES_PER_TOWN),
        rows.len(),
        mib(first_bytes),
        files.first.len(),
        files.second_changes,
        secs(started.elapsed())
    );
    drop(rows);
    drop(changed);
    let new_bin = PathBuf::from(BIN);
    if let Some((first, changed)) = workbooks {
        let xlsx = Files { first, changed, ..files.clone() };
        return compare_formats(&new_bin, &files, &xlsx, tmp.path(), &args).await;
    }
    let mut results: Vec<Measured> = Vec::new();
    for run in 0..args.runs {
        let mut order: Vec<(&'static str, &Path)> = vec![("this build", new_bin.as_path())];
        if let Some(old) = &args.old_bin {
            order.push(("--server-bin", old.as_path()));
            if run % 2 == 0 {
                order.reverse();
            }
        }
        for (build, bin) in order {
            let m = measure(build, bin, &files, tmp.path(), &args).await?;
            println!("run {} of {}:", run + 1, args.runs);
            print(&m, grids, files.places);
            results.push(m);
        }
    }
    if let Some(old) = &args.old_bin {
        println!("\nratios, --server-bin ({}) wall time over this build's, per run:", old.display());
        for pair in results.chunks(2) {
            let (new, old) = if pair[0].build == "this build" { (&pair[0], &pair[1]) } else { (&pair[1], &pair[0]) };
            let ratios: Vec<String> = new
                .phases
                .iter()
                .zip(&old.phases)
                .map(|((name, n), (_, o))| format!("{name}: ×{:.1}", o.wall.as_secs_f64() / n.wall.as_secs_f64()))
                .collect();
            println!("  {}", ratios.join(", "));
        }
    }
    Ok(())
}

/// The same territory imported as CSV and as XLSX with this build, in turn (which goes first alternates per run),
/// and the workbook's wall time over the CSV's per phase.
async fn compare_formats(bin: &Path, csv: &Files, xlsx: &Files, tmp: &Path, args: &Args) -> Result<()> {
    let mut ratios = Vec::new();
    for run in 0..args.runs {
        let mut order = [("CSV", csv), ("XLSX", xlsx)];
        if run % 2 == 1 {
            order.reverse();
        }
        let mut measured = Vec::new();
        for (format, files) in order {
            let m = measure(format, bin, files, tmp, args).await?;
            println!("run {} of {}:", run + 1, args.runs);
            print(&m, args.grids, files.places);
            measured.push(m);
        }
        measured.sort_by_key(|m| m.build != "CSV");
        let (csv, xlsx) = (&measured[0], &measured[1]);
        let line: Vec<String> = csv
            .phases
            .iter()
            .zip(&xlsx.phases)
            .map(|((name, c), (_, x))| format!("{name}: ×{:.2}", x.wall.as_secs_f64() / c.wall.as_secs_f64()))
            .collect();
        ratios.push(line.join(", "));
    }
    println!("\nratios, XLSX wall time over CSV's, per run:");
    for line in ratios {
        println!("  {line}");
    }
    Ok(())
}
