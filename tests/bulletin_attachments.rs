//! Bulletin attachments: the server's content-addressed store (types judged by content, the size bound, one copy
//! of each file), its ranges and who may read what, a device's download that resumes after a cut connection and
//! refuses bytes of the wrong hash, a team hub's cache that fetches each file from the server once, and the
//! backup that brings the files back.
//!
//! The bulletins themselves are put in the database directly (`db_execute`): what is under test is the store and
//! its readers, not publishing.

mod common;
use common::*;
use field::device::attachments::{attachment_path, fetch_attachments, part_path};
use field::profile::Profile;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A server with a town, team `t` with a volunteer (`vol`, enrolled and synced) and a lead (`lead`, enrolled and
/// synced: a hub's profile), and the office logged in.
struct World {
    tmp: tempfile::TempDir,
    data: PathBuf,
    office: PathBuf,
    vol: PathBuf,
    lead: PathBuf,
    server: Server,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let server = Server::start_with(&data, "127.0.0.1:0", &["--metrics-listen", "127.0.0.1:0"]);
    let vol = small_town(tmp.path(), &server.url, &office, 0);
    ok(&office, &["user", "create", "lead", "--role", "lead", "--password-stdin"], Some(&pw()));
    ok(&office, &["team", "lead", "t", "lead"], None);
    let lead = tmp.path().join("lead");
    ok(&lead, &["field", "login", "--server", &server.url, "--username", "lead", "--password-stdin"], Some(&pw()));
    ok(&lead, &["field", "sync"], None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    World { tmp, data, office, vol, lead, server, rt, http: reqwest::Client::new() }
}

/// A small PNG in all but its pixels: its type is told by its first bytes, and `tag` makes each one different.
fn png(tag: &str, size: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    let mut n = 0u32;
    while bytes.len() < size {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((n >> 16) as u8);
    }
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    server::blobs::sha256_hex(bytes)
}

fn session_token(profile: &Path) -> String {
    Profile::new(profile.to_path_buf()).session().unwrap().token
}

fn device_token(profile: &Path) -> String {
    Profile::new(profile.to_path_buf()).device().unwrap().token
}

/// The files in the server's store (temporary files too).
fn stored_files(data: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for shard in std::fs::read_dir(data.join("blobs")).into_iter().flatten() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(file.unwrap().file_name().into_string().unwrap());
        }
    }
    files.sort();
    files
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
}

impl World {
    fn call(&self, request: reqwest::RequestBuilder) -> Answer {
        self.rt.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            Answer { status, headers, body: response.bytes().await.unwrap().to_vec() }
        })
    }

    fn upload(&self, token: &str, name: &str, bytes: &[u8]) -> Answer {
        let url = format!("{}/api/v1/blobs", self.server.url);
        self.call(self.http.post(url).query(&[("name", name)]).bearer_auth(token).body(bytes.to_vec()))
    }

    fn get_blob(&self, base: &str, token: Option<&str>, sha: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.get(format!("{base}/api/v1/blobs/{sha}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.call(request)
    }

    /// Uploads as the office; returns the file's hash.
    fn stored(&self, bytes: &[u8]) -> String {
        let answer = self.upload(&session_token(&self.office), "file.png", bytes);
        assert_eq!(answer.status, 201, "{}", answer.json());
        answer.json()["sha256"].as_str().unwrap().to_string()
    }

    /// A bulletin `id` carrying the file `sha` (of `size` bytes), meant for `teams` ('*' for everyone).
    fn bulletin(&self, id: &str, sha: &str, size: usize, teams: &[&str]) {
        db_execute(
            &self.data,
            &format!(
                "INSERT INTO bulletins (id, edition, title, body, kind, fraud_type, priority, audience, expires_at, \
                 published_at, published_by, updated_at, withdrawn_at) VALUES ('{id}', 1, 'Scam calls', 'body', \
                 'reminder', '', 'normal', '{{}}', NULL, 1, 'office', 1, NULL)"
            ),
        );
        db_execute(
            &self.data,
            &format!(
                "INSERT INTO bulletin_attachments (bulletin_id, position, sha256, name, content_type, size) \
                 VALUES ('{id}', 0, '{sha}', 'poster.png', 'image/png', {size})"
            ),
        );
        for team in teams {
            db_execute(
                &self.data,
                &format!("INSERT INTO document_audience (kind, doc_id, team) VALUES ('bulletin', '{id}', '{team}')"),
            );
        }
    }

    /// How many files the server has sent (its metrics).
    fn files_served(&self) -> u64 {
        let metrics = self.server.metrics_url.clone().unwrap();
        let text = self.rt.block_on(async { reqwest::get(metrics).await.unwrap().text().await.unwrap() });
        text.lines()
            .find_map(|line| line.strip_prefix("doorstep_blob_reads_total{outcome=\"served\"} "))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

#[test]
fn uploads_are_judged_by_content_bounded_and_stored_once() {
    let w = world();
    let office = session_token(&w.office);
    let poster = png("poster", 5_000);
    // A PNG named .pdf is a PNG.
    let first = w.upload(&office, "poster.pdf", &poster);
    assert_eq!(first.status, 201, "{}", first.json());
    let expected =
        serde_json::json!({"sha256": sha256(&poster), "size": 5_000, "type": "image/png", "name": "poster.pdf"});
    assert_eq!(first.json(), expected);
    // The same bytes again: the same answer, one file, one row.
    let again = w.upload(&office, "poster.pdf", &poster);
    assert_eq!((again.status, again.json()), (201, expected));
    assert_eq!(stored_files(&w.data), vec![sha256(&poster)]);
    let rows = db_pairs(&w.data, "SELECT sha256, content_type FROM blobs");
    assert_eq!(rows, vec![(sha256(&poster), "image/png".to_string())]);
    let path = w.data.join("blobs").join(&sha256(&poster)[..2]).join(sha256(&poster));
    assert_eq!(std::fs::read(path).unwrap(), poster);

    // Text named .jpg is refused, saying what it is; nothing is stored.
    let text = w.upload(&office, "photo.jpg", b"this is not a photo, just text\n");
    assert_eq!(text.status, 415);
    let message = text.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("this file is text") && message.contains("JPEG, PNG, WebP and GIF"), "{message}");
    let zip = w.upload(&office, "leaflet.pdf", b"PK\x03\x04\x14\0\x06\0rest of a docx");
    assert_eq!(zip.status, 415);
    assert!(zip.json()["error"]["message"].as_str().unwrap().contains("ZIP archive"));
    // Both are audited, with what was found, as is each file stored.
    let audit = ok(&w.office, &["audit", "--format", "json"], None);
    assert!(
        audit.contains("blob.refused") && audit.contains("photo.jpg: only JPEG") && audit.contains("this file is text")
    );
    assert!(audit.contains("blob.upload") && audit.contains(&format!("poster.pdf: {}", sha256(&poster))), "{audit}");
    // The bound: exactly 10 MiB is taken, a byte more is not.
    let mut largest = b"%PDF-1.7\n".to_vec();
    largest.resize(server::blobs::MAX_ATTACHMENT_BYTES, b' ');
    let taken = w.upload(&office, "handbook.pdf", &largest);
    assert_eq!((taken.status, taken.json()["type"].as_str()), (201, Some("application/pdf")));
    largest.push(b'\n');
    // Refused before the body is read (a client may stop sending then: read over a plain socket).
    let (status, answer) = raw_upload(&w.server.url, &office, &largest, false);
    assert_eq!(status, 413);
    assert!(answer.contains("at most 10485760 bytes"), "{answer}");
    // Sent without a declared length, the bound holds as the body arrives.
    assert_eq!(raw_upload(&w.server.url, &office, &largest, true).0, 413);
    assert_eq!(stored_files(&w.data).len(), 2, "{:?}", stored_files(&w.data));
    assert_eq!(db_pairs(&w.data, "SELECT sha256, content_type FROM blobs").len(), 2);
    let unnamed =
        w.call(w.http.post(format!("{}/api/v1/blobs", w.server.url)).bearer_auth(&office).body(poster.clone()));
    assert_eq!(unnamed.status, 400);

    // Who may upload: not a device, not a lead until the office lets them publish.
    assert_eq!(w.upload(&device_token(&w.vol), "p.png", &poster).status, 401);
    let lead_session = w.tmp.path().join("lead-session");
    ok(&lead_session, &["login", "--server", &w.server.url, "--username", "lead", "--password-stdin"], Some(&pw()));
    let lead = session_token(&lead_session);
    let refused = w.upload(&lead, "p.png", &png("lead's", 300));
    assert_eq!(refused.status, 403, "{}", refused.json());
    db_execute(&w.data, "UPDATE users SET may_publish = 1 WHERE username = 'lead'");
    let taken = w.upload(&lead, "p.png", &png("lead's", 300));
    assert_eq!(taken.status, 201, "{}", taken.json());
    let by = db_pairs(
        &w.data,
        &format!("SELECT sha256, stored_by FROM blobs WHERE sha256 = '{}'", sha256(&png("lead's", 300))),
    );
    assert_eq!(by[0].1, "lead");
}

/// Uploads `bytes` over a plain socket, as a chunked body (no declared length) or with its length; returns the
/// status and the whole answer. The server may answer and close before the end of the body: later writes then
/// fail, and the answer is read anyway.
fn raw_upload(url: &str, token: &str, bytes: &[u8], chunked: bool) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).unwrap();
    let length =
        if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {}", bytes.len()) };
    let head = format!(
        "POST /api/v1/blobs?name=big.pdf HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         {length}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).unwrap();
    for chunk in bytes.chunks(1 << 20) {
        let sent = if chunked {
            socket
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| socket.write_all(chunk))
                .and_then(|()| socket.write_all(b"\r\n"))
        } else {
            socket.write_all(chunk)
        };
        if sent.is_err() {
            break;
        }
    }
    if chunked {
        let _ = socket.write_all(b"0\r\n\r\n");
    }
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {answer}"));
    (status, answer)
}

#[test]
fn files_are_answered_whole_or_by_ranges_with_caching_headers() {
    let w = world();
    let bytes = png("ranges", 1_000);
    let sha = w.stored(&bytes);
    let office = session_token(&w.office);
    let url = w.server.url.clone();
    let whole = w.get_blob(&url, Some(&office), &sha, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, bytes);
    assert_eq!(whole.header("content-type"), "image/png");
    assert_eq!(whole.header("etag"), format!("\"{sha}\""));
    assert_eq!(whole.header("cache-control"), "private, max-age=31536000, immutable");
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(whole.header("content-length"), "1000");
    let from = w.get_blob(&url, Some(&office), &sha, &[("range", "bytes=600-")]);
    assert_eq!((from.status, from.header("content-range")), (206, "bytes 600-999/1000"));
    assert_eq!(from.body, &bytes[600..]);
    let middle = w.get_blob(&url, Some(&office), &sha, &[("range", "bytes=2-4")]);
    assert_eq!((middle.status, middle.header("content-range")), (206, "bytes 2-4/1000"));
    assert_eq!(middle.body, &bytes[2..5]);
    let past = w.get_blob(&url, Some(&office), &sha, &[("range", "bytes=1000-")]);
    assert_eq!((past.status, past.header("content-range")), (416, "bytes */1000"));
    assert_eq!(past.json()["error"]["code"], "range_not_satisfiable");
    let held = w.get_blob(&url, Some(&office), &sha, &[("if-none-match", &format!("\"{sha}\""))]);
    assert_eq!((held.status, held.body.len()), (304, 0));
    // A file whose size on disk no longer matches its row is not served.
    let path = w.data.join("blobs").join(&sha[..2]).join(&sha);
    std::fs::write(&path, &bytes[..500]).unwrap();
    assert_eq!(w.get_blob(&url, Some(&office), &sha, &[]).status, 404);
    // Uploading it again repairs it.
    w.stored(&bytes);
    assert_eq!(w.get_blob(&url, Some(&office), &sha, &[]).body, bytes);
}

#[test]
fn a_device_reads_only_files_of_live_bulletins_meant_for_its_team() {
    let w = world();
    let url = w.server.url.clone();
    let vol = device_token(&w.vol);
    let bytes = png("for t", 700);
    let sha = w.stored(&bytes);
    let not_found = |answer: Answer| {
        assert_eq!(answer.status, 404, "{}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.json()["error"]["message"], format!("no file {sha}"), "no difference told");
    };
    not_found(w.get_blob(&url, Some(&vol), &sha, &[]));
    w.bulletin("b-other", &sha, 700, &["other"]);
    not_found(w.get_blob(&url, Some(&vol), &sha, &[]));
    w.bulletin("b-t", &sha, 700, &["t"]);
    let read = w.get_blob(&url, Some(&vol), &sha, &[("range", "bytes=100-")]);
    assert_eq!((read.status, read.body.as_slice()), (206, &bytes[100..]));
    db_execute(&w.data, "UPDATE bulletins SET withdrawn_at = 5 WHERE id = 'b-t'");
    not_found(w.get_blob(&url, Some(&vol), &sha, &[]));
    w.bulletin("b-all", &sha, 700, &["*"]);
    assert_eq!(w.get_blob(&url, Some(&vol), &sha, &[]).body, bytes);
    // Unknown, malformed, without a token.
    let unknown = sha256(b"never stored");
    assert_eq!(w.get_blob(&url, Some(&vol), &unknown, &[]).status, 404);
    assert_eq!(w.get_blob(&url, Some(&vol), "../../doorstep.db", &[]).status, 404);
    assert_eq!(w.get_blob(&url, None, &sha, &[]).status, 401);
    // A session that may not publish reads nothing.
    let viewer = w.tmp.path().join("lead-session");
    ok(&viewer, &["login", "--server", &url, "--username", "lead", "--password-stdin"], Some(&pw()));
    assert_eq!(w.get_blob(&url, Some(&session_token(&viewer)), &sha, &[]).status, 404);
}

/// A loopback proxy to `upstream` that cuts the first connection after `cut_after` bytes of the answer, and
/// records what clients sent.
fn cutting_proxy(upstream: &str, cut_after: usize) -> (String, Arc<Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let sent = Arc::new(Mutex::new(String::new()));
    let log = sent.clone();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let mut client = client.unwrap();
            let mut server = TcpStream::connect(&upstream).unwrap();
            let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 8192];
                while let Ok(read) = from_client.read(&mut buffer) {
                    if read == 0 || to_server.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                    log.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..read]));
                }
                to_server.shutdown(Shutdown::Write).ok();
            });
            let mut left = if n == 0 { cut_after } else { usize::MAX };
            std::thread::spawn(move || {
                let mut buffer = [0u8; 1024];
                while left > 0 {
                    let Ok(read) = server.read(&mut buffer) else { break };
                    let read = read.min(left);
                    if read == 0 || client.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                    left -= read;
                }
                client.shutdown(Shutdown::Both).ok();
                server.shutdown(Shutdown::Both).ok();
            });
        }
    });
    (url, sent)
}

#[test]
fn a_device_download_resumes_after_a_cut_and_refuses_the_wrong_bytes() {
    let w = world();
    let (bytes, other) = (png("resume", 300_000), png("part", 2_000));
    let (sha, other_sha) = (w.stored(&bytes), w.stored(&other));
    w.bulletin("b1", &sha, bytes.len(), &["t"]);
    db_execute(
        &w.data,
        &format!("INSERT INTO bulletin_attachments VALUES ('b1', 1, '{other_sha}', 'p.png', 'image/png', 2000)"),
    );
    let vol = Profile::new(w.vol.clone());
    let token = device_token(&w.vol);
    let wanted = vec![(sha.clone(), bytes.len() as u64)];

    // The first connection breaks off 100 KB into the file: the download goes on from there.
    let (proxy, sent) = cutting_proxy(&w.server.url, 100_000);
    let fetched = w.rt.block_on(fetch_attachments(&vol, &proxy, &token, &wanted)).unwrap();
    assert_eq!(fetched.downloaded, vec![sha.clone()], "{:?}", fetched.failed);
    let dest = attachment_path(&vol, &sha).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    assert!(!part_path(&dest).exists());
    let requests = sent.lock().unwrap().to_lowercase();
    let resumed_at: u64 = requests
        .split("range: bytes=")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resumed request: {requests}"));
    assert!(resumed_at > 50_000 && resumed_at < 100_000, "resumed at {resumed_at}");
    // Held: nothing is asked again.
    let again = w.rt.block_on(fetch_attachments(&vol, &w.server.url, &token, &wanted)).unwrap();
    assert_eq!((again.held, again.downloaded.len()), (vec![sha.clone()], 0));

    // A part left by an earlier call is resumed from its length.
    let wanted_other = vec![(other_sha.clone(), 2_000)];
    let other_dest = attachment_path(&vol, &other_sha).unwrap();
    std::fs::write(part_path(&other_dest), &other[..1_234]).unwrap();
    let (proxy, sent) = cutting_proxy(&w.server.url, usize::MAX);
    let fetched = w.rt.block_on(fetch_attachments(&vol, &proxy, &token, &wanted_other)).unwrap();
    assert_eq!(fetched.downloaded, vec![other_sha.clone()], "{:?}", fetched.failed);
    assert!(sent.lock().unwrap().to_lowercase().contains("range: bytes=1234-"));
    assert_eq!(std::fs::read(&other_dest).unwrap(), other);

    // A part of other bytes makes a file of the wrong hash: refused, deleted, and the next call starts over.
    std::fs::remove_file(&other_dest).unwrap();
    std::fs::write(part_path(&other_dest), vec![0u8; 1_234]).unwrap();
    let refused = w.rt.block_on(fetch_attachments(&vol, &w.server.url, &token, &wanted_other)).unwrap();
    assert_eq!(refused.failed.len(), 1);
    assert!(refused.failed[0].1.contains("refused the download"), "{:?}", refused.failed);
    assert!(!other_dest.exists() && !part_path(&other_dest).exists());
    let fetched = w.rt.block_on(fetch_attachments(&vol, &w.server.url, &token, &wanted_other)).unwrap();
    assert_eq!(fetched.downloaded, vec![other_sha.clone()]);
    assert_eq!(std::fs::read(&other_dest).unwrap(), other);

    // A file the device may not read is reported, not held.
    let stranger = w.stored(&png("not attached", 400));
    let refused = w.rt.block_on(fetch_attachments(&vol, &w.server.url, &token, &[(stranger.clone(), 400)])).unwrap();
    assert_eq!(refused.failed.len(), 1);
    assert!(refused.failed[0].1.contains(&format!("no file {stranger}")), "{:?}", refused.failed);
    assert!(!attachment_path(&vol, &stranger).unwrap().exists());
}

#[test]
fn a_hub_serves_its_team_from_its_cache_and_fetches_each_file_from_the_server_once() {
    let w = world();
    let (poster, leaflet) = (png("hub poster", 200_000), png("hub leaflet", 3_000));
    let (poster_sha, leaflet_sha) = (w.stored(&poster), w.stored(&leaflet));
    w.bulletin("b1", &poster_sha, poster.len(), &["t"]);
    w.bulletin("b2", &leaflet_sha, leaflet.len(), &["*"]);
    let hub = Hub::start(&w.lead, &["--upstream-every", "0"]);
    let vol = device_token(&w.vol);
    let before = w.files_served();

    // Four devices ask at once for a file the hub does not hold: one download from the server.
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..4).map(|_| scope.spawn(|| w.get_blob(&hub.url, Some(&vol), &poster_sha, &[]))).collect();
        asks.into_iter().map(|ask| ask.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.body, poster);
        assert_eq!(answer.header("content-type"), "image/png");
    }
    assert_eq!(w.files_served(), before + 1, "the server sent the file once");
    let cached = field::hub::blobs::cache_path(&w.lead, &poster_sha).unwrap();
    assert_eq!(std::fs::read(&cached).unwrap(), poster);
    // Ranges from the cache, and nothing more from the server.
    let part = w.get_blob(&hub.url, Some(&vol), &poster_sha, &[("range", "bytes=150000-")]);
    assert_eq!((part.status, part.header("content-range")), (206, "bytes 150000-199999/200000"));
    assert_eq!(part.body, &poster[150_000..]);
    assert_eq!(w.files_served(), before + 1);

    // Downloaded by the lead's profile's own sync: served from the cache without asking the server.
    let lead = Profile::new(w.lead.clone());
    let lead_token = device_token(&w.lead);
    let wanted = [(leaflet_sha.clone(), 3_000)];
    let fetched = w.rt.block_on(fetch_attachments(&lead, &w.server.url, &lead_token, &wanted)).unwrap();
    assert_eq!(fetched.downloaded, vec![leaflet_sha.clone()], "{:?}", fetched.failed);
    assert_eq!(w.files_served(), before + 2);
    assert_eq!(w.get_blob(&hub.url, Some(&vol), &leaflet_sha, &[]).body, leaflet);
    assert_eq!(w.files_served(), before + 2);

    // Withdrawn, and pruned from the cache after the hub's next sync: no longer served.
    db_execute(&w.data, "UPDATE bulletins SET withdrawn_at = 5 WHERE id = 'b2'");
    assert_eq!(field::device::attachments::prune_attachments(&lead, std::slice::from_ref(&poster_sha)).unwrap(), 1);
    assert_eq!(w.get_blob(&hub.url, Some(&vol), &leaflet_sha, &[]).status, 404);
    assert_eq!(w.get_blob(&hub.url, Some(&vol), &poster_sha, &[]).body, poster);

    // Not for the team (the server refuses the hub): 404; without a device token: 401.
    let stranger = w.stored(&png("not for t", 500));
    assert_eq!(w.get_blob(&hub.url, Some(&vol), &stranger, &[]).status, 404);
    assert!(!field::hub::blobs::cache_path(&w.lead, &stranger).unwrap().exists());
    assert_eq!(w.get_blob(&hub.url, None, &poster_sha, &[]).status, 401);
    // A device of another team is not served by this team's hub, not even a file meant for everyone.
    ok(&w.office, &["team", "create", "u"], None);
    ok(&w.office, &["user", "create", "uma", "--role", "volunteer", "--team", "u", "--password-stdin"], Some(&pw()));
    let uma = w.tmp.path().join("uma");
    ok(&uma, &["field", "login", "--server", &w.server.url, "--username", "uma", "--password-stdin"], Some(&pw()));
    let other_team = w.get_blob(&hub.url, Some(&device_token(&uma)), &leaflet_sha, &[]);
    assert_eq!(other_team.status, 403, "{}", String::from_utf8_lossy(&other_team.body));
    assert_eq!(w.get_blob(&hub.url, Some(&session_token(&w.office)), &poster_sha, &[]).status, 401);
}

#[test]
fn a_backup_brings_the_files_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    let sqlite = format!("sqlite://{}?mode=rwc", data.join("doorstep.db").display());
    let server = sqlite_server_with_office(&data, &office, &sqlite);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let bytes = png("backed up", 4_000);
    let upload = |url: &str| {
        rt.block_on(async {
            let response = http
                .post(format!("{url}/api/v1/blobs?name=p.png"))
                .bearer_auth(session_token(&office))
                .body(bytes.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
        })
    };
    upload(&server.url);
    let backup = tmp.path().join("backup.db");
    let out = ok(
        &office,
        &["admin", "backup", "--data-dir", data.to_str().unwrap(), "--output", backup.to_str().unwrap()],
        None,
    );
    assert!(out.contains("copied 1 attachment files (4000 bytes)"), "{out}");
    let copied = tmp.path().join("backup.db.blobs");
    let sha = sha256(&bytes);
    assert_eq!(std::fs::read(copied.join(&sha[..2]).join(&sha)).unwrap(), bytes);
    let err = fails(
        &office,
        &["admin", "backup", "--data-dir", data.to_str().unwrap(), "--output", backup.to_str().unwrap()],
        None,
    );
    assert!(err.contains("already exists"), "{err}");
    server.kill();

    // Restored: the database, the secret, and the files as blobs/.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&backup, restored.join("doorstep.db")).unwrap();
    std::fs::copy(data.join("jwt-secret"), restored.join("jwt-secret")).unwrap();
    std::fs::rename(&copied, restored.join("blobs")).unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", restored.join("doorstep.db").display());
    let server = Server::start_with(&restored, "127.0.0.1:0", &["--database-url", &sqlite]);
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let got = rt.block_on(async {
        let response = http
            .get(format!("{}/api/v1/blobs/{sha}", server.url))
            .bearer_auth(session_token(&office))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
    });
    assert_eq!(got, (200, bytes));
}
