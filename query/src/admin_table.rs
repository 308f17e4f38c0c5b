//! Tables an admin's query may read besides `events` and `audit_log`, kept by the server (the
//! security alerts): each is loaded only when the statement names it.

use arrow::array::RecordBatch;

use crate::error::{QueryError, Result};
use crate::service::Scope;

/// A table the server provides on demand.
pub trait AdminTable: Send + Sync + std::fmt::Debug {
    /// The name a statement uses.
    fn name(&self) -> &'static str;
    /// Its rows now.
    fn load(&self) -> std::result::Result<RecordBatch, String>;
}

/// Adds to `scope` the admin tables `sql` names.
pub(crate) fn resolve(scope: &mut Scope, sql: &str) -> Result<()> {
    if scope.admin_tables.is_empty() {
        return Ok(());
    }
    let lower = sql.to_ascii_lowercase();
    for t in std::mem::take(&mut scope.admin_tables) {
        if lower.contains(t.name()) {
            let batch = t
                .load()
                .map_err(|e| QueryError::Execution(format!("reading {}: {e}", t.name())))?;
            scope.extra_tables.push((t.name().to_string(), batch));
        }
    }
    Ok(())
}
