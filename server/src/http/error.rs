//! The one place where errors of every crate become HTTP statuses and JSON bodies:
//! `{"error":{"code":…,"message":…}}`. Every error names its protocol-neutral [`Kind`];
//! [`status`] is the one table from kind to status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::backup::BackupError;
use crate::cluster::ClusterError;
use crate::ingest::BodyError;
use crate::kind::Kind;
use crate::security::SecurityError;

/// The HTTP status of each kind of failure.
pub(crate) fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::InvalidInput => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::Busy => StatusCode::TOO_MANY_REQUESTS,
        Kind::ResourcesExhausted => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

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
    pub fn kind(self) -> Kind {
        match self {
            Code::InvalidRequest | Code::BadBody => Kind::InvalidInput,
            Code::Unauthorized
            | Code::InvalidCredentials
            | Code::RefreshReused
            | Code::ForbiddenUntilLogin => Kind::Unauthenticated,
            Code::Forbidden | Code::OriginNotAllowed => Kind::Forbidden,
            Code::NotFound => Kind::NotFound,
            Code::Conflict => Kind::Conflict,
            Code::BodyTooLarge => Kind::TooLarge,
            Code::RateLimited => Kind::Busy,
            Code::Internal | Code::InternalError | Code::BackupFailed => Kind::Internal,
        }
    }

    pub fn status(self) -> StatusCode {
        status(self.kind())
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
        Self::of(Code::NotFound, format!("no route for {path}"))
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

impl ApiError {
    /// A crate error's answer: its kind's status, its code, its message; `Retry-After: 1`
    /// when trying again shortly may succeed.
    fn from_kind(kind: Kind, code: &'static str, message: String) -> Self {
        let mut a = ApiError::new(status(kind), code, message);
        if matches!(
            kind,
            Kind::Unavailable | Kind::Busy | Kind::InsufficientStorage
        ) {
            a.retry_after_secs = Some(1);
        }
        a
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::from_kind(e.kind(), e.code(), e.to_string())
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        ApiError::from_kind(e.kind(), e.code(), e.to_string())
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        ApiError::from_kind(e.kind(), e.code(), e.to_string())
    }
}

impl From<query::QueryError> for ApiError {
    fn from(e: query::QueryError) -> Self {
        ApiError::from_kind(e.kind().into(), e.code(), e.to_string())
    }
}

impl From<SecurityError> for ApiError {
    fn from(e: SecurityError) -> Self {
        ApiError::from_kind(e.kind(), e.code(), e.to_string())
    }
}

impl From<engine::EngineError> for ApiError {
    fn from(e: engine::EngineError) -> Self {
        ApiError::from_kind(e.kind().into(), "storage_error", e.to_string())
    }
}
