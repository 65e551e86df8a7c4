//! `doorstep hub`: a team lead's laptop or phone, at base without internet, serving the sync API for the team's
//! grids from the lead's own copy (`hub serve`), and forwarding everything upstream when the server can be
//! reached again (`hub sync`, or the serving hub by itself).

use crate::field;
use crate::http::Api;
use crate::hub_enrol;
use crate::hub_exchange::{exchange, Hub};
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use client_core::protocol;
use client_core::sign::PublicKey;
use server::error::ApiError;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address the team's devices reach the hub at, e.g. 0.0.0.0:8090 on the base's network.
    #[arg(long, default_value = "0.0.0.0:8090")]
    listen: String,
    /// Seconds between attempts to forward everything to the server; 0 leaves it to `doorstep hub sync`.
    #[arg(long, default_value_t = 300)]
    upstream_every: u64,
}

/// The hub's routes: the sync API, enrolment passed on to the server, and the field web app's pages, so phones at
/// base load, reload and sync the app from the hub as from the server.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/api/v1/sync", post(sync_handler))
        .route(
            "/api/v1/devices",
            post(hub_enrol::forward_enrolment).layer(DefaultBodyLimit::max(hub_enrol::MAX_ENROL_BODY)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .merge(server::field_app::router())
        .layer(DefaultBodyLimit::max(server::api::MAX_BULK_BODY))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(server::api::refuse_declared_oversize))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(hub)
}

async fn sync_handler(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Bytes) -> Response {
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
    // The exchange reads and writes the lead's files under the profile lock: off the async workers.
    match tokio::task::spawn_blocking(move || exchange(&hub, &token, &body)).await {
        Ok(Ok(reply)) => ([(header::CONTENT_TYPE, protocol::CONTENT_TYPE)], protocol::encode(&reply)).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(format!("the hub's exchange failed: {e}")).into_response(),
    }
}

/// The lead's profile, checked: enrolled as a lead, with signing keys and the team's grids.
fn hub_of(profile: &Profile) -> Result<Hub> {
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
    Ok(Hub { profile_dir: profile.dir().to_path_buf(), device, actor, key, server_key })
}

pub async fn serve(profile: &Profile, args: ServeArgs) -> Result<()> {
    let hub = hub_of(profile)?;
    if profile.grids()?.grids()?.is_empty() {
        bail!("this profile holds no grids yet; run `doorstep field sync` while the server can be reached");
    }
    if let Err(e) = refresh_roster(profile).await {
        eprintln!("the team roster could not be refreshed ({e:#}); the hub uses what it knows");
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Doorstep hub listening on http://{addr}");
    eprintln!(
        "serving team {}'s grids from this profile; volunteers run `doorstep field sync --via http://THIS-MACHINE:{}`, \
         or open the field app at THIS-MACHINE:{}/field/ (see docs/hub.md: the app needs HTTPS)",
        hub.team(),
        addr.port(),
        addr.port()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    if args.upstream_every > 0 {
        tokio::spawn(forward_upstream(Profile::new(profile.dir().to_path_buf()), args.upstream_every));
    }
    axum::serve(listener, router(Arc::new(hub))).with_graceful_shutdown(crate::serve::shutdown_signal()).await?;
    Ok(())
}

/// Forwards everything upstream whenever the server answers, every `every` seconds.
async fn forward_upstream(profile: Profile, every: u64) {
    let Ok(device) = profile.device() else { return };
    let health = format!("{}/healthz", device.server.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("HTTP client");
    loop {
        tokio::time::sleep(Duration::from_secs(every)).await;
        // A quick probe first, so the profile is not held while the network times out.
        if !client.get(&health).send().await.is_ok_and(|r| r.status().is_success()) {
            continue;
        }
        match sync(&profile).await {
            Ok(()) => tracing::info!("forwarded the team's work to the server"),
            Err(e) => tracing::warn!("forwarding to the server failed: {e:#}"),
        }
    }
}

/// Syncs the lead's copy, with everything the team synced through the hub, with the server; then refreshes
/// the roster (new devices, revocations).
pub async fn sync(profile: &Profile) -> Result<()> {
    hub_of(profile)?;
    field::sync(profile, None).await?;
    refresh_roster(profile).await
}

async fn refresh_roster(profile: &Profile) -> Result<()> {
    let device = profile.device()?;
    let api = Api::new(&device.server, Some(device.token.clone()))?;
    let roster: server::roster::Roster = api.json(api.request(reqwest::Method::GET, "/api/v1/hub/roster")).await?;
    profile.save_roster(&roster)?;
    Ok(())
}
