//! Request helpers the resource modules share: reading a JSON body into the one error body, and the scope a
//! session may read (its own team, a viewer's own area).

use crate::accounts::people;
use crate::accounts::tokens::Role;
use crate::http::auth::Session;
use crate::http::bodies;
use crate::http::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::Json;

pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(v)| v).map_err(|e| match e {
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body too large")
        }
        JsonRejection::BytesRejection(e) => bodies::read_error(&e),
        other => ApiError::bad_request(format!("invalid request body: {}", other.body_text())),
    })
}

/// The team of the session's user, from the database (it may have changed since the token was issued).
pub async fn own_team(state: &AppState, session: &Session) -> ApiResult<String> {
    let team = people::team_of(&state.db, &session.0.sub).await?;
    team.ok_or_else(|| ApiError::forbidden("you are not in a team; ask the office"))
}

/// A viewer reads only their own area and what lies below it; others read everything.
pub(crate) async fn scoped_area(
    state: &AppState,
    session: &Session,
    requested: Option<String>,
) -> ApiResult<Option<String>> {
    if session.0.role != Role::Viewer {
        return Ok(requested);
    }
    let own = people::area_of(&state.db, &session.0.sub).await?;
    let own = own.ok_or_else(|| ApiError::forbidden("this viewer account has no area; ask the office to set one"))?;
    let Some(requested) = requested else {
        return Ok(Some(own));
    };
    let mut cursor = Some(requested.clone());
    while let Some(code) = cursor {
        if code == own {
            return Ok(Some(requested));
        }
        cursor = people::parent_area(&state.db, &code).await?;
    }
    Err(ApiError::forbidden(format!("area {requested} is outside your area {own}")))
}
