//! `/api/v1/campaign`: the campaign in force (anyone signed in to the office's view reads it), and the office
//! checking (`dry_run`) or applying a new definition file.

use crate::accounts::{audit, tokens::Role};
use crate::campaign::{self, Plan};
use crate::http::auth::{OfficeSession, Session};
use crate::http::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use client_core::campaign::Campaign;
use serde::{Deserialize, Serialize};

/// Largest definition file accepted, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/campaign", get(show).post(apply)).layer(DefaultBodyLimit::max(MAX_DEFINITION_BYTES))
}

/// The campaign in force, as `doorstep campaign show` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignInForce {
    /// 0: the default campaign, never changed.
    pub version: i64,
    /// When it was applied (RFC 3339), and by whom; none for the default campaign.
    pub applied_at: Option<String>,
    pub applied_by: Option<String>,
    /// The definition file as applied.
    pub definition: String,
    pub campaign: Campaign,
}

async fn show(State(state): State<AppState>, session: Session) -> ApiResult<Json<CampaignInForce>> {
    session.require(&[Role::Office, Role::Lead, Role::Viewer])?;
    let c = state.campaigns.current();
    let applied = (c.version > 0).then(|| client_core::grid::doc::millis_to_time(c.applied_at).to_rfc3339());
    Ok(Json(CampaignInForce {
        version: c.version,
        applied_at: applied,
        applied_by: (c.version > 0).then(|| c.applied_by.clone()),
        definition: c.definition.clone(),
        campaign: (*c.campaign).clone(),
    }))
}

#[derive(Deserialize)]
struct ApplyQuery {
    #[serde(default)]
    dry_run: bool,
}

/// The body is the definition file (TOML, UTF-8). With `dry_run`, says what applying it would change and
/// changes nothing.
async fn apply(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    query: Result<Query<ApplyQuery>, QueryRejection>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Plan>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the definition file is not UTF-8 text; save it as UTF-8"))?;
    let username = session.0.usr.as_str();
    if q.dry_run {
        return Ok(Json(campaign::plan(&state, body).await?.0));
    }
    let plan = campaign::apply(&state, body, username).await?;
    let detail = format!(
        "version {}: indicators added {:?}, removed {:?}, changed {:?}; {} places recounted",
        plan.to_version, plan.indicators_added, plan.indicators_removed, plan.indicators_changed, plan.places_changing
    );
    audit::record(&state.db, Some(username), "campaign.apply", &detail).await;
    Ok(Json(plan))
}
