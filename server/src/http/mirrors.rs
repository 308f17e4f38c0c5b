//! `/api/admin/mirrors…`: where each mirror stands, and pause / resume / replay. Admin only;
//! every change is audited with its outcome. Changes go through the log, so they hold on
//! every node and survive a failover.

use axum::extract::{Path, Request, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::authz::ClientIp;
use super::{json_body, ApiError, Code};
use crate::mirror::{Configured, MirrorStatus};
use crate::node::AppState;
use crate::raft::mirror_book::{MirrorOp, MirrorOutcome};
use crate::raft::{Request as LogRequest, Response};
use crate::security::{event, submit, Caller};

const MAX_BODY: usize = 4 << 10;

fn statuses(state: &AppState) -> Vec<MirrorStatus> {
    state.mirrors.status(
        &state.book.mirrors(),
        state.engine.stored_rows(),
        crate::clock::now_ms(),
    )
}

/// `GET /api/admin/mirrors`.
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<MirrorStatus>> {
    Json(statuses(&state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Replay {
    /// RFC 3339, or milliseconds since the epoch: events received from then on.
    from_time: Option<Value>,
    from_log_index: Option<u64>,
}

fn parse_time(v: &Value) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::of(
            Code::InvalidRequest,
            "from_time: an RFC 3339 time (2026-01-31T12:00:00Z) or milliseconds since the epoch",
        )
    };
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Commits `op` (through the leader) and records it in the audit log with its outcome.
async fn audited(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    action: &str,
    name: &str,
    detail: String,
    op: MirrorOp,
) -> Result<Json<Value>, ApiError> {
    let res = state.cluster.write(LogRequest::Mirror(op)).await;
    let mut ev = event(caller.actor(), ip, action, format!("mirror {name}"), detail);
    ev.outcome = Some(match &res {
        Ok(Response::Mirror(MirrorOutcome::Applied)) => "success".into(),
        Ok(Response::Mirror(o)) => format!("failure: {o:?}"),
        Ok(_) => "failure: unexpected answer".into(),
        Err(e) => format!("failure: {e}"),
    });
    submit(
        &state.cluster,
        state.security.request(auth::AuthOp::AuditOnly, vec![ev]),
    )
    .await?;
    match res? {
        Response::Mirror(MirrorOutcome::Applied) => {}
        Response::Mirror(MirrorOutcome::NotFound) => {
            return Err(ApiError::of(
                Code::Conflict,
                format!(
                    "mirror {name} has not started yet (no position recorded); try again shortly"
                ),
            ))
        }
        _ => {
            return Err(ApiError::of(
                Code::Conflict,
                format!("mirror {name} did not change"),
            ))
        }
    }
    let now = statuses(state).into_iter().find(|s| s.name == name);
    Ok(Json(json!(now)))
}

fn configured(state: &AppState, name: &str) -> Result<(), ApiError> {
    match state.mirrors.find(name) {
        Some(Configured::Valid(_)) => Ok(()),
        Some(Configured::Invalid(e)) => Err(ApiError::of(
            Code::Conflict,
            format!("mirror {name} cannot run: {}", e.message),
        )),
        None => Err(ApiError::of(
            Code::NotFound,
            format!("no mirror named {name:?} is configured on this node"),
        )),
    }
}

/// `POST /api/admin/mirrors/{name}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &ip, name, true).await
}

/// `POST /api/admin/mirrors/{name}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &ip, name, false).await
}

async fn set_paused(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    name: String,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    configured(state, &name)?;
    let (action, op) = if paused {
        ("mirror.pause", MirrorOp::Pause { name: name.clone() })
    } else {
        ("mirror.resume", MirrorOp::Resume { name: name.clone() })
    };
    audited(state, caller, ip, action, &name, String::new(), op).await
}

/// `POST /api/admin/mirrors/{name}/replay {"from_time"} | {"from_log_index"}`: re-send every
/// stored event from there on (the sink keeps each once).
pub(crate) async fn replay(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    configured(&state, &name)?;
    let body: Replay = json_body(req.into_body(), MAX_BODY).await?;
    let Some(p) = state.book.mirror(&name) else {
        return Err(ApiError::of(
            Code::Conflict,
            format!("mirror {name} has not started yet; nothing to replay"),
        ));
    };
    // Reads are served from this node's table; it must have applied what the leader has.
    state.cluster.read_barrier().await?;
    let engine = state.engine.clone();
    let (from, detail) = match (body.from_time, body.from_log_index) {
        (Some(t), None) => {
            let t = parse_time(&t)?;
            let found = tokio::task::spawn_blocking(move || {
                let view = engine.read_view()?;
                engine::first_index_received_since(&view, t)
            })
            .await
            .map_err(|e| ApiError::of(Code::Internal, e.to_string()))??;
            // Nothing received since then: the replay is empty (from just after the cursor).
            let from = found.unwrap_or(p.cursor + 1).min(p.cursor + 1);
            (from, format!("from_time {}", compat::rfc3339_ms(t)))
        }
        (None, Some(i)) => {
            if i == 0 || i > p.cursor + 1 {
                return Err(ApiError::of(
                    Code::InvalidRequest,
                    format!(
                        "from_log_index must be between 1 and {} (the mirror's cursor + 1): a replay re-sends, it never skips",
                        p.cursor + 1
                    ),
                ));
            }
            (i, format!("from_log_index {i}"))
        }
        _ => {
            return Err(ApiError::of(
                Code::InvalidRequest,
                "give exactly one of from_time and from_log_index",
            ))
        }
    };
    let engine = state.engine.clone();
    let seen_before = tokio::task::spawn_blocking(move || {
        let view = engine.read_view()?;
        engine::LogRange {
            from: 0,
            to: from.saturating_sub(1),
        }
        .count(&view)
    })
    .await
    .map_err(|e| ApiError::of(Code::Internal, e.to_string()))??;
    let op = MirrorOp::Replay {
        name: name.clone(),
        from,
        seen_before,
    };
    let detail = format!("{detail}: re-sending from log index {from}");
    audited(&state, &caller, &ip, "mirror.replay", &name, detail, op).await
}
