//! A real S3-compatible server for the tests of the blob store's S3 backend: moto's (`moto_server`, installed by
//! scripts/s3-deps.sh into target/moto-venv), on a free loopback port, with a bucket made; stopped when dropped.

use super::free_port;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The credentials the tests' servers are given (moto takes any).
pub const ACCESS_KEY_ID: &str = "doorstep-test-key";
pub const SECRET_ACCESS_KEY: &str = "doorstep-test-secret";

/// A running `moto_server` with one bucket. Killed when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub bucket: String,
    child: Child,
    rt: tokio::runtime::Runtime,
}

/// Where scripts/s3-deps.sh installs moto's server (or `DOORSTEP_MOTO_SERVER`, to use another installation).
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("DOORSTEP_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv/bin/moto_server")
}

impl S3Server {
    /// Starts moto's S3 server and makes the bucket `bucket`; sets the credentials in this process's
    /// environment, from which the `doorstep serve` it starts read them (so: call it first in a test, before other
    /// threads are about). Panics, naming scripts/s3-deps.sh, when moto is not installed: these tests are never
    /// skipped.
    pub fn start(bucket: &str) -> S3Server {
        let bin = moto_server();
        assert!(
            bin.exists(),
            "moto's S3 server is not installed at {}: run ./scripts/s3-deps.sh (./scripts/test does)",
            bin.display()
        );
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("moto_server exited before listening ({status}): is port {port} taken?");
            }
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::env::set_var("DOORSTEP_S3_ACCESS_KEY_ID", ACCESS_KEY_ID);
        std::env::set_var("DOORSTEP_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        let endpoint = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let made = rt.block_on(async {
            reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.map(|r| r.status())
        });
        assert!(made.as_ref().is_ok_and(|s| s.is_success()), "making the bucket {bucket}: {made:?}");
        S3Server { endpoint, bucket: bucket.to_string(), child, rt }
    }

    /// The arguments of `doorstep serve` that keep its files in this bucket (`--blobs-s3-prefix` with `prefix`).
    pub fn serve_args(&self, prefix: Option<&str>) -> Vec<String> {
        let mut args = vec![
            "--blobs-s3-bucket".to_string(),
            self.bucket.clone(),
            "--blobs-s3-endpoint".to_string(),
            self.endpoint.clone(),
        ];
        if let Some(prefix) = prefix {
            args.extend(["--blobs-s3-prefix".to_string(), prefix.to_string()]);
        }
        args
    }

    /// The bucket, read and written as the server does (through object_store), to look into it from a test.
    fn client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .build()
            .unwrap()
    }

    /// Every object in the bucket: its name and size, sorted by name (listed a "folder" at a time).
    pub fn objects(&self) -> Vec<(String, u64)> {
        let client = self.client();
        let mut objects = Vec::new();
        let mut folders = vec![None];
        while let Some(folder) = folders.pop() {
            let listed: object_store::ListResult =
                self.rt.block_on(client.list_with_delimiter(folder.as_ref())).expect("list the bucket");
            objects.extend(listed.objects.into_iter().map(|meta| (meta.location.to_string(), meta.size)));
            folders.extend(listed.common_prefixes.into_iter().map(Some));
        }
        objects.sort();
        objects
    }

    /// Replaces the object `name` by `bytes` (to damage it).
    pub fn put_object(&self, name: &str, bytes: &[u8]) {
        let client = self.client();
        let payload = PutPayload::from(bytes.to_vec());
        self.rt.block_on(client.put(&ObjectPath::from(name), payload)).expect("put an object");
    }

    pub fn delete_object(&self, name: &str) {
        let client = self.client();
        self.rt.block_on(client.delete(&ObjectPath::from(name))).expect("delete an object");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
