//! The team roster a hub keeps: the team's devices with their actors and public keys, and which are revoked, so
//! that the hub checks team-mates' tokens and signed changes while the server is out of reach.

use crate::accounts::people;
use crate::accounts::tokens::Role;
use crate::http::auth::DeviceAuth;
use crate::http::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use client_core::roster::{Roster, RosterDevice};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/hub/roster", get(roster))
}

/// The roster of the calling device's team, for a lead's (or office's) device acting as a hub.
async fn roster(State(state): State<AppState>, device: DeviceAuth) -> ApiResult<Json<Roster>> {
    if !matches!(device.claims.role, Role::Lead | Role::Office) {
        return Err(ApiError::forbidden("only a team lead's device serves as a hub"));
    }
    let team = people::team_of(&state.db, &device.claims.sub).await?;
    let team = team.ok_or_else(|| ApiError::forbidden("you are not in a team; ask the office"))?;
    // Taken before the query: a device whose enrolment time is earlier committed before the query began, so
    // the roster lists it unless it left the team.
    let at_ms = chrono::Utc::now().timestamp_millis();
    let rows = people::team_devices(&state.db, &team).await?;
    Ok(Json(Roster {
        team,
        server_key: state.keys.server_key().public().to_hex(),
        devices: rows
            .into_iter()
            .map(|(device_id, username, actor, public_key, revoked, disabled)| RosterDevice {
                device_id,
                username,
                actor,
                public_key,
                revoked: revoked.is_some() || disabled.is_some(),
            })
            .collect(),
        at_ms: Some(at_ms),
    }))
}
