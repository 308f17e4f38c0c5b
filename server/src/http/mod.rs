//! The HTTP API: `router(state)` is what the binary serves and what tests call.

mod account;
mod admin;
mod alerts;
mod analytics;
mod app_read;
mod apps;
mod auth_change;
mod authz;
mod backup;
mod cluster;
mod dashboard;
mod erasure;
mod error;
mod events;
mod mirrors;
mod new_user;
mod openapi;
mod ops;
mod privacy;
mod query;
pub mod raft_rpc;
mod serve;
mod session_cookie;
mod ui;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use tracing::Instrument;

pub use error::{ApiError, Code};
pub use serve::serve;

use crate::node::AppState;

pub fn router(state: AppState) -> Router {
    let api = public(state.clone());
    if state.cfg.cluster.raft_addr.is_none() {
        // No separate Raft listener: peers reach the internal API here.
        api.merge(raft_rpc::router(state))
    } else {
        api
    }
}

fn public(state: AppState) -> Router {
    Router::new()
        .route("/", get(ops::index))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/api/openapi.json", get(openapi::document))
        .route("/assets/{*file}", get(ui::asset))
        .route(
            "/v1/events",
            post(events::ingest).options(events::preflight),
        )
        .route("/api/auth/login", post(account::login))
        .route("/api/auth/refresh", post(account::refresh))
        .route("/api/auth/logout", post(account::logout))
        .route("/api/auth/register", post(account::register))
        .route("/api/auth/me", get(account::me))
        .route("/api/analytics/query", post(query::run))
        .route("/api/analytics/attribution", get(analytics::attribution))
        .route("/api/analytics/fraud", get(analytics::fraud))
        .route("/api/dashboard/stats", get(dashboard::stats))
        .route(
            "/api/dashboard/charts/events-over-time",
            get(dashboard::events_over_time),
        )
        .route(
            "/api/dashboard/charts/user-retention",
            get(dashboard::user_retention),
        )
        .route("/api/dashboard/charts/funnel", get(dashboard::funnel))
        .route(
            "/api/dashboard/charts/top-campaigns",
            get(dashboard::top_campaigns),
        )
        .route("/api/dashboard/charts/platforms", get(dashboard::platforms))
        .route("/api/apps", get(apps::list).post(apps::create))
        .route(
            "/api/apps/{id}",
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route(
            "/api/apps/{id}/keys",
            get(apps::list_keys).post(apps::create_key),
        )
        .route("/api/apps/{id}/keys/rotate", post(apps::rotate_key))
        .route("/api/apps/{id}/keys/{key_id}", delete(apps::revoke_key))
        .route(
            "/api/admin/users",
            get(admin::list_users).post(admin::create),
        )
        .route(
            "/api/admin/users/{id}",
            get(admin::get_user)
                .patch(admin::patch_user)
                .delete(admin::delete_user),
        )
        .route("/api/admin/users/{id}/unlock", post(admin::unlock_user))
        .route("/api/admin/users/{id}/roles", post(admin::grant_role))
        .route(
            "/api/admin/users/{id}/roles/{role}",
            delete(admin::revoke_role),
        )
        .route("/api/admin/users/{id}/apps", post(admin::grant_app))
        .route(
            "/api/admin/users/{id}/apps/{app_id}",
            delete(admin::revoke_app),
        )
        .route(
            "/api/admin/auth/signing-key/rotate",
            post(admin::rotate_signing_key),
        )
        .route("/api/admin/cluster", get(cluster::show))
        .route("/api/admin/cluster/nodes", post(cluster::add))
        .route(
            "/api/admin/cluster/nodes/{id}/promote",
            post(cluster::promote),
        )
        .route("/api/admin/cluster/nodes/{id}", delete(cluster::remove))
        .route("/api/admin/backup", post(backup::create))
        .route("/api/admin/audit", get(admin::audit))
        .route("/api/admin/alerts", get(alerts::list))
        .route("/api/admin/mirrors", get(mirrors::list))
        .route("/api/admin/mirrors/{name}/pause", post(mirrors::pause))
        .route("/api/admin/mirrors/{name}/resume", post(mirrors::resume))
        .route("/api/admin/mirrors/{name}/replay", post(mirrors::replay))
        .route("/api/admin/audit/verify", get(admin::audit_verify))
        .route("/api/admin/apps/{id}/reveal", post(privacy::reveal))
        .route("/api/admin/erasure", post(erasure::request))
        .route("/api/admin/erasure/{id}", get(erasure::status))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            authz::authorize,
        ))
        .fallback(ops::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_answer,
        ))
        .with_state(state)
}

/// A handler that panicked (a defect) answers 500 in the API's error shape; the connection
/// and the node keep serving.
fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    tracing::error!(panic = %message, "a request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::of(
        Code::InternalError,
        format!("internal error ({message}); the node keeps serving"),
    ))
}

/// Gives the request its id (the client's `x-request-id` when it is a sensible one, else a
/// new one), runs it in a `request` span carrying that id (so do its audit records, through
/// [`crate::security::REQUEST_ID`]), answers the id in `x-request-id`, records count and
/// latency per matched route, and logs the finished request as `log.requests` says.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id(req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route: &'static str = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| {
            crate::security::routes::ROUTES
                .iter()
                .find(|r| r.path == m.as_str())
        })
        .map_or("other", |r| r.path);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route,
        client_ip = tracing::field::Empty,
        user = tracing::field::Empty,
        app = tracing::field::Empty,
        key = tracing::field::Empty,
    );
    let t0 = Instant::now();
    let mut resp = crate::security::REQUEST_ID
        .scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let took = t0.elapsed();
    let status = resp.status().as_u16();
    state.metrics.record_request(route, status, took);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let latency_ms = took.as_millis() as u64;
    // Probes (a load balancer polling /ready through a restart) are not errors to log.
    let probe = matches!(route, "/health" | "/ready" | "/metrics");
    if state.cfg.log.logs_request(status, latency_ms)
        && (!probe || state.cfg.log.requests == crate::logging::RequestLog::All)
    {
        let _in = span.enter();
        if status >= 500 {
            tracing::warn!(target: "unmogrowp::request", status, latency_ms, path = %path, "request failed");
        } else {
            tracing::info!(target: "unmogrowp::request", status, latency_ms, path = %path, "request");
        }
    }
    resp
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The client's `x-request-id` if it is 1–128 characters of `[A-Za-z0-9._:-]` (a trace id, a
/// UUID), else a new UUID: ids a client chose are kept so its logs and ours line up, and
/// nothing else reaches the log or the audit chain.
fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            (1..=128).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// Bytes of an oversize body read and discarded before answering 413, so a client that is
/// still uploading can finish and read the answer instead of hitting a reset connection.
const OVERSIZE_DRAIN_BYTES: usize = 64 << 20;
/// How long that draining may take.
const OVERSIZE_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards a body (bounded in bytes and time) so a client still uploading can
/// read the error that follows instead of hitting a reset connection.
pub(crate) async fn drain_body(body: axum::body::Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut drained = 0usize;
    let _ = tokio::time::timeout(OVERSIZE_DRAIN_TIME, async {
        while drained < OVERSIZE_DRAIN_BYTES {
            match body.frame().await {
                Some(Ok(f)) => drained += f.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    })
    .await;
}

/// Reads a JSON body of at most `limit` bytes into `T` (400 with the reason otherwise).
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(body, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::of(Code::InvalidRequest, format!("invalid JSON body: {e}")))
}

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
            ApiError::of(
                Code::BadBody,
                format!("could not read the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            drain_body(body).await;
            return Err(ApiError::of(
                Code::BodyTooLarge,
                format!("request body is larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}
