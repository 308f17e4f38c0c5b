//! The recorded security alerts as the `security_alerts` SQL table (admins only).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use query::admin_table::AdminTable;

/// Most alerts the table loads (the newest).
const MAX_ROWS: usize = 1_000_000;

pub struct AlertTable(pub auth::AuthStore);

impl std::fmt::Debug for AlertTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertTable")
    }
}

impl AdminTable for AlertTable {
    fn name(&self) -> &'static str {
        "security_alerts"
    }

    fn load(&self) -> Result<RecordBatch, String> {
        let mut alerts = self
            .0
            .alerts_before(None, MAX_ROWS)
            .map_err(|e| e.to_string())?;
        alerts.reverse();
        let u = |f: fn(&auth::SecurityAlert) -> u64| -> ArrayRef {
            Arc::new(UInt64Array::from_iter_values(alerts.iter().map(f)))
        };
        let i = |f: fn(&auth::SecurityAlert) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(alerts.iter().map(f)))
        };
        let s = |f: fn(&auth::SecurityAlert) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(alerts.iter().map(f)))
        };
        RecordBatch::try_from_iter(vec![
            ("seq", u(|a| a.seq)),
            ("id", s(|a| &a.id)),
            ("at_ms", i(|a| a.at_ms)),
            ("node", u(|a| a.node)),
            ("rule", s(|a| &a.alert.rule)),
            ("severity", s(|a| &a.alert.severity)),
            ("subject", s(|a| &a.alert.subject)),
            ("summary", s(|a| &a.alert.summary)),
            ("detail", s(|a| &a.alert.detail)),
            ("observed_at_ms", i(|a| a.alert.observed_at_ms)),
            ("first_audit_seq", u(|a| a.alert.first_audit_seq)),
            ("last_audit_seq", u(|a| a.alert.last_audit_seq)),
        ])
        .map_err(|e| e.to_string())
    }
}
