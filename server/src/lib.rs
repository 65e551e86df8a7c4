//! Doorstep's server: an axum API over a database of grid documents and their SQL projections.

pub mod accounts;
pub mod api;
pub mod area_progress;
pub mod audit;
pub mod auth;
pub mod bodies;
pub mod ca_api;
pub mod client_addr;
pub mod csv_safe;
pub mod dashboard;
pub mod db;
pub mod demo;
pub mod demo_tasks;
pub mod error;
pub mod field_app;
pub mod field_places;
pub mod grids;
pub mod ingest;
pub mod listen;
pub mod migrate;
pub mod ops;
pub mod people;
pub mod projection;
pub mod reassigned;
pub mod report_time;
pub mod reports;
pub mod reports_activity;
pub mod reports_api;
pub mod reports_gaps;
pub mod reports_monthly;
pub mod reports_progress;
pub mod review_api;
pub mod roster;
pub mod settings;
pub mod task_ingest;
pub mod tasks;
pub mod tasks_api;
pub mod tasks_read;
pub mod territory;
pub mod territory_csv;
pub mod throttle;
pub mod tls_ca;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: db::Db,
    pub keys: Arc<auth::Keys>,
    pub grids: Arc<grids::GridRepo>,
    pub login_throttle: throttle::ThrottlePolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `client_addr`).
    pub trusted_proxies: Arc<client_addr::TrustedProxies>,
    /// Admits a bounded number of writing syncs at a time (see `ingest::admit`).
    pub sync_admission: Arc<tokio::sync::Semaphore>,
    /// Permits for large uploads, and where territory files are received.
    pub uploads: Arc<bodies::Uploads>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the embedded database (unless `database_url` is given) and the token secret.
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub login_throttle: throttle::ThrottlePolicy,
    /// Reverse proxies whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: client_addr::TrustedProxies,
    /// Bound of the grid document cache, in estimated bytes of memory.
    pub doc_cache_bytes: u64,
    /// Syncs that write, processed at the same time (at least one).
    pub max_concurrent_syncs: usize,
}

impl ServerConfig {
    /// The server's defaults for everything but where its data lives.
    pub fn with_defaults(data_dir: PathBuf, database_url: Option<String>) -> ServerConfig {
        ServerConfig {
            data_dir,
            database_url,
            login_throttle: Default::default(),
            trusted_proxies: Default::default(),
            doc_cache_bytes: grids::DEFAULT_CACHE_BYTES,
            max_concurrent_syncs: ingest::DEFAULT_MAX_CONCURRENT_SYNCS,
        }
    }
}

impl AppState {
    pub async fn open(config: &ServerConfig) -> anyhow::Result<AppState> {
        // Its owner's only: the data dir holds the installation's secret and (on SQLite) everyone's data.
        client_core::private_files::create_dir_all(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display()))?;
        let url = config.database_url.clone().unwrap_or_else(|| db::sqlite_url(&config.data_dir));
        let db = db::Db::connect(&url).await?;
        let keys = Arc::new(auth::Keys::load_or_create(&config.data_dir)?);
        for warning in client_core::private_files::loosened(&config.data_dir) {
            tracing::warn!("{warning}");
        }
        let grids = Arc::new(grids::GridRepo::new(db.clone(), config.doc_cache_bytes));
        ops::prometheus();
        let sync_admission = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_syncs.max(1)));
        let uploads = Arc::new(bodies::Uploads::new(&config.data_dir));
        Ok(AppState {
            db,
            keys,
            grids,
            login_throttle: config.login_throttle,
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            sync_admission,
            uploads,
        })
    }
}

/// Serves the API on an already-bound listener, over HTTPS when `tls` is given, until `shutdown` resolves;
/// in-flight requests finish first. `limits` bound what slow or numerous connections of one client can hold.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    limits: listen::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = api::router(state)
        // A panic in a handler answers 500 with the usual error body; the server keeps serving, and the
        // request's transaction (never committed) rolls back.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            axum::response::IntoResponse::into_response(error::ApiError::internal("a request handler panicked"))
        }))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(tower_http::trace::TraceLayer::new_for_http());
    // Client addresses feed the login throttle.
    listen::serve_app_with(app, listener, tls, limits, shutdown).await
}
