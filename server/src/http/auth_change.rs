//! Committing a change to users, apps, keys or sessions: replicated with its audit record,
//! the apply outcome mapped to what the client sees.

use auth::{AuthOp, AuthOutcome};

use super::{ApiError, Code};
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
        AuthOutcome::Conflict(m) => Err(ApiError::of(Code::Conflict, m)),
        AuthOutcome::NotFound(m) => Err(ApiError::of(Code::NotFound, m)),
        other => Err(ApiError::of(Code::Conflict, other.audit_text())),
    }
}
