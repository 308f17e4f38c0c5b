//! `/`, `/health`, `/ready`, `/metrics` and the fallback (dashboard routes, else the JSON 404).

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::ApiError;
use crate::node::AppState;

/// `GET /`: what this server is and where its endpoints are.
/// `GET /`: the dashboard for browsers, the API's index for everything else.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    if super::ui::wants_html(&headers) {
        return super::ui::index(&headers);
    }
    Json(json!({
        "name": "unmogrowp",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "ingest": "POST /v1/events",
            "query": "POST /api/analytics/query",
            "login": "POST /api/auth/login",
            "apps": "GET|POST /api/apps",
            "openapi": "GET /api/openapi.json",
            "health": "GET /health",
            "ready": "GET /ready",
            "metrics": "GET /metrics",
            "dashboard": "GET / (Accept: text/html)"
        }
    }))
    .into_response()
}

pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (ok, detail) = state.readiness();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ok { "ready" } else { "not_ready" }, "detail": detail})),
    )
}

/// The router's fallback: dashboard routes and files for browsers, else 404 in the API's shape.
pub(crate) async fn not_found(
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    super::ui::fallback(&method, uri.path(), &headers)
        .unwrap_or_else(|| ApiError::not_found(uri.path()).into_response())
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::node::metrics::render(&state),
    )
}
