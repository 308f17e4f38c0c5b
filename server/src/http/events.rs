//! `POST /v1/events`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use engine::EventBatch;

use super::{read_body, ApiError};
use crate::ingest::{parse_events, IngestResponse, RequestContext};
use crate::node::AppState;
use crate::security::Caller;

fn header_str(req: &Request, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) async fn ingest(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let Caller::Key { key_id, app_id } = caller else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Api-Key header required",
        ));
    };
    let limits = &state.cfg.ingest;
    let ctx = RequestContext {
        key_app_id: Some(app_id),
        received_at_ms: chrono::Utc::now().timestamp_millis(),
        peer_ip: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: header_str(&req, header::USER_AGENT),
        // The default: unknown fields are kept as `$name` (the per-app `strict_fields`
        // setting is issue 23's next step).
        strict_fields: false,
    };
    let content_type = header_str(&req, header::CONTENT_TYPE);
    let content_encoding = header_str(&req, header::CONTENT_ENCODING);
    let body = read_body(req.into_body(), limits.max_body_bytes).await?;
    let body_len = body.len();
    let cfg = state.cfg.clone();
    // Decoded, validated and encoded for the log in one go: the log carries the encoding.
    let parse = move || {
        parse_events(
            &body,
            content_type.as_deref(),
            content_encoding.as_deref(),
            &cfg.ingest,
            &ctx,
        )
        .map(|(events, rejected)| {
            let n = events.len();
            (EventBatch::encode(&events), n, rejected)
        })
    };
    // Decoding and validation are CPU work; keep them off the IO reactor for large bodies.
    let parsed = if body_len > 64 * 1024 {
        tokio::task::spawn_blocking(parse).await.map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?
    } else {
        parse()
    };
    let (events, n_events, rejected) = parsed?;
    if let Err(wait) = state.security.ingest_per_key.take(&key_id, n_events as f64) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this API key may send {} events per second",
                state.security.cfg.ingest_events_per_sec_per_key
            ),
        );
        e.retry_after_secs = Some(wait);
        return Err(e);
    }
    let m = &state.metrics;
    m.events_rejected
        .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    if n_events == 0 {
        let body = IngestResponse {
            accepted: 0,
            duplicates: 0,
            rejected,
        };
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    let events = events
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let outcome = state.proposer.propose(events).await?;
    m.events_accepted
        .fetch_add(outcome.accepted, Ordering::Relaxed);
    m.events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    let body = IngestResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        rejected,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
