//! The one error type of the HTTP API and its stable JSON body: `{"error": {"code": "...", "message": "..."}}`.

use crate::refusal::Refusal;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which the client may try again (`Retry-After`), for refusals that pass with time.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// An unexpected failure: the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error; see the server log")
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// The one place where a storage error becomes a status: the codes and messages are part of the API.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(message) => ApiError::not_found(message),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::PlaceTaken { place, grid } => ApiError::unprocessable(
                "place_id_taken",
                format!(
                    "grid {grid}: place {place} already belongs to another grid; a place id is unique in the whole \
                     territory, and a place found in the field gets a new random one when it is recorded"
                ),
            ),
            StoreError::Full(e) => {
                tracing::error!(error = %e, "the database cannot write: disk full or failing");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    "the server cannot write to its disk (full or failing); nothing of this request was stored; try again later",
                )
            }
            StoreError::Database(e) => ApiError::internal(format!("database: {e}")),
            StoreError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

/// The one place where a domain refusal becomes a status: the codes and messages are part of the API.
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Invalid(message) => ApiError::bad_request(message),
            Refusal::Unauthorized(message) => ApiError::unauthorized(message),
            Refusal::Forbidden(message) => ApiError::forbidden(message),
            Refusal::NotFound(message) => ApiError::not_found(message),
            Refusal::Conflict(message) => ApiError::conflict(message),
            Refusal::Unacceptable { code, message } => ApiError::unprocessable(code, message),
            Refusal::TooLarge { code, message } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code, message),
            Refusal::TooManyAttempts { message, retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
                    .with_retry_after(retry_after_secs)
            }
            Refusal::Busy { message, retry_after_secs } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message).with_retry_after(retry_after_secs)
            }
            Refusal::Internal(detail) => ApiError::internal(detail),
            Refusal::Store(e) => e.into(),
        }
    }
}

impl From<client_core::grid::doc::DocError> for ApiError {
    fn from(e: client_core::grid::doc::DocError) -> Self {
        ApiError::internal(format!("document: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, String) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// Each storage error keeps the status, code and message the API answered before storage had its own type.
    #[tokio::test]
    async fn storage_errors_answer_as_before() {
        let conflict = StoreError::conflict("a grid changed concurrently while this request wrote it; retry");
        assert_eq!(
            body_of(conflict.into()).await,
            (
                StatusCode::CONFLICT,
                r#"{"error":{"code":"conflict","message":"a grid changed concurrently while this request wrote it; retry"}}"#
                    .to_string()
            )
        );
        let (status, body) = body_of(StoreError::place_taken("p-1", "G1").into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            r#"{"error":{"code":"place_id_taken","message":"grid G1: place p-1 already belongs to another grid; a place id is unique in the whole territory, and a place found in the field gets a new random one when it is recorded"}}"#
        );
        let (status, body) = body_of(StoreError::NotFound("no grid G9".into()).into()).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::NOT_FOUND, r#"{"error":{"code":"not_found","message":"no grid G9"}}"#)
        );
        let (status, body) = body_of(StoreError::internal("stored visit id is not a UUID").into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("UUID"), "the detail stays in the log: {body}");
    }

    /// Each domain refusal answers with the status, code, message and headers the API gave before the domain
    /// had its own type.
    #[tokio::test]
    async fn refusals_answer_as_before() {
        let cases = [
            (
                Refusal::invalid("an empty date range"),
                400,
                r#"{"error":{"code":"bad_request","message":"an empty date range"}}"#,
            ),
            (
                Refusal::unauthorized("invalid token: x"),
                401,
                r#"{"error":{"code":"unauthorized","message":"invalid token: x"}}"#,
            ),
            (
                Refusal::forbidden("grid G1 is not assigned to your team"),
                403,
                r#"{"error":{"code":"forbidden","message":"grid G1 is not assigned to your team"}}"#,
            ),
            (
                Refusal::TooLarge { code: "sync_too_large", message: "too many changes".into() },
                413,
                r#"{"error":{"code":"sync_too_large","message":"too many changes"}}"#,
            ),
            (Refusal::not_found("no task t1"), 404, r#"{"error":{"code":"not_found","message":"no task t1"}}"#),
            (
                Refusal::conflict("task t1 is already closed"),
                409,
                r#"{"error":{"code":"conflict","message":"task t1 is already closed"}}"#,
            ),
            (
                Refusal::unacceptable("invalid_merge", "merge only within a grid"),
                422,
                r#"{"error":{"code":"invalid_merge","message":"merge only within a grid"}}"#,
            ),
        ];
        for (refusal, status, body) in cases {
            assert_eq!(body_of(refusal.into()).await, (StatusCode::from_u16(status).unwrap(), body.to_string()));
        }
        let too_many = Refusal::TooManyAttempts { message: "try again in 7 seconds".into(), retry_after_secs: 7 };
        let response = ApiError::from(too_many).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "7");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], br#"{"error":{"code":"too_many_attempts","message":"try again in 7 seconds"}}"#);
        let busy = Refusal::Busy { message: "come back later".into(), retry_after_secs: 60 };
        let response = ApiError::from(busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "60");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], br#"{"error":{"code":"busy","message":"come back later"}}"#);
        let (status, body) = body_of(Refusal::internal("task t1 has no document").into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("t1"), "the detail stays in the log: {body}");
        let taken = Refusal::from(StoreError::place_taken("p-1", "G1"));
        assert_eq!(body_of(taken.into()).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
