//! The one place where errors of every crate become HTTP statuses and JSON bodies:
//! `{"error":{"code":…,"message":…}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::backup::BackupError;
use crate::cluster::ClusterError;
use crate::ingest::BodyError;
use crate::security::{SecurityError, SecurityErrorKind};

/// Every error code clients see from a handler, with its status: handlers name the code, this
/// table decides the status (pinned by `tests/tests/error_codes.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400 `invalid_request`: a parameter or body field is wrong.
    InvalidRequest,
    /// 400 `bad_body`: the body could not be read.
    BadBody,
    /// 401 `unauthorized`: a credential is missing, malformed, expired or revoked.
    Unauthorized,
    /// 401 `invalid_credentials`: wrong email or password (or locked, or disabled).
    InvalidCredentials,
    /// 401 `refresh_reused`: a superseded refresh token; the session is revoked.
    RefreshReused,
    /// 401 `forbidden`: a route that needs an admin, called without logging in.
    ForbiddenUntilLogin,
    /// 403 `forbidden`.
    Forbidden,
    /// 403 `origin_not_allowed`: a browser origin the app does not allow.
    OriginNotAllowed,
    /// 404 `not_found`.
    NotFound,
    /// 409 `conflict`.
    Conflict,
    /// 413 `body_too_large`.
    BodyTooLarge,
    /// 429 `rate_limited` (with `Retry-After`).
    RateLimited,
    /// 500 `internal`.
    Internal,
    /// 500 `internal_error`: a handler panicked (caught).
    InternalError,
    /// 500 `backup_failed`.
    BackupFailed,
}

impl Code {
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidRequest | Code::BadBody => StatusCode::BAD_REQUEST,
            Code::Unauthorized
            | Code::InvalidCredentials
            | Code::RefreshReused
            | Code::ForbiddenUntilLogin => StatusCode::UNAUTHORIZED,
            Code::Forbidden | Code::OriginNotAllowed => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Conflict => StatusCode::CONFLICT,
            Code::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal | Code::InternalError | Code::BackupFailed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::BadBody => "bad_body",
            Code::Unauthorized => "unauthorized",
            Code::InvalidCredentials => "invalid_credentials",
            Code::RefreshReused => "refresh_reused",
            Code::ForbiddenUntilLogin | Code::Forbidden => "forbidden",
            Code::OriginNotAllowed => "origin_not_allowed",
            Code::NotFound => "not_found",
            Code::Conflict => "conflict",
            Code::BodyTooLarge => "body_too_large",
            Code::RateLimited => "rate_limited",
            Code::Internal => "internal",
            Code::InternalError => "internal_error",
            Code::BackupFailed => "backup_failed",
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// An error a handler decided: its code, and the status the code has.
    pub fn of(code: Code, message: impl Into<String>) -> Self {
        Self::new(code.status(), code.as_str(), message)
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::of(Code::InvalidRequest, message)
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        let (status, code) = match e {
            ClusterError::NoLeader(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_leader"),
            ClusterError::Unknown(_) => (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown"),
            ClusterError::Behind(_) => (StatusCode::SERVICE_UNAVAILABLE, "node_behind"),
            ClusterError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ClusterError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ClusterError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ClusterError::DiskFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
        };
        let mut a = ApiError::new(status, code, e.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::INSUFFICIENT_STORAGE {
            a.retry_after_secs = Some(1);
        }
        a
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Cluster(c) => c.into(),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "backup_failed",
                other.to_string(),
            ),
        }
    }
}

impl From<query::QueryError> for ApiError {
    fn from(e: query::QueryError) -> Self {
        let status = match e.kind() {
            query::ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            query::ErrorKind::ResourcesExhausted => StatusCode::UNPROCESSABLE_ENTITY,
            query::ErrorKind::Busy => StatusCode::TOO_MANY_REQUESTS,
            query::ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            query::ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut a = ApiError::new(status, e.code(), e.to_string());
        if e.kind() == query::ErrorKind::Busy {
            a.retry_after_secs = Some(1);
        }
        a
    }
}

impl From<SecurityError> for ApiError {
    fn from(e: SecurityError) -> Self {
        if let SecurityError::Cluster(c) = e {
            return c.into();
        }
        let status = match e.kind() {
            SecurityErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            SecurityErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            SecurityErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut a = ApiError::new(status, e.code(), e.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            a.retry_after_secs = Some(1);
        }
        a
    }
}
