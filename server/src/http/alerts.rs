//! `GET /api/admin/alerts`: the security alerts the rules raised (recorded through the log,
//! the same on every node), newest first.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Code};
use crate::node::AppState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsQuery {
    /// At most this many (1–1000, default 100).
    limit: Option<usize>,
    /// Only alerts with a smaller `seq` (the previous page's `next_before`).
    before: Option<u64>,
    /// Only this rule.
    rule: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let store = state.security.store.clone();
    let rule = q.rule.filter(|r| !r.is_empty());
    let before = q.before;
    let (alerts, next) = tokio::task::spawn_blocking(move || {
        // Filtering by rule reads further back, at most 100 pages.
        let mut out = Vec::new();
        let mut cursor = before;
        for _ in 0..100 {
            let page = store.alerts_before(cursor, limit)?;
            let Some(last) = page.last().map(|a| a.seq) else {
                cursor = None;
                break;
            };
            cursor = Some(last);
            out.extend(
                page.into_iter()
                    .filter(|a| rule.as_ref().is_none_or(|r| a.alert.rule == *r)),
            );
            if out.len() >= limit || last <= 1 {
                break;
            }
        }
        out.truncate(limit);
        let next = if out.len() == limit {
            out.last().map(|a| a.seq)
        } else {
            cursor.filter(|c| *c > 1 && rule.is_some())
        };
        Ok::<_, auth::AuthError>((out, next))
    })
    .await
    .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?
    .map_err(|e| ApiError::of(Code::Internal, e.to_string()))?;
    let book = state.security.store.alert_book();
    Ok(Json(json!({
        "alerts": alerts,
        "next_before": next,
        "total": book.head,
        "by_rule": book.by_rule,
    })))
}
