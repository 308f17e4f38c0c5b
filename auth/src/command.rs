//! The replicated requests that change auth state, and what applying one produced.

use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::model::{ApiKey, App, Session, User, UserPatch};

/// One change plus the audit records that describe it, applied atomically. Everything
/// non-deterministic was decided by the proposing node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthRequest {
    pub at_ms: i64,
    /// The node that proposed it.
    pub node: u64,
    pub op: AuthOp,
    pub audit: Vec<AuditEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum AuthOp {
    /// First start: the cluster's JWT secret (hex) and the first admin. Ignored once done.
    Bootstrap {
        jwt_secret: String,
        admin: User,
    },
    /// A new JWT signing secret (hex). The previous one keeps verifying tokens for
    /// `overlap_ms`, then nothing it signed is accepted (TESTPLAN AUTH-06).
    RotateSigningKey {
        jwt_secret: String,
        overlap_ms: i64,
    },
    CreateUser {
        user: User,
    },
    UpdateUser {
        id: String,
        patch: UserPatch,
    },
    DeleteUser {
        id: String,
    },
    /// Clears a lockout (the legitimate user's unlock path is an admin).
    UnlockUser {
        id: String,
    },
    LoginSucceeded {
        user_id: String,
        session: Session,
    },
    /// A wrong password for `email` (which may not exist): counts towards the lockout.
    LoginFailed {
        email: String,
    },
    RotateRefresh {
        session_id: String,
        presented_jti: String,
        new_jti: String,
        expires_at_ms: i64,
    },
    RevokeSession {
        session_id: String,
    },
    /// Deletes sessions that expired before `before_ms` and revoked ones (a missing session
    /// is refused exactly like a revoked one, so nothing becomes valid again).
    PurgeSessions {
        before_ms: i64,
    },
    CreateApp {
        app: App,
        key: ApiKey,
    },
    UpdateApp {
        id: String,
        name: String,
    },
    DeleteApp {
        id: String,
    },
    /// Adds a key to an app; with `revoke_others` it replaces every active key (rotation).
    CreateKey {
        key: ApiKey,
        revoke_others: bool,
    },
    RevokeKey {
        app_id: String,
        key_id: String,
    },
    /// Only the audit records.
    AuditOnly,
    /// Replaces an app's ingest settings. (Variants are encoded by position in the log:
    /// new ones go last.)
    SetAppSettings {
        id: String,
        settings: crate::model::AppSettings,
    },
    /// `RotateRefresh` for a browser session (the refresh cookie): a token superseded less
    /// than [`crate::store::REFRESH_REUSE_GRACE_MS`] ago gets the current one again
    /// ([`AuthOutcome::RefreshGrace`]) instead of revoking the session, since a page that
    /// reloads or closes while its refresh is in flight loses the new cookie.
    RotateRefreshWithGrace {
        session_id: String,
        presented_jti: String,
        new_jti: String,
        expires_at_ms: i64,
    },
    /// The security detector read the audit log through `through_audit_seq` and concluded
    /// `alerts`. Ignored unless it moves the detector's position forward (a replay, or a
    /// former leader's late proposal, records nothing twice).
    RecordAlerts {
        through_audit_seq: u64,
        alerts: Vec<crate::alert::NewAlert>,
    },
    /// Alerts through `through_alert_seq` were delivered to the webhook `webhook`.
    AlertsDelivered {
        webhook: String,
        through_alert_seq: u64,
    },
    /// Replaces an app's data-protection settings. The secrets in `privacy` are used only for
    /// an app that has none yet: once set they never change (hashed ids stay countable).
    SetAppPrivacy {
        id: String,
        privacy: crate::privacy::AppPrivacy,
    },
    /// Audit retention: removes the oldest records whose time is before `before_ms` (the
    /// longest such prefix, at most [`crate::store::MAX_AUDIT_CUT`] at once) and keeps a signed
    /// [`crate::audit::AuditBase`] of the last one. `key` (hex) signs bases only if the store
    /// has no audit key yet.
    CutAudit {
        before_ms: i64,
        key: String,
    },
}

/// What applying a request did. Errors of the *request* (not of the store) are outcomes, so
/// every node reaches the same conclusion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum AuthOutcome {
    Ok,
    /// Already applied before a restart; nobody is waiting for it.
    Replayed,
    AlreadyBootstrapped,
    Conflict(String),
    NotFound(String),
    /// The account is locked until this time (ms).
    Locked {
        until_ms: i64,
    },
    /// A superseded refresh token was presented; the whole session is now revoked.
    RefreshReused,
    SessionRevoked,
    /// The token rotated away within [`crate::store::REFRESH_REUSE_GRACE_MS`]: nothing
    /// changed; the client gets the session's current token (`current_jti`) again.
    RefreshGrace {
        current_jti: String,
    },
}

impl AuthOutcome {
    /// The outcome as written into audit records.
    pub fn audit_text(&self) -> String {
        match self {
            AuthOutcome::Ok | AuthOutcome::Replayed => "success".into(),
            AuthOutcome::AlreadyBootstrapped => "noop: already bootstrapped".into(),
            AuthOutcome::Conflict(m) => format!("failure: conflict: {m}"),
            AuthOutcome::NotFound(m) => format!("failure: not found: {m}"),
            AuthOutcome::Locked { until_ms } => format!("failure: locked until {until_ms}"),
            AuthOutcome::RefreshReused => "failure: refresh token reused; session revoked".into(),
            AuthOutcome::RefreshGrace { .. } => {
                "success: token superseded within the reuse grace; current token re-issued".into()
            }
            AuthOutcome::SessionRevoked => "failure: session revoked".into(),
        }
    }
}
