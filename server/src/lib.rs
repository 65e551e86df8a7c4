//! Doorstep's server: an axum API over a database of grid documents and their SQL projections.
//!
//! Its folders are its layers: `http` (router, extractors, one module per resource; the only place that knows
//! HTTP status codes) calls the domain folders (`accounts`, `places`, `reports`, `tasks`, `territory`,
//! `settings`, `demo`), which keep their data through `store` (database, grid documents, projection; the only
//! place with SQL) and refuse with `refusal::Refusal`. `sync` receives a device's sync (its grids in `sync`, its
//! tasks in `sync::tasks`, documents of every further kind in `sync::documents`). `serving` is what a team's hub
//! serves the way the server does.

pub mod accounts;
pub mod blobs;
pub mod bulletins;
pub mod campaign;
pub mod demo;
pub mod http;
pub mod ops;
pub mod photos;
pub mod places;
pub mod priority;
pub mod refusal;
pub mod reports;
pub mod resumable;
pub mod serving;
pub mod settings;
pub mod store;
pub mod submissions;
pub mod sync;
pub mod tasks;
pub mod territory;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: store::db::Db,
    pub keys: Arc<accounts::tokens::Keys>,
    pub grids: Arc<store::grids::GridRepo>,
    pub login_throttle: accounts::throttle::ThrottlePolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `client_addr`).
    pub trusted_proxies: Arc<http::client_addr::TrustedProxies>,
    /// Admits a bounded number of writing syncs at a time (see `sync::admit`).
    pub sync_admission: Arc<tokio::sync::Semaphore>,
    /// Permits for large uploads, and where territory files are received.
    pub uploads: Arc<http::bodies::Uploads>,
    /// The kinds of synced document besides grids and tasks (`sync::documents`).
    pub kinds: Arc<sync::documents::ServerKinds>,
    /// The campaign in force: what counts (`campaign`).
    pub campaigns: Arc<campaign::Campaigns>,
    /// Territory imports started from the dashboard, and where workbooks are converted (`territory::jobs`).
    pub imports: Arc<territory::jobs::ImportJobs>,
    /// The content-addressed store of attachments (`blobs`).
    pub blobs: blobs::BlobStore,
    /// Where photo uploads under way are kept until whole (`photos::upload`).
    pub photo_uploads: Arc<PathBuf>,
    /// The syncs in flight, and the turns of work that yields to them (`priority`).
    pub syncs_first: Arc<priority::SyncsFirst>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the embedded database (unless `database_url` is given) and the token secret.
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub login_throttle: accounts::throttle::ThrottlePolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: http::client_addr::TrustedProxies,
    /// Bound of the grid document cache, in estimated bytes of memory.
    pub doc_cache_bytes: u64,
    /// Syncs that write, processed at the same time (at least one).
    pub max_concurrent_syncs: usize,
    /// How long a photo upload waits for its turn before it is answered busy (`priority`).
    pub upload_turn_wait: std::time::Duration,
    /// Where the content-addressed store keeps its files: `<data_dir>/blobs` by default; a directory every
    /// instance shares (a network file system) when several serve one PostgreSQL database.
    pub blobs_dir: Option<PathBuf>,
    /// An S3-compatible bucket for the store's files instead of a directory (not with `blobs_dir`).
    pub blobs_s3: Option<blobs::S3Config>,
}

impl ServerConfig {
    /// The server's defaults for everything but where its data lives.
    pub fn with_defaults(data_dir: PathBuf, database_url: Option<String>) -> ServerConfig {
        ServerConfig {
            data_dir,
            database_url,
            login_throttle: Default::default(),
            trusted_proxies: Default::default(),
            doc_cache_bytes: store::grids::DEFAULT_CACHE_BYTES,
            max_concurrent_syncs: sync::DEFAULT_MAX_CONCURRENT_SYNCS,
            upload_turn_wait: priority::DEFAULT_TURN_WAIT,
            blobs_dir: None,
            blobs_s3: None,
        }
    }
}

impl AppState {
    pub async fn open(config: &ServerConfig) -> anyhow::Result<AppState> {
        // Storage that is not there is refused before anything is written.
        let blobs_at = blobs::locate(config).await?;
        // Its owner's only: the data dir holds the installation's secret and (on SQLite) everyone's data.
        client_core::private_files::create_dir_all(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display()))?;
        let url = config.database_url.clone().unwrap_or_else(|| store::db::sqlite_url(&config.data_dir));
        let db = store::db::Db::connect(&url).await?;
        let keys = Arc::new(accounts::tokens::Keys::load_or_create(&config.data_dir)?);
        for warning in client_core::private_files::loosened(&config.data_dir) {
            tracing::warn!("{warning}");
        }
        let grids = Arc::new(store::grids::GridRepo::new(db.clone(), config.doc_cache_bytes));
        ops::prometheus();
        let sync_admission = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_syncs.max(1)));
        let uploads = Arc::new(http::bodies::Uploads::new(&config.data_dir));
        let campaigns = Arc::new(campaign::Campaigns::load(&db).await?);
        let blobs = blobs::BlobStore::open(blobs_at, db.clone());
        let state = AppState {
            db,
            keys,
            grids,
            login_throttle: config.login_throttle,
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            sync_admission,
            uploads,
            kinds: Arc::new(sync::documents::ServerKinds::of_doorstep()),
            campaigns,
            imports: Arc::new(territory::jobs::ImportJobs::new(&config.data_dir)),
            blobs,
            photo_uploads: Arc::new(config.data_dir.join(photos::upload::UPLOADS_DIR)),
            syncs_first: priority::SyncsFirst::for_this_machine(config.upload_turn_wait),
        };
        campaign::finish_recount(&state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // Bulletins that expired while the server was stopped are withdrawn before it serves a sync.
        bulletins::withdraw_expired(&state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(state)
    }
}

/// Serves the API on an already-bound listener, over HTTPS when `tls` is given, until `shutdown` resolves;
/// in-flight requests finish first. `limits` bound what slow or numerous connections of one client can hold.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    limits: http::listen::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if state.db.backend == store::db::Backend::Postgres {
        tokio::spawn(campaign::follow(state.clone()));
    }
    tokio::spawn(bulletins::follow_expiry(state.clone()));
    let app = http::app(state);
    // Client addresses feed the login throttle.
    http::listen::serve_app_with(app, listener, tls, limits, shutdown).await
}
