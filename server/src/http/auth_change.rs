//! Committing a change to users, apps, keys or sessions: replicated with its audit record,
//! the apply outcome mapped to what the client sees.

use auth::{AuthOp, AuthOutcome};
use axum::http::StatusCode;

use super::ApiError;
use crate::node::AppState;
use crate::security::submit;

/// Replicates `op` with its audit record and maps the apply outcome to the client's answer.
pub(crate) async fn commit(
    state: &AppState,
    op: AuthOp,
    ev: auth::AuditEvent,
) -> Result<(), ApiError> {
    outcome_ok(submit(&state.cluster, state.security.request(op, vec![ev])).await?)
}

/// Maps an apply outcome to the answer, or the error the client sees.
pub(crate) fn outcome_ok(o: AuthOutcome) -> Result<(), ApiError> {
    match o {
        AuthOutcome::Ok | AuthOutcome::Replayed => Ok(()),
        AuthOutcome::Conflict(m) => Err(ApiError::new(StatusCode::CONFLICT, "conflict", m)),
        AuthOutcome::NotFound(m) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", m)),
        other => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            other.audit_text(),
        )),
    }
}
