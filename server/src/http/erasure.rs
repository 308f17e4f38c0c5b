//! Erasure over HTTP (issue 29; docs/privacy.md): `POST /api/admin/erasure` asks for the
//! events of one user or device of an app to be removed everywhere, through the log;
//! `GET /api/admin/erasure/{request_id}` answers this node's progress and each mirror's.
//! Both admin only. The audit records name the request, never the identifiers in clear.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth_change::commit;
use super::authz::ClientIp;
use super::{json_body, ApiError, Code};
use crate::node::AppState;
use crate::raft::Request as LogRequest;
use crate::security::{event, Caller};

/// Longest identifier accepted (the events' own limit is lower).
const MAX_ID: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseBody {
    app_id: String,
    user_id: Option<String>,
    device_id: Option<String>,
}

/// The forms an identifier may be stored in: as sent, and as the app's privacy transform
/// stores it now (an app that started hashing later holds both).
fn forms(given: &Option<String>, transform: impl Fn(&str) -> String) -> Vec<String> {
    let Some(v) = given else {
        return Vec::new();
    };
    let t = transform(v);
    if &t == v {
        vec![t]
    } else {
        vec![v.clone(), t]
    }
}

/// `POST /api/admin/erasure` `{"app_id", "user_id"?, "device_id"?}` → 202
/// `{"request_id"}`.
pub(crate) async fn request(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: EraseBody = json_body(req.into_body(), 8 << 10).await?;
    for (name, v) in [("user_id", &b.user_id), ("device_id", &b.device_id)] {
        if v.as_deref()
            .is_some_and(|v| v.is_empty() || v.len() > MAX_ID)
        {
            return Err(ApiError::of(
                Code::InvalidRequest,
                format!("{name}: 1-{MAX_ID} bytes"),
            ));
        }
    }
    if b.user_id.is_none() && b.device_id.is_none() {
        return Err(ApiError::of(
            Code::InvalidRequest,
            "give user_id, device_id or both: whose events to erase",
        ));
    }
    // An app deleted since may still have stored events.
    let known = state.security.store.app(&b.app_id).is_some()
        || state.engine.rollups().apps().contains(&b.app_id);
    if !known {
        return Err(ApiError::of(Code::NotFound, "app not found"));
    }
    let keyed = state
        .security
        .store
        .app_privacy(&b.app_id)
        .map(|p| p.keyed());
    let user_ids = forms(&b.user_id, |u| {
        keyed.as_ref().map_or(u.into(), |k| k.user_id(u))
    });
    let device_ids = forms(&b.device_id, |d| {
        keyed.as_ref().map_or(d.into(), |k| k.device_id(d))
    });
    let request_id = uuid::Uuid::new_v4().to_string();
    // Which identifiers, by a keyed digest where the app has a key (so the record can be
    // matched to a subject by whoever holds the key, and by nobody reading the log).
    let digest = |what: &str, v: &Option<String>| match (v, &keyed) {
        (None, _) => None,
        (Some(v), Some(k)) => Some(format!("{what} HMAC {}", &k.hash("erasure", v)[..16])),
        (Some(_), None) => Some(format!("{what} given")),
    };
    let which: Vec<String> = [
        digest("user_id", &b.user_id),
        digest("device_id", &b.device_id),
    ]
    .into_iter()
    .flatten()
    .collect();
    state
        .cluster
        .write(LogRequest::Erase {
            request_id: request_id.clone(),
            app_id: b.app_id.clone(),
            user_ids,
            device_ids,
            at_ms: crate::clock::now_ms(),
        })
        .await?;
    let ev = event(
        caller.actor(),
        &ip,
        "privacy.erasure",
        format!("app {}", b.app_id),
        format!("request {request_id}: {}", which.join(", ")),
    );
    commit(&state, auth::AuthOp::AuditOnly, ev).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"request_id": request_id})),
    ))
}

/// `GET /api/admin/erasure/{request_id}`: this node's progress and the mirrors'.
pub(crate) async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let e = state
        .engine
        .erasures()
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| {
            ApiError::of(
                Code::NotFound,
                "erasure not found (on this node: a request just made may not be applied here yet)",
            )
        })?;
    let states = state.mirrors.erasure_states(&state.book.mirrors(), &id);
    let done = e.done() && states.iter().all(|(_, d)| *d);
    let mirrors: Vec<Value> = states
        .iter()
        .map(|(name, d)| json!({"name": name, "state": if *d { "done" } else { "pending" }}))
        .collect();
    Ok(Json(json!({
        "request_id": e.id,
        "app_id": e.app_id,
        "state": if done { "done" } else { "pending" },
        "events_erased": e.events_erased,
        "events": e.events,
        "segments_rewritten": e.segments_rewritten,
        "segments_pending": e.todo.len(),
        "log_index": e.index,
        "requested_at": compat::rfc3339_ms(e.at_ms),
        "sealed": e.sealed,
        "node_id": state.cfg.node_id,
        "mirrors": mirrors,
    })))
}
