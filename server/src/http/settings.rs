//! `/api/v1/settings`: the office reads and changes the server-wide settings.

use crate::accounts::audit;
use crate::http::auth::{OfficeSession, Session};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::json_body;
use crate::settings::{get_value, set_value, KNOWN};
use crate::{accounts::tokens::Role, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/settings", get(show)).route("/api/v1/settings/{name}", put(set))
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
    let v = json_body(body)?;
    let Some((_, allowed, _)) = KNOWN.iter().find(|k| k.0 == name) else {
        let names: Vec<&str> = KNOWN.iter().map(|k| k.0).collect();
        return Err(ApiError::not_found(format!("no setting {name:?}; known settings: {}", names.join(", "))));
    };
    if !allowed.contains(&v.value.as_str()) {
        return Err(ApiError::bad_request(format!("{name} takes one of: {}", allowed.join(", "))));
    }
    set_value(&state.db, &name, &v.value).await?;
    audit::record(&state.db, Some(&session.0.usr), "setting.change", &format!("{name} = {}", v.value)).await;
    show(State(state), session).await
}
