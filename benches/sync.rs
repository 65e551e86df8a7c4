//! Sync load generator: N simulated devices record M visits offline each, then all sync at once against the real
//! `doorstep serve` binary. Run: `cargo bench --bench sync [-- --devices 20 --visits 60 --grids 19 --team-size 20
//! --database-url postgres://… --instances 1 --restart --server-bin PATH --pause-before-visits SECS
//! --spread SECS]`.
//!
//! Reports visits ingested per second, per-sync latency (p50, p99), bytes on the wire per visit (gzip bodies as
//! sent), CPU time per phase (servers, this generator, the whole machine), the bytes the servers wrote (their
//! databases' logs and checkpoints) and each server process's peak RSS,
//! against two baselines from the same run: an empty sync (the fixed cost of a request) and each visit as compact
//! JSON.
//!
//! What each device does on its phone happens outside the timed window of a phase: its request is built before
//! (its visits were recorded offline, so its push is ready before it reaches a signal), and the reply is applied
//! to its documents after all replies have arrived. The window holds the HTTP exchanges and the servers' work,
//! and the latency of a sync is from sending its request to holding the whole reply.
//!
//! The server is the `doorstep` binary in separate processes: bootstrapped with `doorstep admin create-user`,
//! started with `doorstep serve --listen 127.0.0.1:0`, and set up only through the HTTP API (territory import,
//! teams, assignments, users, device enrolment). Without `--database-url` it uses its embedded SQLite file in a
//! temporary data dir; with `--database-url postgres://…` (an empty database) `--instances K` starts K servers on
//! that database, sharing one token secret, and the devices are spread over them round-robin.
//!
//! The territory is the demo town, copied under new codes as often as needed so that every team holds G grids
//! of its own (default: the 19 of one town); devices form teams of at most S (default 20). With `--restart` the
//! servers are stopped after the setup and started again on their data dirs, so that their peak memory is that
//! of serving what is on disk (e.g. `--devices 500 --team-size 1 --grids 20`: 10,000 grid documents, every one
//! of them synced), not of having imported it. Devices sync through
//! `POST /api/v1/sync` with the CBOR protocol and gzip bodies, building pushes and applying replies as
//! `doorstep field sync` does (`field/src/device/mod.rs`); only their grid store is kept in memory instead of a profile.
//!
//! Phases, each measured:
//! 1. initial download: every device's first sync, one device at a time (it receives its grids' snapshots);
//! 2. empty sync, before: all N sync concurrently with nothing new either way (the fixed cost of a request,
//!    the baseline for the next phase);
//! 3. visit sync: every device records M visits offline, then all N sync concurrently (with `--spread SECS`,
//!    each starts at its own instant, the N instants evenly spaced over SECS seconds in a shuffled order: an
//!    offered load of N×M/SECS visits per second, and each sync's latency counts from its own start);
//! 4. catch-up: all N sync concurrently again and receive the visits of team-mates that synced after them;
//! 5. empty sync, after: nothing new again, but every grid now has one head per device that wrote to it.
//!
//! The run fails unless the database gained exactly M visits per volunteer (the office's activity report), the
//! servers count N×M visits ingested (`/metrics`), and every device holds all its team's visits with the same
//! heads as its team-mates.

mod common;

use common::Rng;

use anyhow::{anyhow, bail, Context, Result};
use automerge::{ActorId, ChangeHash};
use client_core::grid::model::{Deliveries, Outcome, Place, PlaceKind, Visit};
use client_core::protocol::{self, GridReply, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::sync::{apply_reply, build_push};
use client_core::GridDoc;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep");
/// The server binary under test: this build's `doorstep`, or another build given with `--server-bin` (to compare
/// two versions of the server in one run against the same load generator).
static SERVER_BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn server_bin() -> &'static Path {
    SERVER_BIN.get_or_init(|| PathBuf::from(BIN))
}
const PASSWORD: &str = "bench-password";
const OFFICE: &str = "bench-office";
const USAGE: &str = "usage: cargo bench --bench sync [-- --devices N --visits M --grids G --team-size S \
                     --database-url postgres://… --instances K --restart --server-bin PATH \
                     --pause-before-visits SECS --spread SECS --visit-hours H]";

struct Args {
    devices: usize,
    visits: usize,
    /// Grids per team; by default those of one demo town.
    grids: Option<usize>,
    /// Devices per team at most; by default 20, about the size of a real team.
    team_size: usize,
    database_url: Option<String>,
    instances: usize,
    /// Restart the servers on their data dirs after the setup, so that their memory reflects serving what is
    /// on disk rather than having imported it.
    restart: bool,
    /// Seconds to wait before the visit sync, to attach a profiler to the server processes (`perf record -p`).
    pause_before_visits: u64,
    /// Seconds over which the devices' visit syncs start, instead of all in one instant.
    spread: Duration,
    /// The visits of a sync fall in this many hours before it: by default a day's round (8 hours), as when
    /// volunteers sync at base in the evening; 720 for a month's visits synced at once.
    visit_hours: u64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        devices: 20,
        visits: 60,
        grids: None,
        team_size: 20,
        database_url: None,
        instances: 1,
        restart: false,
        pause_before_visits: 0,
        spread: Duration::ZERO,
        visit_hours: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| anyhow!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<usize> {
            v.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("{name} {v:?} is not a positive number"))
        };
        match arg.as_str() {
            "--devices" => args.devices = number("--devices", value("--devices")?)?,
            "--visits" => args.visits = number("--visits", value("--visits")?)?,
            "--grids" => args.grids = Some(number("--grids", value("--grids")?)?),
            "--team-size" => args.team_size = number("--team-size", value("--team-size")?)?,
            "--instances" => args.instances = number("--instances", value("--instances")?)?,
            "--visit-hours" => args.visit_hours = number("--visit-hours", value("--visit-hours")?)? as u64,
            "--restart" => args.restart = true,
            "--pause-before-visits" => {
                let v = value("--pause-before-visits")?;
                args.pause_before_visits =
                    v.parse().map_err(|_| anyhow!("--pause-before-visits {v:?} is not seconds"))?;
            }
            "--spread" => {
                let v = value("--spread")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| anyhow!("--spread {v:?} is not a number of seconds"))?;
                args.spread = Duration::from_secs_f64(secs);
            }
            "--database-url" => args.database_url = Some(value("--database-url")?),
            "--server-bin" => {
                let bin = PathBuf::from(value("--server-bin")?);
                if !bin.is_file() {
                    bail!("--server-bin {}: no such file", bin.display());
                }
                SERVER_BIN.set(bin).map_err(|_| anyhow!("--server-bin given twice"))?;
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
    let postgres = args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
    if args.instances > 1 && !postgres {
        bail!("--instances {} needs --database-url postgres://…: an SQLite file belongs to one server", args.instances);
    }
    Ok(args)
}

/// The demo territory `copies` times over: the first copy as it is, the others with every code prefixed `T02-`,
/// `T03-`, … so that each team can hold grids of its own. Returns each copy's CSV and its grid codes.
fn territory(copies: usize) -> Result<Vec<(String, Vec<String>)>> {
    let demo = server::demo::territory_csv();
    let mut out = Vec::with_capacity(copies);
    for k in 1..=copies {
        let mut reader = csv::Reader::from_reader(demo.as_bytes());
        let headers = reader.headers()?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| anyhow!("demo CSV lacks {name}"));
        let (place, grid, village) = (col("place_id")?, col("grid_code")?, col("village_code")?);
        let (town, town_name) = (col("town_code")?, col("town_name")?);
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&headers)?;
        let mut grids: Vec<String> = Vec::new();
        for record in reader.records() {
            let mut fields: Vec<String> = record?.iter().map(str::to_string).collect();
            if k > 1 {
                for c in [place, grid, village] {
                    fields[c] = format!("T{k:02}-{}", fields[c]);
                }
                fields[town] = format!("T{k:02}");
                fields[town_name] = format!("{}{k}", fields[town_name]);
            }
            if !grids.contains(&fields[grid]) {
                grids.push(fields[grid].clone());
            }
            writer.write_record(&fields)?;
        }
        let bytes = writer.into_inner().map_err(|e| anyhow!("writing the territory CSV: {e}"))?;
        out.push((String::from_utf8(bytes)?, grids));
    }
    Ok(out)
}

/// Passes the database URL on, and keeps one from the environment from reaching an SQLite run.
fn database_arg(cmd: &mut Command, database_url: Option<&str>) {
    match database_url {
        Some(url) => cmd.args(["--database-url", url]),
        None => cmd.env_remove("DOORSTEP_DATABASE_URL"),
    };
}

/// `doorstep admin create-user`: the office account, written straight into the database (it also creates the
/// data dir's token secret).
fn create_office(data_dir: &Path, profile: &Path, database_url: Option<&str>) -> Result<()> {
    let mut cmd = Command::new(server_bin());
    cmd.arg("--profile").arg(profile).args(["admin", "create-user", "--data-dir"]).arg(data_dir);
    cmd.args(["--username", OFFICE, "--role", "office", "--password-stdin"]);
    database_arg(&mut cmd, database_url);
    let mut child = cmd
        .env("DOORSTEP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running doorstep admin create-user")?;
    child.stdin.take().context("stdin")?.write_all(format!("{PASSWORD}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("doorstep admin create-user failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// One `doorstep serve` process. Killed when dropped, so a failed run leaves no server behind.
struct Instance {
    url: String,
    /// Its `/metrics` (served on a port of its own).
    metrics: String,
    child: Child,
}

impl Instance {
    fn start(data_dir: &Path, database_url: Option<&str>) -> Result<Instance> {
        let mut cmd = Command::new(server_bin());
        // A port that was free a moment ago: the server prints only its API's address.
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", &metrics.to_string(), "--data-dir"]);
        cmd.arg(data_dir);
        database_arg(&mut cmd, database_url);
        // Per-sync info lines would only interleave with the report, and under this load sqlx warns of every
        // statement that waited over a second for a grid's lock.
        let (url, child) = common::spawn_server(cmd, "warn,sqlx::query=error")?;
        Ok(Instance { url, metrics: format!("http://{metrics}/metrics"), child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time this process's writes held SQLite's single writer since it started (0 on PostgreSQL).
    async fn write_gate_held(&self, client: &reqwest::Client) -> Result<Duration> {
        let text = client.get(&self.metrics).send().await?.error_for_status()?.text().await?;
        let seconds = text
            .lines()
            .find_map(|l| l.strip_prefix("doorstep_write_gate_held_seconds_sum "))
            .map_or(Ok(0.0), str::parse::<f64>)?;
        Ok(Duration::from_secs_f64(seconds))
    }

    /// This process's Prometheus counters since it started, summed over their labels.
    async fn counters(&self, client: &reqwest::Client) -> Result<BTreeMap<String, u64>> {
        let text = client.get(&self.metrics).send().await?.error_for_status()?.text().await?;
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let name = series.split('{').next().unwrap_or(series);
            *out.entry(name.to_string()).or_default() += value.parse::<f64>().unwrap_or(0.0) as u64;
        }
        Ok(out)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Peak (`VmHWM`) and current (`VmRSS`) resident memory of a process, in bytes.
fn memory(pid: &str) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(key)).ok_or_else(|| anyhow!("no {key} for {pid}"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse::<u64>()? * 1024)
    };
    Ok((kib("VmHWM:")?, kib("VmRSS:")?))
}

/// Reads a process's peak and current RSS, then resets its peak to the current RSS (`clear_refs`, Linux 4.0 on).
fn reset_peak(pid: &str) -> Result<(u64, u64)> {
    let before = memory(pid)?;
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak RSS of {pid}"))?;
    Ok(before)
}

/// User plus system CPU time of a process, all threads.
fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are fixed. utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')').context("unexpected /proc stat")?.1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ: 100 on every Linux platform.
    Ok(Duration::from_millis(ticks * 10))
}

/// Bytes a process handed to `write`-like system calls so far (`wchar`): for a server, its database's
/// write-ahead log and checkpoints, whether or not the kernel has put them on the disk yet.
fn bytes_written(pid: &str) -> Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let line = io.lines().find_map(|l| l.strip_prefix("wchar:")).ok_or_else(|| anyhow!("no wchar for {pid}"))?;
    Ok(line.trim().parse()?)
}

/// CPU time spent so far: by the server processes together, by this generator, and by the whole machine (all
/// processes, PostgreSQL's included); and the bytes the server processes wrote.
#[derive(Default, Clone, Copy)]
struct Cpu {
    servers: Duration,
    generator: Duration,
    machine: Duration,
    servers_written: u64,
}

impl Cpu {
    fn now(instances: &[Instance]) -> Result<Cpu> {
        let servers = instances.iter().map(|i| cpu_time(&i.pid().to_string())).sum::<Result<Duration>>()?;
        let servers_written = instances.iter().map(|i| bytes_written(&i.pid().to_string())).sum::<Result<u64>>()?;
        let stat = std::fs::read_to_string("/proc/stat")?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .context("unexpected /proc/stat")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        // user nice system idle iowait irq softirq …: all but idle and I/O wait.
        let busy = ticks.iter().take(7).sum::<u64>() - ticks[3] - ticks[4];
        let machine = Duration::from_millis(busy * 10);
        Ok(Cpu { servers, generator: cpu_time("self")?, machine, servers_written })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            servers: self.servers - before.servers,
            generator: self.generator - before.generator,
            machine: self.machine - before.machine,
            servers_written: self.servers_written - before.servers_written,
        }
    }
}

/// The office's session, for the setup and the end-of-run counts.
struct Office {
    client: reqwest::Client,
    base: String,
    /// Renewed when it expires: a large setup outlasts an office session token.
    token: std::sync::Mutex<String>,
}

impl Office {
    async fn login(base: &str) -> Result<Office> {
        let client = client()?;
        let token = Office::session(&client, base).await?;
        Ok(Office { client, base: base.to_string(), token: std::sync::Mutex::new(token) })
    }

    async fn session(client: &reqwest::Client, base: &str) -> Result<String> {
        let reply: serde_json::Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": OFFICE, "password": PASSWORD }))
            .send()
            .await?
            .error_for_status()
            .context("office login")?
            .json()
            .await?;
        Ok(reply["token"].as_str().ok_or_else(|| anyhow!("login reply lacks a token: {reply}"))?.to_string())
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Body) -> Result<reqwest::Response> {
        let mut resp = self.send(method.clone(), path, body.clone()).await?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            let token = Office::session(&self.client, &self.base).await?;
            *self.token.lock().expect("token lock poisoned") = token;
            resp = self.send(method.clone(), path, body).await?;
        }
        let status = resp.status();
        if !status.is_success() {
            bail!("{method} {path}: HTTP {status}: {}", resp.text().await.unwrap_or_default());
        }
        Ok(resp)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Body) -> Result<reqwest::Response> {
        let token = self.token.lock().expect("token lock poisoned").clone();
        let req = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
        let req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Csv(text) => req.header("content-type", "text/csv").body(text),
        };
        req.send().await.with_context(|| format!("{method} {path}"))
    }

    /// Visits stored per volunteer, from the activity report over the days the bench's visits fall in (those
    /// of the `visit_hours` before now).
    async fn visits_by_volunteer(&self, visit_hours: u64) -> Result<BTreeMap<String, u64>> {
        let today = chrono::Utc::now().date_naive();
        let (from, to) = (today - chrono::Days::new(visit_hours / 24 + 2), today + chrono::Days::new(1));
        let path = format!("/api/v1/reports/activity?by=volunteer&from={from}&to={to}&utc_offset=Z");
        let rows: Vec<serde_json::Value> = self.call(reqwest::Method::GET, &path, Body::None).await?.json().await?;
        rows.iter()
            .map(|r| {
                let key = r["key"].as_str().ok_or_else(|| anyhow!("activity row lacks key: {r}"))?;
                Ok((key.to_string(), r["visits"].as_u64().ok_or_else(|| anyhow!("activity row lacks visits"))?))
            })
            .collect()
    }
}

#[derive(Clone)]
enum Body {
    None,
    Json(serde_json::Value),
    Csv(String),
}

/// One grid as a device holds it: the document and the heads the server last confirmed.
struct HeldGrid {
    doc: GridDoc,
    confirmed: Vec<ChangeHash>,
}

/// A field device, as `doorstep field` keeps it in its profile, but in memory.
struct Device {
    username: String,
    team: usize,
    /// The server instance this device syncs with.
    server: String,
    device_id: String,
    actor: ActorId,
    token: String,
    grids: BTreeMap<String, HeldGrid>,
}

/// What one device's sync cost: body sizes summed over its round trips.
#[derive(Default, Clone, Copy)]
struct SyncStats {
    elapsed: Duration,
    rounds: usize,
    request_bytes: usize,
    response_bytes: usize,
    sent_changes: usize,
    stored: u64,
    received_changes: usize,
}

/// One device's request, built before the timed window: on a phone the push is ready before the volunteer
/// reaches a signal, and building it uses the phone's CPU, not the server's.
struct Prepared {
    body: Vec<u8>,
    sent_changes: usize,
}

/// The push of every grid the device holds, as `field::sync` builds it: the changes after the confirmed heads,
/// or all of them for grids in `resend_all`; CBOR, gzip-compressed.
fn prepare(device: &Device, resend_all: &BTreeSet<String>) -> Prepared {
    let grids = device
        .grids
        .iter()
        .map(|(code, held)| {
            let since = (!resend_all.contains(code)).then_some(held.confirmed.as_slice());
            build_push(code, &held.doc, since)
        })
        .collect::<Vec<_>>();
    let sent_changes = grids.iter().map(|g| g.changes.len()).sum::<usize>();
    let body = protocol::compress(&protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        grids,
        tasks: Some(Vec::new()),
        docs: Default::default(),
    }));
    Prepared { body, sent_changes }
}

/// A reply as it came off the wire, kept for the device to apply after the timed window.
struct Received {
    bytes: Vec<u8>,
    gzipped: bool,
}

/// The timed part of a sync: one round trip.
async fn exchange(client: &reqwest::Client, device: &Device, body: Vec<u8>) -> Result<Received> {
    let resp = client
        .post(format!("{}/api/v1/sync", device.server))
        .bearer_auth(&device.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .header("content-encoding", protocol::CONTENT_ENCODING)
        .header("accept-encoding", "gzip")
        .body(body)
        .send()
        .await
        .context("sync request")?;
    let status = resp.status();
    let gzipped = resp.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let bytes = resp.bytes().await.context("sync response body")?;
    if !status.is_success() {
        bail!("{}: sync refused with HTTP {status}: {}", device.username, String::from_utf8_lossy(&bytes));
    }
    Ok(Received { bytes: bytes.to_vec(), gzipped })
}

/// Applies a reply to the device's documents, as `field::sync` does; returns the grids the server asked to
/// have resent in full.
fn apply(device: &mut Device, received: Received, stats: &mut SyncStats) -> Result<BTreeSet<String>> {
    // Bytes on the wire are the compressed ones; the client inflates them itself to count them.
    stats.response_bytes += received.bytes.len();
    let bytes = if received.gzipped { inflate(&received.bytes)? } else { received.bytes };
    let reply: SyncResponse = protocol::decode(&bytes)?;
    let mut resend_all = BTreeSet::new();
    for r in reply.grids {
        apply_grid_reply(device, r, stats, &mut resend_all)?;
    }
    Ok(resend_all)
}

/// One timed round trip with a prepared request; `elapsed` is from sending the request to holding the whole
/// reply.
async fn timed_exchange(
    client: &reqwest::Client,
    device: &Device,
    prepared: Prepared,
) -> Result<(SyncStats, Received)> {
    let mut stats = SyncStats {
        rounds: 1,
        request_bytes: prepared.body.len(),
        sent_changes: prepared.sent_changes,
        ..Default::default()
    };
    let start = Instant::now();
    let received = exchange(client, device, prepared.body).await?;
    stats.elapsed = start.elapsed();
    Ok((stats, received))
}

/// After the timed window: applies the reply and, for grids the server answered ResendAll (which the phases
/// never need; the table's `rounds` would show it), a second round trip, as `field::sync` does.
async fn finish(
    client: &reqwest::Client,
    device: &mut Device,
    received: Received,
    stats: &mut SyncStats,
) -> Result<()> {
    let resend_all = apply(device, received, stats)?;
    if resend_all.is_empty() {
        return Ok(());
    }
    let prepared = prepare(device, &resend_all);
    stats.rounds += 1;
    stats.request_bytes += prepared.body.len();
    stats.sent_changes += prepared.sent_changes;
    let received = exchange(client, device, prepared.body).await?;
    let again = apply(device, received, stats)?;
    if !again.is_empty() {
        bail!("{}: the server still could not place grids {again:?}", device.username);
    }
    Ok(())
}

/// `field::apply_grid_reply`, on the in-memory store.
fn apply_grid_reply(
    device: &mut Device,
    reply: GridReply,
    stats: &mut SyncStats,
    resend_all: &mut BTreeSet<String>,
) -> Result<()> {
    stats.stored += u64::from(reply.stored);
    match reply.kind {
        ReplyKind::New => {
            let snapshot = reply.snapshot.as_ref().context("a new grid without its document")?;
            let mut doc = GridDoc::load(snapshot)?;
            doc.set_actor(device.actor.clone());
            if let Some(existing) = device.grids.get(&reply.grid) {
                doc.apply_changes(existing.doc.changes_since(&[]))?;
            }
            let confirmed = protocol::hashes_from_wire(&reply.heads)?;
            device.grids.insert(reply.grid, HeldGrid { doc, confirmed });
        }
        ReplyKind::ResendAll => {
            resend_all.insert(reply.grid);
        }
        kind @ (ReplyKind::Synced | ReplyKind::Unassigned) => {
            let held = device
                .grids
                .get_mut(&reply.grid)
                .ok_or_else(|| anyhow!("the server answered for grid {} not sent", reply.grid))?;
            let applied = apply_reply(&mut held.doc, &reply)?;
            stats.received_changes += applied.new_changes.len();
            held.confirmed = applied.confirmed;
            if kind == ReplyKind::Unassigned {
                let unsent = held.doc.changes_since(&held.confirmed).iter().any(|c| c.actor_id() == &device.actor);
                if !unsent {
                    device.grids.remove(&reply.grid);
                }
            }
        }
    }
    Ok(())
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).context("inflating the sync response")?;
    Ok(out)
}

/// A fresh HTTP client per device and phase, as each `doorstep field sync` run opens its own connection.
fn client() -> Result<reqwest::Client> {
    // Decompression is done by hand (see `inflate`) so that the bytes on the wire can be counted.
    Ok(reqwest::Client::builder()
        .no_gzip()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()?)
}

/// What a phase measured over all its syncs.
struct Phase {
    name: &'static str,
    wall: Duration,
    syncs: Vec<SyncStats>,
    cpu: Cpu,
    /// The servers' RSS, summed, when the phase ended.
    server_rss: u64,
    /// How long the servers' writes held SQLite's single writer during the phase, summed.
    write_gate_held: Duration,
}

/// How long the servers' writes have held SQLite's single writer so far, summed.
async fn write_gate_held(instances: &[Instance]) -> Result<Duration> {
    let client = client()?;
    let mut held = Duration::ZERO;
    for instance in instances {
        held += instance.write_gate_held(&client).await?;
    }
    Ok(held)
}

impl Phase {
    fn total(&self, f: impl Fn(&SyncStats) -> usize) -> usize {
        self.syncs.iter().map(f).sum()
    }
    fn percentile(&self, p: f64) -> Duration {
        let mut l: Vec<Duration> = self.syncs.iter().map(|s| s.elapsed).collect();
        l.sort();
        // Nearest rank.
        let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
        l[rank - 1]
    }
}

/// Current RSS of the server processes together.
fn servers_rss(instances: &[Instance]) -> Result<u64> {
    instances.iter().map(|i| Ok(memory(&i.pid().to_string())?.1)).sum()
}

/// Starts one server per data dir.
fn start_instances(dirs: &[PathBuf], database_url: Option<&str>) -> Result<Vec<Instance>> {
    let instances = dirs.iter().map(|d| Instance::start(d, database_url)).collect::<Result<Vec<_>>>()?;
    for (i, instance) in instances.iter().enumerate() {
        // For profiling from outside: `perf record -g -p PID`.
        eprintln!("server instance {} (pid {}) listening on {}", i + 1, instance.pid(), instance.url);
    }
    Ok(instances)
}

/// Every device syncs once, all at the same time, or each at its own instant of `spread` (evenly spaced, in an
/// order shuffled with `rng`). Requests are built before and replies applied after the timed window (see
/// `Prepared`), so that the window holds the server's work and the HTTP exchanges only.
async fn sync_all(
    name: &'static str,
    devices: &mut Vec<Device>,
    instances: &[Instance],
    spread: Duration,
    rng: &mut Rng,
) -> Result<Phase> {
    let clients = devices.iter().map(|_| client()).collect::<Result<Vec<_>>>()?;
    let prepared: Vec<Prepared> = devices.iter().map(|d| prepare(d, &BTreeSet::new())).collect();
    let mut order: Vec<usize> = (0..devices.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let starts: Vec<Duration> = order.iter().map(|&k| spread.mul_f64(k as f64 / devices.len() as f64)).collect();
    if spread.is_zero() {
        eprintln!("{name}: {} devices sync at once", devices.len());
    } else {
        eprintln!("{name}: {} devices start their syncs over {} ms", devices.len(), ms(spread));
    }
    let gate_before = write_gate_held(instances).await?;
    let cpu_before = Cpu::now(instances)?;
    let start = Instant::now();
    let tasks: Vec<_> = devices
        .drain(..)
        .zip(clients)
        .zip(prepared)
        .zip(starts)
        .map(|(((device, client), prepared), start_after)| {
            tokio::spawn(async move {
                tokio::time::sleep_until((start + start_after).into()).await;
                let exchanged = timed_exchange(&client, &device, prepared).await;
                (device, client, exchanged)
            })
        })
        .collect();
    let mut exchanged = Vec::new();
    for task in tasks {
        exchanged.push(task.await?);
    }
    let wall = start.elapsed();
    let cpu = Cpu::now(instances)?.since(cpu_before);
    let server_rss = servers_rss(instances)?;
    let write_gate_held = write_gate_held(instances).await? - gate_before;
    let mut syncs = Vec::new();
    for (mut device, client, result) in exchanged {
        let (mut stats, received) = result?;
        finish(&client, &mut device, received, &mut stats).await?;
        syncs.push(stats);
        devices.push(device);
    }
    Ok(Phase { name, wall, syncs, cpu, server_rss, write_gate_held })
}

/// Every device syncs once, one after the other; the wall time is the sum of the round trips.
async fn sync_each(name: &'static str, devices: &mut [Device], instances: &[Instance]) -> Result<Phase> {
    eprintln!("{name}: {} devices sync one at a time", devices.len());
    let gate_before = write_gate_held(instances).await?;
    let cpu_before = Cpu::now(instances)?;
    let mut wall = Duration::ZERO;
    let mut syncs = Vec::new();
    for device in devices.iter_mut() {
        let client = client()?;
        let (mut stats, received) = timed_exchange(&client, device, prepare(device, &BTreeSet::new())).await?;
        wall += stats.elapsed;
        finish(&client, device, received, &mut stats).await?;
        syncs.push(stats);
    }
    let cpu = Cpu::now(instances)?.since(cpu_before);
    let write_gate_held = write_gate_held(instances).await? - gate_before;
    Ok(Phase { name, wall, syncs, cpu, server_rss: servers_rss(instances)?, write_gate_held })
}

/// Records `count` visits offline across the device's grids, one change each, as `doorstep field visit`
/// does, at times in the `hours` before now. Returns the visits and the total size of their automerge changes.
fn record_visits(
    device: &mut Device,
    places: &BTreeMap<String, Vec<Place>>,
    count: usize,
    hours: u64,
    rng: &mut Rng,
) -> Result<(Vec<Visit>, usize)> {
    const NOTES: &[&str] =
        &["门锁着，下次再来", "老人在家，已讲解", "店主要求多留两本", "gate locked, dog in the yard"];
    let codes: Vec<String> = device.grids.keys().cloned().collect();
    let now = chrono::Utc::now();
    let mut visits = Vec::with_capacity(count);
    let mut change_bytes = 0;
    for _ in 0..count {
        let code = &codes[rng.below(codes.len())];
        let grid_places = &places[code];
        let place = &grid_places[rng.below(grid_places.len())];
        let outcome = match rng.below(20) {
            0..=2 => Outcome::NobodyHome,
            3 => Outcome::Refused,
            4 if place.kind == PlaceKind::Household => Outcome::Gone,
            _ => Outcome::Completed,
        };
        let done = outcome == Outcome::Completed;
        let visit = Visit {
            id: uuid::Uuid::now_v7(),
            place_id: place.id.clone(),
            volunteer: device.username.clone(),
            device: device.device_id.clone(),
            at: now - chrono::Duration::minutes(rng.below(60 * hours as usize) as i64),
            outcome,
            deliveries: Deliveries::of_flags([
                done,
                done && rng.chance(80),
                done && rng.chance(70),
                done && place.kind == PlaceKind::Market,
                done && place.kind == PlaceKind::LedScreen,
            ]),
            note: rng.chance(20).then(|| NOTES[rng.below(NOTES.len())].to_string()),
            gps: rng.chance(50).then(|| {
                (
                    30.18 + (rng.below(10_000) as f64 - 5000.0) / 100_000.0,
                    105.83 + (rng.below(10_000) as f64 - 5000.0) / 100_000.0,
                )
            }),
            photos: Vec::new(),
        };
        let held = device.grids.get_mut(code).expect("grid held");
        let change = held.doc.add_visit(&visit)?;
        change_bytes += change.raw_bytes().len();
        visits.push(visit);
    }
    Ok((visits, change_bytes))
}

fn team_name(t: usize) -> String {
    format!("bench-team-{:02}", t + 1)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print_phase(p: &Phase, per: Option<usize>) {
    let n = p.syncs.len();
    let req = p.total(|s| s.request_bytes);
    let resp = p.total(|s| s.response_bytes);
    let rounds = p.total(|s| s.rounds);
    let per_visit = |bytes: usize| match per {
        Some(v) => format!("{:.0}", bytes as f64 / v as f64),
        None => "-".into(),
    };
    println!(
        "{:<18} {:>6} {:>6} {:>9} {:>8} {:>8} {:>11} {:>12} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        p.name,
        n,
        rounds,
        ms(p.wall),
        ms(p.percentile(0.50)),
        ms(p.percentile(0.99)),
        req / n,
        resp / n,
        per_visit(req),
        per_visit(resp),
        ms(p.cpu.servers),
        ms(p.cpu.generator),
        ms(p.cpu.machine),
        format!("{:.0}", p.server_rss as f64 / (1024.0 * 1024.0)),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let (n, m, k) = (args.devices, args.visits, args.instances);
    let total_visits = n * m;
    let teams = n.div_ceil(args.team_size);
    // Contiguous blocks, so that round-robin over instances puts every team on all of them.
    let team_of = |i: usize| i * teams / n;
    let team_sizes: Vec<usize> = (0..teams).map(|t| (0..n).filter(|&i| team_of(i) == t).count()).collect();
    let demo = territory(1)?;
    let town_grids = demo[0].1.len();
    let town_places = csv::Reader::from_reader(demo[0].0.as_bytes()).records().count();
    let g = args.grids.unwrap_or(town_grids);
    let towns = territory((teams * g).div_ceil(town_grids))?;
    let all_grids: Vec<&String> = towns.iter().flat_map(|(_, grids)| grids).collect();
    let database_url = args.database_url.as_deref();

    // ---- servers: the real binary, bootstrapped from the command line ----
    let setup_start = Instant::now();
    let tmp = tempfile::tempdir()?;
    let dirs: Vec<PathBuf> = (0..k).map(|i| tmp.path().join(format!("data-{}", i + 1))).collect();
    create_office(&dirs[0], &tmp.path().join("profile"), database_url)?;
    // Instances on one database must sign and accept the same tokens.
    for dir in &dirs[1..] {
        std::fs::create_dir_all(dir)?;
        std::fs::copy(dirs[0].join("jwt-secret"), dir.join("jwt-secret"))?;
    }
    let mut instances = start_instances(&dirs, database_url)?;

    // ---- setup through the HTTP API: territory, teams holding G grids each, N volunteers ----
    let mut office = Office::login(&instances[0].url).await?;
    for (csv, _) in &towns {
        office.call(reqwest::Method::POST, "/api/v1/territory/import", Body::Csv(csv.clone())).await?;
    }
    for t in 0..teams {
        office
            .call(reqwest::Method::POST, "/api/v1/teams", Body::Json(serde_json::json!({ "name": team_name(t) })))
            .await?;
        for grid in &all_grids[t * g..(t + 1) * g] {
            let body = Body::Json(serde_json::json!({ "team": team_name(t) }));
            office.call(reqwest::Method::PUT, &format!("/api/v1/assignments/{grid}"), body).await?;
        }
    }
    // One at a time: password hashing takes about 19 MiB per hash, and concurrent hashes would set the servers'
    // peak memory instead of the sync.
    let mut devices = Vec::with_capacity(n);
    for i in 0..n {
        let username = format!("bench-vol-{:03}", i + 1);
        let user = serde_json::json!({
            "username": username, "password": PASSWORD, "role": "volunteer", "team": team_name(team_of(i))
        });
        office.call(reqwest::Method::POST, "/api/v1/users", Body::Json(user)).await?;
        let server = instances[i % k].url.clone();
        let reply: serde_json::Value = client()?
            .post(format!("{server}/api/v1/devices"))
            .json(&serde_json::json!({
                "username": username, "password": PASSWORD, "device_name": format!("bench phone {}", i + 1)
            }))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("enrolling {username}"))?
            .json()
            .await?;
        let field = |key: &str| -> Result<String> {
            reply[key].as_str().map(str::to_string).ok_or_else(|| anyhow!("enrol reply lacks {key}: {reply}"))
        };
        let actor =
            ActorId::try_from(field("actor")?.as_str()).map_err(|_| anyhow!("the server sent an invalid actor id"))?;
        devices.push(Device {
            username,
            team: team_of(i),
            server,
            device_id: field("device_id")?,
            actor,
            token: field("token")?,
            grids: BTreeMap::new(),
        });
    }
    if args.restart {
        // Killed mid-flight is fine: every setup call was answered, so it is committed.
        drop(std::mem::take(&mut instances));
        instances = start_instances(&dirs, database_url)?;
        for (i, device) in devices.iter_mut().enumerate() {
            device.server = instances[i % k].url.clone();
        }
        office = Office::login(&instances[0].url).await?;
    }
    let before = office.visits_by_volunteer(args.visit_hours).await?;
    let setup_time = setup_start.elapsed();
    // The setup's peak (password hashing, territory import) is read, then reset, so that the peak reported is
    // that of the sync phases.
    let setup_memory = instances.iter().map(|i| reset_peak(&i.pid().to_string())).collect::<Result<Vec<_>>>()?;

    // ---- 1. initial download ----
    let download = sync_each("initial download", &mut devices, &instances).await?;
    let mut places: BTreeMap<String, Vec<Place>> = BTreeMap::new();
    for d in &devices {
        if d.grids.len() != g {
            bail!("{} holds {} grids after its first sync, expected {g}", d.username, d.grids.len());
        }
        for (code, held) in &d.grids {
            if !places.contains_key(code) {
                places.insert(code.clone(), held.doc.places()?);
            }
        }
    }
    let place_count: usize = places.values().map(Vec::len).sum();
    let saved_size = |d: &Device| d.grids.values().map(|g| g.doc.save().len()).sum::<usize>();
    let saved_before = saved_size(&devices[0]);

    // ---- 2. baseline: nothing new either way ----
    // Its own generator, so that the visits drawn below stay those the peer comparison reproduces.
    let mut order_rng = Rng(0x0bde_4a11_5eed);
    let empty_before = sync_all("empty, before", &mut devices, &instances, Duration::ZERO, &mut order_rng).await?;

    // ---- 3. record offline, then everybody syncs at once ----
    let mut rng = Rng(0x5eed_d00d_2021);
    let mut json_bytes = 0;
    let mut change_bytes = 0;
    let record_start = Instant::now();
    for device in devices.iter_mut() {
        let (visits, bytes) = record_visits(device, &places, m, args.visit_hours, &mut rng)?;
        change_bytes += bytes;
        for v in &visits {
            json_bytes += serde_json::to_vec(v)?.len();
        }
    }
    let record_time = record_start.elapsed();
    if args.pause_before_visits > 0 {
        eprintln!("visit sync in {} s: time to attach a profiler to the servers", args.pause_before_visits);
        tokio::time::sleep(Duration::from_secs(args.pause_before_visits)).await;
    }
    let visit_sync = sync_all("visit sync", &mut devices, &instances, args.spread, &mut order_rng).await?;
    let stored: u64 = visit_sync.syncs.iter().map(|s| s.stored).sum();
    let sent = visit_sync.total(|s| s.sent_changes);

    // ---- 4. catch-up: receive the visits of team-mates that synced later ----
    let catch_up = sync_all("catch-up", &mut devices, &instances, Duration::ZERO, &mut order_rng).await?;
    let saved_after = saved_size(&devices[0]);
    // ---- 5. nothing new either way, now with many heads per grid ----
    let empty_after = sync_all("empty, after", &mut devices, &instances, Duration::ZERO, &mut order_rng).await?;

    // ---- checks, all through the servers' HTTP API ----
    let after = office.visits_by_volunteer(args.visit_hours).await?;
    for d in &devices {
        let new = after.get(&d.username).copied().unwrap_or(0) - before.get(&d.username).copied().unwrap_or(0);
        if new != m as u64 {
            bail!("the server holds {new} new visits of {}, expected {m}", d.username);
        }
    }
    let new_visits = after.values().sum::<u64>() - before.values().sum::<u64>();
    let mut counters = Vec::new();
    for instance in &instances {
        counters.push(instance.counters(&office.client).await?);
    }
    let counter = |c: &BTreeMap<String, u64>, name: &str| c.get(name).copied().unwrap_or(0);
    let ingested: u64 = counters.iter().map(|c| counter(c, "doorstep_visits_ingested_total")).sum();
    if new_visits != total_visits as u64 || ingested != total_visits as u64 {
        bail!("the database gained {new_visits} visits and the servers ingested {ingested}, expected {total_visits}");
    }
    if stored != total_visits as u64 || sent != total_visits {
        bail!("sent {sent} changes and the server stored {stored}, expected {total_visits}");
    }
    let moved = |p: &Phase| p.total(|s| s.sent_changes + s.received_changes);
    if catch_up.total(|s| s.sent_changes) != 0 || moved(&empty_before) != 0 || moved(&empty_after) != 0 {
        bail!("the catch-up sent changes, or an empty sync moved some");
    }
    let mut team_heads: BTreeMap<usize, BTreeMap<&String, Vec<ChangeHash>>> = BTreeMap::new();
    for d in &devices {
        let held: usize = d.grids.values().map(|g| g.doc.visit_count()).sum();
        if held != team_sizes[d.team] * m {
            bail!(
                "{} holds {held} visits after catching up, expected its team's {}",
                d.username,
                team_sizes[d.team] * m
            );
        }
        let heads: BTreeMap<&String, Vec<ChangeHash>> = d.grids.iter().map(|(c, h)| (c, h.doc.heads())).collect();
        if *team_heads.entry(d.team).or_insert_with(|| heads.clone()) != heads {
            bail!("{} holds other heads than its team-mates", d.username);
        }
    }
    // Read before the servers stop: the peak covers the whole life of each process, setup included.
    let server_memory =
        instances.iter().map(|i| Ok((i.pid(), memory(&i.pid().to_string())?))).collect::<Result<Vec<_>>>()?;
    let own_memory = memory("self")?;
    drop(instances);

    // ---- report ----
    let backend = match database_url {
        Some(url) => format!("PostgreSQL ({}), {k} server instance(s)", server::store::db::redact(url)),
        None => "embedded SQLite, 1 server instance".to_string(),
    };
    println!("doorstep sync benchmark: {n} devices × {m} visits = {total_visits} visits; {backend}");
    println!(
        "{teams} team(s) of at most {} devices, each team holding {g} grids; {} grids with {place_count} places held",
        args.team_size,
        places.len(),
    );
    println!(
        "territory on the servers: {} grids, {} places{}",
        towns.iter().map(|(_, grids)| grids.len()).sum::<usize>(),
        towns.len() * town_places,
        if args.restart { "; the servers were restarted on their data dirs after the setup" } else { "" },
    );
    println!(
        "setup {:.1} s; recording offline: {} ms for all {total_visits} visits ({:.0} µs per visit)",
        setup_time.as_secs_f64(),
        ms(record_time),
        record_time.as_secs_f64() * 1e6 / total_visits as f64
    );
    println!();
    println!(
        "{:<18} {:>6} {:>6} {:>9} {:>8} {:>8} {:>11} {:>12} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "phase",
        "syncs",
        "rounds",
        "wall ms",
        "p50 ms",
        "p99 ms",
        "req B/sync",
        "resp B/sync",
        "req B/v",
        "resp B/v",
        "srv cpu",
        "gen cpu",
        "all cpu",
        "srv RSS"
    );
    print_phase(&download, None);
    print_phase(&empty_before, None);
    print_phase(&visit_sync, Some(total_visits));
    print_phase(&catch_up, Some(total_visits));
    print_phase(&empty_after, None);
    println!("initial download: one device at a time; the other phases: all devices at once.");
    println!("empty, before/after: nothing new to send or receive, before and after the visit sync.");
    println!("p50/p99: per-device sync latency; B: gzip bodies as sent; B/v: bytes per synced visit;");
    println!("srv / gen / all cpu: CPU ms of the server processes / of this load generator / of the whole machine");
    println!(
        "(PostgreSQL included) during the phase; the machine has {} CPUs. srv RSS: MiB at the phase's end.",
        cpus()
    );
    println!();
    let visit_req = visit_sync.total(|s| s.request_bytes) as f64 / total_visits as f64;
    let visit_resp = visit_sync.total(|s| s.response_bytes) as f64 / total_visits as f64;
    let per_json = json_bytes as f64 / total_visits as f64;
    let per_change = change_bytes as f64 / total_visits as f64;
    if !args.spread.is_zero() {
        println!(
            "visit sync starts spread over {} ms: offered {:.0} visits per second",
            ms(args.spread),
            total_visits as f64 / args.spread.as_secs_f64()
        );
    }
    println!(
        "visits ingested per second: {:.0} ({total_visits} visits in {} ms); p50 {} ms, p99 {} ms",
        total_visits as f64 / visit_sync.wall.as_secs_f64(),
        ms(visit_sync.wall),
        ms(visit_sync.percentile(0.5)),
        ms(visit_sync.percentile(0.99)),
    );
    println!(
        "server CPU per visit ingested: {:.0} µs; per empty sync: {:.0} µs",
        visit_sync.cpu.servers.as_secs_f64() * 1e6 / total_visits as f64,
        empty_before.cpu.servers.as_secs_f64() * 1e6 / n as f64,
    );
    if !visit_sync.write_gate_held.is_zero() {
        println!(
            "SQLite's single writer held {} ms of the visit sync's {} ms ({:.0}%); {:.0} µs per visit",
            ms(visit_sync.write_gate_held),
            ms(visit_sync.wall),
            100.0 * visit_sync.write_gate_held.as_secs_f64() / visit_sync.wall.as_secs_f64(),
            visit_sync.write_gate_held.as_secs_f64() * 1e6 / total_visits as f64,
        );
    }
    println!(
        "server writes per visit ingested: {:.1} KiB ({} in the visit sync; per empty sync: {:.1} KiB)",
        visit_sync.cpu.servers_written as f64 / 1024.0 / total_visits as f64,
        mib(visit_sync.cpu.servers_written),
        empty_before.cpu.servers_written as f64 / 1024.0 / n as f64,
    );
    println!(
        "visit sync vs empty sync before: wall ×{:.1}, p50 ×{:.1}, request bytes ×{:.1}",
        visit_sync.wall.as_secs_f64() / empty_before.wall.as_secs_f64(),
        visit_sync.percentile(0.5).as_secs_f64() / empty_before.percentile(0.5).as_secs_f64(),
        visit_sync.total(|s| s.request_bytes) as f64 / empty_before.total(|s| s.request_bytes) as f64,
    );
    let team0_visits = team_sizes[0] * m;
    let per_saved = saved_after.saturating_sub(saved_before) as f64 / team0_visits as f64;
    println!("bytes per visit:");
    for (what, bytes) in [
        ("visit sync request, on the wire", visit_req),
        ("visit sync response, on the wire", visit_resp),
        ("one automerge change", per_change),
        ("saved document (all changes compressed together)", per_saved),
        ("compact JSON of the Visit (baseline)", per_json),
    ] {
        println!("  {what:<52} {bytes:>6.0} B  ×{:.2} JSON", bytes / per_json);
    }
    println!("memory:");
    for (i, ((pid, (peak, now)), (setup_peak, setup))) in server_memory.iter().zip(&setup_memory).enumerate() {
        println!(
            "  server instance {} (pid {pid}): peak RSS {} while syncing; RSS after setup {} (peak during setup {}); \
             at the end {}",
            i + 1,
            mib(*peak),
            mib(*setup),
            mib(*setup_peak),
            mib(*now)
        );
    }
    println!("  load generator ({n} devices' documents in memory): peak RSS {}", mib(own_memory.0));
    for (i, c) in counters.iter().enumerate() {
        println!(
            "server instance {}: {} sync requests, {} visits ingested; grid documents from its cache {}, loaded {}; \
             at the end {} grid slots, cached documents estimated at {}; at most {} grids held by requests at once",
            i + 1,
            counter(c, "doorstep_sync_requests_total"),
            counter(c, "doorstep_visits_ingested_total"),
            counter(c, "doorstep_document_cache_hits_total"),
            counter(c, "doorstep_document_cache_loads_total"),
            counter(c, "doorstep_document_cache_grids"),
            mib(counter(c, "doorstep_document_cache_bytes")),
            counter(c, "doorstep_grids_held_peak"),
        );
    }
    println!(
        "check: the database gained exactly {m} visits per volunteer ({total_visits}), the servers ingested \
         {total_visits}, and every device holds all its team's visits with its team-mates' heads"
    );
    Ok(())
}
