//! Fault injection: devices sync through a proxy that drops, delays, duplicates, truncates and replays requests
//! and responses, while the server is killed with SIGKILL at random moments and restarted. At the end every
//! visit any device recorded is on the server exactly once, and all devices hold identical documents and
//! report identical coverage.
//!
//! The short form runs in the test suite; `DOORSTEP_LONG_FAULTS=1` runs the long form (100 rounds).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A small deterministic random source (xorshift), so a failing run can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Pass,
    DropRequest,
    DropResponse,
    Delay,
    Duplicate,
    TruncateRequest,
    TruncateResponse,
    ReplayOld,
}

const FAULTS: [Fault; 8] = [
    Fault::Pass,
    Fault::DropRequest,
    Fault::DropResponse,
    Fault::Delay,
    Fault::Duplicate,
    Fault::TruncateRequest,
    Fault::TruncateResponse,
    Fault::ReplayOld,
];

/// An HTTP message: head and body.
type Message = (Vec<u8>, Vec<u8>);

/// Reads one HTTP/1.1 message (head and a Content-Length body). `None` if the peer closed early.
fn read_message(s: &mut TcpStream) -> Option<Message> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Sends a request to the current server and returns its whole response, or `None` if it is down.
fn forward(upstream: &str, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    up.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    up.write_all(head).ok()?;
    up.write_all(body).ok()?;
    let (rhead, rbody) = read_message(&mut up)?;
    // One request per connection: tell the client not to reuse it.
    let rhead = String::from_utf8_lossy(&rhead).replacen("\r\n", "\r\nconnection: close\r\n", 1);
    let mut out = rhead.into_bytes();
    out.extend_from_slice(&rbody);
    Some(out)
}

struct Proxy {
    url: String,
    upstream: Arc<Mutex<String>>,
    stats: Arc<Mutex<BTreeMap<Fault, u64>>>,
}

fn start_proxy(seed: u64) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = Arc::new(Mutex::new(String::new()));
    let stats = Arc::new(Mutex::new(BTreeMap::new()));
    let seen: Arc<Mutex<Vec<Message>>> = Arc::default();
    let counter = Arc::new(AtomicU64::new(seed));
    let (up, st) = (upstream.clone(), stats.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let (up, st, seen) = (up.clone(), st.clone(), seen.clone());
            let mut rng = Rng(counter.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) | 1);
            std::thread::spawn(move || {
                let Some((head, body)) = read_message(&mut client) else { return };
                let target = up.lock().unwrap().trim_start_matches("http://").to_string();
                let is_sync = head.starts_with(b"POST /api/v1/sync");
                let fault = if is_sync { FAULTS[rng.below(FAULTS.len() as u64) as usize] } else { Fault::Pass };
                *st.lock().unwrap().entry(fault).or_default() += 1;
                if is_sync {
                    seen.lock().unwrap().push((head.clone(), body.clone()));
                }
                let reply = match fault {
                    Fault::Pass => forward(&target, &head, &body),
                    Fault::DropRequest => None,
                    Fault::DropResponse => {
                        forward(&target, &head, &body);
                        None
                    }
                    Fault::Delay => {
                        std::thread::sleep(Duration::from_millis(rng.below(300)));
                        forward(&target, &head, &body)
                    }
                    Fault::Duplicate => {
                        forward(&target, &head, &body);
                        forward(&target, &head, &body)
                    }
                    Fault::TruncateRequest => {
                        // Half a body, then the connection closes: the server must store nothing of it.
                        if let Ok(mut up) = TcpStream::connect(&target) {
                            let _ = up.write_all(&head);
                            let _ = up.write_all(&body[..body.len() / 2]);
                            let _ = up.shutdown(Shutdown::Both);
                        }
                        None
                    }
                    Fault::TruncateResponse => forward(&target, &head, &body).map(|r| r[..r.len() / 2].to_vec()),
                    Fault::ReplayOld => {
                        // An older request (of any device) arrives again before this one.
                        let old = {
                            let seen = seen.lock().unwrap();
                            seen[rng.below(seen.len() as u64) as usize].clone()
                        };
                        forward(&target, &old.0, &old.1);
                        forward(&target, &head, &body)
                    }
                };
                if let Some(bytes) = reply {
                    let _ = client.write_all(&bytes);
                }
                let _ = client.shutdown(Shutdown::Both);
            });
        }
    });
    Proxy { url, upstream, stats }
}

/// Identical-documents check: each grid's heads as the device holds them.
fn heads(profile: &Path) -> BTreeMap<String, Vec<automerge::ChangeHash>> {
    let store = client_core::store::GridStore::open(&profile.join("grids")).unwrap();
    store.grids().unwrap().into_iter().map(|g| (g.clone(), store.load(&g).unwrap().heads())).collect()
}

#[test]
fn nothing_is_lost_through_a_faulty_network_and_a_crashing_server() {
    let long = std::env::var("DOORSTEP_LONG_FAULTS").is_ok();
    let (devices, rounds) = if long { (10, 100) } else { (10, 8) };
    let seed = 0x5eed_0000_0000_0001u64;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let office = tmp.path().join("office");
    bootstrap_office(&data, &office);
    let server = Server::start(&data);
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n",
    );
    for i in 0..300 {
        csv.push_str(&format!("P{i:03},household,{i},G{},g,V1,v,village,T1,t\n", i % 3));
    }
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let f = write_file(tmp.path(), "t.csv", csv.as_bytes());
    ok(&office, &["territory", "import", f.to_str().unwrap()], None);
    ok(&office, &["team", "create", "t"], None);
    for g in 0..3 {
        ok(&office, &["assign", &format!("G{g}"), "--team", "t"], None);
    }
    let profiles: Vec<PathBuf> = (0..devices)
        .map(|d| {
            let name = format!("v{d}");
            ok(
                &office,
                &["user", "create", &name, "--role", "volunteer", "--team", "t", "--password-stdin"],
                Some(&pw()),
            );
            let p = tmp.path().join(&name);
            ok(&p, &["field", "login", "--server", &server.url, "--username", &name, "--password-stdin"], Some(&pw()));
            ok(&p, &["field", "sync"], None);
            p
        })
        .collect();

    let proxy = start_proxy(seed);
    *proxy.upstream.lock().unwrap() = server.url.clone();
    let server = Arc::new(Mutex::new(Some(server)));
    let done = Arc::new(AtomicBool::new(false));
    // The killer: SIGKILL at random moments, restart on the same data.
    let killer = {
        let (server, done, upstream, data) = (server.clone(), done.clone(), proxy.upstream.clone(), data.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(seed ^ 0xdead);
            let mut kills = 0;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(300 + rng.below(900)));
                if let Some(s) = server.lock().unwrap().take() {
                    s.kill();
                }
                kills += 1;
                let s = Server::start(&data);
                *upstream.lock().unwrap() = s.url.clone();
                *server.lock().unwrap() = Some(s);
            }
            kills
        })
    };

    let recorded = AtomicU64::new(0);
    std::thread::scope(|s| {
        for (d, profile) in profiles.iter().enumerate() {
            let (proxy_url, recorded) = (&proxy.url, &recorded);
            s.spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(d as u64 + 3));
                for _ in 0..rounds {
                    for _ in 0..(1 + rng.below(4)) {
                        let place = format!("P{:03}", rng.below(300));
                        ok(profile, &["field", "visit", &place, "--handbook"], None);
                        recorded.fetch_add(1, Ordering::Relaxed);
                    }
                    // Failures are expected here; the device must keep everything and try again later.
                    let _ = run(profile, &["field", "sync", "--via", proxy_url], None);
                }
            });
        }
    });
    done.store(true, Ordering::Relaxed);
    let kills = killer.join().unwrap();
    let url = server.lock().unwrap().as_ref().unwrap().url.clone();

    // The network heals: two clean rounds for everyone.
    for _ in 0..2 {
        for p in &profiles {
            ok(p, &["field", "sync", "--via", &url], None);
        }
    }
    let recorded = recorded.load(Ordering::Relaxed);
    let stats = proxy.stats.lock().unwrap().clone();
    eprintln!("{devices} devices × {rounds} rounds: {recorded} visits, {kills} server kills, faults {stats:?}");
    assert!(kills > 0 && stats.len() == FAULTS.len(), "every fault and a kill happened: {stats:?}");

    let reference = heads(&profiles[0]);
    let reference_places = ok(&profiles[0], &["field", "places", "--format", "json"], None);
    let places: Vec<serde_json::Value> = serde_json::from_str(&reference_places).unwrap();
    let visits: u64 = places.iter().map(|p| p["visits"].as_u64().unwrap()).sum();
    assert_eq!(visits, recorded, "every visit exactly once on every device");
    for p in &profiles[1..] {
        assert_eq!(heads(p), reference, "identical documents");
        assert_eq!(ok(p, &["field", "places", "--format", "json"], None), reference_places, "identical coverage");
    }
    ok(&office, &["login", "--server", &url, "--username", "office", "--password-stdin"], Some(&pw()));
    let distinct = places.iter().filter(|p| p["visits"].as_u64().unwrap() > 0).count() as u64;
    assert_eq!(figure(&coverage(&office, "town", None), "T1", "handbook"), (300, distinct, 0), "the server agrees");
}
