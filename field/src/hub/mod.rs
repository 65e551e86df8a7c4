//! `doorstep hub`: a team lead's laptop or phone, at base without internet, serving the sync API for the team's
//! grids from the lead's own copy (`hub serve`), and forwarding everything upstream when the server can be
//! reached again (`hub sync`, or the serving hub by itself).

pub mod blobs;
pub mod enrol;
pub mod error;
pub mod exchange;
pub mod photos;
pub mod tasks;
pub mod tls;
pub mod trust;

use crate::device;
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use client_core::docs::Registry;
use client_core::protocol;
use client_core::sign::PublicKey;
use error::ApiError;
use exchange::{exchange, Hub};
use std::sync::Arc;
use std::time::Duration;

/// How `hub serve` listens (its flags are `doorstep hub serve`'s).
pub struct ServeArgs {
    /// Address the team's devices reach the hub at, e.g. 0.0.0.0:8090 on the base's network.
    pub listen: String,
    /// Seconds between attempts to forward everything to the server; 0 leaves it to `doorstep hub sync`.
    pub upstream_every: u64,
    /// Refuse to start without HTTPS.
    pub tls: bool,
    /// Serve HTTPS with this certificate chain and key (PEM) instead of the profile's hub certificate.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP although the profile holds a hub certificate (CLI devices only).
    pub plain_http: bool,
}

/// The hub's routes: the sync API, enrolment passed on to the server, and the field web app's pages, so phones at
/// base load, reload and sync the app from the hub as from the server.
pub fn router(hub: Arc<Hub>) -> Router {
    // Phones at base count with the newest campaign the hub received from the server.
    let docs = hub.profile_dir.join("docs");
    let rules: server::serving::FieldRules = Arc::new(move || {
        let (version, campaign) = client_core::campaign::doc::held(&docs);
        Arc::new(server::serving::field_rules_json(&campaign, version))
    });
    Router::new()
        .route("/api/v1/sync", post(sync_handler))
        .route("/api/v1/devices", post(enrol::forward_enrolment).layer(DefaultBodyLimit::max(enrol::MAX_ENROL_BODY)))
        .route(
            "/api/v1/enrolment-codes/lookup",
            post(enrol::forward_enrolment).layer(DefaultBodyLimit::max(enrol::MAX_ENROL_BODY)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/hub/trust", get(trust_handler))
        .route("/api/v1/blobs/{sha256}", get(blobs::serve_blob))
        .route("/api/v1/photos/missing", post(photos::missing))
        .route("/api/v1/photos/{sha256}/upload", get(photos::upload_state))
        .route("/api/v1/photos/{sha256}", axum::routing::put(photos::receive))
        .route(
            "/api/v1/ca",
            get(|State(hub): State<Arc<Hub>>| async move { ca_response(&hub, server::serving::ca_info_response) }),
        )
        .route(
            "/api/v1/ca.pem",
            get(|State(hub): State<Arc<Hub>>| async move { ca_response(&hub, server::serving::ca_file_response) }),
        )
        .merge(server::serving::field_app(rules))
        .layer(DefaultBodyLimit::max(server::serving::MAX_BULK_BODY))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(server::serving::refuse_declared_oversize))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(hub)
}

async fn sync_handler(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Body) -> Response {
    let is_cbor = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(protocol::CONTENT_TYPE));
    if !is_cbor {
        let message = format!("sync requests are {}", protocol::CONTENT_TYPE);
        return ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message).into_response();
    }
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
    else {
        return ApiError::unauthorized("missing bearer token; enrol the device with the server first").into_response();
    };
    // The token and its team are checked before the body is read (or inflated): nobody else gets the hub to take
    // in up to the sync limit. The exchange checks them again with everything else.
    match server::accounts::tokens::verify_device_token(&hub.server_key, &token) {
        Ok(claims) if claims.team.as_deref() == Some(hub.team()) => {}
        Ok(claims) => {
            let team = claims.team.as_deref().unwrap_or("none");
            let message = format!("this hub serves team {}; this device belongs to team {team}", hub.team());
            return ApiError::forbidden(message).into_response();
        }
        Err(e) => return ApiError::unauthorized(e).into_response(),
    }
    let body = match axum::body::to_bytes(body, server::serving::MAX_BULK_BODY).await {
        Ok(body) => body,
        Err(e) => return server::serving::body_read_error(&e),
    };
    // The exchange reads and writes the lead's files under the profile lock: off the async workers.
    match tokio::task::spawn_blocking(move || exchange(&hub, &token, &body)).await {
        Ok(Ok(reply)) => ([(header::CONTENT_TYPE, protocol::CONTENT_TYPE)], protocol::encode(&reply)).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("the hub's exchange failed: {e}")).into_response(),
    }
}

/// The lead's copy of the Doorstep CA certificate, for phones to install at base.
fn ca_response(hub: &Hub, respond: fn(&str) -> Response) -> Response {
    match &hub.device.ca_certificate {
        Some(pem) => respond(pem),
        None => ApiError::not_found(
            "this hub's profile holds no Doorstep CA certificate; the lead enrols again with `doorstep field login`",
        )
        .into_response(),
    }
}

/// The lead's profile, checked: enrolled as a lead, with signing keys and the team's grids.
pub fn hub_of(profile: &Profile) -> Result<Hub> {
    let device = profile.device()?;
    if !matches!(device.role.as_deref(), Some("lead") | Some("office")) {
        bail!(
            "a hub runs with a team lead's profile; this profile's device belongs to {} ({})",
            device.username,
            device.role.as_deref().unwrap_or("role unknown: enrol again with `doorstep field login`")
        );
    }
    let key = device.key_pair()?.context(
        "this profile was enrolled before devices signed their visits; enrol again with `doorstep field login`",
    )?;
    let server_key = device
        .server_key
        .as_deref()
        .map(PublicKey::from_hex)
        .transpose()?
        .context("this profile lacks the server's key; enrol again with `doorstep field login`")?;
    let actor = device.actor.parse().map_err(|_| anyhow::anyhow!("the profile's actor id is damaged; enrol again"))?;
    if device.team.is_none() {
        bail!("{} is in no team; ask the office to add them to one", device.username);
    }
    let kinds = Arc::new(Registry::of_doorstep());
    Ok(Hub { profile_dir: profile.dir().to_path_buf(), device, actor, key, server_key, kinds })
}

/// Serves the team's sync from the lead's profile until `shutdown` resolves.
pub async fn serve(
    profile: &Profile,
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let hub = hub_of(profile)?;
    if profile.grids()?.grids()?.is_empty() {
        bail!("this profile holds no grids yet; run `doorstep field sync` while the server can be reached");
    }
    let files = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    let serving = if args.plain_http {
        tls::Serving { tls: None, from_profile: false }
    } else {
        tls::serving(profile, files, args.tls)?
    };
    if let Err(e) = refresh_roster(profile).await {
        eprintln!("the team roster could not be refreshed ({e:#}); the hub uses what it knows");
    }
    let listener = server::serving::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if serving.tls.is_some() { "https" } else { "http" };
    println!("Doorstep hub listening on {scheme}://{addr}");
    eprintln!(
        "serving team {}'s grids from this profile; volunteers run `doorstep field sync --via {scheme}://THIS-MACHINE:{}`, \
         or open the field app at {scheme}://THIS-MACHINE:{}/field/{}",
        hub.team(),
        addr.port(),
        addr.port(),
        if serving.tls.is_some() { "" } else { " (phones need HTTPS: see `doorstep hub certificate`)" }
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    if args.upstream_every > 0 {
        let reload = serving.tls.clone().filter(|_| serving.from_profile);
        tokio::spawn(forward_upstream(
            Profile::new(profile.dir().to_path_buf()),
            hub.kinds.clone(),
            args.upstream_every,
            reload,
        ));
    }
    server::serving::serve_app(router(Arc::new(hub)), listener, serving.tls, shutdown).await
}

/// Forwards everything upstream whenever the server answers, every `every` seconds. When the hub serves the
/// profile's certificate (`tls`), it loads it again after each forward, which may have renewed it.
async fn forward_upstream(profile: Profile, kinds: Arc<Registry>, every: u64, tls: Option<RustlsConfig>) {
    let Ok(api) = profile.device().and_then(|device| profile.api(&device, None)) else { return };
    loop {
        tokio::time::sleep(Duration::from_secs(every)).await;
        // A quick probe first, so the profile is not held while the network times out.
        let probe = api.request(reqwest::Method::GET, "/healthz").timeout(Duration::from_secs(3));
        if api.send(probe).await.is_err() {
            continue;
        }
        match sync(&profile, &kinds).await {
            Ok(()) => tracing::info!("forwarded the team's work to the server"),
            Err(e) => tracing::warn!("forwarding to the server failed: {e:#}"),
        }
        if let Some(tls) = &tls {
            match tls::profile_tls_config(&profile) {
                Ok(config) => tls.reload_from_config(config),
                Err(e) => tracing::warn!("the hub certificate could not be loaded again: {e:#}"),
            }
        }
    }
}

/// Syncs the lead's copy, with everything the team synced through the hub, with the server; then refreshes
/// the roster (new devices, revocations).
pub async fn sync(profile: &Profile, kinds: &Registry) -> Result<()> {
    hub_of(profile)?;
    device::sync(profile, None, kinds).await?;
    refresh_roster(profile).await?;
    // The sync itself succeeded; a failed renewal is reported and tried again at the next one.
    match tls::renew_if_due(profile).await {
        Ok(Some(renewed)) => eprintln!(
            "renewed the hub certificate for {}, valid until {}",
            renewed.names.join(", "),
            renewed.not_after.to_rfc3339()
        ),
        Ok(None) => {}
        Err(e) => eprintln!("the hub certificate could not be renewed ({e:#}); it is tried again at the next sync"),
    }
    Ok(())
}

/// Reads the team roster again, and the server's list of the team's withdrawn hubs, which the hub passes on to
/// the devices that sync through it.
async fn refresh_roster(profile: &Profile) -> Result<()> {
    let device = profile.device()?;
    let api = profile.api(&device, None)?;
    let roster: client_core::roster::Roster = api.json(api.request(reqwest::Method::GET, "/api/v1/hub/roster")).await?;
    profile.save_roster(&roster)?;
    // The roster is what the hub needs; the list is passed on as a courtesy, and the next refresh tries again.
    if let Err(e) = trust::refresh(profile, &device, &api).await {
        eprintln!("note: the list of revoked team hubs could not be refreshed ({e:#})");
    }
    Ok(())
}

/// `GET /api/v1/hub/trust` at the hub: the server's signed list of the team's withdrawn hubs, as the hub last
/// received it, for the team's devices.
async fn trust_handler(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let claims = match server::accounts::tokens::verify_device_token(&hub.server_key, token) {
        Ok(claims) => claims,
        Err(e) => return ApiError::unauthorized(e).into_response(),
    };
    if claims.team.as_deref() != Some(hub.team()) {
        return ApiError::forbidden(format!("this hub serves team {}", hub.team())).into_response();
    }
    match Profile::new(hub.profile_dir.clone()).hub_trust() {
        Ok(Some(trust)) => axum::Json(trust).into_response(),
        Ok(None) => ApiError::not_found("this hub holds no list of withdrawn hubs yet").into_response(),
        Err(e) => ApiError::internal(format!("{e:#}")).into_response(),
    }
}
