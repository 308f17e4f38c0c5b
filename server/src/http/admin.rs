//! `/api/admin/*`: users, grants and the audit log.

use auth::{AuthOp, Role, User, UserPatch};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth_change::{commit, outcome_ok};
use super::authz::ClientIp;
use super::new_user::{build_user, create_user, user_view, NewUser};
use super::Code;
use super::{json_body, ApiError};
use crate::node::AppState;
use crate::security::{event, submit, Caller};

const MAX_ADMIN_BODY: usize = 64 << 10;

pub(crate) async fn list_users(State(state): State<AppState>) -> Json<Value> {
    let users: Vec<Value> = state.security.store.users().iter().map(user_view).collect();
    Json(json!({ "users": users }))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let n: NewUser = json_body(req.into_body(), MAX_ADMIN_BODY).await?;
    let user = build_user(&state, n, true).await?;
    create_user(&state, &caller, &ip, user, "users.create").await
}

fn user_or_404(state: &AppState, id: &str) -> Result<User, ApiError> {
    state
        .security
        .store
        .user(id)
        .ok_or_else(|| ApiError::of(Code::NotFound, "user not found"))
}

pub(crate) async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_view(&user_or_404(&state, &id)?)))
}

/// Fields an admin may change; anything else (ids, hashes, …) is rejected (TESTPLAN AZ-03).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchUser {
    name: Option<String>,
    roles: Option<Vec<Role>>,
    permissions: Option<Vec<String>>,
    app_access: Option<Vec<String>>,
    disabled: Option<bool>,
    password: Option<String>,
}

async fn apply_patch(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    id: &str,
    patch: UserPatch,
    action: &str,
    detail: String,
) -> Result<Response, ApiError> {
    user_or_404(state, id)?;
    let ev = event(caller.actor(), ip, action, format!("user {id}"), detail);
    commit(
        &state,
        AuthOp::UpdateUser {
            id: id.to_string(),
            patch,
        },
        ev,
    )
    .await?;
    Ok(Json(user_view(&user_or_404(state, id)?)).into_response())
}

pub(crate) async fn patch_user(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let p: PatchUser = json_body(req.into_body(), MAX_ADMIN_BODY).await?;
    let bad = |m: String| ApiError::of(Code::InvalidRequest, m);
    if let Some(x) = p
        .permissions
        .iter()
        .flatten()
        .find(|x| auth::Permission::parse(x).is_none())
    {
        return Err(bad(format!("permissions: unknown permission {x:?}")));
    }
    if let Caller::User(me) = &caller {
        if me.user_id == id
            && (p.disabled == Some(true)
                || p.roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin)))
        {
            return Err(bad("an admin cannot disable or demote themselves".into()));
        }
    }
    let password_hash = match p.password {
        Some(pw) => {
            auth::password::check_strength(&pw).map_err(|m| bad(format!("password: {m}")))?;
            Some(state.security.hash_password(pw).await?)
        }
        None => None,
    };
    let detail = format!(
        "changed:{}{}{}{}{}{}",
        if p.name.is_some() { " name" } else { "" },
        p.roles
            .as_ref()
            .map(|r| format!(" roles={r:?}"))
            .unwrap_or_default(),
        p.permissions
            .as_ref()
            .map(|r| format!(" permissions={r:?}"))
            .unwrap_or_default(),
        p.app_access
            .as_ref()
            .map(|r| format!(" app_access={r:?}"))
            .unwrap_or_default(),
        p.disabled
            .map(|d| format!(" disabled={d}"))
            .unwrap_or_default(),
        if password_hash.is_some() {
            " password"
        } else {
            ""
        },
    );
    let patch = UserPatch {
        name: p.name,
        roles: p.roles,
        permissions: p.permissions,
        app_access: p.app_access,
        disabled: p.disabled,
        password_hash,
    };
    apply_patch(&state, &caller, &ip, &id, patch, "users.update", detail).await
}

pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if matches!(&caller, Caller::User(me) if me.user_id == id) {
        return Err(ApiError::of(
            Code::InvalidRequest,
            "an admin cannot delete themselves",
        ));
    }
    user_or_404(&state, &id)?;
    let ev = event(
        caller.actor(),
        &ip,
        "users.delete",
        format!("user {id}"),
        "",
    );
    commit(&state, AuthOp::DeleteUser { id }, ev).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn unlock_user(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    user_or_404(&state, &id)?;
    let ev = event(
        caller.actor(),
        &ip,
        "users.unlock",
        format!("user {id}"),
        "",
    );
    commit(&state, AuthOp::UnlockUser { id: id.clone() }, ev).await?;
    Ok(Json(user_view(&user_or_404(&state, &id)?)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantRole {
    role: Role,
}

pub(crate) async fn grant_role(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let g: GrantRole = json_body(req.into_body(), MAX_ADMIN_BODY).await?;
    let mut roles = user_or_404(&state, &id)?.roles;
    if !roles.contains(&g.role) {
        roles.push(g.role);
    }
    let patch = UserPatch {
        roles: Some(roles),
        ..Default::default()
    };
    apply_patch(
        &state,
        &caller,
        &ip,
        &id,
        patch,
        "roles.grant",
        g.role.as_str().to_string(),
    )
    .await
}

pub(crate) async fn revoke_role(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path((id, role)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let role = Role::ALL
        .into_iter()
        .find(|r| r.as_str() == role)
        .ok_or_else(|| ApiError::of(Code::InvalidRequest, format!("unknown role {role:?}")))?;
    if role == Role::Admin && matches!(&caller, Caller::User(me) if me.user_id == id) {
        return Err(ApiError::of(
            Code::InvalidRequest,
            "an admin cannot demote themselves",
        ));
    }
    let roles: Vec<Role> = user_or_404(&state, &id)?
        .roles
        .into_iter()
        .filter(|r| *r != role)
        .collect();
    let patch = UserPatch {
        roles: Some(roles),
        ..Default::default()
    };
    apply_patch(
        &state,
        &caller,
        &ip,
        &id,
        patch,
        "roles.revoke",
        role.as_str().to_string(),
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantApp {
    app_id: String,
}

pub(crate) async fn grant_app(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let g: GrantApp = json_body(req.into_body(), MAX_ADMIN_BODY).await?;
    if state.security.store.app(&g.app_id).is_none() {
        return Err(ApiError::of(Code::NotFound, "app not found"));
    }
    let mut apps = user_or_404(&state, &id)?.app_access;
    if !apps.contains(&g.app_id) {
        apps.push(g.app_id.clone());
    }
    let patch = UserPatch {
        app_access: Some(apps),
        ..Default::default()
    };
    apply_patch(&state, &caller, &ip, &id, patch, "apps.grant", g.app_id).await
}

pub(crate) async fn revoke_app(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path((id, app_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let apps: Vec<String> = user_or_404(&state, &id)?
        .app_access
        .into_iter()
        .filter(|a| *a != app_id)
        .collect();
    let patch = UserPatch {
        app_access: Some(apps),
        ..Default::default()
    };
    apply_patch(&state, &caller, &ip, &id, patch, "apps.revoke", app_id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
    /// `desc`: newest first, paged with `before` (the answer's `next_before`).
    order: Option<String>,
    before: Option<u64>,
    /// Filters (newest-first pages only): exact actor, action prefix, outcome prefix.
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
}

/// Records one newest-first page may look at while filtering.
const AUDIT_SCAN_LIMIT: usize = 100_000;

pub(crate) async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let desc = match q.order.as_deref() {
        None | Some("asc") => q.before.is_some(),
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::of(
                Code::InvalidRequest,
                format!("order: {o:?} is not asc or desc"),
            ))
        }
    };
    let filtered = [&q.actor, &q.action, &q.outcome]
        .iter()
        .any(|f| f.as_deref().is_some_and(|s| !s.is_empty()));
    if filtered && !desc {
        return Err(ApiError::of(
            Code::InvalidRequest,
            "actor, action and outcome filter newest-first pages: add order=desc",
        ));
    }
    if desc {
        let nonempty = |f: &Option<String>| f.clone().filter(|s| !s.is_empty());
        let (actor, action, outcome) = (
            nonempty(&q.actor),
            nonempty(&q.action),
            nonempty(&q.outcome),
        );
        let (records, next) = state
            .security
            .store
            .audit_page_desc(q.before, limit, AUDIT_SCAN_LIMIT, |r| {
                actor.as_ref().is_none_or(|a| r.actor == *a)
                    && action
                        .as_ref()
                        .is_none_or(|a| r.action.starts_with(a.as_str()))
                    && outcome
                        .as_ref()
                        .is_none_or(|o| r.outcome.starts_with(o.as_str()))
            })
            .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?;
        let (head_seq, head_hash) = state.security.store.audit_head();
        return Ok(Json(json!({"records": records, "next_before": next,
            "head": {"seq": head_seq, "hash": head_hash}})));
    }
    let records = state
        .security
        .store
        .audit_page(q.after, limit)
        .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?;
    let (head_seq, head_hash) = state.security.store.audit_head();
    Ok(Json(
        json!({"records": records, "head": {"seq": head_seq, "hash": head_hash}}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    checkpoint_seq: Option<u64>,
    checkpoint_hash: Option<String>,
}

pub(crate) async fn audit_verify(
    State(state): State<AppState>,
    Query(q): Query<VerifyQuery>,
) -> Result<Json<Value>, ApiError> {
    let cp = q.checkpoint_seq.zip(q.checkpoint_hash);
    let store = state.security.store.clone();
    let report = tokio::task::spawn_blocking(move || store.verify_audit(cp))
        .await
        .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?
        .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?;
    // With the retention base the chain starts from (`audit.retention_days`), if any.
    let mut v = serde_json::to_value(report).unwrap_or_default();
    v["base"] = serde_json::to_value(state.security.store.audit_base()).unwrap_or_default();
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSigningKey {
    /// How long tokens signed with the old key stay valid; default: the access-token lifetime.
    overlap_secs: Option<u64>,
}

/// A fresh 256-bit secret from the OS CSPRNG replaces the signing key on every node at once
/// (it travels in the replicated entry); the old one verifies until the overlap ends, so
/// sessions outliving it must log in again (TESTPLAN AUTH-06).
pub(crate) async fn rotate_signing_key(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let body: RotateSigningKey = json_body(req.into_body(), MAX_ADMIN_BODY).await?;
    let overlap_secs = body
        .overlap_secs
        .unwrap_or(state.security.cfg.access_token_ttl_secs);
    if overlap_secs > state.security.cfg.refresh_token_ttl_secs {
        return Err(ApiError::of(
            Code::InvalidRequest,
            "overlap_secs may not exceed auth.refresh_token_ttl_secs",
        ));
    }
    let secret = crate::node::new_jwt_secret();
    let ev = event(
        caller.actor(),
        &ip,
        "auth.signing_key.rotate",
        "jwt signing key".to_string(),
        format!("overlap {overlap_secs}s"),
    );
    let op = AuthOp::RotateSigningKey {
        jwt_secret: secret,
        overlap_ms: overlap_secs as i64 * 1000,
    };
    let req = state.security.request(op, vec![ev]);
    let at_ms = req.at_ms;
    outcome_ok(submit(&state.cluster, req).await?)?;
    Ok(Json(json!({
        "rotated_at_ms": at_ms,
        "previous_key_valid_until_ms": at_ms + overlap_secs as i64 * 1000,
    }))
    .into_response())
}
