//! Sessions, logins and the audit log (`unmogrowp_auth_*`, `unmogrowp_login_*`, `unmogrowp_audit_*`).

use std::sync::atomic::Ordering;

use crate::metrics::write_metric;
use crate::security::Security;

pub fn collect(out: &mut String, security: &Security) {
    write_metric(
        out,
        "unmogrowp_audit_records",
        "gauge",
        "Records in the audit log (sequence number of its head).",
        security.store.audit_head().0,
    );
    write_metric(
        out,
        "unmogrowp_audit_records_removed",
        "gauge",
        "Audit records removed by audit.retention_days so far (the chain is verified from the signed base after them).",
        security.store.audit_base().map_or(0, |b| b.removed),
    );
    write_metric(
        out,
        "unmogrowp_audit_suppressed_total",
        "counter",
        "Denied requests not audited because their source exceeded auth.audited_denials_per_ip_per_minute.",
        security.audit_suppressed.load(Ordering::Relaxed),
    );
    write_metric(
        out,
        "unmogrowp_auth_sessions",
        "gauge",
        "Login sessions held (live, plus expired or revoked ones not yet purged).",
        security.store.sessions(),
    );
    write_metric(
        out,
        "unmogrowp_login_rate_limited_total",
        "counter",
        "Login attempts refused by the per-IP limiter (alert on any increase: password spray).",
        security.login_rate_limited.load(Ordering::Relaxed),
    );
    write_metric(
        out,
        "unmogrowp_login_failures_total",
        "counter",
        "Logins refused for a wrong password or an unknown user.",
        security.login_failures.load(Ordering::Relaxed),
    );
    write_metric(
        out,
        "unmogrowp_login_successes_total",
        "counter",
        "Logins that opened a session.",
        security.login_successes.load(Ordering::Relaxed),
    );
    write_metric(
        out,
        "unmogrowp_auth_lockouts_total",
        "counter",
        "Accounts locked after repeated failed logins.",
        security.lockouts.load(Ordering::Relaxed),
    );
    write_metric(
        out,
        "unmogrowp_login_locked_total",
        "counter",
        "Logins refused because the account was locked.",
        security.login_locked.load(Ordering::Relaxed),
    );
    if let Some(since) = security.store.signing_key_since_ms() {
        write_metric(
            out,
            "unmogrowp_auth_signing_key_age_seconds",
            "gauge",
            "Age of the token signing key (rotate with POST /api/admin/auth/signing-key/rotate).",
            ((crate::clock::now_ms() - since).max(0) as f64) / 1000.0,
        );
    }
    let verified = security.audit_verified();
    if let Some(v) = verified {
        write_metric(
            out,
            "unmogrowp_audit_chain_ok",
            "gauge",
            "1 if the last verification of the audit hash chain (every auth.audit_verify_interval_secs) found it intact, 0 if it found a record edited, deleted or reordered.",
            u8::from(v.ok),
        );
        write_metric(
            out,
            "unmogrowp_audit_chain_verified_at_seconds",
            "gauge",
            "When the audit chain was last verified (epoch seconds).",
            v.at_ms as f64 / 1000.0,
        );
    }
}
