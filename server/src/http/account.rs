//! `/api/auth/*`: login, refresh, logout, register, me.

use std::sync::atomic::Ordering;

use auth::{AuthOp, AuthOutcome, Session};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::authz::ClientIp;
use super::new_user::{build_user, NewUser};
use super::Code;
use super::{json_body, session_cookie, ApiError};
use crate::clock::now_ms;
use crate::node::AppState;
use crate::security::routes::Access;
use crate::security::{event, submit, Caller, TokenPair};

const MAX_AUTH_BODY: usize = 64 << 10;

fn bad_credentials() -> ApiError {
    ApiError::of(Code::InvalidCredentials, "invalid email or password")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let body: Login = json_body(req.into_body(), MAX_AUTH_BODY).await?;
    let sec = &state.security;
    let email = body.email.trim().to_lowercase();
    if let Err(wait) = sec.login_per_ip.take(&ip, 1.0) {
        if sec.login_rate_limited.fetch_add(1, Ordering::Relaxed) % 100 == 0 {
            // The alert of TESTPLAN RL-02 (also `unmogrowp_login_rate_limited_total`).
            tracing::warn!(%ip, "login attempts rate-limited: possible password spray");
        }
        if sec.audit_denial_allowed(&ip) {
            let mut ev = event(
                "anonymous".into(),
                &ip,
                "auth.login",
                &email,
                "too many login attempts from this address",
            );
            ev.outcome = Some("denied: rate limited".into());
            let _ = submit(&state.cluster, sec.request(AuthOp::AuditOnly, vec![ev])).await;
        }
        let mut e = ApiError::of(Code::RateLimited, "too many login attempts; retry later");
        e.retry_after_secs = Some(wait);
        return Err(e);
    }
    let user = sec.store.user_by_email(&email);
    // One hash per attempt whatever the account state, so timing reveals nothing.
    let password_ok = sec.verify_password(user.as_ref(), body.password).await?;
    let now = now_ms();
    let Some(user) = user else {
        let ev = event(
            "anonymous".into(),
            &ip,
            "auth.login",
            &email,
            "unknown account",
        );
        submit(
            &state.cluster,
            sec.request(AuthOp::LoginFailed { email }, vec![ev]),
        )
        .await?;
        sec.login_failures.fetch_add(1, Ordering::Relaxed);
        return Err(bad_credentials());
    };
    let actor = user.id.clone();
    if user.lockout.locked_until_ms > now {
        let mut ev = event(actor, &ip, "auth.login", &email, "account locked");
        ev.outcome = Some(format!(
            "denied: locked until {}",
            user.lockout.locked_until_ms
        ));
        submit(&state.cluster, sec.request(AuthOp::AuditOnly, vec![ev])).await?;
        sec.login_locked.fetch_add(1, Ordering::Relaxed);
        return Err(bad_credentials());
    }
    if !password_ok {
        let ev = event(actor, &ip, "auth.login", &email, "wrong password");
        let outcome = submit(
            &state.cluster,
            sec.request(AuthOp::LoginFailed { email }, vec![ev]),
        )
        .await?;
        sec.login_failures.fetch_add(1, Ordering::Relaxed);
        if let AuthOutcome::Locked { until_ms } = outcome {
            sec.lockouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(user = %user.id, until_ms, "account locked after repeated failed logins");
        }
        return Err(bad_credentials());
    }
    if user.disabled {
        let mut ev = event(actor, &ip, "auth.login", &email, "user disabled");
        ev.outcome = Some("denied: disabled".into());
        submit(&state.cluster, sec.request(AuthOp::AuditOnly, vec![ev])).await?;
        return Err(bad_credentials());
    }
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        current_jti: uuid::Uuid::new_v4().to_string(),
        created_at_ms: now,
        expires_at_ms: now + (sec.cfg.refresh_token_ttl_secs * 1000) as i64,
        revoked: false,
    };
    let ev = event(
        actor,
        &ip,
        "auth.login",
        &email,
        format!("session {}", session.id),
    );
    let op = AuthOp::LoginSucceeded {
        user_id: user.id.clone(),
        session: session.clone(),
    };
    match submit(&state.cluster, sec.request(op, vec![ev])).await? {
        AuthOutcome::Ok => {
            sec.login_successes.fetch_add(1, Ordering::Relaxed);
            let tokens = sec.issue_tokens(&user, &session.id, &session.current_jti)?;
            Ok(token_answer(&state, &headers, tokens))
        }
        _ => Err(bad_credentials()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

pub(crate) async fn refresh(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let bytes = super::read_body(req.into_body(), MAX_AUTH_BODY).await?;
    let from_cookie = session_cookie::wanted(&headers) && bytes.trim_ascii().is_empty();
    let presented = if from_cookie {
        session_cookie::token(&headers)
            .ok_or_else(|| ApiError::of(Code::Unauthorized, "no session cookie: log in again"))?
    } else {
        let body: Refresh = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::of(Code::InvalidRequest, format!("invalid JSON body: {e}")))?;
        body.refresh_token
    };
    let sec = &state.security;
    let claims = sec.verify_refresh(&presented)?;
    let invalid = || ApiError::of(Code::Unauthorized, "the session was revoked or has expired");
    let user = sec
        .store
        .user(&claims.sub)
        .filter(|u| !u.disabled)
        .ok_or_else(invalid)?;
    let new_jti = uuid::Uuid::new_v4().to_string();
    let ev = event(
        user.id.clone(),
        &ip,
        "auth.refresh",
        format!("session {}", claims.sid),
        "",
    );
    let (session_id, presented_jti) = (claims.sid.clone(), claims.jti.clone());
    let expires_at_ms = now_ms() + (sec.cfg.refresh_token_ttl_secs * 1000) as i64;
    // Browsers (the cookie session) lose a rotation's answer when a page reloads mid-refresh;
    // API clients keep strict reuse detection.
    let op = if from_cookie {
        AuthOp::RotateRefreshWithGrace {
            session_id,
            presented_jti,
            new_jti: new_jti.clone(),
            expires_at_ms,
        }
    } else {
        AuthOp::RotateRefresh {
            session_id,
            presented_jti,
            new_jti: new_jti.clone(),
            expires_at_ms,
        }
    };
    match submit(&state.cluster, sec.request(op, vec![ev])).await? {
        AuthOutcome::Ok => Ok(token_answer(
            &state,
            &headers,
            sec.issue_tokens(&user, &claims.sid, &new_jti)?,
        )),
        // The rotation's answer was lost (page reloaded mid-refresh, two tabs): the session's
        // current token again, nothing rotated.
        AuthOutcome::RefreshGrace { current_jti } => Ok(token_answer(
            &state,
            &headers,
            sec.issue_tokens(&user, &claims.sid, &current_jti)?,
        )),
        AuthOutcome::RefreshReused => Err(ApiError::of(
            Code::RefreshReused,
            "this refresh token was already used; the session is revoked, log in again",
        )),
        _ => Err(invalid()),
    }
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let Caller::User(p) = caller else {
        return Err(ApiError::of(Code::Unauthorized, "log in first"));
    };
    let ev = event(
        p.user_id.clone(),
        &ip,
        "auth.logout",
        format!("session {}", p.session_id),
        "",
    );
    let op = AuthOp::RevokeSession {
        session_id: p.session_id.clone(),
    };
    submit(&state.cluster, state.security.request(op, vec![ev])).await?;
    let mut resp = Json(json!({"logged_out": true})).into_response();
    session_cookie::clear(&mut resp);
    Ok(resp)
}

/// Login's and refresh's answer: the token pair as JSON, or, for a client that asked for the
/// cookie session, the refresh token in the `HttpOnly` cookie and only the access token in
/// the body.
fn token_answer(state: &AppState, headers: &HeaderMap, tokens: TokenPair) -> Response {
    if !session_cookie::wanted(headers) {
        return Json(tokens).into_response();
    }
    let mut resp = Json(json!({
        "access_token": tokens.access_token,
        "expires_in": tokens.expires_in,
        "token_type": tokens.token_type,
        "session": "cookie",
    }))
    .into_response();
    let ttl = state.security.cfg.refresh_token_ttl_secs;
    session_cookie::set(&mut resp, headers, &tokens.refresh_token, ttl);
    resp
}

pub(crate) async fn me(
    Extension(caller): Extension<Caller>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let Caller::User(p) = caller else {
        return Err(ApiError::of(Code::Unauthorized, "log in first"));
    };
    let user = state
        .security
        .store
        .user(&p.user_id)
        .ok_or_else(|| ApiError::of(Code::Unauthorized, "unknown user"))?;
    let mut view = super::new_user::user_view(&user);
    // What this user may call, from the same route table the server enforces: the
    // dashboard shows only what these allow (the server's checks stay the authority).
    let allowed: Vec<String> = crate::security::routes::ROUTES
        .iter()
        .filter(|r| {
            !matches!(r.access, Access::Public | Access::IngestKey)
                && crate::security::routes::check_principal(r.access, &p).is_ok()
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    view["allowed"] = json!(allowed);
    Ok(Json(view).into_response())
}

pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let is_admin = matches!(&caller, Caller::User(p) if p.is_admin());
    if !state.security.cfg.open_registration && !is_admin {
        let code = if matches!(caller, Caller::Anonymous) {
            Code::ForbiddenUntilLogin
        } else {
            Code::Forbidden
        };
        return Err(ApiError::of(
            code,
            "registration is by an admin (auth.open_registration is off)",
        ));
    }
    let n: NewUser = json_body(req.into_body(), MAX_AUTH_BODY).await?;
    let user = build_user(&state, n, is_admin).await?;
    super::new_user::create_user(&state, &caller, &ip, user, "auth.register").await
}
