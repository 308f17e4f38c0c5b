//! An app's data protection over HTTP (issue 29): the `"privacy"` object of
//! `PATCH /api/apps/{id}` (admin only) and `POST /api/admin/apps/{id}/reveal`.

use auth::privacy::{DeviceIdMode, IpMode, Privacy, UserIdMode};
use auth::{AppPrivacy, AuthOp};
use axum::extract::{Path, Request, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth_change::commit;
use super::authz::ClientIp;
use super::{json_body, ApiError, Code};
use crate::node::AppState;
use crate::security::{event, Caller};

/// Longest retention an app may ask for (100 years).
const MAX_RETENTION_DAYS: u32 = 36_500;

/// The `"privacy"` object of a PATCH: each field optional, anything else refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivacyPatch {
    retention_days: Option<u32>,
    ip: Option<IpMode>,
    user_id: Option<UserIdMode>,
    device_id: Option<DeviceIdMode>,
    require_consent: Option<bool>,
}

/// The settings as API answers show them (never the secrets).
pub(crate) fn view(p: &Privacy) -> Value {
    json!(p)
}

/// The app's privacy record with `patch` applied, or why it cannot be (checked before
/// anything of the PATCH is committed). Only admins: these settings decide what personal
/// data is kept.
pub(crate) fn prepare(
    state: &AppState,
    caller: &Caller,
    id: &str,
    patch: PrivacyPatch,
) -> Result<AppPrivacy, ApiError> {
    if !matches!(caller, Caller::User(p) if p.is_admin()) {
        return Err(ApiError::of(
            Code::Forbidden,
            "privacy settings can only be changed by an admin",
        ));
    }
    let current = state.security.store.app_privacy(id);
    let mut settings = current.as_ref().map(|p| p.settings).unwrap_or_default();
    if let Some(days) = patch.retention_days {
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(ApiError::of(
                Code::InvalidRequest,
                format!("privacy.retention_days: 1-{MAX_RETENTION_DAYS}"),
            ));
        }
        settings.retention_days = days;
    }
    settings.ip = patch.ip.unwrap_or(settings.ip);
    settings.user_id = patch.user_id.unwrap_or(settings.user_id);
    settings.device_id = patch.device_id.unwrap_or(settings.device_id);
    settings.require_consent = patch.require_consent.unwrap_or(settings.require_consent);
    // New secrets only matter for an app without any; applying keeps the first ones.
    Ok(current.map_or_else(
        || AppPrivacy::generate(settings),
        |c| AppPrivacy { settings, ..c },
    ))
}

/// Sets the app's privacy record through the log, audited (the settings, not the secrets).
pub(crate) async fn set(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    id: &str,
    privacy: AppPrivacy,
) -> Result<(), ApiError> {
    let ev = event(
        caller.actor(),
        ip,
        "apps.privacy",
        format!("app {id}"),
        serde_json::to_string(&privacy.settings).unwrap_or_default(),
    );
    commit(
        state,
        AuthOp::SetAppPrivacy {
            id: id.to_string(),
            privacy,
        },
        ev,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevealRequest {
    device_id: String,
}

/// `POST /api/admin/apps/{id}/reveal` `{"device_id": "enc1:…"}` → the device id it was made
/// from. Audited, refusals too: who asked for which stored value (the answer itself is not
/// written down).
pub(crate) async fn reveal(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let r: RevealRequest = json_body(req.into_body(), 4 << 10).await?;
    if state.security.store.app(&id).is_none() {
        return Err(ApiError::of(Code::NotFound, "app not found"));
    }
    // Any app with privacy settings has its key, also after it stopped encrypting.
    let privacy = state.security.store.app_privacy(&id).ok_or_else(|| {
        ApiError::of(
            Code::InvalidRequest,
            "this app has never encrypted device ids (privacy.device_id = \"encrypt\")",
        )
    })?;
    let revealed = privacy.keyed().reveal_device_id(&r.device_id);
    // The stored value asked about; a refused one (perhaps a raw id sent by mistake) only by
    // its digest, so the audit log never holds an identifier in clear.
    let detail = match &revealed {
        Ok(_) => format!("device_id {}", r.device_id),
        Err(_) => {
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(r.device_id.as_bytes()));
            format!("device_id with SHA-256 {}", &digest[..16])
        }
    };
    let mut ev = event(
        caller.actor(),
        &ip,
        "privacy.reveal",
        format!("app {id}"),
        detail,
    );
    if let Err(e) = &revealed {
        ev.outcome = Some(format!("failure: {e}"));
    }
    commit(&state, AuthOp::AuditOnly, ev).await?;
    let revealed =
        revealed.map_err(|e| ApiError::of(Code::InvalidRequest, format!("device_id: {e}")))?;
    Ok(Json(json!({"app_id": id, "device_id": revealed})))
}
