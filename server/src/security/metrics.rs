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
}
