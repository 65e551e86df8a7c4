//! Bulletins at scale: what a bulletin with an attachment costs the server when N devices receive it directly,
//! what it costs when a team receives it through its hub, and what holding K bulletins adds to an ordinary sync
//! with nothing new, each against a baseline from the same run.
//!
//! `cargo bench --bench bulletins [-- --devices N --team-size S --attachment-mb M --held K --concurrency C]`
//! (defaults 10,000 devices in teams of 20, 2 MB, 20 bulletins, 50 devices at a time).
//!
//! The server is the real `doorstep serve` on an SQLite data dir, bootstrapped with `doorstep admin create-user`
//! and set up through its HTTP API (a grid of one place per team, the teams, the first team's lead); the N
//! volunteers and their phones are inserted straight into its database (as `benches/console.rs` does), and each
//! phone's device token is signed with the data dir's key as enrolment signs it (`Keys::issue_device`). The lead
//! enrols a real CLI profile through a counting TCP proxy, so that every byte between the lead's hub and the
//! server is counted, and serves it with `doorstep hub serve`. Devices sync with the CBOR protocol and gzip bodies
//! as the field clients do (a phone's documents are reduced to the heads it holds and the server's latest
//! attestations: all that a sync with nothing to push sends), and download attachments with
//! `GET /api/v1/blobs/{sha256}`; C devices at a time, each request on a connection of its own.
//!
//! A sync within a minute of the device's last contact writes nothing when nothing is new; a later one records the
//! contact. The baselines and the syncs holding K bulletins are measured both ways: with every device's last
//! contact set an hour back, and set to now (by SQL, just before the phase).
//!
//! Phases:
//! 1. first sync: every device receives its team's grid (so that the phases below are those of devices that hold
//!    their documents);
//! 2. baseline: every device syncs with nothing new and no bulletin published (seen an hour ago, then now);
//! 3. bulletin, direct: a bulletin with an M MB PNG attachment is published to everyone; every device syncs once
//!    and downloads the attachment from the server;
//! 4. bulletin, via hub: a second such bulletin; the lead's hub syncs upstream once (`doorstep hub sync`), then the
//!    S devices of its team sync through it and download the attachment from it (the server's CPU and the bytes
//!    between hub and server are counted from the hub's upstream sync on);
//! 5. catch-up: K−2 more bulletins (without attachments) are published; every device syncs with the server and
//!    receives them (the other teams the second bulletin too, and its attachment);
//! 6. K held: every device, holding K bulletins, syncs with nothing new (seen an hour ago, then now), against the
//!    baselines.
//!
//! The run fails unless every device received every bulletin once, each download is whole (every 100th verified
//! by its SHA-256), the syncs with nothing new answered nothing new, and the server found the syncs of devices
//! holding K bulletins, seen now, quiet (it keeps each document's heads beside it, so that such a sync loads none).

mod common;

use anyhow::{anyhow, bail, Context, Result};
use client_core::bulletin::doc::BulletinDoc;
use client_core::protocol::{
    self, Attestation, DocAnswer, DocPush, GridPush, ReplyKind, SyncRequest, SyncResponse, PROTOCOL_VERSION,
};
use client_core::store::StoredDoc;
use serde_bytes::ByteBuf;
use server::accounts::tokens::{Claims, Keys, Role, DEVICE_AUDIENCE, DEVICE_TTL_SECS};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep");
const PASSWORD: &str = "a bench password";
const LEAD: &str = "bench-lead";
const KIND: &str = "bulletin";
const USAGE: &str = "usage: cargo bench --bench bulletins [-- --devices N --team-size S --attachment-mb M --held K \
                     --concurrency C]";
/// The territory: one grid of one place per team, so that every device holds its team's grid (and the hub's
/// profile one).
fn territory(teams: usize) -> String {
    let mut csv =
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n"
            .to_string();
    for t in 0..teams {
        csv.push_str(&format!("H{t},household,{t}号,G{t},{t}网格,V1,龙凤村,village,T1,太安镇\n"));
    }
    csv
}

fn team_name(t: usize) -> String {
    format!("bench-team-{t:04}")
}

struct Args {
    devices: usize,
    /// Devices per team; the hub serves the first team.
    team_size: usize,
    attachment_mb: usize,
    held: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { devices: 10_000, team_size: 20, attachment_mb: 2, held: 20, concurrency: 50 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<usize> {
            let v = it.next().ok_or_else(|| anyhow!("{name} needs a value"))?;
            v.parse().ok().filter(|n| *n > 0).ok_or_else(|| anyhow!("{name} {v:?} is not a positive number"))
        };
        match arg.as_str() {
            "--devices" => args.devices = number("--devices")?,
            "--team-size" => args.team_size = number("--team-size")?,
            "--attachment-mb" => args.attachment_mb = number("--attachment-mb")?,
            "--held" => args.held = number("--held")?,
            "--concurrency" => args.concurrency = number("--concurrency")?,
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if args.held < 2 {
        bail!("--held {}: the devices hold at least the two bulletins with attachments", args.held);
    }
    Ok(args)
}

/// A process of the real binary, killed when dropped so that a failed run leaves nothing behind.
struct Running(Child);

impl Running {
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts `doorstep hub serve` on the lead's profile and reads the address it prints.
fn start_hub(profile: &Path) -> Result<(String, Running)> {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .args(["hub", "serve", "--listen", "127.0.0.1:0", "--upstream-every", "0"])
        .env("DOORSTEP_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting doorstep hub serve")?;
    let mut reader = std::io::BufReader::new(child.stdout.take().context("stdout")?);
    let running = Running(child);
    let mut line = String::new();
    let url = loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("doorstep hub serve exited before listening");
        }
        if let Some(url) = line.trim().strip_prefix("Doorstep hub listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((url, running))
}

/// Runs the binary on a profile to its end (`stdin` given to `--password-stdin`).
async fn run(profile: &Path, args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut child = tokio::process::Command::new(BIN)
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env("DOORSTEP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().context("stdin")?;
    if let Some(text) = stdin {
        input.write_all(format!("{text}\n").as_bytes()).await?;
    }
    drop(input);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("doorstep {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Bytes through the proxy between the lead's profile (its hub) and the server: requests up, answers down.
#[derive(Default)]
struct Counted {
    up: AtomicU64,
    down: AtomicU64,
}

impl Counted {
    fn now(&self) -> (u64, u64) {
        (self.up.load(Ordering::Relaxed), self.down.load(Ordering::Relaxed))
    }
}

/// A TCP proxy in front of the server that counts the bytes each way (HTTP headers included).
async fn counting_proxy(server: std::net::SocketAddr) -> Result<(String, Arc<Counted>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let counted = Arc::new(Counted::default());
    let counters = counted.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let counters = counters.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(server).await else { return };
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

/// User plus system CPU time of a process, all threads (`/proc/<pid>/stat`).
fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are fixed. utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')').context("unexpected /proc stat")?.1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ: 100 on every Linux platform.
    Ok(Duration::from_millis(ticks * 10))
}

/// The office's session.
struct Office {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Office {
    async fn login(url: &str) -> Result<Office> {
        let http = reqwest::Client::new();
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

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: reqwest::Body,
        content_type: &str,
    ) -> Result<serde_json::Value> {
        let resp = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: HTTP {status}: {text}");
        }
        Ok(if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text)? })
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        self.call(method, path, serde_json::to_vec(&body)?.into(), "application/json").await
    }

    /// Uploads an attachment (if any) and publishes a bulletin to everyone with it; returns the bulletin's id and
    /// its attachments as stored.
    async fn publish(&self, title: &str, attachment: Option<(&str, Vec<u8>)>) -> Result<(String, Vec<Attachment>)> {
        let mut attachments = Vec::new();
        if let Some((name, bytes)) = attachment {
            let path = format!("/api/v1/blobs?name={name}");
            let stored = self.call(reqwest::Method::POST, &path, bytes.into(), "application/octet-stream").await?;
            let sha256 = stored["sha256"].as_str().ok_or_else(|| anyhow!("upload answer: {stored}"))?.to_string();
            let size = stored["size"].as_u64().ok_or_else(|| anyhow!("upload answer: {stored}"))?;
            if stored["type"] != "image/png" {
                bail!("the attachment was stored as {}, expected image/png", stored["type"]);
            }
            attachments.push(Attachment { sha256, size, name: name.to_string() });
        }
        let body = serde_json::json!({
            "title": title,
            "body": "**近期冒充客服退款诈骗高发**\n- 不要点击陌生链接\n- 不要透露验证码",
            "kind": "fraud_method",
            "priority": "normal",
            "audience": { "everyone": true },
            "attachments": attachments.iter().map(|a| serde_json::json!({ "sha256": a.sha256, "name": a.name }))
                .collect::<Vec<_>>(),
        });
        let published = self.json(reqwest::Method::POST, "/api/v1/bulletins", body).await?;
        let id = published["id"].as_str().ok_or_else(|| anyhow!("publish answer: {published}"))?.to_string();
        Ok((id, attachments))
    }
}

#[derive(Clone)]
struct Attachment {
    sha256: String,
    size: u64,
    name: String,
}

/// An attachment of `mb` MB that the server takes for a PNG image (it judges by the first bytes), the rest random.
fn png_of(mb: usize, seed: u64) -> Vec<u8> {
    let mut rng = common::Rng(seed);
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    while bytes.len() < mb * 1_000_000 {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(mb * 1_000_000);
    bytes
}

/// A document as a device keeps it for a sync with nothing to push: its heads and the server's latest attestation.
#[derive(Clone, Default)]
struct Held {
    heads: Vec<ByteBuf>,
    attestation: Option<Attestation>,
}

/// A field device, reduced to what it sends and receives.
struct Device {
    token: String,
    grids: BTreeMap<String, Held>,
    bulletins: BTreeMap<String, Held>,
}

impl Device {
    /// The request `doorstep field sync` sends when it has nothing new: every document held, at its heads.
    fn request(&self) -> Vec<u8> {
        let grids = self
            .grids
            .iter()
            .map(|(grid, held)| GridPush {
                grid: grid.clone(),
                have: held.heads.clone(),
                changes: Vec::new(),
                signatures: Vec::new(),
                attestation: held.attestation.clone(),
            })
            .collect();
        let bulletins = self
            .bulletins
            .iter()
            .map(|(id, held)| DocPush {
                id: id.clone(),
                have: held.heads.clone(),
                changes: Vec::new(),
                signatures: Vec::new(),
                attestation: held.attestation.clone(),
            })
            .collect();
        let request = SyncRequest {
            protocol: PROTOCOL_VERSION,
            grids,
            tasks: Some(Vec::new()),
            docs: BTreeMap::from([(KIND.to_string(), bulletins)]),
        };
        protocol::compress(&protocol::encode(&request))
    }

    /// Applies a reply.
    fn apply(&mut self, reply: SyncResponse) -> Result<Applied> {
        let mut changed = false;
        for r in reply.grids {
            match r.kind {
                ReplyKind::New | ReplyKind::Synced => {
                    changed |= r.kind == ReplyKind::New || !r.changes.is_empty();
                    let held = self.grids.entry(r.grid).or_default();
                    held.heads = r.heads;
                    if r.attestation.is_some() {
                        held.attestation = r.attestation;
                    }
                }
                other => bail!("grid {} answered {other:?}", r.grid),
            }
        }
        let mut new = Vec::new();
        let answered = reply.docs.get(KIND).map_or(0, Vec::len);
        for r in reply.docs.into_iter().filter(|(kind, _)| kind == KIND).flat_map(|(_, replies)| replies) {
            match r.answer {
                DocAnswer::New | DocAnswer::Synced => {
                    changed |= r.answer == DocAnswer::New || !r.changes.is_empty();
                    if r.answer == DocAnswer::New {
                        new.push((r.id.clone(), r.snapshot.clone().context("a new bulletin without its document")?));
                    }
                    let held = self.bulletins.entry(r.id).or_default();
                    held.heads = r.heads;
                    if r.attestation.is_some() {
                        held.attestation = r.attestation;
                    }
                }
                other => bail!("bulletin {} answered {other:?}", r.id),
            }
        }
        Ok(Applied { new, changed, answered })
    }
}

/// What a sync answer brought a device.
struct Applied {
    /// The bulletins received new, with their documents.
    new: Vec<(String, ByteBuf)>,
    /// Whether anything the device holds changed.
    changed: bool,
    /// How many bulletins the answer named (none when the server found the sync quiet).
    answered: usize,
}

/// What one device's turn in a phase cost, as the device saw it.
#[derive(Default, Clone, Copy)]
struct Turn {
    /// From sending the sync request to holding the whole answer.
    sync: Duration,
    /// The sync and the downloads after it.
    total: Duration,
    request_bytes: u64,
    response_bytes: u64,
    file_bytes: u64,
    received: usize,
    changed: bool,
    /// Bulletins the answer named: none when the server found that the sync changes nothing.
    answered: usize,
}

/// What a phase measured.
struct Phase {
    name: &'static str,
    turns: Vec<Turn>,
    wall: Duration,
    server_cpu: Duration,
    hub_cpu: Option<Duration>,
    /// Bytes between the lead's profile and the server (requests, answers), for the hub phase.
    upstream: Option<(u64, u64)>,
}

impl Phase {
    fn percentile(&self, p: f64, f: impl Fn(&Turn) -> Duration) -> Duration {
        let mut l: Vec<Duration> = self.turns.iter().map(f).collect();
        l.sort();
        let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
        l[rank - 1]
    }
    fn per_device(&self, f: impl Fn(&Turn) -> u64) -> f64 {
        self.turns.iter().map(f).sum::<u64>() as f64 / self.turns.len() as f64
    }
    fn server_cpu_per_device(&self) -> Duration {
        self.server_cpu / self.turns.len() as u32
    }
}

/// One device's turn: a sync with `base` (the server or the hub), then the download from `base` of every
/// attachment of the bulletins it received new. The request is built before the clock starts (on a phone it is
/// ready before the signal is).
async fn turn(
    http: &reqwest::Client,
    base: &str,
    device: &mut Device,
    files: &HashMap<String, Vec<Attachment>>,
    verify: bool,
) -> Result<Turn> {
    let body = device.request();
    let mut t = Turn { request_bytes: body.len() as u64, ..Default::default() };
    let start = Instant::now();
    let resp = http
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
    let gzipped = resp.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let bytes = resp.bytes().await.context("sync answer")?;
    t.sync = start.elapsed();
    if !status.is_success() {
        bail!("sync with {base} refused with HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    }
    t.response_bytes = bytes.len() as u64;
    let bytes = if gzipped { inflate(&bytes)? } else { bytes.to_vec() };
    let Applied { new, changed, answered } = device.apply(protocol::decode(&bytes)?)?;
    t.received = new.len();
    t.changed = changed;
    t.answered = answered;
    let download_start = Instant::now();
    for (id, snapshot) in &new {
        let wanted = files.get(id).map(Vec::as_slice).unwrap_or_default();
        if verify {
            // The document names the attachments the device then downloads.
            let notice = BulletinDoc::load(snapshot)?.notice().context("a bulletin without its notice")?;
            let named: Vec<&str> = notice.attachments.iter().map(|a| a.sha256.as_str()).collect();
            if named != wanted.iter().map(|a| a.sha256.as_str()).collect::<Vec<_>>() {
                bail!("bulletin {id} names attachments {named:?}");
            }
        }
        for a in wanted {
            t.file_bytes += download(http, base, &device.token, a, verify).await?;
        }
    }
    t.total = t.sync + download_start.elapsed();
    Ok(t)
}

/// Downloads an attachment, counting its bytes as they arrive (and hashing them if `verify`).
async fn download(http: &reqwest::Client, base: &str, token: &str, a: &Attachment, verify: bool) -> Result<u64> {
    use sha2::Digest;
    let mut resp = http.get(format!("{base}/api/v1/blobs/{}", a.sha256)).bearer_auth(token).send().await?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {base}/api/v1/blobs/{}: HTTP {status}: {}", a.sha256, resp.text().await.unwrap_or_default());
    }
    let mut hasher = sha2::Sha256::new();
    let mut received = 0;
    while let Some(chunk) = resp.chunk().await? {
        received += chunk.len() as u64;
        if verify {
            hasher.update(&chunk);
        }
    }
    if received != a.size {
        bail!("downloaded {received} bytes of {}, expected {}", a.sha256, a.size);
    }
    if verify {
        let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if hex != a.sha256 {
            bail!("the file downloaded as {} hashes to {hex}", a.sha256);
        }
    }
    Ok(received)
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).context("inflating the sync answer")?;
    Ok(out)
}

/// Every device takes one turn against `base`, `concurrency` at a time; the server's (and the hub's) CPU is read
/// around the whole phase. Devices keep their order.
async fn phase(
    name: &'static str,
    devices: &mut Vec<Device>,
    base: &str,
    files: &HashMap<String, Vec<Attachment>>,
    concurrency: usize,
    server: &str,
    hub: Option<&str>,
) -> Result<Phase> {
    eprintln!("{name}: {} devices, {concurrency} at a time", devices.len());
    let queue = Arc::new(Mutex::new(std::mem::take(devices).into_iter().enumerate()));
    let files = Arc::new(files.clone());
    let (server_before, hub_before) = (cpu_time(server)?, hub.map(cpu_time).transpose()?);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, files, base) = (queue.clone(), files.clone(), base.to_string());
            tokio::spawn(async move {
                // No idle connection is kept: each request opens its own, as phones' syncs do.
                let http = reqwest::Client::builder()
                    .no_gzip()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(600))
                    .build()?;
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().expect("queue lock").next();
                    let Some((i, mut device)) = next else { break };
                    let t = turn(&http, &base, &mut device, &files, i % 100 == 0)
                        .await
                        .with_context(|| format!("device {i}"))?;
                    done.push((i, device, t));
                }
                Ok::<_, anyhow::Error>(done)
            })
        })
        .collect();
    let mut done = Vec::new();
    for worker in workers {
        done.extend(worker.await??);
    }
    let wall = start.elapsed();
    let server_cpu = cpu_time(server)? - server_before;
    let hub_cpu = match (hub, hub_before) {
        (Some(pid), Some(before)) => Some(cpu_time(pid)? - before),
        _ => None,
    };
    done.sort_by_key(|(i, _, _)| *i);
    let mut turns = Vec::with_capacity(done.len());
    for (_, device, t) in done {
        devices.push(device);
        turns.push(t);
    }
    Ok(Phase { name, turns, wall, server_cpu, hub_cpu, upstream: None })
}

/// The volunteers and their phones, straight into the database: `$1` volunteers in teams of `$2` (passwords
/// take the office's hash; nobody logs in with them), a phone each with one shared public key (the devices push
/// nothing, so no signature is ever checked with it).
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

/// Each phone's device token, as enrolment issues it.
fn device_tokens(
    data_dir: &Path,
    n: usize,
    team_size: usize,
    enrolled_ms: i64,
    public_key: &str,
) -> Result<Vec<String>> {
    let keys = Keys::load_or_create(data_dir)?;
    let now = chrono::Utc::now().timestamp();
    Ok((0..n)
        .map(|i| {
            keys.issue_device(&Claims {
                sub: format!("vol{i:06}"),
                usr: format!("bench-vol-{i:05}"),
                role: Role::Volunteer,
                team: Some(team_name(i / team_size)),
                dev: Some(format!("dev-vol{i:06}")),
                act: Some(format!("{i:032}")),
                key: Some(public_key.to_string()),
                enrolled_ms: Some(enrolled_ms),
                aud: DEVICE_AUDIENCE.to_string(),
                iat: now,
                exp: now + DEVICE_TTL_SECS,
            })
        })
        .collect())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn print_phase(p: &Phase) {
    println!(
        "{:<22} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>10} {:>10} {:>9} {:>8}",
        p.name,
        p.turns.len(),
        format!("{:.1}", p.wall.as_secs_f64()),
        format!("{:.2}", p.server_cpu.as_secs_f64()),
        format!("{:.3}", p.server_cpu_per_device().as_secs_f64() * 1e3),
        p.hub_cpu.map_or("-".into(), |c| format!("{:.3}", c.as_secs_f64() * 1e3 / p.turns.len() as f64)),
        ms(p.percentile(0.5, |t| t.sync)),
        ms(p.percentile(0.99, |t| t.sync)),
        format!("{:.0}", p.per_device(|t| t.request_bytes)),
        format!("{:.0}", p.per_device(|t| t.response_bytes)),
        format!("{:.0}", p.per_device(|t| t.file_bytes)),
        ms(p.percentile(0.5, |t| t.total)),
        p.turns.iter().filter(|t| t.answered > 0).count(),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let n = args.devices;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let setup_start = Instant::now();
    common::create_office(BIN, &data, PASSWORD)?;
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data).env_remove("DOORSTEP_DATABASE_URL");
    let (url, server) = common::spawn_server(cmd, "warn,sqlx::query=error")?;
    let server = Running(server);
    let server_pid = server.pid();
    let addr = url.strip_prefix("http://").context("the server's URL")?.parse()?;
    let (proxy_url, upstream) = counting_proxy(addr).await?;

    // ---- the territory, the team and its lead, through the API ----
    let office = Office::login(&url).await?;
    let teams = n.div_ceil(args.team_size);
    office.call(reqwest::Method::POST, "/api/v1/territory/import", territory(teams).into(), "text/csv").await?;
    let lead = serde_json::json!({ "username": LEAD, "password": PASSWORD, "role": "lead" });
    office.json(reqwest::Method::POST, "/api/v1/users", lead).await?;
    for t in 0..teams {
        let team = serde_json::json!({ "name": team_name(t), "lead": (t == 0).then_some(LEAD) });
        office.json(reqwest::Method::POST, "/api/v1/teams", team).await?;
        let assignment = serde_json::json!({ "team": team_name(t) });
        office.json(reqwest::Method::PUT, &format!("/api/v1/assignments/G{t}"), assignment).await?;
    }

    // ---- the volunteers and their phones, by SQL ----
    let enrolled_ms = chrono::Utc::now().timestamp_millis();
    let public_key = client_core::sign::KeyPair::from_seed([7; 32]).public().to_hex();
    let db = server::store::db::Db::connect(&server::store::db::sqlite_url(&data)).await?;
    for sql in PEOPLE {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .bind(n as i64)
            .bind(args.team_size as i64)
            .bind(enrolled_ms)
            .bind(&public_key)
            .execute(&db.pool)
            .await?;
    }
    let mut devices: Vec<Device> = device_tokens(&data, n, args.team_size, enrolled_ms, &public_key)?
        .into_iter()
        .map(|token| Device { token, grids: BTreeMap::new(), bulletins: BTreeMap::new() })
        .collect();

    // ---- the lead's profile, through the counting proxy, and its hub ----
    let lead_profile = tmp.path().join("lead");
    let login = ["field", "login", "--server", &proxy_url, "--username", LEAD, "--password-stdin"];
    run(&lead_profile, &login, Some(PASSWORD)).await?;
    run(&lead_profile, &["field", "sync"], None).await?;
    let (hub_url, hub) = start_hub(&lead_profile)?;
    let hub_pid = hub.pid();
    let setup = setup_start.elapsed();
    let c = args.concurrency;
    let mut files: HashMap<String, Vec<Attachment>> = HashMap::new();

    // ---- 1, 2: every device receives its grid; then the baseline, with nothing new ----
    let first = phase("first sync (grid)", &mut devices, &url, &files, c, &server_pid, None).await?;
    set_last_seen(&db, chrono::Utc::now().timestamp_millis() - 3_600_000).await?;
    let baseline = phase("baseline, seen 1 h ago", &mut devices, &url, &files, c, &server_pid, None).await?;
    set_last_seen(&db, chrono::Utc::now().timestamp_millis()).await?;
    let baseline_quiet = phase("baseline, seen now", &mut devices, &url, &files, c, &server_pid, None).await?;

    // ---- 3: a bulletin with an attachment, received directly ----
    let publish_start = Instant::now();
    let poster = png_of(args.attachment_mb, 1);
    let (direct_id, attached) = office.publish("直接收到的通报", Some(("poster-a.png", poster))).await?;
    let publish_time = publish_start.elapsed();
    let size = attached[0].size;
    files.insert(direct_id.clone(), attached);
    let direct = phase("bulletin, direct", &mut devices, &url, &files, c, &server_pid, None).await?;

    // ---- 4: another, through the hub: the hub syncs upstream once, then its team's devices sync with it ----
    // The lead's profile first catches up on the first bulletin, so that the phase moves only the second.
    run(&lead_profile, &["hub", "sync"], None).await?;
    let poster = png_of(args.attachment_mb, 2);
    let (hub_id, attached) = office.publish("经队长中转的通报", Some(("poster-b.png", poster))).await?;
    files.insert(hub_id.clone(), attached);
    let mut hub_team: Vec<Device> = devices.drain(..args.team_size.min(n)).collect();
    let (server_before, hub_before, bytes_before) = (cpu_time(&server_pid)?, cpu_time(&hub_pid)?, upstream.now());
    let hub_sync_start = Instant::now();
    run(&lead_profile, &["hub", "sync"], None).await?;
    let hub_sync_time = hub_sync_start.elapsed();
    let bytes_after_hub_sync = upstream.now();
    let mut via_hub =
        phase("bulletin, via hub", &mut hub_team, &hub_url, &files, c, &server_pid, Some(&hub_pid)).await?;
    let bytes_after = upstream.now();
    via_hub.server_cpu = cpu_time(&server_pid)? - server_before;
    via_hub.hub_cpu = Some(cpu_time(&hub_pid)? - hub_before);
    via_hub.upstream = Some((bytes_after.0 - bytes_before.0, bytes_after.1 - bytes_before.1));
    devices.splice(0..0, hub_team);

    // ---- 5, 6: K bulletins held; then syncs with nothing new ----
    for k in 2..args.held {
        office.publish(&format!("第 {} 期提醒", k + 1), None).await?;
    }
    let catch_up = phase("catch-up (K-2 new)", &mut devices, &url, &files, c, &server_pid, None).await?;
    set_last_seen(&db, chrono::Utc::now().timestamp_millis() - 3_600_000).await?;
    let held = phase("K held, seen 1 h ago", &mut devices, &url, &files, c, &server_pid, None).await?;
    set_last_seen(&db, chrono::Utc::now().timestamp_millis()).await?;
    let held_quiet = phase("K held, seen now", &mut devices, &url, &files, c, &server_pid, None).await?;
    db.pool.close().await;
    drop(hub);
    drop(server);

    // ---- checks ----
    let hub_team = args.team_size.min(n);
    let received = |p: &Phase, i: usize| p.turns[i].received;
    let wrong = |p: &Phase, expect: &dyn Fn(usize) -> usize| (0..p.turns.len()).any(|i| received(p, i) != expect(i));
    // The hub's team received the second bulletin through the hub; the other teams receive it at the catch-up.
    if wrong(&first, &|_| 0)
        || wrong(&direct, &|_| 1)
        || wrong(&via_hub, &|_| 1)
        || wrong(&catch_up, &|i| args.held - 2 + usize::from(i >= hub_team))
    {
        bail!("a device did not receive exactly the bulletins published since its last sync");
    }
    if [&baseline, &baseline_quiet, &held, &held_quiet].iter().any(|p| p.turns.iter().any(|t| t.changed)) {
        bail!("a sync with nothing new answered something new");
    }
    for (p, expected) in [(&direct, size), (&via_hub, size)] {
        if p.turns.iter().any(|t| t.file_bytes != expected) {
            bail!("{}: a device did not download the attachment whole", p.name);
        }
    }
    if devices.iter().any(|d| d.bulletins.len() != args.held || !d.bulletins.contains_key(&direct_id)) {
        bail!("a device does not hold the {} bulletins", args.held);
    }

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
        "doorstep bulletins benchmark: {n} devices in {teams} teams of {}, attachments of {} MB ({size} bytes), {} \
         bulletins held at the end, {c} devices at a time; embedded SQLite; {cpus} CPUs ({cpu_model})",
        args.team_size, args.attachment_mb, args.held
    );
    println!(
        "setup {:.1} s; publishing a bulletin with its attachment (upload and publish): {} ms",
        setup.as_secs_f64(),
        ms(publish_time)
    );
    println!();
    println!(
        "{:<22} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>10} {:>10} {:>9} {:>8}",
        "phase",
        "devices",
        "wall s",
        "srv cpu s",
        "srv ms/dv",
        "hub ms/dv",
        "p50 ms",
        "p99 ms",
        "req B/dv",
        "resp B/dv",
        "file B/dv",
        "p50 all",
        "answered"
    );
    let phases = [&first, &baseline, &baseline_quiet, &direct, &via_hub, &catch_up, &held, &held_quiet];
    for p in phases {
        print_phase(p);
    }
    println!("srv cpu: user+system CPU of the server process during the phase (for the hub phase: from the hub's");
    println!(
        "upstream sync to its team's last device); ms/dv: per device; hub ms/dv: the hub process's CPU per device."
    );
    println!("p50/p99: latency of the sync exchange; p50 all: the sync and the attachment's download.");
    println!("B/dv: bytes per device on the wire: sync request and answer bodies (gzip, as sent) and the file.");
    println!("answered: syncs whose answer named their bulletins (0 when the server found every sync quiet).");
    println!("seen 1 h ago / now: the devices' last contact as the server knows it (a sync within a minute of the");
    println!("last one needs no write; a later one records the contact).");
    println!();
    let (up, down) = via_hub.upstream.unwrap_or_default();
    println!(
        "through the hub: the lead's upstream sync took {} ms and moved {} B up, {} B down; the whole phase moved \
         {up} B up and {down} B down between the hub and the server: {:.2}× the attachment ({size} B) for the \
         team's {hub_team} devices",
        ms(hub_sync_time),
        bytes_after_hub_sync.0 - bytes_before.0,
        bytes_after_hub_sync.1 - bytes_before.1,
        down as f64 / size as f64,
    );
    let per = |p: &Phase| p.server_cpu_per_device().as_secs_f64();
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("×{:.2}", a / b) } else { "×-".into() };
    println!(
        "server CPU per device: bulletin direct {} of the baseline seen now ({} ms over it), via hub {}",
        ratio(per(&direct), per(&baseline_quiet)),
        ms(direct.server_cpu_per_device().saturating_sub(baseline_quiet.server_cpu_per_device())),
        ratio(per(&via_hub), per(&baseline_quiet)),
    );
    println!(
        "bytes from the server per device of the hub's team: via hub {:.0} B, direct {:.0} B",
        down as f64 / hub_team as f64,
        direct.per_device(|t| t.response_bytes + t.file_bytes),
    );
    for (what, p, base) in [("seen 1 h ago", &held, &baseline), ("seen now", &held_quiet, &baseline_quiet)] {
        println!(
            "holding {} bulletins, a sync with nothing new, {what}: server CPU per sync {}, p50 {}, p99 {}, request \
             bytes {} against the same sync holding none",
            args.held,
            ratio(per(p), per(base)),
            ratio(p.percentile(0.5, |t| t.sync).as_secs_f64(), base.percentile(0.5, |t| t.sync).as_secs_f64()),
            ratio(p.percentile(0.99, |t| t.sync).as_secs_f64(), base.percentile(0.99, |t| t.sync).as_secs_f64()),
            ratio(p.per_device(|t| t.request_bytes), base.per_device(|t| t.request_bytes)),
        );
    }
    println!(
        "check: every device received each bulletin once and each attachment whole (every 100th verified by its \
         SHA-256); the syncs with nothing new answered nothing new"
    );
    // Reported above first, so that the figures are there to read when it fails.
    let answered = held_quiet.turns.iter().filter(|t| t.answered > 0).count();
    if answered > 0 {
        bail!("{answered} of {n} syncs holding {} bulletins, seen now, were not found quiet by the server", args.held);
    }
    Ok(())
}

/// Sets every bench phone's last contact as the server knows it.
async fn set_last_seen(db: &server::store::db::Db, at: i64) -> Result<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE device_id LIKE 'dev-vol%'")
        .bind(at)
        .execute(&db.pool)
        .await?;
    Ok(())
}
