//! `doorstep serve` and `doorstep admin`: start the server, bootstrap accounts, fill the demo town.

use anyhow::{Context, Result};
use axum_server::tls_rustls::RustlsConfig;
use clap::Args;
use server::{AppState, ServerConfig};
use std::path::PathBuf;

#[derive(Args)]
pub struct ServeArgs {
    /// Where the embedded database and the token secret live.
    #[arg(long, default_value = "doorstep-data", env = "DOORSTEP_DATA_DIR")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080", env = "DOORSTEP_LISTEN")]
    listen: String,
    /// postgres://... to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "DOORSTEP_DATABASE_URL")]
    database_url: Option<String>,
    /// Fill an empty data dir with a demo town and print its accounts.
    #[arg(long)]
    demo: bool,
    /// Failed logins allowed per account and client address within the login window.
    #[arg(long, env = "DOORSTEP_LOGIN_MAX_FAILURES", default_value_t = 10)]
    login_max_failures: i64,
    /// Failed logins allowed per client address, whatever the accounts, within the login window.
    #[arg(long, env = "DOORSTEP_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 100)]
    login_max_failures_per_address: i64,
    /// Failed logins on one account from all addresses within the login window, after which attempts on it are
    /// paced (see --login-pace-secs) rather than refused.
    #[arg(long, env = "DOORSTEP_LOGIN_ACCOUNT_FAILURES", default_value_t = 50)]
    login_account_failures: i64,
    /// While an account is paced, one login attempt on it every this many seconds.
    #[arg(long, env = "DOORSTEP_LOGIN_PACE_SECS", default_value_t = 30)]
    login_pace_secs: i64,
    /// Length of the login window, in seconds.
    #[arg(long, env = "DOORSTEP_LOGIN_WINDOW_SECS", default_value_t = 900)]
    login_window_secs: i64,
    /// A reverse proxy in front of this server (an address or a network, e.g. 127.0.0.1 or 10.0.0.0/8; repeat
    /// or separate with commas): for its connections, the client's address is taken from X-Forwarded-For.
    #[arg(long = "trusted-proxy", env = "DOORSTEP_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = server::http::client_addr::parse_trusted_proxy)]
    trusted_proxies: Vec<server::http::client_addr::IpNet>,
    /// Serve Prometheus metrics (`/metrics`) on this address only (plain HTTP), e.g. 127.0.0.1:9464; the API's
    /// address does not serve them.
    #[arg(long, env = "DOORSTEP_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Where attachments are kept (the content-addressed store): DATA_DIR/blobs by default. With several
    /// instances on one PostgreSQL database, a directory they all share (e.g. a network file system).
    #[arg(long, env = "DOORSTEP_BLOBS_DIR")]
    blobs_dir: Option<PathBuf>,
    /// Keep attachments and photos in this bucket of S3-compatible storage instead of a directory (not with
    /// --blobs-dir); several instances on one PostgreSQL database share it. Its credentials are read from
    /// DOORSTEP_S3_ACCESS_KEY_ID and DOORSTEP_S3_SECRET_ACCESS_KEY, never from the command line.
    #[arg(long, env = "DOORSTEP_BLOBS_S3_BUCKET", conflicts_with = "blobs_dir")]
    blobs_s3_bucket: Option<String>,
    /// The S3-compatible server of --blobs-s3-bucket, e.g. http://127.0.0.1:9000 (plain HTTP only when it says
    /// http://); Amazon S3 itself when left out.
    #[arg(long, env = "DOORSTEP_BLOBS_S3_ENDPOINT", requires = "blobs_s3_bucket")]
    blobs_s3_endpoint: Option<String>,
    /// The region of --blobs-s3-bucket.
    #[arg(long, env = "DOORSTEP_BLOBS_S3_REGION", default_value = "us-east-1")]
    blobs_s3_region: String,
    /// A prefix for the names of the objects in --blobs-s3-bucket (e.g. doorstep), to share a bucket.
    #[arg(long, env = "DOORSTEP_BLOBS_S3_PREFIX", requires = "blobs_s3_bucket")]
    blobs_s3_prefix: Option<String>,
    /// Memory for cached grid documents, in MiB (estimated); the least recently used are dropped beyond it.
    #[arg(long, env = "DOORSTEP_DOC_CACHE_MB", default_value_t = server::store::grids::DEFAULT_CACHE_BYTES >> 20)]
    doc_cache_mb: u64,
    /// Serve HTTPS with this certificate chain (PEM), e.g. on a LAN without a reverse proxy. Needs --tls-key.
    #[arg(long, env = "DOORSTEP_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "DOORSTEP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Syncs that write, processed at the same time; more wait their turn, holding only their request. Each
    /// holds its grids' documents until its changes are stored, so this bounds that memory.
    #[arg(long, env = "DOORSTEP_MAX_CONCURRENT_SYNCS", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = server::sync::DEFAULT_MAX_CONCURRENT_SYNCS as u64)]
    max_concurrent_syncs: u64,
    /// Seconds a photo upload waits for its turn (uploads yield to the syncs) before it is answered busy (503)
    /// and left for the phone's next sync.
    #[arg(long, env = "DOORSTEP_UPLOAD_TURN_WAIT_SECS", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = server::priority::DEFAULT_TURN_WAIT.as_secs())]
    upload_turn_wait_secs: u64,
    /// Seconds for a request's headers to arrive (and how long a kept-alive connection may stay idle).
    #[arg(long, env = "DOORSTEP_HEADER_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = server::http::listen::DEFAULT_HEADER_TIMEOUT.as_secs())]
    header_timeout_secs: u64,
    /// Seconds for a request's body to arrive, plus one per --body-min-rate bytes received.
    #[arg(long, env = "DOORSTEP_BODY_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = server::http::listen::DEFAULT_BODY_TIMEOUT.as_secs())]
    body_timeout_secs: u64,
    /// Bytes a second a request body must average beyond --body-timeout-secs.
    #[arg(long, env = "DOORSTEP_BODY_MIN_RATE", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = server::http::listen::DEFAULT_BODY_MIN_RATE)]
    body_min_rate: u64,
    /// Connections open at the same time from one client address (an IPv6 /64 counts as one); 0: no bound
    /// (behind a reverse proxy, whose address every connection has, let the proxy bound them).
    #[arg(long, env = "DOORSTEP_MAX_CONNECTIONS_PER_ADDRESS",
          default_value_t = server::http::listen::DEFAULT_CONNECTIONS_PER_ADDRESS)]
    max_connections_per_address: usize,
}

impl ServeArgs {
    /// Whether the server runs on SQLite (the embedded default, or a `sqlite:` URL).
    pub fn on_sqlite(&self) -> bool {
        self.database_url
            .as_deref()
            .is_none_or(|url| server::store::db::Backend::of_url(url) == Some(server::store::db::Backend::Sqlite))
    }
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    // Certificate problems are reported before anything else starts.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(RustlsConfig::from_config(server::http::listen::tls_config(cert, key)?)),
        _ => None,
    };
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        login_throttle: server::accounts::throttle::ThrottlePolicy {
            max_failures: args.login_max_failures.max(1),
            max_failures_per_address: args.login_max_failures_per_address.max(1),
            account_failures_before_pace: args.login_account_failures.max(1),
            pace_secs: args.login_pace_secs.max(1),
            window_secs: args.login_window_secs.max(1),
        },
        trusted_proxies: server::http::client_addr::TrustedProxies::new(args.trusted_proxies.clone()),
        doc_cache_bytes: args.doc_cache_mb << 20,
        max_concurrent_syncs: args.max_concurrent_syncs as usize,
        upload_turn_wait: std::time::Duration::from_secs(args.upload_turn_wait_secs),
        blobs_dir: args.blobs_dir.clone(),
        blobs_s3: blobs_s3(&args)?,
    };
    let limits = server::http::listen::ConnectionLimits {
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
        body: server::http::bodies::BodyPace {
            timeout: std::time::Duration::from_secs(args.body_timeout_secs),
            min_rate: args.body_min_rate,
        },
        per_address: args.max_connections_per_address,
    };
    let state = AppState::open(&config).await?;
    server::blobs::mark_data_dir(&args.data_dir, &state.blobs)
        .with_context(|| format!("writing in the data dir {}", args.data_dir.display()))?;
    if args.demo {
        match server::demo::populate(&state).await? {
            Some(accounts) => {
                println!("Demo town created. Accounts (username / password / role):");
                for a in &accounts {
                    println!("  {:<12} {:<20} {}", a.username, a.password, a.role);
                }
            }
            None => println!("The data dir already holds data; --demo left it as it is."),
        }
    }
    if let Some(metrics_addr) = &args.metrics_listen {
        let listener = server::http::listen::bind(metrics_addr).await?;
        println!("Doorstep metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, server::http::probes::metrics_routes()).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let listener = server::http::listen::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    println!("Doorstep listening on {}://{addr}", if tls.is_some() { "https" } else { "http" });
    use std::io::Write;
    std::io::stdout().flush()?;
    server::serve(state, listener, tls, limits, shutdown_signal()).await
}

/// The bucket `--blobs-s3-bucket` names, with its credentials from the environment (so that they are not seen in
/// the list of processes or a shell's history).
fn blobs_s3(args: &ServeArgs) -> Result<Option<server::blobs::S3Config>> {
    let Some(bucket) = args.blobs_s3_bucket.clone() else { return Ok(None) };
    let credential = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty()).with_context(|| {
            format!(
                "--blobs-s3-bucket needs the bucket's credentials in the environment, not on the command line: set \
                 DOORSTEP_S3_ACCESS_KEY_ID and DOORSTEP_S3_SECRET_ACCESS_KEY ({name} is not set)"
            )
        })
    };
    Ok(Some(server::blobs::S3Config {
        bucket,
        endpoint: args.blobs_s3_endpoint.clone(),
        region: args.blobs_s3_region.clone(),
        prefix: args.blobs_s3_prefix.clone().unwrap_or_default(),
        access_key_id: credential("DOORSTEP_S3_ACCESS_KEY_ID")?,
        secret_access_key: credential("DOORSTEP_S3_SECRET_ACCESS_KEY")?,
    }))
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down after in-flight requests finish");
}

/// An online backup of the SQLite database: `VACUUM INTO` writes a consistent, compacted copy while the
/// server keeps serving; then the attachments' files are copied beside it (`blobs_backup_dir`), unless the server
/// keeps them in an S3 bucket (then it says so).
pub async fn backup(data_dir: &std::path::Path, output: &std::path::Path) -> Result<()> {
    for taken in [output.to_path_buf(), blobs_backup_dir(output)] {
        if taken.exists() {
            anyhow::bail!("{} already exists; choose a new file name", taken.display());
        }
    }
    let db_file = data_dir.join("doorstep.db");
    if !db_file.exists() {
        anyhow::bail!("no database at {}; is --data-dir right?", db_file.display());
    }
    let db = server::store::db::Db::connect(&server::store::db::sqlite_url(data_dir)).await?;
    let target = output.to_str().context("the output path is not valid UTF-8")?;
    // The copy holds everyone's data: made empty, for its owner only, before SQLite fills it (VACUUM INTO takes
    // an empty file and keeps its mode).
    client_core::private_files::options()
        .write(true)
        .create_new(true)
        .open(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let copied = sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", target.replace('\'', "''"))))
        .execute(&db.pool)
        .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(output);
        return Err(e).with_context(|| format!("backing up to {}", output.display()));
    }
    let size = std::fs::metadata(output)?.len();
    println!("backed up {} to {} ({size} bytes)", db_file.display(), output.display());
    // Files kept in a bucket are not on this machine to copy: said plainly, so that nobody takes the database's
    // copy for the whole backup.
    if let Ok(bucket) = std::fs::read_to_string(data_dir.join(server::blobs::S3_MARKER)) {
        println!(
            "the attachments and photos are in the S3 bucket {} and were not copied: back the bucket up with the \
             storage's own tools (versioning, replication, or a copy of its objects)",
            bucket.trim()
        );
        return Ok(());
    }
    // After the database: a row is inserted only once its file is whole, so every file the copy's rows name is
    // there now.
    let blobs = data_dir.join(server::blobs::BLOBS_DIR);
    if blobs.is_dir() {
        let target = blobs_backup_dir(output);
        let (files, bytes) = copy_blobs(&blobs, &target)
            .with_context(|| format!("copying the attachments in {} to {}", blobs.display(), target.display()))?;
        println!("copied {files} attachment files ({bytes} bytes) to {}", target.display());
    }
    Ok(())
}

/// Where a backup's attachments go: beside its database file, `<output>.blobs/`, laid out as the data dir's
/// `blobs/` (a restore copies it back as `blobs/`).
pub fn blobs_backup_dir(output: &std::path::Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".blobs");
    output.with_file_name(name)
}

/// Copies the store's files (`<2 hex>/<64 hex>`; temporary files left by a crash are skipped) into `target`, a new
/// folder for its owner only. Returns the files and bytes copied.
fn copy_blobs(blobs: &std::path::Path, target: &std::path::Path) -> Result<(u64, u64)> {
    if target.exists() {
        anyhow::bail!("{} already exists; choose a new file name", target.display());
    }
    client_core::private_files::create_dir_all(target)?;
    let (mut files, mut bytes) = (0, 0);
    for shard in std::fs::read_dir(blobs)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name();
            if !name.to_str().is_some_and(server::blobs::is_sha256_hex) {
                continue;
            }
            let dir = target.join(shard.file_name());
            client_core::private_files::create_dir_all(&dir)?;
            bytes += std::fs::copy(entry.path(), dir.join(&name))?;
            files += 1;
        }
    }
    Ok((files, bytes))
}

pub async fn migrate(from: &str, to: &str) -> Result<()> {
    let report = server::store::migrate::sqlite_to_postgres(from, to).await?;
    for t in &report.tables {
        println!("{:<20} {:>10} rows", t.table, t.rows);
    }
    println!(
        "copied and verified: row counts match, and all {} grid documents have the same heads in {}",
        report.grids_verified,
        server::store::db::redact(to)
    );
    Ok(())
}

pub async fn admin_create_user(
    data_dir: PathBuf,
    database_url: Option<String>,
    username: String,
    role: &str,
    team: Option<String>,
    area: Option<String>,
    password: String,
) -> Result<()> {
    let config = ServerConfig::with_defaults(data_dir, database_url);
    let state = AppState::open(&config).await?;
    let user = server::accounts::people::NewUser {
        username: username.clone(),
        password,
        role: role.parse().map_err(anyhow::Error::msg)?,
        team,
        area,
    };
    server::accounts::people::create_user(&state.db, user).await?;
    server::accounts::audit::record(&state.db, None, "user.create", &format!("{username} as {role} (admin)")).await;
    eprintln!("created user {username} ({role})");
    Ok(())
}
