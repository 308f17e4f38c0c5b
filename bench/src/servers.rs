//! Two of the ceilings the appliance is compared with (the third, durable, is in `durable.rs`), served by the same axum/tokio stack:
//! a hello-world server, and a parse-only server that decodes and validates bodies exactly as
//! `POST /v1/events` does and then stores nothing.

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
                ParseOutcome::Valid { accepted, rejected } => (
                    StatusCode::ACCEPTED,
                    Json(serde_json::json!({"accepted": accepted, "duplicates": 0, "rejected": rejected})),
                ),
                ParseOutcome::Invalid => (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({"error": {"code": "bad", "message": "bad"}})),
                ),
            }
        }),
    );
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await?;
    Ok(())
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
