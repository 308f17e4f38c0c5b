//! `/api/apps…`: apps and their API keys.

use auth::{ApiKey, App, AppSettings, AuthOp, Privacy};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth_change::commit;
use super::authz::ClientIp;
use super::Code;
use super::{json_body, ApiError};
use crate::clock::now_ms;
use crate::node::AppState;
use crate::security::{event, Caller};

const MAX_APP_BODY: usize = 16 << 10;

fn app_view(a: &App, s: &AppSettings, p: &Privacy) -> Value {
    json!({"id": a.id, "name": a.name, "owner_id": a.owner_id, "created_at_ms": a.created_at_ms,
           "allowed_origins": s.allowed_origins, "strict_fields": s.strict_fields,
           "privacy": super::privacy::view(p)})
}

/// An app's privacy settings (the defaults if never set).
fn privacy_of(state: &AppState, id: &str) -> Privacy {
    state
        .security
        .store
        .app_privacy(id)
        .map(|p| p.settings)
        .unwrap_or_default()
}

/// Most entries in `allowed_origins`.
const MAX_ORIGINS: usize = 100;

/// Checks one `allowed_origins` entry: `*`, or an exact origin `http(s)://host[:port]`
/// (lower-cased; no path, query or trailing slash), as browsers send it in `Origin`.
fn origin_entry(o: &str) -> Result<String, String> {
    if o == "*" {
        return Ok(o.to_string());
    }
    let lower = o.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("allowed_origins: {o:?} must start with http:// or https://"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if !host_ok || !port_ok {
        return Err(format!(
            "allowed_origins: {o:?} is not an origin like https://shop.example or http://127.0.0.1:8080 (no path)"
        ));
    }
    Ok(lower)
}

fn key_view(k: &ApiKey) -> Value {
    json!({
        "id": k.id, "prefix": k.prefix, "scope": k.scope,
        "created_at_ms": k.created_at_ms, "revoked_at_ms": k.revoked_at_ms,
        "active": k.revoked_at_ms.is_none(),
    })
}

/// A fresh key for `app_id`: the stored record and the secret (shown once).
fn new_key(app_id: &str) -> (ApiKey, String) {
    let (secret, hash, prefix) = auth::apikey::generate();
    let key = ApiKey {
        id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        app_id: app_id.to_string(),
        prefix,
        hash,
        scope: "ingest".into(),
        created_at_ms: now_ms(),
        revoked_at_ms: None,
    };
    (key, secret)
}

fn valid_app_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && s != "."
        && s != ".."
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let apps: Vec<Value> = state
        .security
        .store
        .apps()
        .iter()
        .filter(|a| matches!(&caller, Caller::User(p) if p.can_access_app(&a.id)))
        .map(|a| {
            app_view(
                a,
                &state.security.store.app_settings(&a.id),
                &privacy_of(&state, &a.id),
            )
        })
        .collect();
    Json(json!({ "apps": apps }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApp {
    name: String,
    /// Optional id (1–64 of `A-Z a-z 0-9 _ - .`); a UUID otherwise.
    id: Option<String>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, ApiError> {
    let n: NewApp = json_body(req.into_body(), MAX_APP_BODY).await?;
    let bad = |m: &str| ApiError::of(Code::InvalidRequest, m);
    let name = n.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(bad("name: 1-200 printable characters"));
    }
    let id = n.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if !valid_app_id(&id) {
        return Err(bad("id: 1-64 characters from A-Z a-z 0-9 _ - ."));
    }
    let app = App {
        id: id.clone(),
        name,
        owner_id: caller.actor(),
        created_at_ms: now_ms(),
    };
    let (key, secret) = new_key(&id);
    let ev = event(
        caller.actor(),
        &ip,
        "apps.create",
        format!("app {id}"),
        format!("name {:?}, key {}", app.name, key.id),
    );
    commit(
        &state,
        AuthOp::CreateApp {
            app: app.clone(),
            key: key.clone(),
        },
        ev,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": app.id, "name": app.name, "api_key": secret, "key_id": key.id})),
    )
        .into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = state
        .security
        .store
        .app(&id)
        .ok_or_else(|| ApiError::of(Code::NotFound, "app not found"))?;
    Ok(Json(app_view(
        &app,
        &state.security.store.app_settings(&id),
        &privacy_of(&state, &id),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchApp {
    name: Option<String>,
    allowed_origins: Option<Vec<String>>,
    strict_fields: Option<bool>,
    /// Data protection (admin only): see `super::privacy`.
    privacy: Option<super::privacy::PrivacyPatch>,
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let p: PatchApp = json_body(req.into_body(), MAX_APP_BODY).await?;
    let bad = |m: String| ApiError::of(Code::InvalidRequest, m);
    if p.name.is_none()
        && p.allowed_origins.is_none()
        && p.strict_fields.is_none()
        && p.privacy.is_none()
    {
        return Err(bad(
            "nothing to change: give name, allowed_origins, strict_fields or privacy".into(),
        ));
    }
    let origins = match &p.allowed_origins {
        Some(list) if list.len() > MAX_ORIGINS => {
            return Err(bad(format!(
                "allowed_origins: at most {MAX_ORIGINS} origins"
            )))
        }
        Some(list) => Some(
            list.iter()
                .map(|o| origin_entry(o))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?,
        ),
        None => None,
    };
    let privacy = match p.privacy {
        Some(patch) => Some(super::privacy::prepare(&state, &caller, &id, patch)?),
        None => None,
    };
    if let Some(name) = &p.name {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(bad("name: 1-200 printable characters".into()));
        }
        let ev = event(
            caller.actor(),
            &ip,
            "apps.update",
            format!("app {id}"),
            format!("name {name:?}"),
        );
        commit(
            &state,
            AuthOp::UpdateApp {
                id: id.clone(),
                name,
            },
            ev,
        )
        .await?;
    }
    if origins.is_some() || p.strict_fields.is_some() {
        let mut settings = state.security.store.app_settings(&id);
        if let Some(o) = origins {
            settings.allowed_origins = o;
        }
        if let Some(strict) = p.strict_fields {
            settings.strict_fields = strict;
        }
        let ev = event(
            caller.actor(),
            &ip,
            "apps.settings",
            format!("app {id}"),
            format!(
                "allowed_origins {:?}, strict_fields {}",
                settings.allowed_origins, settings.strict_fields
            ),
        );
        commit(
            &state,
            AuthOp::SetAppSettings {
                id: id.clone(),
                settings,
            },
            ev,
        )
        .await?;
    }
    if let Some(privacy) = privacy {
        super::privacy::set(&state, &caller, &ip, &id, privacy).await?;
    }
    get(State(state), Path(id))
        .await
        .map(IntoResponse::into_response)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ev = event(
        caller.actor(),
        &ip,
        "apps.delete",
        format!("app {id}"),
        "keys revoked; stored events are kept",
    );
    commit(&state, AuthOp::DeleteApp { id }, ev).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn list_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Json<Value> {
    let keys: Vec<Value> = state
        .security
        .store
        .app_keys(&id)
        .iter()
        .map(key_view)
        .collect();
    Json(json!({ "keys": keys }))
}

async fn add_key(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    app_id: String,
    revoke_others: bool,
) -> Result<Response, ApiError> {
    let (key, secret) = new_key(&app_id);
    let action = if revoke_others {
        "keys.rotate"
    } else {
        "keys.create"
    };
    let ev = event(
        caller.actor(),
        ip,
        action,
        format!("app {app_id}"),
        format!("key {}", key.id),
    );
    commit(
        &state,
        AuthOp::CreateKey {
            key: key.clone(),
            revoke_others,
        },
        ev,
    )
    .await?;
    let mut v = key_view(&key);
    v["api_key"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub(crate) async fn create_key(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    add_key(&state, &caller, &ip, id, false).await
}

pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    add_key(&state, &caller, &ip, id, true).await
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ev = event(
        caller.actor(),
        &ip,
        "keys.revoke",
        format!("app {id}"),
        format!("key {key_id}"),
    );
    commit(&state, AuthOp::RevokeKey { app_id: id, key_id }, ev).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
