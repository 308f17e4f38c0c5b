//! `POST /api/analytics/query`: SQL within the caller's scope, audited before the answer, in
//! the format asked for (`"format"` or `Accept`): JSON, or streamed NDJSON, CSV, Arrow, Parquet.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use auth::AuthOp;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use query::format::{BatchEncoder, JsonAnswer, ResultFormat};

use super::authz::ClientIp;
use super::Code;
use super::{json_body, ApiError};
use crate::node::AppState;
use crate::security::{event, submit, AuditTable, Caller};

const MAX_QUERY_BODY: usize = 1 << 20;

pub(crate) async fn run(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let q: query::QueryRequest = json_body(req.into_body(), MAX_QUERY_BODY).await?;
    if q.sql.trim().is_empty() {
        return Err(ApiError::of(Code::InvalidRequest, "sql is empty"));
    }
    let format = match &q.format {
        Some(name) => ResultFormat::from_name(name)?,
        None => accept
            .as_deref()
            .and_then(ResultFormat::from_accept)
            .unwrap_or(ResultFormat::Json),
    };
    let Caller::User(p) = &caller else {
        return Err(ApiError::of(Code::Unauthorized, "log in first"));
    };
    // Read-index: every write acknowledged before this query started is applied here first
    // (or 503 if this node cannot catch up within cluster.read_timeout_ms).
    state.cluster.read_barrier().await?;
    let scope = query::Scope {
        apps: p.app_access.clone().map(|a: BTreeSet<String>| Arc::new(a)),
        audit_log: p.is_admin().then(|| {
            Arc::new(AuditTable(state.security.store.clone()))
                as Arc<dyn query::audit_log::AuditLogSource>
        }),
        admin_tables: if p.is_admin() {
            vec![
                Arc::new(crate::security::AlertTable(state.security.store.clone()))
                    as Arc<dyn query::admin_table::AdminTable>,
            ]
        } else {
            Vec::new()
        },
        ..query::Scope::default()
    };
    let opts = query::QueryOptions {
        user: p.user_id.clone(),
        timeout: q.timeout_ms.map(Duration::from_millis),
        now: None,
    };
    let t0 = Instant::now();
    let started = state.query.start(&q.sql, scope, opts).await;
    // JSON is collected (within the row and byte caps) before anything is sent; the other
    // formats are sent as they are computed, once the first batch (or the end) is there.
    let answer = match started {
        Err(e) => Err(e),
        Ok(stream) if format == ResultFormat::Json => {
            collect_json(&state, stream).await.map(Answer::Json)
        }
        Ok(mut stream) => match stream.next().await {
            Some(Err(e)) => Err(e),
            first => Ok(Answer::Stream {
                first: first.and_then(Result::ok),
                stream,
            }),
        },
    };
    let elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    // The query is recorded durably before its answer is sent.
    let mut ev = event(
        caller.actor(),
        &ip,
        "query.execute",
        "events",
        q.sql.clone(),
    );
    ev.outcome = Some(match &answer {
        Ok(Answer::Json(j)) => format!("success: {} rows in {elapsed_ms:.1} ms", j.rows()),
        Ok(Answer::Stream { .. }) => format!(
            "success: streaming {} after {elapsed_ms:.1} ms",
            format.name()
        ),
        Err(e) => format!("failure: {}: {e}", e.code()),
    });
    submit(
        &state.cluster,
        state.security.request(AuthOp::AuditOnly, vec![ev]),
    )
    .await?;
    let (status, body) = match answer? {
        Answer::Json(j) => (StatusCode::OK, Body::from(j.finish(elapsed_ms))),
        Answer::Stream { first, stream } => {
            let encoder = BatchEncoder::new(format, stream.schema.clone())?;
            (StatusCode::OK, streamed_body(encoder, first, stream))
        }
    };
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, format.content_type())
        .body(body)
        .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?)
}

enum Answer {
    Json(JsonAnswer),
    Stream {
        first: Option<RecordBatch>,
        stream: query::QueryStream,
    },
}

async fn collect_json(
    state: &AppState,
    mut stream: query::QueryStream,
) -> query::Result<JsonAnswer> {
    let cfg = state.query.config();
    let mut answer = JsonAnswer::new(&stream.schema, cfg.max_result_rows, cfg.max_result_bytes)?;
    while let Some(batch) = stream.next().await {
        // An error (e.g. over the cap) drops the stream, which stops the query.
        answer.push(&batch?)?;
    }
    Ok(answer)
}

/// The body of a streamed answer: encoded batch by batch as the query produces them. An
/// error part way ends the response without its terminating chunk, so clients see a broken
/// transfer rather than a short answer that looks complete. A client that goes away drops
/// the body and with it the query.
fn streamed_body(
    encoder: BatchEncoder,
    first: Option<RecordBatch>,
    stream: query::QueryStream,
) -> Body {
    struct Pump {
        encoder: BatchEncoder,
        first: Option<RecordBatch>,
        stream: query::QueryStream,
        out: Vec<u8>,
        finished: bool,
    }
    let mut encoder = encoder;
    let out = encoder.pending();
    let pump = Pump {
        encoder,
        first,
        stream,
        out,
        finished: false,
    };
    let chunks = futures::stream::unfold(Some(pump), |p| async move {
        let mut p = p?;
        loop {
            if !p.out.is_empty() {
                let chunk = Bytes::from(std::mem::take(&mut p.out));
                return Some((Ok::<_, std::io::Error>(chunk), Some(p)));
            }
            if p.finished {
                return None;
            }
            let next = match p.first.take() {
                Some(b) => Some(Ok(b)),
                None => p.stream.next().await,
            };
            let encoded = match next {
                Some(Ok(b)) => p.encoder.encode(&b),
                None => {
                    p.finished = true;
                    p.encoder.finish()
                }
                Some(Err(e)) => Err(e),
            };
            match encoded {
                Ok(bytes) => p.out = bytes,
                Err(e) => {
                    tracing::warn!(error = %e, "streamed query answer aborted");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            }
        }
    });
    Body::from_stream(chunks)
}
