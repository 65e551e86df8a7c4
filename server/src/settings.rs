//! Server-wide settings chosen by the office, with their allowed values.

use crate::auth::{OfficeSession, Role, Session};
use crate::db::{now_ms, Db};
use crate::error::{ApiError, ApiResult};
use crate::{audit, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether household contact names and phones are sent to the devices of the team holding the grid.
pub const SHARE_CONTACTS: &str = "share_contacts";

/// Known settings: name, allowed values, default.
const KNOWN: &[(&str, &[&str], &str)] = &[(SHARE_CONTACTS, &["on", "off"], "off")];

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/settings", get(show)).route("/api/v1/settings/{name}", put(set))
}

pub async fn get_value(db: &Db, name: &str) -> Result<String, ApiError> {
    let default = KNOWN.iter().find(|k| k.0 == name).map(|k| k.2).unwrap_or_default();
    let row: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| r.0).unwrap_or_else(|| default.to_string()))
}

async fn show(State(state): State<AppState>, session: Session) -> ApiResult<Json<BTreeMap<String, String>>> {
    session.require(&[Role::Office])?;
    let mut out = BTreeMap::new();
    for (name, _, _) in KNOWN {
        out.insert(name.to_string(), get_value(&state.db, name).await?);
    }
    Ok(Json(out))
}

#[derive(Deserialize, Serialize)]
pub struct NewValue {
    value: String,
}

async fn set(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(name): Path<String>,
    body: Result<Json<NewValue>, JsonRejection>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let v = crate::api::json_body(body)?;
    let Some((_, allowed, _)) = KNOWN.iter().find(|k| k.0 == name) else {
        let names: Vec<&str> = KNOWN.iter().map(|k| k.0).collect();
        return Err(ApiError::not_found(format!("no setting {name:?}; known settings: {}", names.join(", "))));
    };
    if !allowed.contains(&v.value.as_str()) {
        return Err(ApiError::bad_request(format!("{name} takes one of: {}", allowed.join(", "))));
    }
    sqlx::query(
        "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(&name)
    .bind(&v.value)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    audit::record(&state.db, Some(&session.0.usr), "setting.change", &format!("{name} = {}", v.value)).await;
    show(State(state), session).await
}
