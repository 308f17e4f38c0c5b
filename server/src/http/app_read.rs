//! What the read endpoints over one app's events (attribution, fraud, dashboard) check first:
//! a logged-in user, then access to the app, answered alike whether the app does not exist
//! or is not the caller's (TESTPLAN AZ-02).

use std::collections::BTreeSet;
use std::sync::Arc;

use auth::Principal;

use super::{ApiError, Code};
use crate::node::AppState;
use crate::security::Caller;

/// The logged-in user behind `caller` (401 otherwise).
pub(super) fn user(caller: &Caller) -> Result<&Principal, ApiError> {
    match caller {
        Caller::User(p) => Ok(p),
        _ => Err(ApiError::of(Code::Unauthorized, "log in first")),
    }
}

/// The query scope of `p` once `app` is known to exist and be within its access (404 else).
pub(super) fn app_scope(
    state: &AppState,
    p: &Principal,
    app: &str,
) -> Result<query::Scope, ApiError> {
    if !p.can_access_app(app) || state.security.store.app(app).is_none() {
        return Err(ApiError::of(Code::NotFound, "app not found"));
    }
    Ok(query::Scope {
        apps: p.app_access.clone().map(|a: BTreeSet<String>| Arc::new(a)),
        ..query::Scope::default()
    })
}
