//! A new user: its request body, its validation and hashing, its creation (by an admin or by
//! registration), and how a user is shown.

use auth::{AuthOp, Role, User};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth_change::commit;
use super::{ApiError, Code};
use crate::clock::now_ms;
use crate::node::AppState;
use crate::security::{event, Caller};

/// A user as shown by the API: never the password hash.
pub(crate) fn user_view(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "roles": u.roles,
        "permissions": u.permissions,
        "effective_permissions": auth::policy::effective_permissions(&u.roles, &u.permissions)
            .iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "app_access": u.app_access,
        "disabled": u.disabled,
        "created_at_ms": u.created_at_ms,
        "last_login_at_ms": u.last_login_at_ms,
        "locked_until_ms": (u.lockout.locked_until_ms > 0).then_some(u.lockout.locked_until_ms),
    })
}

/// A new user's fields (registration and admin creation). Unknown fields are rejected.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    #[serde(default)]
    pub app_access: Option<Vec<String>>,
}

/// Validates and hashes a new user; `admin_fields` allows roles/permissions/app access.
pub(crate) async fn build_user(
    state: &AppState,
    n: NewUser,
    admin_fields: bool,
) -> Result<User, ApiError> {
    let bad = |m: String| ApiError::of(Code::InvalidRequest, m);
    let email = n.email.trim().to_lowercase();
    if email.len() > 254
        || !email.contains('@')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(
            "email: expected an address like name@example.com".into()
        ));
    }
    auth::password::check_strength(&n.password).map_err(|m| bad(format!("password: {m}")))?;
    if !admin_fields && (n.roles.is_some() || n.permissions.is_some() || n.app_access.is_some()) {
        return Err(bad(
            "roles, permissions and app_access are set by an admin".into()
        ));
    }
    if let Some(p) = n
        .permissions
        .iter()
        .flatten()
        .find(|p| auth::Permission::parse(p).is_none())
    {
        return Err(bad(format!("permissions: unknown permission {p:?}")));
    }
    let name = n.name.unwrap_or_else(|| email.clone());
    if name.chars().count() > 200 {
        return Err(bad("name: at most 200 characters".into()));
    }
    Ok(User {
        id: uuid::Uuid::new_v4().to_string(),
        email,
        name,
        password_hash: state.security.hash_password(n.password).await?,
        roles: n.roles.unwrap_or_else(|| vec![Role::User]),
        permissions: n.permissions.unwrap_or_default(),
        app_access: n.app_access.unwrap_or_default(),
        disabled: false,
        created_at_ms: now_ms(),
        last_login_at_ms: None,
        lockout: Default::default(),
    })
}

pub(crate) async fn create_user(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    user: User,
    action: &str,
) -> Result<Response, ApiError> {
    let ev = event(
        caller.actor(),
        ip,
        action,
        format!("user {} ({})", user.id, user.email),
        format!("roles {:?}", user.roles),
    );
    commit(&state, AuthOp::CreateUser { user: user.clone() }, ev).await?;
    Ok((StatusCode::CREATED, Json(user_view(&user))).into_response())
}
