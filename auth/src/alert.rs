//! Security alerts: what the detector on the leader concluded from the audit stream, recorded
//! through the log like every other change of the auth state (`x/<seq, 20 digits>`), with the
//! detector's position in the audit log and each webhook's delivery position.

use serde::{Deserialize, Serialize};

/// An alert as the detector proposes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NewAlert {
    /// `password_spraying`, `credential_stuffing`, `denied_burst`, `key_many_sources`,
    /// `large_read`, `admin_off_hours`.
    pub rule: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// Who or what it is about: a source address, an account, an actor, a key.
    pub subject: String,
    pub summary: String,
    pub detail: String,
    /// The audit records that made it fire (first and last sequence number).
    pub first_audit_seq: u64,
    pub last_audit_seq: u64,
    /// When the last of them happened.
    pub observed_at_ms: i64,
}

/// A recorded alert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecurityAlert {
    pub seq: u64,
    /// A stable id (`alert-<seq>`), sent to webhooks as `x-unmogrowp-alert-id`.
    pub id: String,
    /// When it was recorded (the proposing leader's clock).
    pub at_ms: i64,
    pub node: u64,
    #[serde(flatten)]
    pub alert: NewAlert,
}

pub(crate) fn alert_key(seq: u64) -> String {
    format!("x/{seq:020}")
}
