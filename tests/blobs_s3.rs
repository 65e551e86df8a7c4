//! The content-addressed store on S3-compatible storage (`doorstep serve --blobs-s3-*`), against a real
//! S3-compatible server (moto's, installed by scripts/s3-deps.sh and started by `common::s3`): a bulletin's
//! attachment is kept as an object of the bucket and nowhere on the server's disk, a phone downloads it by ranges,
//! a restarted server still serves it, a damaged or missing object is not served (as a damaged or missing file
//! is not), a bucket that fails is told to the uploader; a phone's photo and its thumbnail are objects of it too;
//! `admin backup` says it does not copy the bucket; and configurations that cannot work are refused at startup
//! with a message naming what to fix.

mod common;
use common::s3::S3Server;
use common::*;
use field::profile::Profile;
use std::path::Path;
use std::process::{Command, Stdio};

/// A PDF (its header is what the store judges by) of `size` bytes, different for each `tag`.
fn pdf(tag: &str, size: usize) -> Vec<u8> {
    let mut bytes = format!("%PDF-1.4\n% {tag}\n").into_bytes();
    let mut n = 7u32;
    while bytes.len() < size {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((n >> 16) as u8);
    }
    bytes
}

fn session_token(profile: &Path) -> String {
    Profile::new(profile.to_path_buf()).session().unwrap().token
}

fn device_token(profile: &Path) -> String {
    Profile::new(profile.to_path_buf()).device().unwrap().token
}

/// An answer of the server: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn call(request: reqwest::RequestBuilder) -> Answer {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Answer { status, headers, body: response.bytes().await.unwrap().to_vec() }
    })
}

/// `GET /api/v1/blobs/{sha}` with a bearer token and the headers given.
fn get_blob(url: &str, token: &str, sha: &str, headers: &[(&str, &str)]) -> Answer {
    get_blob_at(&format!("{url}/api/v1/blobs/{sha}"), token, headers)
}

/// `POST /api/v1/blobs?name=` as the office.
fn upload(url: &str, office: &Path, name: &str, bytes: &[u8]) -> Answer {
    let request = reqwest::Client::new()
        .post(format!("{url}/api/v1/blobs"))
        .query(&[("name", name)])
        .bearer_auth(session_token(office))
        .body(bytes.to_vec());
    call(request)
}

/// The object name of the file `sha` in a bucket under `prefix`: the directory store's layout.
fn object_name(prefix: &str, sha: &str) -> String {
    format!("{prefix}/{}/{sha}", &sha[..2])
}

fn args_of(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

#[test]
fn attachments_are_objects_of_the_bucket_served_by_ranges_across_restarts() {
    let s3 = S3Server::start("doorstep-files");
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let serve_args = s3.serve_args(Some("town/files"));
    let server = Server::start_with(&data, "127.0.0.1:0", &args_of(&serve_args));
    let vol = small_town(tmp.path(), &server.url, &office, 0);

    // The office publishes a bulletin with a leaflet attached, through the CLI.
    let leaflet = pdf("leaflet", 300_000);
    let sha = server::blobs::sha256_hex(&leaflet);
    let file = write_file(tmp.path(), "leaflet.pdf", &leaflet);
    let body = write_file(tmp.path(), "body.txt", "提醒".as_bytes());
    let publish = ["bulletin", "publish", "--title", "提醒", "--body-file", body.to_str().unwrap(), "--kind"];
    ok(&office, &[&publish[..], &["reminder", "--everyone", "--attach", file.to_str().unwrap()]].concat(), None);
    // It is an object of the bucket, under the prefix, laid out as the directory store; nothing on the disk.
    let name = object_name("town/files", &sha);
    assert_eq!(s3.objects(), vec![(name.clone(), leaflet.len() as u64)]);
    assert!(!data.join("blobs").exists(), "nothing in the data dir's blobs/");
    let rows = db_pairs(&data, "SELECT sha256, content_type FROM blobs");
    assert_eq!(rows, vec![(sha.clone(), "application/pdf".to_string())]);
    // The same bytes again: the same answer, still one object.
    let again = upload(&server.url, &office, "leaflet.pdf", &leaflet);
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(s3.objects().len(), 1);

    // The phone's sync downloads it (checking its hash), and it reads ranges of it.
    let out = ok(&vol, &["field", "sync"], None);
    assert!(out.contains("attachments: 1 downloaded"), "{out}");
    let phone = device_token(&vol);
    let part = get_blob(&server.url, &phone, &sha, &[("range", "bytes=250000-")]);
    assert_eq!((part.status, part.header("content-range")), (206, "bytes 250000-299999/300000"));
    assert_eq!(part.body, &leaflet[250_000..]);
    let middle = get_blob(&server.url, &phone, &sha, &[("range", "bytes=10-19")]);
    assert_eq!((middle.status, middle.body.as_slice()), (206, &leaflet[10..20]));
    let whole = get_blob(&server.url, &phone, &sha, &[]);
    assert_eq!((whole.status, whole.header("content-type")), (200, "application/pdf"));
    assert_eq!(whole.header("etag"), format!("\"{sha}\""));
    assert_eq!(whole.body, leaflet);
    let past = get_blob(&server.url, &phone, &sha, &[("range", "bytes=300000-")]);
    assert_eq!((past.status, past.header("content-range")), (416, "bytes */300000"));
    let held = get_blob(&server.url, &phone, &sha, &[("if-none-match", &format!("\"{sha}\""))]);
    assert_eq!((held.status, held.body.len()), (304, 0));

    // A server restarted on the same bucket and database serves it still.
    server.kill();
    let server = Server::start_with(&data, "127.0.0.1:0", &args_of(&serve_args));
    let part = get_blob(&server.url, &phone, &sha, &[("range", "bytes=-1000")]);
    assert_eq!((part.status, part.body.as_slice()), (206, &leaflet[299_000..]));

    // A damaged object (of another size than its row) is not served, whatever is asked: as a damaged file.
    s3.put_object(&name, &leaflet[..5_000]);
    let no_file = format!("no file {sha}");
    for headers in [&[][..], &[("range", "bytes=100-200")], &[("if-none-match", &format!("\"{sha}\"")[..])]] {
        let answer = get_blob(&server.url, &phone, &sha, headers);
        assert_eq!(answer.status, 404, "{headers:?}: {}", answer.text());
        assert!(answer.text().contains(&no_file), "{}", answer.text());
    }
    // A range past the end of the shorter object, too (the bucket refuses it; the answer is the same).
    assert_eq!(get_blob(&server.url, &phone, &sha, &[("range", "bytes=200000-")]).status, 404);
    // Putting the same bytes again repairs it.
    assert_eq!(upload(&server.url, &office, "leaflet.pdf", &leaflet).status, 201);
    assert_eq!(get_blob(&server.url, &phone, &sha, &[]).body, leaflet);
    assert_eq!(s3.objects(), vec![(name.clone(), leaflet.len() as u64)]);
    // A missing object: not served either.
    s3.delete_object(&name);
    let missing = get_blob(&server.url, &phone, &sha, &[("range", "bytes=0-")]);
    assert_eq!(missing.status, 404, "{}", missing.text());

    // When the bucket fails, an upload is refused with what happened, and nothing is recorded.
    drop(s3);
    let refused = upload(&server.url, &office, "poster.pdf", &pdf("poster", 2_000));
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("cannot write the file to its storage bucket"), "{}", refused.text());
    assert_eq!(db_pairs(&data, "SELECT sha256, content_type FROM blobs").len(), 1);
}

/// `admin backup` (SQLite) of a server whose files are in a bucket copies the database and says plainly that the
/// files are not copied; once the server is back on a directory, the backup copies its files again.
#[test]
fn a_backup_says_the_bucket_is_not_copied() {
    let s3 = S3Server::start("doorstep-backup");
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    let sqlite = format!("sqlite://{}?mode=rwc", data.join("doorstep.db").display());
    let dir = data.to_str().unwrap();
    let create = ["admin", "create-user", "--data-dir", dir, "--database-url", &sqlite, "--username", "office"];
    ok(&office, &[&create[..], &["--role", "office", "--password-stdin"]].concat(), Some(&pw()));
    let mut args = vec!["--database-url".to_string(), sqlite.clone()];
    args.extend(s3.serve_args(None));
    let server = Server::start_with(&data, "127.0.0.1:0", &args_of(&args));
    ok(&office, &["login", "--server", &server.url, "--username", "office", "--password-stdin"], Some(&pw()));
    let leaflet = pdf("backed up", 4_000);
    assert_eq!(upload(&server.url, &office, "leaflet.pdf", &leaflet).status, 201);
    let sha = server::blobs::sha256_hex(&leaflet);
    assert_eq!(s3.objects(), vec![(format!("{}/{sha}", &sha[..2]), 4_000)]);

    let backup = tmp.path().join("backup.db");
    let out = ok(&office, &["admin", "backup", "--data-dir", dir, "--output", backup.to_str().unwrap()], None);
    let bucket = format!("s3://doorstep-backup at {}", s3.endpoint);
    assert!(out.contains(&format!("backed up {}", data.join("doorstep.db").display())), "{out}");
    assert!(out.contains(&format!("in the S3 bucket {bucket} and were not copied")), "{out}");
    assert!(backup.exists() && !tmp.path().join("backup.db.blobs").exists());

    // Back on a directory: the data dir no longer says the files are in a bucket, and they are copied again.
    server.kill();
    let server = Server::start_with(&data, "127.0.0.1:0", &["--database-url", &sqlite]);
    assert_eq!(upload(&server.url, &office, "leaflet.pdf", &leaflet).status, 201);
    let second = tmp.path().join("second.db");
    let out = ok(&office, &["admin", "backup", "--data-dir", dir, "--output", second.to_str().unwrap()], None);
    assert!(!out.contains("S3 bucket"), "{out}");
    assert!(out.contains("copied 1 attachment files (4000 bytes)"), "{out}");
}

/// Runs `doorstep serve` expecting it to refuse to start; returns what it said.
fn serve_refused(data: &Path, args: &[&str], keep_credentials: bool) -> String {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(database_args(data))
        .args(args)
        .env("DOORSTEP_LOG", "warn")
        .stdin(Stdio::null());
    if !keep_credentials {
        command.env_remove("DOORSTEP_S3_ACCESS_KEY_ID").env_remove("DOORSTEP_S3_SECRET_ACCESS_KEY");
    }
    let out = command.output().expect("run doorstep serve");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "doorstep serve {args:?} started: {stdout}");
    assert!(!stdout.contains("Doorstep listening"), "{stdout}");
    stderr.into_owned()
}

#[test]
fn configurations_that_cannot_work_are_refused_at_startup() {
    let s3 = S3Server::start("doorstep-config");
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = s3.endpoint.clone();

    // A directory and a bucket both.
    let data = tmp.path().join("both");
    let shared = tmp.path().join("shared").to_str().unwrap().to_string();
    let mut both = vec!["--blobs-dir", &shared];
    both.extend(["--blobs-s3-bucket", "doorstep-config", "--blobs-s3-endpoint", &endpoint]);
    let said = serve_refused(&data, &both, true);
    assert!(said.contains("--blobs-dir") && said.contains("cannot be used with") && said.contains("--blobs-s3-bucket"));
    // The same for a server opened as a library: one place holds the configuration, and says no.
    let mut config = server::ServerConfig::with_defaults(tmp.path().join("library"), None);
    config.blobs_dir = Some(shared.clone().into());
    config.blobs_s3 = Some(server::blobs::S3Config {
        bucket: "doorstep-config".into(),
        endpoint: Some(endpoint.clone()),
        region: "us-east-1".into(),
        prefix: String::new(),
        access_key_id: common::s3::ACCESS_KEY_ID.into(),
        secret_access_key: common::s3::SECRET_ACCESS_KEY.into(),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let refused = rt.block_on(server::AppState::open(&config)).err().expect("refused");
    assert!(refused.to_string().contains("either in a directory"), "{refused}");
    assert!(!tmp.path().join("library").exists(), "nothing was written");

    // An endpoint where nothing answers: named, with the bucket, and nothing is left behind.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let data = tmp.path().join("unreachable");
    let said = serve_refused(&data, &["--blobs-s3-bucket", "doorstep-config", "--blobs-s3-endpoint", &nobody], true);
    assert!(said.contains(&format!("cannot use the S3 bucket s3://doorstep-config at {nobody}")), "{said}");
    assert!(said.contains("nothing answers at the endpoint") && said.contains("check --blobs-s3-endpoint"), "{said}");
    assert!(!data.join("doorstep.db").exists(), "no database was made");
    // A bucket the server does not have.
    let said = serve_refused(&data, &["--blobs-s3-bucket", "no-such-bucket", "--blobs-s3-endpoint", &endpoint], true);
    assert!(said.contains(&format!("cannot use the S3 bucket s3://no-such-bucket at {endpoint}")), "{said}");
    assert!(said.contains("the storage has no bucket named \"no-such-bucket\" (create it first)"), "{said}");
    // No credentials in the environment (they are never taken from the command line).
    let said = serve_refused(&data, &["--blobs-s3-bucket", "doorstep-config", "--blobs-s3-endpoint", &endpoint], false);
    assert!(said.contains("set DOORSTEP_S3_ACCESS_KEY_ID"), "{said}");
    // An endpoint that is not a URL.
    let said =
        serve_refused(&data, &["--blobs-s3-bucket", "doorstep-config", "--blobs-s3-endpoint", "127.0.0.1:9"], true);
    assert!(said.contains("must start with http:// or https://"), "{said}");
    // A prefix without its bucket.
    let said = serve_refused(&data, &["--blobs-s3-prefix", "doorstep"], true);
    assert!(said.contains("--blobs-s3-bucket"), "{said}");
    assert!(s3.objects().is_empty());

    // And the configuration that works starts.
    let data = tmp.path().join("works");
    let server = Server::start_with(&data, "127.0.0.1:0", &args_of(&s3.serve_args(None)));
    assert!(server.url.starts_with("http://"));
    assert_eq!(
        std::fs::read_to_string(data.join("blobs-in-s3")).unwrap().trim(),
        format!("s3://doorstep-config at {endpoint}")
    );
}

/// A JPEG as a phone's camera makes it (smaller): smooth shades, a little noise.
fn camera_jpeg(dir: &Path, name: &str) -> std::path::PathBuf {
    let img = image::RgbImage::from_fn(1200, 900, |x, y| {
        let noise = ((x.wrapping_mul(31) ^ y.wrapping_mul(17)).wrapping_mul(2_246_822_519) >> 28) as u8;
        image::Rgb([(x / 8 % 200) as u8 + noise, (y / 6 % 200) as u8, ((x + y) / 12 % 200) as u8])
    });
    let path = dir.join(name);
    img.save_with_format(&path, image::ImageFormat::Jpeg).unwrap();
    path
}

/// A phone's photo, as the server checked and kept it, and its thumbnail are objects of the bucket, and the office
/// is served both from there.
#[test]
fn photos_and_their_thumbnails_are_objects_of_the_bucket() {
    let s3 = S3Server::start("doorstep-photos");
    let tmp = tempfile::tempdir().unwrap();
    let (data, office) = (tmp.path().join("data"), tmp.path().join("office"));
    bootstrap_office(&data, &office);
    let server = Server::start_with(&data, "127.0.0.1:0", &args_of(&s3.serve_args(None)));
    let vol = small_town(tmp.path(), &server.url, &office, 0);
    let wall = camera_jpeg(tmp.path(), "wall.jpg");
    ok(&vol, &["field", "visit", "P01", "--poster", "--photo", wall.to_str().unwrap()], None);
    let out = ok(&vol, &["field", "sync"], None);
    assert!(out.contains("photos: 1 uploaded"), "{out}");
    let photos = db_pairs(&data, "SELECT sha256, media_type FROM photos");
    assert_eq!(photos.len(), 1, "{photos:?}");
    let sha = &photos[0].0;

    let token = session_token(&office);
    let file = get_blob_at(&format!("{}/api/v1/photos/{sha}/file", server.url), &token, &[]);
    assert_eq!((file.status, file.header("content-type")), (200, "image/jpeg"), "{}", file.text());
    let thumb = get_blob_at(&format!("{}/api/v1/photos/{sha}/thumbnail", server.url), &token, &[]);
    assert_eq!((thumb.status, thumb.header("content-type")), (200, "image/jpeg"), "{}", thumb.text());
    assert!(thumb.body.len() < file.body.len());
    let part = get_blob_at(&format!("{}/api/v1/photos/{sha}/thumbnail", server.url), &token, &[("range", "bytes=0-9")]);
    assert_eq!((part.status, part.body.as_slice()), (206, &thumb.body[..10]));
    let mut expected: Vec<(String, u64)> = [&file.body, &thumb.body]
        .iter()
        .map(|bytes| {
            let sha = server::blobs::sha256_hex(bytes);
            (format!("{}/{sha}", &sha[..2]), bytes.len() as u64)
        })
        .collect();
    expected.sort();
    assert_eq!(s3.objects(), expected, "the checked photo and its thumbnail, nothing else");
    assert!(!data.join("blobs").exists(), "nothing in the data dir's blobs/");
}

/// `GET url` with a bearer token and the headers given.
fn get_blob_at(url: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new().get(url).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    call(request)
}
