//! Photos at scale: what a day's photos from every phone cost the server while the phones also sync their visits,
//! what they take on disk, and how fast the office's gallery pages a million photos, each against a baseline from
//! the same run.
//!
//! `cargo bench --bench photos [-- --devices N --photos-per-device P --team-size S --concurrency C
//! --gallery-photos G --runs R --keep-gallery DIR --server-bin PATH --calibrate]` (defaults 200 phones in teams
//! of 20, 20 photos each, all phones uploading at once, a gallery of 1,000,000 photos, medians of 21 runs;
//! `--keep-gallery` generates the gallery's data dir in DIR and keeps it, to look into its query plans;
//! `--server-bin` measures another build; `--calibrate` runs A, B and A2 with no uploads in B and stops there: how
//! B's sync compares with the baselines around it when nothing else happens).
//!
//! The server is the real `doorstep serve` (embedded SQLite, the data dir's blob store) set up through its HTTP API
//! (a grid of 50 places per team, the teams and their assignments); the volunteers and their phones are inserted
//! straight into its database and each phone's device token is signed with the data dir's key, as the bulletins
//! bench does. Phones sync with the CBOR protocol and gzip bodies as the field clients do, recording their visits
//! in their own copies of their grid (`GridDoc::add_visit`, one change each).
//!
//! Photos: P distinct 1600×1200 JPEGs (a smooth picture with some noise, at the phone's JPEG quality 82, about
//! 200 kB each, as `field::device::photo` makes them) are encoded once; phone i's photo j is photo j with its
//! luminance quantization table changed in three low-frequency entries by the digits of i, so that every phone's
//! photos are valid JPEGs of their own: other hashes, other pixels, other thumbnails (no store-level sharing).
//!
//! Phases:
//! A. baseline: every phone records P visits, each referencing one of its photos, and all phones sync at once;
//!    nothing is uploaded;
//! B. photos: every phone (C at a time) asks which of its photos the server lacks (`POST /api/v1/photos/missing`)
//!    and uploads them one after another (`PUT /api/v1/photos/{sha256}`, whole, with `Upload-Length`) through a
//!    TCP proxy that counts the bytes both ways; once a tenth of the photos have arrived, every phone also syncs P
//!    new visits (referencing tomorrow's photos) at once, as in A. The server's CPU for the photos is that of the
//!    phase less that of A (the same visits' share); its peak RSS is read against its RSS after A (`clear_refs`),
//!    and the time its writes held SQLite's single writer in A and in B from its `/metrics`; the database
//!    (checkpointed) and the blob directory are measured before and after. Every phone connects from a loopback
//!    address of its own, as phones do (the server admits at most 256 connections from one address).
//! A2. baseline after: once the photos are in, every phone syncs P more visits, as in A. The grids grow by a day's
//!    visits in every phase and a sync costs more on a larger document, so B's sync is compared with the mean of A
//!    and A2, whose documents are on average as large as B's.
//! G. gallery: a fresh data dir gets G places with a visit each and a photo per visit (`visit_photos`, `photos`,
//!    `visit_indicators`), generated straight into SQLite as the console bench generates its town; then the real
//!    server times the gallery's pages as the office (gzip), the median of R runs, against `/healthz`.
//!
//! The run fails unless the server holds every photo uploaded (its `photos` rows are exactly the hashes sent,
//! stored with their thumbnails), none is missing any more, every visit of A, B and A2 arrived, and no gallery page
//! is empty.

mod common;

use anyhow::{anyhow, bail, Context, Result};
use automerge::{ActorId, ChangeHash};
use client_core::grid::model::{Deliveries, Outcome, PhotoRef, Place, PlaceKind, Visit};
use client_core::protocol::{self, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION};
use client_core::sync::{apply_reply, build_push};
use client_core::GridDoc;
use server::accounts::tokens::{Claims, Keys, Role, DEVICE_AUDIENCE, DEVICE_TTL_SECS};
use server::store::db::{sqlite_url, Db};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `doorstep` binary measured: this build's, or `--server-bin PATH` (an earlier build, for before/after runs).
static SERVER_BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn bin() -> &'static str {
    SERVER_BIN.get().map_or(env!("CARGO_BIN_EXE_doorstep"), String::as_str)
}
const PASSWORD: &str = "a bench password";
const PLACES_PER_GRID: usize = 50;
/// The field app's JPEG quality (`field::device::photo`).
const PHONE_QUALITY: u8 = 82;
const USAGE: &str = "usage: cargo bench --bench photos [-- --devices N --photos-per-device P --team-size S \
                     --concurrency C --gallery-photos G --runs R --keep-gallery DIR --server-bin PATH --calibrate]";

struct Args {
    devices: usize,
    photos_per_device: usize,
    team_size: usize,
    /// Phones uploading at once; by default all of them.
    concurrency: Option<usize>,
    gallery_photos: usize,
    runs: usize,
    /// Where to generate the gallery's data dir and keep it, to look into its query plans after the run.
    keep_gallery: Option<std::path::PathBuf>,
    /// B without its uploads: how B's sync compares with A and A2 when nothing else happens (the bench's own bias).
    calibrate: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        devices: 200,
        photos_per_device: 20,
        team_size: 20,
        concurrency: None,
        gallery_photos: 1_000_000,
        runs: 21,
        keep_gallery: None,
        calibrate: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize> {
            let v = it.next().ok_or_else(|| anyhow!("{name} needs a value"))?;
            v.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("{name} {v:?} is not a positive number"))
        };
        match arg.as_str() {
            "--devices" => args.devices = number("--devices")?,
            "--photos-per-device" => args.photos_per_device = number("--photos-per-device")?,
            "--team-size" => args.team_size = number("--team-size")?,
            "--concurrency" => args.concurrency = Some(number("--concurrency")?),
            "--gallery-photos" => args.gallery_photos = number("--gallery-photos")?,
            "--runs" => args.runs = number("--runs")?,
            "--keep-gallery" => {
                let dir = it.next().ok_or_else(|| anyhow!("--keep-gallery needs a directory"))?;
                args.keep_gallery = Some(dir.into());
            }
            // `cargo bench` passes `--bench` to every bench target.
            "--server-bin" => {
                let path = it.next().ok_or_else(|| anyhow::anyhow!("--server-bin needs a path"))?;
                SERVER_BIN.set(path).map_err(|_| anyhow::anyhow!("--server-bin given twice"))?;
            }
            "--calibrate" => args.calibrate = true,
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    // Three hexadecimal digits of the phone's number go into its photos' quantization tables.
    if args.devices > 4096 {
        bail!("--devices {}: at most 4,096 phones get photos of their own", args.devices);
    }
    if args.photos_per_device > 500 {
        bail!("--photos-per-device {}: a phone may upload at most 500 photos a day", args.photos_per_device);
    }
    Ok(args)
}

// ---------------------------------------------------------------- photos

/// A phone's photo as the field app makes it: `size` 1600×1200 pixels of a smooth scene (sky, a wall, a door) with
/// sensor-like noise, JPEG at the phone's quality, no metadata.
fn base_photo(seed: u64) -> Result<Vec<u8>> {
    let mut rng = common::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (w, h) = (1600u32, 1200u32);
    let tint = [rng.below(60) as f32, rng.below(60) as f32, rng.below(60) as f32];
    let door = (rng.range(300, 1100) as u32, rng.range(300, 700) as u32);
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let noise = (rng.below(13) as f32) - 6.0;
        let inside_door = x.abs_diff(door.0) < 140 && y > door.1;
        let base: [f32; 3] = if fy < 0.35 {
            [120.0 + 60.0 * fy, 160.0 + 40.0 * fy, 220.0 - 30.0 * fx]
        } else if inside_door {
            [110.0 - 30.0 * fy, 60.0 + 10.0 * fx, 40.0]
        } else {
            [180.0 - 50.0 * fy + 20.0 * (fx * 12.0).sin(), 170.0 - 40.0 * fy, 150.0 - 30.0 * fx]
        };
        image::Rgb(std::array::from_fn(|c| (base[c] + tint[c] + noise).clamp(0.0, 255.0) as u8))
    });
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, PHONE_QUALITY))?;
    Ok(jpeg)
}

/// `photo` made phone `phone`'s own: the entries 1 to 3 (low frequencies, in zigzag order) of its first
/// quantization table raised by the three hexadecimal digits of `phone`. Still a valid JPEG of the same size, whose
/// pixels (and so thumbnail) differ from every other phone's.
fn phone_photo(photo: &[u8], phone: usize) -> Result<Vec<u8>> {
    let mut out = photo.to_vec();
    let mut at = 2;
    while at + 4 <= out.len() && out[at] == 0xFF {
        let marker = out[at + 1];
        let len = usize::from(u16::from_be_bytes([out[at + 2], out[at + 3]]));
        if marker == 0xDB {
            // Pq/Tq, then 64 eight-bit entries.
            if out[at + 4] >> 4 != 0 {
                bail!("the encoder wrote a 16-bit quantization table");
            }
            for (k, digit) in [(1, phone & 0xF), (2, (phone >> 4) & 0xF), (3, (phone >> 8) & 0xF)] {
                let entry = &mut out[at + 5 + k];
                *entry = entry.checked_add(digit as u8).context("a quantization entry over 255")?;
            }
            return Ok(out);
        }
        if marker == 0xDA {
            break;
        }
        at += 2 + len;
    }
    bail!("no quantization table before the image data")
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- phones

/// One grid as a phone holds it: the document and the heads the server last confirmed.
struct HeldGrid {
    doc: GridDoc,
    confirmed: Vec<ChangeHash>,
}

/// A field phone, in memory: its token, its actor, its grid and today's photos (hash, bytes).
struct Phone {
    index: usize,
    username: String,
    device_id: String,
    actor: ActorId,
    token: String,
    grids: BTreeMap<String, HeldGrid>,
    photos: Vec<(String, Arc<Vec<u8>>)>,
}

impl Phone {
    /// The push of every grid it holds (the changes after the confirmed heads), CBOR and gzip.
    fn request(&self) -> Vec<u8> {
        let grids = self
            .grids
            .iter()
            .map(|(code, held)| build_push(code, &held.doc, Some(held.confirmed.as_slice())))
            .collect();
        protocol::compress(&protocol::encode(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids,
            tasks: Some(Vec::new()),
            docs: Default::default(),
        }))
    }

    /// Applies a sync answer as `field::sync` does; returns the visits the server said it stored.
    fn apply(&mut self, bytes: &[u8], gzipped: bool) -> Result<u64> {
        let bytes = if gzipped { inflate(bytes)? } else { bytes.to_vec() };
        let reply: SyncResponse = protocol::decode(&bytes)?;
        let mut stored = 0;
        for r in reply.grids {
            stored += u64::from(r.stored);
            match r.kind {
                ReplyKind::New => {
                    let snapshot = r.snapshot.as_ref().context("a new grid without its document")?;
                    let mut doc = GridDoc::load(snapshot)?;
                    doc.set_actor(self.actor.clone());
                    let confirmed = protocol::hashes_from_wire(&r.heads)?;
                    self.grids.insert(r.grid, HeldGrid { doc, confirmed });
                }
                ReplyKind::Synced => {
                    let held = self.grids.get_mut(&r.grid).context("an answer for a grid not held")?;
                    held.confirmed = apply_reply(&mut held.doc, &r)?.confirmed;
                }
                other => bail!("{}: grid {} answered {other:?}", self.username, r.grid),
            }
        }
        Ok(stored)
    }

    /// Records `refs.len()` visits offline, one per photo reference, at places of its grid in the last 8 hours.
    fn record_visits(&mut self, refs: &[PhotoRef], rng: &mut common::Rng) -> Result<()> {
        let now = chrono::Utc::now();
        for photo in refs {
            let held = self.grids.values_mut().next().context("a phone without its grid")?;
            let places: Vec<Place> = held.doc.places()?;
            let place = &places[rng.below(places.len())];
            let at = now - chrono::Duration::minutes(rng.below(8 * 60) as i64 + 1);
            let visit = Visit {
                id: uuid::Uuid::now_v7(),
                place_id: place.id.clone(),
                volunteer: self.username.clone(),
                device: self.device_id.clone(),
                at,
                outcome: Outcome::Completed,
                deliveries: Deliveries::of_flags([
                    true,
                    rng.chance(80),
                    place.kind == PlaceKind::Household,
                    false,
                    false,
                ]),
                note: None,
                gps: None,
                photos: vec![PhotoRef { taken_at: at, ..photo.clone() }],
            };
            held.doc.add_visit(&visit)?;
        }
        Ok(())
    }
}

/// Every phone records `p` visits, each referencing a photo of a later day (named by `day`), never uploaded.
fn record_visits_of_later_photos(
    phones: &mut [Phone],
    day: &str,
    p: usize,
    size: u64,
    rng: &mut common::Rng,
) -> Result<()> {
    for phone in phones.iter_mut() {
        let refs: Vec<PhotoRef> = (0..p)
            .map(|j| PhotoRef {
                sha256: sha256_hex(format!("{day} {} {j}", phone.index).as_bytes()),
                size,
                media_type: "image/jpeg".into(),
                taken_at: chrono::Utc::now(),
                rejected: None,
            })
            .collect();
        phone.record_visits(&refs, rng)?;
    }
    Ok(())
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).context("inflating a sync answer")?;
    Ok(out)
}

/// One sync exchange: the answer's bytes, whether gzip, and its latency (sending to holding the whole answer).
async fn exchange(
    http: &reqwest::Client,
    url: &str,
    phone: &Phone,
    body: Vec<u8>,
) -> Result<(Vec<u8>, bool, Duration)> {
    let start = Instant::now();
    let resp = http
        .post(format!("{url}/api/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .header("content-encoding", protocol::CONTENT_ENCODING)
        .header("accept-encoding", "gzip")
        .body(body)
        .send()
        .await
        .context("sync request")?;
    let status = resp.status();
    let gzipped = resp.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let bytes = resp.bytes().await.context("sync answer")?;
    let elapsed = start.elapsed();
    if !status.is_success() {
        bail!("{}: sync refused with HTTP {status}: {}", phone.username, String::from_utf8_lossy(&bytes));
    }
    Ok((bytes.to_vec(), gzipped, elapsed))
}

fn http_client() -> Result<reqwest::Client> {
    // Decompression by hand, as the sync bench does.
    Ok(reqwest::Client::builder().no_gzip().timeout(Duration::from_secs(600)).build()?)
}

/// Loopback address number `n` of the block `127.<block>.0.0/16`. The server admits at most 256 connections from
/// one address (as from one carrier's gateway); phones come from addresses of their own, so the bench's do too.
fn loopback(block: u8, n: usize) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(127, block, (n / 250 % 250) as u8, (n % 250 + 1) as u8).into()
}

/// A phone's client for its syncs, from its own address.
fn phone_client(phone: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_gzip()
        .local_address(loopback(1, phone))
        .timeout(Duration::from_secs(600))
        .build()?)
}

/// What a concurrent sync of every phone measured.
struct SyncRound {
    wall: Duration,
    latencies: Vec<Duration>,
    stored: u64,
}

impl SyncRound {
    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

fn percentile(list: &[Duration], p: f64) -> Duration {
    let mut l = list.to_vec();
    l.sort();
    let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
    l[rank - 1]
}

/// Every phone syncs once, all at the same time, each on a connection of its own; the requests are built before
/// the clock starts and the answers applied after it stops.
async fn sync_all(url: &str, phones: &mut Vec<Phone>) -> Result<SyncRound> {
    let prepared: Vec<Vec<u8>> = phones.iter().map(Phone::request).collect();
    let start = Instant::now();
    let tasks: Vec<_> = phones
        .drain(..)
        .zip(prepared)
        .map(|(phone, body)| {
            let url = url.to_string();
            tokio::spawn(async move {
                let answer = async { exchange(&phone_client(phone.index)?, &url, &phone, body).await }.await;
                (phone, answer)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await?);
    }
    let wall = start.elapsed();
    let mut round = SyncRound { wall, latencies: Vec::new(), stored: 0 };
    for (mut phone, answer) in answers {
        let (bytes, gzipped, elapsed) = answer?;
        round.stored += phone.apply(&bytes, gzipped)?;
        round.latencies.push(elapsed);
        phones.push(phone);
    }
    phones.sort_by_key(|p| p.index);
    Ok(round)
}

// ---------------------------------------------------------------- uploads

/// Bytes through the proxy: requests up, answers down (HTTP headers included).
#[derive(Default)]
struct Counted {
    up: AtomicU64,
    down: AtomicU64,
}

/// A TCP proxy in front of the server that counts the bytes each way.
async fn counting_proxy(server: std::net::SocketAddr) -> Result<(String, Arc<Counted>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let counted = Arc::new(Counted::default());
    let counters = counted.clone();
    tokio::spawn(async move {
        // Each connection from an address of its own, as each phone's (see `loopback`).
        let mut connections = 0;
        while let Ok((inbound, _)) = listener.accept().await {
            let counters = counters.clone();
            connections += 1;
            let from = loopback(2, connections);
            tokio::spawn(async move {
                let connect = async {
                    let socket = tokio::net::TcpSocket::new_v4()?;
                    socket.bind((from, 0).into())?;
                    socket.connect(server).await
                };
                let Ok(outbound) = connect.await else { return };
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_server, mut to_server) = outbound.into_split();
                let up = copy_counting(&mut from_client, &mut to_server, &counters.up);
                let down = copy_counting(&mut from_server, &mut to_client, &counters.down);
                let _ = tokio::join!(up, down);
            });
        }
    });
    Ok((url, counted))
}

async fn copy_counting(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    counter: &AtomicU64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A phone's day of photos, as its uploads need it: who it is and its photos (hash, bytes).
struct Day {
    username: String,
    token: String,
    photos: Vec<(String, Arc<Vec<u8>>)>,
}

/// What the uploads of one phase measured.
struct Uploads {
    wall: Duration,
    /// Each photo's `PUT`, from sending to the answer.
    latencies: Vec<Duration>,
}

/// One phone's day: asks which of its photos the server lacks, then uploads them one after another on one
/// connection, each whole. Counts every photo that arrived in `arrived`.
async fn upload_day(http: &reqwest::Client, url: &str, phone: &Day, arrived: &AtomicU64) -> Result<Vec<Duration>> {
    let hashes: Vec<&String> = phone.photos.iter().map(|(sha, _)| sha).collect();
    let resp = http
        .post(format!("{url}/api/v1/photos/missing"))
        .bearer_auth(&phone.token)
        .json(&serde_json::json!({ "photos": hashes }))
        .send()
        .await?;
    let status = resp.status();
    let missing: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("{}: POST /api/v1/photos/missing: HTTP {status}: {missing}", phone.username);
    }
    let missing: BTreeSet<&str> =
        missing["missing"].as_array().context("a list of missing photos")?.iter().filter_map(|v| v.as_str()).collect();
    if missing.len() != phone.photos.len() {
        bail!(
            "{}: the server lacks {} of its {} photos before any upload",
            phone.username,
            missing.len(),
            hashes.len()
        );
    }
    let mut latencies = Vec::new();
    for (sha, bytes) in &phone.photos {
        let start = Instant::now();
        let resp = http
            .put(format!("{url}/api/v1/photos/{sha}"))
            .bearer_auth(&phone.token)
            .header("content-type", "image/jpeg")
            .header("upload-offset", "0")
            .header("upload-length", bytes.len().to_string())
            .body(bytes.as_ref().clone())
            .send()
            .await?;
        let status = resp.status();
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        latencies.push(start.elapsed());
        if !status.is_success() || answer["complete"] != true || answer["offset"] != bytes.len() {
            bail!("{}: PUT /api/v1/photos/{sha}: HTTP {status}: {answer}", phone.username);
        }
        arrived.fetch_add(1, Ordering::Relaxed);
    }
    Ok(latencies)
}

/// Every phone uploads its day, `concurrency` phones at a time.
async fn upload_all(
    url: String,
    phones: Arc<Vec<Day>>,
    concurrency: usize,
    arrived: Arc<AtomicU64>,
) -> Result<Uploads> {
    let queue = Arc::new(Mutex::new(0..phones.len()));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(phones.len()))
        .map(|_| {
            let (queue, phones, url, arrived) = (queue.clone(), phones.clone(), url.clone(), arrived.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let next = queue.lock().expect("queue lock").next();
                    let Some(i) = next else { break };
                    // A phone's own connection, kept for its day's photos.
                    let http = http_client()?;
                    latencies.extend(upload_day(&http, &url, &phones[i], &arrived).await?);
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(Uploads { wall: start.elapsed(), latencies })
}

// ---------------------------------------------------------------- the server and its host

/// A `doorstep serve` process, killed when dropped so that a failed run leaves nothing behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts the server on `data`; returns its URL, its `/metrics` URL and the process.
fn serve(data: &Path) -> Result<(String, String, Running)> {
    let mut cmd = Command::new(bin());
    // A port that was free a moment ago: the server prints only its API's address.
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", &metrics.to_string(), "--data-dir"]);
    cmd.arg(data).env_remove("DOORSTEP_DATABASE_URL");
    let (url, child) = common::spawn_server(cmd, "warn,sqlx::query=error")?;
    Ok((url, format!("http://{metrics}/metrics"), Running(child)))
}

/// How long the server's writes have held SQLite's single writer since it started.
async fn write_gate_held(metrics: &str) -> Result<Duration> {
    let text = reqwest::get(metrics).await?.error_for_status()?.text().await?;
    let seconds = text
        .lines()
        .find_map(|l| l.strip_prefix("doorstep_write_gate_held_seconds_sum "))
        .map_or(Ok(0.0), str::parse::<f64>)?;
    Ok(Duration::from_secs_f64(seconds))
}

/// The number of threads of a process.
fn threads(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status.lines().find_map(|l| l.strip_prefix("Threads:")).context("no Threads line")?.trim().parse()?)
}

/// User plus system CPU time of a process, all threads (`/proc/<pid>/stat`, 10 ms ticks).
fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("unexpected /proc stat")?.1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// Peak (`VmHWM`) and current (`VmRSS`) resident memory of a process, in bytes.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(key)).ok_or_else(|| anyhow!("no {key} for {pid}"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse::<u64>()? * 1024)
    };
    Ok((kib("VmHWM:")?, kib("VmRSS:")?))
}

/// Resets a process's peak RSS to its current RSS (`clear_refs`, Linux 4.0 on); returns that RSS.
fn reset_peak(pid: u32) -> Result<u64> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("resetting the server's peak RSS")?;
    Ok(memory(pid)?.1)
}

/// The database's size once its write-ahead log is folded in (what it holds, not what it has yet to checkpoint).
async fn database_bytes(db: &Db, data: &Path) -> Result<u64> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&db.pool).await?;
    let size = |name: &str| std::fs::metadata(data.join(name)).map_or(0, |m| m.len());
    Ok(size("doorstep.db") + size("doorstep.db-wal"))
}

/// Files under `dir`: their bytes and the disk space allocated to them.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut bytes, mut allocated) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (b, a) = dir_bytes(&entry.path());
            bytes += b;
            allocated += a;
        } else {
            bytes += meta.len();
            allocated += meta.blocks() * 512;
        }
    }
    (bytes, allocated)
}

// ---------------------------------------------------------------- setup

fn team_name(t: usize) -> String {
    format!("bench-team-{t:04}")
}

/// A grid of `PLACES_PER_GRID` places per team.
fn territory(teams: usize) -> String {
    let mut csv =
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n"
            .to_string();
    for t in 0..teams {
        for k in 0..PLACES_PER_GRID {
            let kind = if k % 10 == 0 { "shop" } else { "household" };
            csv.push_str(&format!("H{t}-{k},{kind},{k}号,G{t},{t}网格,V1,龙凤村,village,T1,太安镇\n"));
        }
    }
    csv
}

/// The volunteers and their phones, straight into the database, as the bulletins bench inserts them.
const PEOPLE: &[&str] = &[
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1)
     INSERT INTO users (id, username, password_hash, role, team, area, created_at)
     SELECT printf('vol%06d', i), printf('bench-vol-%05d', i),
            (SELECT password_hash FROM users WHERE username = 'office'), 'volunteer',
            printf('bench-team-%04d', i / $2), NULL, $3 FROM n",
    "INSERT INTO devices (device_id, user_id, actor, name, created_at, public_key)
     SELECT 'dev-' || id, id, printf('%032d', CAST(substr(id, 4) AS INTEGER)), 'phone', $3, $4
     FROM users WHERE id LIKE 'vol%'",
];

struct Office {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Office {
    async fn login(url: &str) -> Result<Office> {
        let http = reqwest::Client::builder().gzip(true).build()?;
        let reply: serde_json::Value = http
            .post(format!("{url}/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": "office", "password": PASSWORD }))
            .send()
            .await?
            .error_for_status()
            .context("office login")?
            .json()
            .await?;
        let token = reply["token"].as_str().ok_or_else(|| anyhow!("login reply lacks a token: {reply}"))?;
        Ok(Office { http, url: url.to_string(), token: token.to_string() })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<(Vec<u8>, &str)>) -> Result<Vec<u8>> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some((bytes, content_type)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await?.to_vec();
        if !status.is_success() {
            bail!("{method} {path}: HTTP {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> Result<()> {
        self.send(method, path, Some((serde_json::to_vec(&body)?, "application/json"))).await.map(drop)
    }
}

/// Starts a server on a fresh data dir with the territory, teams and phones; returns the phones (tokens signed with
/// the data dir's key) holding no grid yet.
async fn set_up(data: &Path, args: &Args) -> Result<(String, String, Running, Vec<Phone>)> {
    let n = args.devices;
    common::create_office(bin(), data, PASSWORD)?;
    let (url, metrics, server) = serve(data)?;
    let office = Office::login(&url).await?;
    let teams = n.div_ceil(args.team_size);
    office
        .send(reqwest::Method::POST, "/api/v1/territory/import", Some((territory(teams).into_bytes(), "text/csv")))
        .await?;
    for t in 0..teams {
        office.json(reqwest::Method::POST, "/api/v1/teams", serde_json::json!({ "name": team_name(t) })).await?;
        let assignment = serde_json::json!({ "team": team_name(t) });
        office.json(reqwest::Method::PUT, &format!("/api/v1/assignments/G{t}"), assignment).await?;
    }
    let enrolled_ms = chrono::Utc::now().timestamp_millis();
    let public_key = client_core::sign::KeyPair::from_seed([7; 32]).public().to_hex();
    let db = Db::connect(&sqlite_url(data)).await?;
    for sql in PEOPLE {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .bind(n as i64)
            .bind(args.team_size as i64)
            .bind(enrolled_ms)
            .bind(&public_key)
            .execute(&db.pool)
            .await?;
    }
    db.pool.close().await;
    let keys = Keys::load_or_create(data)?;
    let now = chrono::Utc::now().timestamp();
    let phones = (0..n)
        .map(|i| {
            let actor = format!("{i:032}");
            let token = keys.issue_device(&Claims {
                sub: format!("vol{i:06}"),
                usr: format!("bench-vol-{i:05}"),
                role: Role::Volunteer,
                team: Some(team_name(i / args.team_size)),
                dev: Some(format!("dev-vol{i:06}")),
                act: Some(actor.clone()),
                key: Some(public_key.clone()),
                enrolled_ms: Some(enrolled_ms),
                aud: DEVICE_AUDIENCE.to_string(),
                iat: now,
                exp: now + DEVICE_TTL_SECS,
            });
            Ok(Phone {
                index: i,
                username: format!("bench-vol-{i:05}"),
                device_id: format!("dev-vol{i:06}"),
                actor: ActorId::try_from(actor.as_str()).map_err(|_| anyhow!("actor {actor} is not hex"))?,
                token,
                grids: BTreeMap::new(),
                photos: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((url, metrics, server, phones))
}

// ---------------------------------------------------------------- the gallery

/// A photo per visit of the generated town (`common::GENERATE_TOWN`, one visit per place), all received, and the
/// indicators each completed visit reached, as the projection writes them.
const GALLERY: &[&str] = &[
    "INSERT INTO visit_photos (visit_id, sha256, place_id, grid_code, volunteer, device_id, media_type, size,
                               taken_at, visited_at)
     SELECT visit_id, printf('%064d', CAST(substr(place_id, 2) AS INTEGER)), place_id, grid_code, volunteer,
            device_id, 'image/jpeg', 150000 + abs(random()) % 100000, at - 60000, at
     FROM visits",
    "INSERT INTO photos (sha256, stored_sha256, thumbnail_sha256, media_type, width, height, size, stripped,
                         received_at, uploaded_by, device_id)
     SELECT sha256, sha256, sha256, media_type, 1600, 1200, size, '', visited_at + 3600000, volunteer, device_id
     FROM visit_photos",
    "INSERT INTO visit_indicators (visit_id, indicator, place_id, volunteer, at)
     SELECT v.visit_id, pi.indicator, v.place_id, v.volunteer, v.at
     FROM visits v JOIN place_indicators pi ON pi.place_id = v.place_id
     WHERE pi.reached_at IS NOT NULL AND v.outcome = 'completed'",
    "UPDATE visits SET photos = 1",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One gallery page as timed: its label, median, body bytes (before gzip) and photos.
struct Page {
    label: String,
    median: Duration,
    bytes: usize,
    photos: usize,
}

async fn gallery(args: &Args, tmp: &Path) -> Result<(Duration, Duration, Vec<Page>)> {
    let data = args.keep_gallery.clone().unwrap_or_else(|| tmp.join("gallery"));
    if data.exists() {
        bail!("{}: the gallery is generated into a new directory", data.display());
    }
    let places = args.gallery_photos;
    common::create_office(bin(), &data, PASSWORD)?;
    let started = Instant::now();
    let db = Db::connect(&sqlite_url(&data)).await?;
    for (i, sql) in common::GENERATE_TOWN.iter().enumerate() {
        let q = sqlx::query(sqlx::AssertSqlSafe(*sql));
        let q = match i {
            0 => q.bind(places as i64),
            2 => q.bind(1_i64),
            _ => q,
        };
        q.execute(&db.pool).await?;
    }
    for sql in GALLERY {
        sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&db.pool).await?;
    }
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM visit_photos").fetch_one(&db.pool).await?;
    // The gallery's cursor (`next`) at its middle row: a page half way through.
    let (at, visit, sha): (i64, String, String) = sqlx::query_as(
        "SELECT visited_at, visit_id, sha256 FROM visit_photos \
         ORDER BY visited_at DESC, visit_id DESC, sha256 DESC LIMIT 1 OFFSET $1",
    )
    .bind(places as i64 / 2)
    .fetch_one(&db.pool)
    .await?;
    let middle = format!("{at}.{visit}.{sha}");
    db.pool.close().await;
    if count != places as i64 {
        bail!("generated {count} photo references, expected {places}");
    }
    let generated = started.elapsed();
    eprintln!("gallery: {places} photos generated in {:.1} s", generated.as_secs_f64());

    let (url, _metrics, _server) = serve(&data)?;
    let office = Office::login(&url).await?;
    let timed = |path: String| {
        let office = &office;
        async move {
            let mut times = Vec::new();
            let mut body = Vec::new();
            for _ in 0..args.runs {
                let start = Instant::now();
                body = office.send(reqwest::Method::GET, &path, None).await?;
                times.push(start.elapsed());
            }
            Ok::<_, anyhow::Error>((median(times), body))
        }
    };
    // The connection is opened before the clock runs.
    office.send(reqwest::Method::GET, "/healthz", None).await?;
    let (healthz, _) = timed("/healthz".to_string()).await?;
    let page_of = |body: &[u8]| -> Result<(Vec<serde_json::Value>, Option<String>)> {
        let page: serde_json::Value = serde_json::from_slice(body)?;
        let photos = page["photos"].as_array().context("a gallery page without photos")?.clone();
        Ok((photos, page["next"].as_str().map(str::to_string)))
    };
    // A grid and a village in the middle of the town (300 places a grid, 3,000 a village).
    let grid = format!("G{:05}", places / 2 / 300);
    let village = format!("V{:04}", places / 2 / 3000);
    let first_path = "/api/v1/photos?limit=60".to_string();
    let (_, first) = timed(first_path.clone()).await?;
    let next = page_of(&first)?.1.context("the first page has no next page")?;
    let mut paths = vec![
        ("the newest 60 (first page)".to_string(), first_path),
        ("the next 60 (`after`)".to_string(), format!("/api/v1/photos?limit=60&after={next}")),
        ("60 half way through (`after`)".to_string(), format!("/api/v1/photos?limit=60&after={middle}")),
        (format!("a grid's newest 60 (`area={grid}`)"), format!("/api/v1/photos?limit=60&area={grid}")),
        (format!("a village's newest 60 (`area={village}`)"), format!("/api/v1/photos?limit=60&area={village}")),
        (
            "an indicator's newest 60 (`indicator=poster`)".to_string(),
            "/api/v1/photos?limit=60&indicator=poster".into(),
        ),
        ("standing photos, newest 60 (`state=standing`)".to_string(), "/api/v1/photos?limit=60&state=standing".into()),
    ];
    let mut pages = Vec::new();
    for (label, path) in paths.drain(..) {
        let (m, body) = timed(path.clone()).await.with_context(|| format!("GET {path}"))?;
        let (photos, _) = page_of(&body)?;
        if photos.is_empty() {
            bail!("GET {path}: an empty page");
        }
        if path.contains("area=G") && photos.iter().any(|p| p["grid_code"] != grid.as_str()) {
            bail!("GET {path}: a photo of another grid");
        }
        pages.push(Page { label, median: m, bytes: body.len(), photos: photos.len() });
    }
    Ok((generated, healthz, pages))
}

// ---------------------------------------------------------------- the run

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let (n, p) = (args.devices, args.photos_per_device);
    let concurrency = args.concurrency.unwrap_or(n);
    let total = n * p;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let setup_start = Instant::now();

    // ---- photos, made once ----
    let bases = (0..p).map(|j| base_photo(j as u64 + 1)).collect::<Result<Vec<_>>>()?;
    let photo_bytes = bases.iter().map(Vec::len).sum::<usize>() as f64 / p as f64;
    let (url, metrics, server, mut phones) = set_up(&data, &args).await?;
    let pid = server.0.id();
    let mut rng = common::Rng(0x9407_0522);
    for phone in phones.iter_mut() {
        for base in &bases {
            let bytes = phone_photo(base, phone.index)?;
            phone.photos.push((sha256_hex(&bytes), Arc::new(bytes)));
        }
    }
    let distinct: BTreeSet<String> =
        phones.iter().flat_map(|ph| ph.photos.iter().map(|(sha, _)| sha.clone())).collect();
    if distinct.len() != total {
        bail!("{} distinct photos made, expected {total}", distinct.len());
    }

    // ---- every phone receives its grid ----
    let first = sync_all(&url, &mut phones).await?;
    if phones.iter().any(|ph| ph.grids.len() != 1) || first.stored != 0 {
        bail!("a phone did not receive exactly its team's grid");
    }
    let setup = setup_start.elapsed();
    let db = Db::connect(&sqlite_url(&data)).await?;
    let blobs_dir = data.join("blobs");

    // ---- A: a day's visits with photo references, no uploads ----
    for phone in phones.iter_mut() {
        let refs: Vec<PhotoRef> = phone
            .photos
            .iter()
            .map(|(sha, bytes)| PhotoRef {
                sha256: sha.clone(),
                size: bytes.len() as u64,
                media_type: "image/jpeg".into(),
                taken_at: chrono::Utc::now(),
                rejected: None,
            })
            .collect();
        phone.record_visits(&refs, &mut rng)?;
    }
    let db_before_a = database_bytes(&db, &data).await?;
    eprintln!("A: {n} phones sync {p} visits each, no uploads");
    let (cpu_before, gate_before) = (cpu_time(pid)?, write_gate_held(&metrics).await?);
    let a = sync_all(&url, &mut phones).await?;
    let cpu_a = cpu_time(pid)? - cpu_before;
    let gate_a = write_gate_held(&metrics).await? - gate_before;
    let db_after_a = database_bytes(&db, &data).await?;
    if a.stored != total as u64 {
        bail!("the server stored {} visits of {total}", a.stored);
    }
    let rss_after_a = reset_peak(pid)?;
    let blobs_before = dir_bytes(&blobs_dir);

    // ---- B: the same number of visits again, while every phone uploads its day's photos ----
    // Tomorrow's photos: referenced, not uploaded in this run.
    record_visits_of_later_photos(&mut phones, "tomorrow", p, photo_bytes as u64, &mut rng)?;
    let addr = url.strip_prefix("http://").context("the server's URL")?.parse()?;
    let (proxy_url, wire) = counting_proxy(addr).await?;
    eprintln!("B: {n} phones upload {p} photos each ({concurrency} at a time) and sync {p} visits each");
    let (cpu_before, gate_before) = (cpu_time(pid)?, write_gate_held(&metrics).await?);
    let b_start = Instant::now();
    let arrived = Arc::new(AtomicU64::new(0));
    let days: Arc<Vec<Day>> = Arc::new(
        phones
            .iter()
            .map(|ph| Day { username: ph.username.clone(), token: ph.token.clone(), photos: ph.photos.clone() })
            .collect(),
    );
    let uploads = (!args.calibrate).then(|| tokio::spawn(upload_all(proxy_url, days, concurrency, arrived.clone())));
    // The visits sync once the uploads are in full swing.
    while arrived.load(Ordering::Relaxed) < (total as u64 / 10).max(1)
        && uploads.as_ref().is_some_and(|u| !u.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived_at_sync = arrived.load(Ordering::Relaxed);
    let b = sync_all(&url, &mut phones).await?;
    let arrived_after_sync = arrived.load(Ordering::Relaxed);
    let uploads = match uploads {
        Some(uploads) => Some(uploads.await??),
        None => None,
    };
    let cpu_b = cpu_time(pid)? - cpu_before;
    let (gate_b, b_wall) = (write_gate_held(&metrics).await? - gate_before, b_start.elapsed());
    let (peak_b, rss_b) = memory(pid)?;
    let threads_b = threads(pid)?;
    let (wire_up, wire_down) = (wire.up.load(Ordering::Relaxed), wire.down.load(Ordering::Relaxed));
    if b.stored != total as u64 {
        bail!("the server stored {} visits of {total} while the photos arrived", b.stored);
    }
    let db_after_b = database_bytes(&db, &data).await?;
    let blobs_after = dir_bytes(&blobs_dir);

    // ---- A2: the same number of visits again, no uploads: the baseline after B ----
    // The grids grow by a day's visits in every phase, and a sync costs more on a larger document: B is compared
    // with the mean of the baselines before and after it, whose documents are on average as large as B's.
    record_visits_of_later_photos(&mut phones, "the day after", p, photo_bytes as u64, &mut rng)?;
    eprintln!("A2: {n} phones sync {p} visits each, no uploads");
    let a2 = sync_all(&url, &mut phones).await?;
    if a2.stored != total as u64 {
        bail!("the server stored {} visits of {total} after the photos arrived", a2.stored);
    }
    let visits_per_s = |r: &SyncRound| total as f64 / r.wall.as_secs_f64();
    let around = |f: &dyn Fn(&SyncRound) -> f64| (f(&a) + f(&a2)) / 2.0;
    let Some(uploads) = uploads else {
        println!(
            "calibration ({n} phones, {p} visits each per phase, no uploads in B): visits/s A {:.0}, B {:.0}, A2 {:.0}; \
             B against A and A2 (their mean): visits/s ×{:.2}, p50 ×{:.2}, p99 ×{:.2}",
            visits_per_s(&a),
            visits_per_s(&b),
            visits_per_s(&a2),
            visits_per_s(&b) / around(&visits_per_s),
            b.percentile(0.5).as_secs_f64() / around(&|r| r.percentile(0.5).as_secs_f64()),
            b.percentile(0.99).as_secs_f64() / around(&|r| r.percentile(0.99).as_secs_f64()),
        );
        return Ok(());
    };

    // ---- checks: every photo arrived as sent, with its thumbnail; none missing any more ----
    let held: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT sha256, stored_sha256, thumbnail_sha256, size FROM photos WHERE device_id LIKE 'dev-vol%'",
    )
    .fetch_all(&db.pool)
    .await?;
    let held_hashes: BTreeSet<String> = held.iter().map(|(sha, ..)| sha.clone()).collect();
    if held_hashes != distinct {
        bail!("the server holds {} photo rows; {total} photos were uploaded", held.len());
    }
    let (stored_bytes, thumb_bytes, stored_files, thumb_files): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(bs.size) AS BIGINT), CAST(SUM(bt.size) AS BIGINT), \
           CAST(COUNT(DISTINCT ph.stored_sha256) AS BIGINT), CAST(COUNT(DISTINCT ph.thumbnail_sha256) AS BIGINT) \
         FROM photos ph JOIN blobs bs ON bs.sha256 = ph.stored_sha256 JOIN blobs bt ON bt.sha256 = ph.thumbnail_sha256 \
         WHERE ph.device_id LIKE 'dev-vol%'",
    )
    .fetch_one(&db.pool)
    .await?;
    if stored_files != total as i64 {
        bail!("{stored_files} stored files for {total} photos: the photos were not each kept with their file");
    }
    let http = http_client()?;
    for phone in &phones {
        let hashes: Vec<&String> = phone.photos.iter().map(|(sha, _)| sha).collect();
        let missing: serde_json::Value = http
            .post(format!("{url}/api/v1/photos/missing"))
            .bearer_auth(&phone.token)
            .json(&serde_json::json!({ "photos": hashes }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if missing["missing"].as_array().is_none_or(|m| !m.is_empty()) {
            bail!("{}: photos still missing after the uploads: {missing}", phone.username);
        }
    }
    db.pool.close().await;
    drop(server);

    // ---- G: the gallery of a million photos ----
    let (generated, healthz, pages) = gallery(&args, tmp.path()).await?;

    // ---- report ----
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "doorstep photos benchmark: {n} phones in teams of {}, {p} photos each ({total}; 1600×1200 JPEG at quality \
         {PHONE_QUALITY}, {:.0} B on average), {concurrency} phones uploading at once; embedded SQLite, blobs in the \
         data dir; {cpus} CPUs ({cpu_model})",
        args.team_size, photo_bytes
    );
    println!("setup {:.1} s (photos made, server set up, every phone's grid received)", setup.as_secs_f64());
    println!();
    println!(
        "{:<34} {:>9} {:>10} {:>9} {:>9} {:>11}",
        "visit sync, all phones at once", "wall ms", "visits/s", "p50 ms", "p99 ms", "srv cpu ms"
    );
    println!(
        "{:<34} {:>9} {:>10.0} {:>9} {:>9} {:>11}",
        "A: alone (baseline before)",
        ms(a.wall),
        visits_per_s(&a),
        ms(a.percentile(0.5)),
        ms(a.percentile(0.99)),
        ms(cpu_a)
    );
    println!(
        "{:<34} {:>9} {:>10.0} {:>9} {:>9} {:>11}",
        "B: while the photos arrive",
        ms(b.wall),
        visits_per_s(&b),
        ms(b.percentile(0.5)),
        ms(b.percentile(0.99)),
        "-"
    );
    println!(
        "{:<34} {:>9} {:>10.0} {:>9} {:>9} {:>11}",
        "A2: alone (baseline after)",
        ms(a2.wall),
        visits_per_s(&a2),
        ms(a2.percentile(0.5)),
        ms(a2.percentile(0.99)),
        "-"
    );
    println!(
        "B against A and A2 (their mean): visits/s ×{:.2}, p50 ×{:.2}, p99 ×{:.2} (against A alone: visits/s ×{:.2}, \
         p50 ×{:.2}); {arrived_at_sync} photos had arrived when the sync started, {arrived_after_sync} when its \
         answers were applied ({})",
        visits_per_s(&b) / around(&visits_per_s),
        b.percentile(0.5).as_secs_f64() / around(&|r| r.percentile(0.5).as_secs_f64()),
        b.percentile(0.99).as_secs_f64() / around(&|r| r.percentile(0.99).as_secs_f64()),
        visits_per_s(&b) / visits_per_s(&a),
        b.percentile(0.5).as_secs_f64() / a.percentile(0.5).as_secs_f64(),
        if arrived_after_sync < total as u64 { "uploads under way throughout" } else { "UPLOADS ENDED FIRST" },
    );
    println!("server CPU per visit in A: {:.0} µs", cpu_a.as_secs_f64() * 1e6 / total as f64);
    println!(
        "SQLite's single writer held: A {} ms of its {} ms; B {} ms of its {} ms (uploads and sync)",
        ms(gate_a),
        ms(a.wall),
        ms(gate_b),
        ms(b_wall)
    );
    let photo_cpu = cpu_b.saturating_sub(cpu_a);
    println!();
    println!(
        "uploads: {total} photos in {:.1} s: {:.1} photos/s, {:.2} MB/s of photo bytes; PUT p50 {} ms, p99 {} ms",
        uploads.wall.as_secs_f64(),
        total as f64 / uploads.wall.as_secs_f64(),
        total as f64 * photo_bytes / 1e6 / uploads.wall.as_secs_f64(),
        ms(percentile(&uploads.latencies, 0.5)),
        ms(percentile(&uploads.latencies, 0.99)),
    );
    println!(
        "server CPU in B {} ms, less A's {} ms for the visits: {:.1} ms per photo (target under 20 ms)",
        ms(cpu_b),
        ms(cpu_a),
        photo_cpu.as_secs_f64() * 1e3 / total as f64
    );
    println!(
        "server RSS: {} after A; peak during B {} (+{}); {} at the end of B, with {threads_b} threads",
        mib(rss_after_a),
        mib(peak_b),
        mib(peak_b.saturating_sub(rss_after_a)),
        mib(rss_b)
    );
    println!(
        "on the wire per photo (the phone's `missing` call and its PUT, HTTP headers included): {:.0} B up (×{:.3} \
         the photo), {:.0} B down",
        wire_up as f64 / total as f64,
        wire_up as f64 / total as f64 / photo_bytes,
        wire_down as f64 / total as f64
    );
    let per_photo = |bytes: f64| bytes / total as f64;
    let db_visits = db_after_a.saturating_sub(db_before_a) as f64;
    let db_photos = (db_after_b.saturating_sub(db_after_a) as f64 - db_visits).max(0.0);
    println!(
        "kept per photo: the file {:.0} B (metadata stripped), its thumbnail {:.0} B ({stored_files} files and \
         {thumb_files} thumbnails for {total} photos); blob directory +{:.0} B per photo ({:.0} B allocated)",
        per_photo(stored_bytes as f64),
        per_photo(thumb_bytes as f64),
        per_photo(blobs_after.0.saturating_sub(blobs_before.0) as f64),
        per_photo(blobs_after.1.saturating_sub(blobs_before.1) as f64),
    );
    println!(
        "database (checkpointed): +{:.0} B per visit with a photo reference in A; B's growth less A's: {:.0} B per \
         photo received",
        db_visits / total as f64,
        per_photo(db_photos)
    );
    let per_place = per_photo(blobs_after.1.saturating_sub(blobs_before.1) as f64)
        + per_photo(db_photos)
        + db_visits / total as f64;
    println!(
        "10,000 places with one photo each: {:.2} GB (the photo's files on disk, its row, the visit and its \
         reference)",
        per_place * 10_000.0 / 1e9
    );
    println!();
    println!(
        "gallery of {} photos (generated in {:.1} s), as the office, gzip, median of {} runs:",
        args.gallery_photos,
        generated.as_secs_f64(),
        args.runs
    );
    println!("{:<52} {:>9} {:>10} {:>7} {:>10}", "page", "time", "bytes", "photos", "÷ healthz");
    println!("{:<52} {:>7}ms {:>10} {:>7} {:>10}", "baseline: /healthz", ms(healthz), "", "", "×1");
    for page in &pages {
        println!(
            "{:<52} {:>7}ms {:>10} {:>7} {:>9.0}×",
            page.label,
            ms(page.median),
            page.bytes,
            page.photos,
            page.median.as_secs_f64() / healthz.as_secs_f64()
        );
    }
    println!(
        "check: {total} photos uploaded and held, each with its file and thumbnail, none missing; {} visits synced \
         in A, B and A2 each; no gallery page empty",
        total
    );
    Ok(())
}
