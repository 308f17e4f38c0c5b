//! Two of the ceilings the appliance is compared with, served by the same axum/tokio stack: a
//! hello-world server, and a parse-only server that decodes and validates bodies exactly as
//! `POST /v1/events` does and then stores nothing. (The third, durable, is in `durable.rs`.)

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use unmogrowp_server::ingest::{parse_events, IngestLimits, RequestContext};

pub(crate) async fn hello(addr: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new().route(
        "/v1/events",
        post(|_b: Bytes| async { (StatusCode::ACCEPTED, "{}") }),
    );
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await?;
    Ok(())
}

pub(crate) async fn parse_only(addr: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new().route(
        "/v1/events",
        post(|headers: HeaderMap, body: Bytes| async move {
            match parse_body(&headers, body).await {
                ParseOutcome::Valid { accepted, rejected } => accepted_answer(accepted, &rejected),
                ParseOutcome::Invalid => error_answer(StatusCode::BAD_REQUEST, "bad"),
            }
        }),
    );
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await?;
    Ok(())
}

/// The appliance's 202 shape (`accepted`, `duplicates`, `rejected`).
pub(crate) fn accepted_answer(
    accepted: usize,
    rejected: &[unmogrowp_server::ingest::Rejected],
) -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": accepted, "duplicates": 0, "rejected": rejected})),
    )
}

/// The appliance's error shape.
pub(crate) fn error_answer(
    status: StatusCode,
    code: &str,
) -> (StatusCode, Json<serde_json::Value>) {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": code}})),
    )
}

pub(crate) enum ParseOutcome {
    Valid {
        accepted: usize,
        rejected: Vec<unmogrowp_server::ingest::Rejected>,
    },
    Invalid,
}

/// Decodes and validates a body exactly as `POST /v1/events` does, keeping nothing.
pub(crate) async fn parse_body(headers: &HeaderMap, body: Bytes) -> ParseOutcome {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ctx = RequestContext {
        received_at_ms: chrono_now_ms(),
        peer_ip: None,
        user_agent: h("user-agent"),
        key_app_id: None,
        strict_fields: false,
        privacy: None,
        oldest_ms: None,
    };
    let limits = IngestLimits::default();
    let (ct, ce) = (h("content-type"), h("content-encoding"));
    let work = move || parse_events(&body, ct.as_deref(), ce.as_deref(), &limits, &ctx);
    // Same placement as the appliance: large bodies are parsed off the reactor.
    let res = if body_len_hint(headers) > 64 * 1024 {
        tokio::task::spawn_blocking(work).await.ok()
    } else {
        Some(work())
    };
    match res {
        Some(Ok((events, rejected))) => ParseOutcome::Valid {
            accepted: events.len(),
            rejected,
        },
        _ => ParseOutcome::Invalid,
    }
}

fn body_len_hint(h: &HeaderMap) -> usize {
    h.get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
