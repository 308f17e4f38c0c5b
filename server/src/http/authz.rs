//! The authorization middleware: resolves the caller (bearer token or API key), checks it
//! against the route's policy in [`crate::security::routes`], and audits every denial.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Code};
use crate::node::AppState;
use crate::security::routes::{self, Access};
use crate::security::{event, submit, Caller};

/// The client address the request is attributed to (see `Security::client_ip`).
#[derive(Debug, Clone)]
pub(crate) struct ClientIp(pub String);

pub(crate) async fn authorize(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = state.security.client_ip(peer, req.headers());
    let target = format!("{} {}", req.method(), req.uri().path());
    let spec = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| routes::find(req.method(), m.as_str()));
    let decided = match spec {
        None => Err((
            Caller::Anonymous,
            ApiError::of(Code::Forbidden, "this route has no access policy"),
        )),
        Some(spec) => match resolve(&state, &req, spec.access) {
            // A credential this node does not know yet may have been created through another
            // node a moment ago (login, new app key): catch up with the leader's commit
            // index once (read-index) and look again.
            Err((_, e)) if e.status == StatusCode::UNAUTHORIZED && has_credential(&req) => {
                match state.cluster.read_barrier().await {
                    Ok(_) => resolve(&state, &req, spec.access),
                    Err(_) => Err((Caller::Anonymous, e)),
                }
            }
            other => other,
        },
    };
    let (Ok(caller) | Err((caller, _))) = &decided;
    record_caller(caller, &ip);
    match decided {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            req.extensions_mut().insert(ClientIp(ip));
            next.run(req).await
        }
        Err((caller, err)) => {
            let (_, body) = req.into_parts();
            tokio::join!(
                super::drain_body(body),
                audit_denial(&state, &caller, &ip, &target, &err)
            );
            err.into_response()
        }
    }
}

/// Who is calling, into the request's span (`track` opened it): its log lines carry them.
fn record_caller(caller: &Caller, ip: &str) {
    let span = tracing::Span::current();
    span.record("client_ip", ip);
    match caller {
        Caller::Anonymous => {}
        Caller::User(p) => {
            span.record("user", p.user_id.as_str());
        }
        Caller::Key { key_id, app_id } => {
            span.record("app", app_id.as_str());
            span.record("key", key_id.as_str());
        }
    }
}

fn has_credential(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(axum::http::header::AUTHORIZATION)
        || h.contains_key("x-api-key")
        || query_api_key(req).is_some()
}

/// The `api_key` query parameter (URL-decoded), if any.
fn query_api_key(req: &Request) -> Option<String> {
    let q =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri())
            .ok()?;
    q.0.get("api_key").filter(|k| !k.is_empty()).cloned()
}

fn resolve(state: &AppState, req: &Request, access: Access) -> Result<Caller, (Caller, ApiError)> {
    let sec = &state.security;
    let anon = |e: ApiError| (Caller::Anonymous, e);
    match access {
        Access::Public => Ok(Caller::Anonymous),
        Access::IngestKey => {
            // The query string is looked at only when the header is absent (beacons).
            let query_key = if req.headers().contains_key("x-api-key") {
                None
            } else {
                query_api_key(req)
            };
            match sec
                .authenticate_key(req.headers(), query_key.as_deref())
                .map_err(|e| anon(e.into()))?
            {
                Some((key_id, app_id)) => Ok(Caller::Key { key_id, app_id }),
                None => Err(anon(ApiError::of(
                    Code::Unauthorized,
                    "an API key is required: the X-Api-Key header or ?api_key=",
                ))),
            }
        }
        Access::OptionalUser => Ok(sec
            .authenticate_bearer(req.headers())
            .map_err(|e| anon(e.into()))?
            .map_or(Caller::Anonymous, Caller::User)),
        Access::User(_) | Access::Roles(..) | Access::App(_) => {
            let Some(p) = sec
                .authenticate_bearer(req.headers())
                .map_err(|e| anon(e.into()))?
            else {
                return Err(anon(ApiError::of(
                    Code::Unauthorized,
                    "Authorization: Bearer <access token> required",
                )));
            };
            let caller = Caller::User(p.clone());
            if let Err(m) = routes::check_principal(access, &p) {
                return Err((caller, ApiError::of(Code::Forbidden, m)));
            }
            if let Access::App(_) = access {
                // Same answer whether the app does not exist or is not the caller's, so the
                // answer does not reveal other tenants' apps (TESTPLAN AZ-02).
                let id = req.uri().path().split('/').nth(3).unwrap_or_default();
                if !p.can_access_app(id) || state.security.store.app(id).is_none() {
                    return Err((caller, ApiError::of(Code::NotFound, "app not found")));
                }
            }
            Ok(caller)
        }
    }
}

async fn audit_denial(state: &AppState, caller: &Caller, ip: &str, target: &str, err: &ApiError) {
    if !state.security.audit_denial_allowed(ip) {
        return;
    }
    let mut ev = event(
        caller.actor(),
        ip,
        "request.denied",
        target,
        err.message.clone(),
    );
    ev.outcome = Some(format!("denied: {}", err.status.as_u16()));
    let req = state.security.request(auth::AuthOp::AuditOnly, vec![ev]);
    if let Err(e) = submit(&state.cluster, req).await {
        tracing::warn!(error = %e, "could not audit a denied request");
    }
}
