//! Measures sync: N devices record M visits offline each, then all sync at once with a real server. Run: `cargo bench --bench sync [-- --devices 20 --visits 60]`.
//!
//! Reports wall time, visits ingested per second, per-sync latency (p50, p99) and bytes per visit, against two
//! baselines from the same run: an empty sync (the fixed cost of a request) and each visit as compact JSON.
//!
//! Every part is the real one: the server is `server::serve` on 127.0.0.1, devices enrol through
//! `POST /api/v1/devices` and sync through `POST /api/v1/sync` with the CBOR protocol, building pushes and
//! applying replies exactly as `doorstep field sync` does (`src/field.rs`); only the device's grid store is
//! kept in memory instead of a profile directory.
//!
//! Phases, each measured:
//! 1. initial download: every device's first sync, one device at a time (it receives every grid's snapshot);
//! 2. empty sync, before: all N sync concurrently with nothing new either way (the fixed cost of a request,
//!    the baseline for the next phase);
//! 3. visit sync: every device records M visits offline, then all N sync concurrently;
//! 4. catch-up: all N sync concurrently again and receive the visits of the devices that synced after them;
//! 5. empty sync, after: nothing new again, but every grid now has one head per device that wrote to it.
//!
//! At the end the server must hold exactly N×M new visits and every device all of them, or the run fails.

use anyhow::{anyhow, bail, Context, Result};
use automerge::{ActorId, ChangeHash};
use client_core::model::{Deliveries, Outcome, Place, PlaceKind, Visit};
use client_core::protocol::{self, GridReply, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::sync::{apply_reply, build_push};
use client_core::GridDoc;
use server::people::{self, NewUser};
use server::{territory, AppState, ServerConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-password";
const TEAM: &str = "bench-team";

struct Args {
    devices: usize,
    visits: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { devices: 20, visits: 60 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize> {
            let v = it.next().ok_or_else(|| anyhow!("{name} needs a number"))?;
            v.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("{name} {v:?} is not a positive number"))
        };
        match arg.as_str() {
            "--devices" => args.devices = number("--devices")?,
            "--visits" => args.visits = number("--visits")?,
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            "-h" | "--help" => {
                println!("usage: cargo bench --bench sync [-- --devices N --visits M]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; expected --devices N --visits M"),
        }
    }
    Ok(args)
}

/// Small deterministic generator, so every run records the same kind of visits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One grid as a device holds it: the document and the heads the server last confirmed.
struct HeldGrid {
    doc: GridDoc,
    confirmed: Vec<ChangeHash>,
}

/// A field device, as `doorstep field` keeps it in its profile, but in memory.
struct Device {
    username: String,
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

/// One sync of one device, as `field::sync` does it: one round trip, a second only for grids the server
/// answered ResendAll.
async fn sync(client: &reqwest::Client, base: &str, device: &mut Device) -> Result<SyncStats> {
    let start = Instant::now();
    let mut stats = SyncStats::default();
    let mut resend_all: BTreeSet<String> = BTreeSet::new();
    for _round in 0..2 {
        let grids = device
            .grids
            .iter()
            .map(|(code, held)| {
                let since = (!resend_all.contains(code)).then_some(held.confirmed.as_slice());
                build_push(code, &held.doc, since)
            })
            .collect::<Vec<_>>();
        stats.sent_changes += grids.iter().map(|g| g.changes.len()).sum::<usize>();
        // As `doorstep field sync` sends it: CBOR, gzip-compressed.
        let body = protocol::compress(&protocol::encode(&SyncRequest { protocol: PROTOCOL_VERSION, grids }));
        stats.request_bytes += body.len();
        stats.rounds += 1;
        let resp = client
            .post(format!("{base}/api/v1/sync"))
            .bearer_auth(&device.token)
            .header("content-type", protocol::CONTENT_TYPE)
            .header("content-encoding", protocol::CONTENT_ENCODING)
            .header("accept-encoding", "gzip")
            .body(body)
            .send()
            .await
            .context("sync request")?;
        let status = resp.status();
        let resp_gzip = resp.headers().get("content-encoding").is_some_and(|v| v == "gzip");
        let bytes = resp.bytes().await.context("sync response body")?;
        if !status.is_success() {
            bail!("{}: sync refused with HTTP {status}: {}", device.username, String::from_utf8_lossy(&bytes));
        }
        // Bytes on the wire are the compressed ones; the client inflates them itself to count them.
        stats.response_bytes += bytes.len();
        let gzipped = resp_gzip;
        let bytes = if gzipped { inflate(&bytes)? } else { bytes.to_vec() };
        let reply: SyncResponse = protocol::decode(&bytes)?;
        resend_all.clear();
        for r in reply.grids {
            apply_grid_reply(device, r, &mut stats, &mut resend_all)?;
        }
        if resend_all.is_empty() {
            break;
        }
    }
    if !resend_all.is_empty() {
        bail!("{}: the server still could not place grids {resend_all:?}", device.username);
    }
    stats.elapsed = start.elapsed();
    Ok(stats)
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

/// A fresh HTTP client per device and phase, as each `doorstep field sync` run opens its own connection.
fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).context("inflating the sync response")?;
    Ok(out)
}

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

/// Every device syncs once, all at the same time.
async fn sync_all(name: &'static str, base: &str, devices: &mut Vec<Device>) -> Result<Phase> {
    let clients = devices.iter().map(|_| client()).collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let tasks: Vec<_> = devices
        .drain(..)
        .zip(clients)
        .map(|(mut device, client)| {
            let base = base.to_string();
            tokio::spawn(async move {
                let stats = sync(&client, &base, &mut device).await;
                (device, stats)
            })
        })
        .collect();
    let mut syncs = Vec::new();
    for task in tasks {
        let (device, stats) = task.await?;
        syncs.push(stats?);
        devices.push(device);
    }
    Ok(Phase { name, wall: start.elapsed(), syncs })
}

/// Every device syncs once, one after the other.
async fn sync_each(name: &'static str, base: &str, devices: &mut [Device]) -> Result<Phase> {
    let start = Instant::now();
    let mut syncs = Vec::new();
    for device in devices.iter_mut() {
        let client = client()?;
        syncs.push(sync(&client, base, device).await?);
    }
    Ok(Phase { name, wall: start.elapsed(), syncs })
}

/// Records `count` visits offline across the device's grids, one change each, as `doorstep field visit`
/// does. Returns the visits and the total size of their automerge changes.
fn record_visits(
    device: &mut Device,
    places: &BTreeMap<String, Vec<Place>>,
    count: usize,
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
            at: now - chrono::Duration::minutes(rng.below(60 * 24 * 30) as i64),
            outcome,
            deliveries: Deliveries {
                handbook: done,
                briefed: done && rng.chance(80),
                poster: done && rng.chance(70),
                banner: done && place.kind == PlaceKind::Market,
                led_playing: done && place.kind == PlaceKind::LedScreen,
            },
            note: rng.chance(20).then(|| NOTES[rng.below(NOTES.len())].to_string()),
            gps: rng.chance(50).then(|| {
                (
                    30.18 + (rng.below(10_000) as f64 - 5000.0) / 100_000.0,
                    105.83 + (rng.below(10_000) as f64 - 5000.0) / 100_000.0,
                )
            }),
        };
        let held = device.grids.get_mut(code).expect("grid held");
        let change = held.doc.add_visit(&visit)?;
        change_bytes += change.raw_bytes().len();
        visits.push(visit);
    }
    Ok((visits, change_bytes))
}

async fn count(state: &AppState, sql: &'static str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&state.db.pool).await?;
    Ok(n)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
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
        "{:<18} {:>6} {:>6} {:>9} {:>8} {:>8} {:>11} {:>12} {:>9} {:>9}",
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
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let (n, m) = (args.devices, args.visits);
    let total_visits = n * m;

    // ---- server: real SQLite file, real HTTP on loopback ----
    let tmp = tempfile::tempdir()?;
    let state = AppState::open(&ServerConfig {
        data_dir: tmp.path().join("data"),
        database_url: None,
        login_throttle: Default::default(),
    })
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(state.clone(), listener, async {
        let _ = stopped.await;
    }));

    // ---- setup: the demo territory, one team holding every grid, N volunteers ----
    let api = |e: server::error::ApiError| anyhow!(e.message);
    territory::import(&state, server::demo::territory_csv().as_bytes(), false, "bench").await.map_err(api)?;
    people::create_team(&state.db, TEAM, None).await.map_err(api)?;
    let grids: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM areas WHERE kind = 'grid' ORDER BY code").fetch_all(&state.db.pool).await?;
    for (grid,) in &grids {
        people::assign_grid(&state.db, grid, TEAM).await.map_err(api)?;
    }
    let place_count = count(&state, "SELECT COUNT(*) FROM places").await?;
    let mut devices = Vec::with_capacity(n);
    for i in 1..=n {
        let username = format!("bench-vol-{i:03}");
        people::create_user(
            &state.db,
            NewUser {
                username: username.clone(),
                password: PASSWORD.into(),
                role: server::auth::Role::Volunteer,
                team: Some(TEAM.into()),
                area: None,
            },
        )
        .await
        .map_err(api)?;
        let resp = client()?
            .post(format!("{base}/api/v1/devices"))
            .json(&serde_json::json!({
                "username": username, "password": PASSWORD, "device_name": format!("bench phone {i}")
            }))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("enrolling {username}: HTTP {}", resp.status());
        }
        let reply: serde_json::Value = resp.json().await?;
        let field = |k: &str| -> Result<String> {
            reply[k].as_str().map(str::to_string).ok_or_else(|| anyhow!("enrol reply lacks {k}: {reply}"))
        };
        let actor =
            ActorId::try_from(field("actor")?.as_str()).map_err(|_| anyhow!("the server sent an invalid actor id"))?;
        devices.push(Device {
            username,
            device_id: field("device_id")?,
            actor,
            token: field("token")?,
            grids: BTreeMap::new(),
        });
    }
    let visits_before = count(&state, "SELECT COUNT(*) FROM visits").await?;

    // ---- 1. initial download ----
    let download = sync_each("initial download", &base, &mut devices).await?;
    for d in &devices {
        if d.grids.len() != grids.len() {
            bail!("{} holds {} grids after its first sync, expected {}", d.username, d.grids.len(), grids.len());
        }
    }
    let places: BTreeMap<String, Vec<Place>> =
        devices[0].grids.iter().map(|(code, held)| Ok((code.clone(), held.doc.places()?))).collect::<Result<_>>()?;

    let saved_size = |d: &Device| d.grids.values().map(|g| g.doc.save().len()).sum::<usize>();
    let saved_before = saved_size(&devices[0]);

    // ---- 2. baseline: nothing new either way ----
    let empty_before = sync_all("empty, before", &base, &mut devices).await?;

    // ---- 3. record offline, then everybody syncs at once ----
    let mut rng = Rng(0x5eed_d00d_2021);
    let mut json_bytes = 0;
    let mut change_bytes = 0;
    let record_start = Instant::now();
    for device in devices.iter_mut() {
        let (visits, bytes) = record_visits(device, &places, m, &mut rng)?;
        change_bytes += bytes;
        for v in &visits {
            json_bytes += serde_json::to_vec(v)?.len();
        }
    }
    let record_time = record_start.elapsed();
    let visit_sync = sync_all("visit sync", &base, &mut devices).await?;
    let stored: u64 = visit_sync.syncs.iter().map(|s| s.stored).sum();
    let sent = visit_sync.total(|s| s.sent_changes);

    // ---- 4. catch-up: receive the visits of devices that synced later ----
    let catch_up = sync_all("catch-up", &base, &mut devices).await?;
    let saved_after = saved_size(&devices[0]);
    // ---- 5. nothing new either way, now with many heads per grid ----
    let empty_after = sync_all("empty, after", &base, &mut devices).await?;

    // ---- checks ----
    let visits_after = count(&state, "SELECT COUNT(*) FROM visits").await?;
    let new_visits = visits_after - visits_before;
    if new_visits != total_visits as i64 {
        bail!("the server holds {new_visits} new visits, expected {n}×{m} = {total_visits}");
    }
    if stored != total_visits as u64 || sent != total_visits {
        bail!("sent {sent} changes and the server stored {stored}, expected {total_visits}");
    }
    let moved = |p: &Phase| p.total(|s| s.sent_changes + s.received_changes);
    if catch_up.total(|s| s.sent_changes) != 0 || moved(&empty_before) != 0 || moved(&empty_after) != 0 {
        bail!("the catch-up sent changes, or an empty sync moved some");
    }
    for d in &devices {
        let held: usize = d.grids.values().map(|g| g.doc.visit_count()).sum();
        if held != total_visits {
            bail!("{} holds {held} visits after catching up, expected {total_visits}", d.username);
        }
    }
    let _ = stop.send(());
    server.await??;

    // ---- report ----
    println!(
        "doorstep sync benchmark: {n} devices × {m} visits = {total_visits} visits; {} grids, {place_count} places, every grid held by every device",
        grids.len()
    );
    println!(
        "recording offline: {} ms for all {total_visits} visits ({:.0} µs per visit)",
        ms(record_time),
        record_time.as_secs_f64() * 1e6 / total_visits as f64
    );
    println!();
    println!(
        "{:<18} {:>6} {:>6} {:>9} {:>8} {:>8} {:>11} {:>12} {:>9} {:>9}",
        "phase", "syncs", "rounds", "wall ms", "p50 ms", "p99 ms", "req B/sync", "resp B/sync", "req B/v", "resp B/v"
    );
    print_phase(&download, None);
    print_phase(&empty_before, None);
    print_phase(&visit_sync, Some(total_visits));
    print_phase(&catch_up, Some(total_visits));
    print_phase(&empty_after, None);
    println!("initial download: one device at a time; the other phases: all devices at once.");
    println!("empty, before/after: nothing new to send or receive, before and after the visit sync.");
    println!("p50/p99: per-device sync latency; B/v: bytes per synced visit.");
    println!();
    let visit_req = visit_sync.total(|s| s.request_bytes) as f64 / total_visits as f64;
    let per_json = json_bytes as f64 / total_visits as f64;
    let per_change = change_bytes as f64 / total_visits as f64;
    println!(
        "visits ingested per second: {:.0} ({total_visits} visits in {} ms)",
        total_visits as f64 / visit_sync.wall.as_secs_f64(),
        ms(visit_sync.wall)
    );
    println!(
        "visit sync vs empty sync before: wall ×{:.1}, p50 ×{:.1}, request bytes ×{:.1}",
        visit_sync.wall.as_secs_f64() / empty_before.wall.as_secs_f64(),
        visit_sync.percentile(0.5).as_secs_f64() / empty_before.percentile(0.5).as_secs_f64(),
        visit_sync.total(|s| s.request_bytes) as f64 / empty_before.total(|s| s.request_bytes) as f64,
    );
    let per_saved = saved_after.saturating_sub(saved_before) as f64 / total_visits as f64;
    println!("bytes per visit:");
    for (what, bytes) in [
        ("sync request on the wire", visit_req),
        ("one automerge change", per_change),
        ("saved document (all changes compressed together)", per_saved),
        ("compact JSON of the Visit (baseline)", per_json),
    ] {
        println!("  {what:<52} {bytes:>6.0} B  ×{:.2} JSON", bytes / per_json);
    }
    println!("check: the server stored exactly {total_visits} new visits and every device holds all of them");
    Ok(())
}
