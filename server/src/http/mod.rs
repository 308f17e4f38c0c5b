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

/// Bytes of an oversize body read and discarded before answering 413, so a client that is
/// still uploading can finish and read the answer instead of hitting a reset connection.
const OVERSIZE_DRAIN_BYTES: usize = 64 << 20;
/// How long that draining may take.
const OVERSIZE_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads a whole body up to `limit` bytes, answering 413 beyond it.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            // Drain (bounded in bytes and time), then refuse.
            let mut drained = buf.len() + data.len();
            let _ = tokio::time::timeout(OVERSIZE_DRAIN_TIME, async {
                while drained < OVERSIZE_DRAIN_BYTES {
                    match body.frame().await {
                        Some(Ok(f)) => drained += f.data_ref().map_or(0, |d| d.len()),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}
