//! The HTTP API: `router(state)` is what the binary serves and what tests call.

mod error;
mod events;
mod ops;
mod query;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;

use crate::node::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ops::index))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/v1/events", post(events::ingest))
        .route("/api/analytics/query", post(query::run))
        .fallback(ops::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Records request counts and latency per matched route.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route: &'static str = match req.extensions().get::<MatchedPath>().map(|m| m.as_str()) {
        Some("/v1/events") => "/v1/events",
        Some("/api/analytics/query") => "/api/analytics/query",
        Some("/health") => "/health",
        Some("/ready") => "/ready",
        Some("/metrics") => "/metrics",
        _ => "other",
    };
    let t0 = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .record_request(route, resp.status().as_u16(), t0.elapsed());
    resp
}

/// Reads a whole body up to `limit` bytes, answering 413 beyond it.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {limit} bytes"),
            )
        } else {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read the request body: {e}"),
            )
        }
    })
}
