//! The auth store's audit log as the source of the `audit_log` SQL table (admins only).

use query::audit_log::{AuditLogSource, AuditRow};

pub struct AuditTable(pub auth::AuthStore);

impl std::fmt::Debug for AuditTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditTable")
    }
}

impl AuditLogSource for AuditTable {
    fn load(&self, limit: usize) -> Result<Vec<AuditRow>, String> {
        let recs = self.0.audit_page(0, limit).map_err(|e| e.to_string())?;
        Ok(recs
            .into_iter()
            .map(|r| AuditRow {
                seq: r.seq,
                at_ms: r.at_ms,
                node: r.node,
                actor: r.actor,
                source_ip: r.source_ip,
                action: r.action,
                target: r.target,
                outcome: r.outcome,
                detail: r.detail,
                hash: r.hash,
            })
            .collect())
    }
}
