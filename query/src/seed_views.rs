//! The seed's views, built in and read-only: `dashboard_stats` (and its other name
//! `dashboard_stats_mv`), the seed's hourly materialized view, and `user_retention_mv`, the
//! source of the seed's retention chart. Each is SQL over `events` in the query's own session,
//! so a user sees only the apps `events` shows them; a view is planned only when a statement
//! names it. Their columns are documented in docs/sql.md.

use std::sync::Arc;

use datafusion::datasource::ViewTable;
use datafusion::prelude::SessionContext;

use crate::error::Result;

/// `app_id, hour, event_count, unique_users, revenue` per app and hour, as the seed's
/// `dashboard_stats_mv` defines them (`uniq` is exact here; revenue is the events' `revenue`,
/// which ingest fills from `event_data.revenue`).
const DASHBOARD_STATS: &str = "SELECT app_id, date_trunc('hour', \"timestamp\") AS hour, \
     count(*) AS event_count, count(DISTINCT user_id) AS unique_users, \
     coalesce(sum(revenue), 0.0) AS revenue \
     FROM events GROUP BY app_id, date_trunc('hour', \"timestamp\")";

/// One row per user and UTC day they were active: `app_id, user_id, cohort_day` (the day of
/// their first event), `activity_day`, `retention_day` (days since the cohort day; 0 on it).
const USER_RETENTION: &str = "WITH days AS ( \
       SELECT DISTINCT app_id, user_id, CAST(\"timestamp\" AS DATE) AS day FROM events \
       WHERE user_id IS NOT NULL AND user_id <> ''), \
     first AS (SELECT app_id, user_id, min(day) AS cohort_day FROM days GROUP BY app_id, user_id) \
     SELECT days.app_id, days.user_id, first.cohort_day, days.day AS activity_day, \
       CAST(days.day AS BIGINT) - CAST(first.cohort_day AS BIGINT) AS retention_day \
     FROM days JOIN first ON days.app_id = first.app_id AND days.user_id = first.user_id";

/// Every built-in view: name and definition.
pub(crate) const VIEWS: &[(&str, &str)] = &[
    ("dashboard_stats", DASHBOARD_STATS),
    ("dashboard_stats_mv", DASHBOARD_STATS),
    ("user_retention_mv", USER_RETENTION),
];

/// Registers in `ctx` the views `sql` names (`events` must be registered already).
pub(crate) async fn register(ctx: &SessionContext, sql: &str) -> Result<()> {
    let lower = sql.to_ascii_lowercase();
    for (name, definition) in VIEWS {
        if !lower.contains(name) || ctx.table_exist(*name)? {
            continue;
        }
        let plan = ctx.state().create_logical_plan(definition).await?;
        ctx.register_table(
            *name,
            Arc::new(ViewTable::new(plan, Some((*definition).to_string()))),
        )?;
    }
    Ok(())
}
