//! `POST /v1/events`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use engine::EventBatch;

use super::Code;
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

/// What browsers are told about `/v1/events` (CORS): the methods and request headers an SDK
/// uses, and how long a preflight answer may be cached.
const CORS_METHODS: &str = "POST";
const CORS_HEADERS: &str = "content-type, x-api-key, content-encoding";
const CORS_MAX_AGE_SECS: &str = "600";

/// The request's `Origin`, if it sent one (browsers do; server-side SDKs do not).
fn origin(req: &Request) -> Option<String> {
    header_str(req, header::ORIGIN)
}

fn origin_not_allowed(origin: &str) -> ApiError {
    ApiError::of(Code::OriginNotAllowed, format!(
            "pages from {origin} may not post events for this app; an admin adds the origin to the app's allowed_origins"
        ),
    )
}

/// Adds `Access-Control-Allow-Origin: origin` (and `Vary: Origin`) to an answer.
fn allow_origin(mut resp: Response, origin: &str) -> Response {
    if let Ok(v) = header::HeaderValue::from_str(origin) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    resp
}

/// `OPTIONS /v1/events`: the CORS preflight of a browser SDK. It carries no key, so an
/// origin that any app allows is answered; the POST itself is then checked against the
/// key's app. Other origins get 403 without CORS headers (the browser stops there).
pub(crate) async fn preflight(State(state): State<AppState>, req: Request) -> Response {
    let Some(origin) = origin(&req) else {
        return ApiError::of(
            Code::InvalidRequest,
            "a CORS preflight needs an Origin header",
        )
        .into_response();
    };
    if !state.security.store.any_app_allows_origin(&origin) {
        return origin_not_allowed(&origin).into_response();
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static(CORS_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static(CORS_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        header::HeaderValue::from_static(CORS_MAX_AGE_SECS),
    );
    allow_origin(resp, &origin)
}

/// `POST /v1/events`. A request from a browser page (with `Origin`) is refused unless the
/// key's app allows that origin, before anything is read or stored; its answers, errors
/// included, carry `Access-Control-Allow-Origin` so the page can read them.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let Caller::Key { key_id, app_id } = caller else {
        return Err(ApiError::of(
            Code::Unauthorized,
            "an API key is required: the X-Api-Key header or ?api_key=",
        ));
    };
    let settings = state.security.store.app_settings(&app_id);
    let Some(origin) = origin(&req) else {
        return accept(state, key_id, app_id, settings.strict_fields, req).await;
    };
    if !settings.allows_origin(&origin) {
        return Err(origin_not_allowed(&origin));
    }
    let resp = match accept(state, key_id, app_id, settings.strict_fields, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    Ok(allow_origin(resp, &origin))
}

async fn accept(
    state: AppState,
    key_id: String,
    app_id: String,
    strict_fields: bool,
    req: Request,
) -> Result<Response, ApiError> {
    let limits = &state.cfg.ingest;
    let client_ip = req
        .extensions()
        .get::<super::authz::ClientIp>()
        .map(|c| c.0.clone());
    let received_at_ms = chrono::Utc::now().timestamp_millis();
    let privacy = state.security.store.app_privacy(&app_id);
    let retention = privacy.as_ref().map(|p| p.settings).unwrap_or_default();
    let ctx = RequestContext {
        key_app_id: Some(app_id.clone()),
        received_at_ms,
        peer_ip: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: header_str(&req, header::USER_AGENT),
        strict_fields,
        privacy: privacy
            .filter(|p| p.settings.transforms() || p.settings.require_consent)
            .map(|p| std::sync::Arc::new(p.keyed())),
        oldest_ms: Some(retention.retention_floor(received_at_ms)),
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
        tokio::task::spawn_blocking(parse)
            .await
            .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?
    } else {
        parse()
    };
    let (events, n_events, rejected) = parsed?;
    if let Err(wait) = state.security.ingest_per_key.take(&key_id, n_events as f64) {
        let mut e = ApiError::of(
            Code::RateLimited,
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
    m.record_app_events(&app_id, "rejected", rejected.len() as u64);
    if n_events == 0 {
        let body = IngestResponse {
            accepted: 0,
            duplicates: 0,
            rejected,
        };
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    let events = events.map_err(|e| ApiError::of(Code::Internal, e.to_string()))?;
    let outcome = state.proposer.propose(events).await?;
    m.events_accepted
        .fetch_add(outcome.accepted, Ordering::Relaxed);
    m.events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    m.record_app_events(&app_id, "accepted", outcome.accepted);
    if let Some(ip) = &client_ip {
        if let Some(u) = state
            .security
            .key_sources
            .observe(&key_id, ip, crate::clock::now_ms())
        {
            report_unusual_key(&state, &key_id, &app_id, ip, &u);
        }
    }
    m.record_app_events(&app_id, "duplicate", outcome.duplicates);
    let body = IngestResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        rejected,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Records (in the background: ingest does not wait) that a key is used from an unusual
/// number of addresses; the alert rules raise `key_many_sources` from this record.
fn report_unusual_key(
    state: &AppState,
    key_id: &str,
    app_id: &str,
    ip: &str,
    u: &crate::security::Unusual,
) {
    let usual = u.usual.map_or("no earlier window".to_string(), |x| {
        format!("usually {x:.0}")
    });
    let detail = format!(
        "{} distinct source addresses within alerts.window_secs on node {} ({usual}); app {app_id}",
        u.sources,
        state.security.node_id()
    );
    let ev = crate::security::event(
        format!("key:{key_id}"),
        ip,
        "apikey.many_sources",
        key_id,
        detail,
    );
    let req = state.security.request(auth::AuthOp::AuditOnly, vec![ev]);
    let cluster = state.cluster.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::security::submit(&cluster, req).await {
            tracing::warn!(error = %e, "could not record an API key's unusual use");
        }
    });
}
