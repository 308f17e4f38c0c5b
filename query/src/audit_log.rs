//! The `audit_log` SQL table: an admin's query may read the audit log (hash-chained records
//! kept by the auth store, which this crate does not know) as a table. The server hands a
//! [`AuditLogSource`] in the [`Scope`](crate::Scope); the records are loaded only when the
//! statement names the table.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};

use crate::error::{QueryError, Result};
use crate::service::Scope;

/// Most audit records the table loads.
pub const MAX_AUDIT_ROWS: usize = 1_000_000;

/// One audit record, as the table shows it.
#[derive(Debug, Clone, Default)]
pub struct AuditRow {
    pub seq: u64,
    pub at_ms: i64,
    pub node: u64,
    pub actor: String,
    pub source_ip: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub hash: String,
}

/// Where the records come from (the auth store, in the server).
pub trait AuditLogSource: Send + Sync + std::fmt::Debug {
    /// The oldest `limit` records, in order.
    fn load(&self, limit: usize) -> std::result::Result<Vec<AuditRow>, String>;
}

/// Adds the `audit_log` table to `scope` if it has a source and `sql` names the table.
pub(crate) fn resolve(scope: &mut Scope, sql: &str) -> Result<()> {
    let Some(source) = scope.audit_log.take() else {
        return Ok(());
    };
    if !sql.to_ascii_lowercase().contains("audit_log") {
        return Ok(());
    }
    let rows = source
        .load(MAX_AUDIT_ROWS)
        .map_err(|e| QueryError::Execution(format!("reading the audit log: {e}")))?;
    let batch = table(&rows).map_err(|e| QueryError::Execution(e.to_string()))?;
    scope.extra_tables.push(("audit_log".into(), batch));
    Ok(())
}

fn table(recs: &[AuditRow]) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let s = |f: fn(&AuditRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(recs.iter().map(f)))
    };
    RecordBatch::try_from_iter(vec![
        (
            "seq",
            Arc::new(UInt64Array::from_iter_values(recs.iter().map(|r| r.seq))) as ArrayRef,
        ),
        (
            "at_ms",
            Arc::new(Int64Array::from_iter_values(recs.iter().map(|r| r.at_ms))) as ArrayRef,
        ),
        (
            "node",
            Arc::new(UInt64Array::from_iter_values(recs.iter().map(|r| r.node))) as ArrayRef,
        ),
        ("actor", s(|r| &r.actor)),
        ("source_ip", s(|r| &r.source_ip)),
        ("action", s(|r| &r.action)),
        ("target", s(|r| &r.target)),
        ("outcome", s(|r| &r.outcome)),
        ("detail", s(|r| &r.detail)),
        ("hash", s(|r| &r.hash)),
    ])
}
