//! `POST /api/analytics/query`: SQL within the caller's scope, audited before the answer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use auth::AuthOp;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;

use super::authz::ClientIp;
use super::{json_body, ApiError};
use crate::node::AppState;
use crate::security::{event, submit, Caller};

const MAX_QUERY_BODY: usize = 1 << 20;
/// Most audit records the `audit_log` SQL table loads.
const MAX_AUDIT_ROWS: usize = 1_000_000;

#[derive(Serialize)]
pub(crate) struct QueryAnswer {
    #[serde(flatten)]
    result: query::QueryResult,
    elapsed_ms: f64,
}

pub(crate) async fn run(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Json<QueryAnswer>, ApiError> {
    let q: query::QueryRequest = json_body(req.into_body(), MAX_QUERY_BODY).await?;
    if q.sql.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "sql is empty",
        ));
    }
    let Caller::User(p) = &caller else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in first",
        ));
    };
    // Read-index: every write acknowledged before this query started is applied here first
    // (or 503 if this node cannot catch up within cluster.read_timeout_ms).
    state.cluster.read_barrier().await?;
    let mut scope = query::Scope {
        apps: p.app_access.clone().map(|a: BTreeSet<String>| Arc::new(a)),
        extra_tables: Vec::new(),
    };
    if p.is_admin() && q.sql.to_ascii_lowercase().contains("audit_log") {
        scope
            .extra_tables
            .push(("audit_log".into(), audit_batch(&state)?));
    }
    let t0 = Instant::now();
    let result = state.query.query_json_scoped(&q.sql, &scope).await;
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    // The query is recorded durably before its answer is sent.
    let mut ev = event(
        caller.actor(),
        &ip,
        "query.execute",
        "events",
        q.sql.clone(),
    );
    ev.outcome = Some(match &result {
        Ok(r) => format!("success: {} rows in {elapsed_ms:.1} ms", r.row_count),
        Err(e) => format!("failure: {}: {e}", e.code()),
    });
    submit(
        &state.cluster,
        state.security.request(AuthOp::AuditOnly, vec![ev]),
    )
    .await?;
    Ok(Json(QueryAnswer {
        result: result?,
        elapsed_ms,
    }))
}

/// The audit log as an Arrow batch (admins' `audit_log` table).
fn audit_batch(state: &AppState) -> Result<RecordBatch, ApiError> {
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    let recs = state
        .security
        .store
        .audit_page(0, MAX_AUDIT_ROWS)
        .map_err(|e| internal(e.to_string()))?;
    let s = |f: fn(&auth::AuditRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(recs.iter().map(f)))
    };
    RecordBatch::try_from_iter(vec![
        (
            "seq",
            Arc::new(UInt64Array::from_iter_values(recs.iter().map(|r| r.seq))) as ArrayRef,
        ),
        (
            "at_ms",
            Arc::new(Int64Array::from_iter_values(recs.iter().map(|r| r.at_ms))) as ArrayRef,
        ),
        (
            "node",
            Arc::new(UInt64Array::from_iter_values(recs.iter().map(|r| r.node))) as ArrayRef,
        ),
        ("actor", s(|r| &r.actor)),
        ("source_ip", s(|r| &r.source_ip)),
        ("action", s(|r| &r.action)),
        ("target", s(|r| &r.target)),
        ("outcome", s(|r| &r.outcome)),
        ("detail", s(|r| &r.detail)),
        ("hash", s(|r| &r.hash)),
    ])
    .map_err(|e| internal(e.to_string()))
}
