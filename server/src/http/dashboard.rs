//! The dashboard API (the seed's `/api/dashboard/*`): parameters in, answers out. Which road
//! an answer takes (the engine's hourly rollups or SQL over `events`) and the answers
//! themselves are `query::dashboard`'s.
//!
//! Common parameters: `app_id` (required), `from` / `to` (RFC 3339, a date or epoch ms;
//! default the 7 days up to the end of the current UTC hour), `source=auto|rollup|scan`
//! (default auto; `rollup` needs whole UTC hours except for the funnel). Callers without access
//! to the app get 404, as if it did not exist. Reads are not audited (they change nothing and
//! the SQL endpoint is the one that can read everything).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use engine::HOUR_MS;
use query::attribution::{parse_time_ms, parse_window_ms, DAY_MS};
use query::dashboard::{Ask, Interval, Source};
use serde_json::Value;

use super::ApiError;
use crate::node::AppState;
use crate::security::Caller;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// One request's app, range and other parameters, checked against the caller's access.
struct Request {
    ask: Ask,
    q: HashMap<String, String>,
}

impl Request {
    fn parse(
        state: &AppState,
        caller: &Caller,
        q: Params,
        extra: &[&str],
    ) -> Result<Self, ApiError> {
        let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
        let p = super::app_read::user(caller)?;
        if let Some(k) = q.keys().find(|k| {
            !k.starts_with('_')
                && !["app_id", "from", "to", "source"].contains(&k.as_str())
                && !extra.contains(&k.as_str())
        }) {
            return Err(ApiError::invalid(format!("unknown parameter {k:?}")));
        }
        let app = q
            .get("app_id")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ApiError::invalid("app_id is required"))?
            .clone();
        let now = chrono::Utc::now().timestamp_millis();
        let time = |k: &str, default: i64| -> Result<i64, ApiError> {
            q.get(k).map_or(Ok(default), |v| {
                parse_time_ms(v).map_err(|e| ApiError::invalid(format!("{k}: {e}")))
            })
        };
        let to = time("to", now.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS)?;
        let from = time("from", to - 7 * DAY_MS)?;
        if from >= to {
            return Err(ApiError::invalid("from must be before to"));
        }
        let source = match q.get("source").map_or("auto", String::as_str) {
            "auto" => Source::Auto,
            "rollup" => Source::Rollup,
            "scan" => Source::Scan,
            other => {
                return Err(ApiError::invalid(format!(
                    "source {other:?}: auto, rollup or scan"
                )))
            }
        };
        let scope = super::app_read::app_scope(state, p, &app)?;
        Ok(Self {
            ask: Ask {
                app,
                from,
                to,
                source,
                scope,
                user: p.user_id.clone(),
            },
            q,
        })
    }

    /// `source=rollup` on a range that is not whole UTC hours is an error (the hourly rollups
    /// cannot answer it); the funnel's step times can answer any range.
    fn check_rollup_range(&self) -> Result<(), ApiError> {
        let whole = self.ask.from.rem_euclid(HOUR_MS) == 0 && self.ask.to.rem_euclid(HOUR_MS) == 0;
        if self.ask.source == Source::Rollup && !whole {
            return Err(ApiError::invalid(
                "source=rollup needs from and to on whole UTC hours",
            ));
        }
        Ok(())
    }

    fn int(&self, k: &str, default: i64, max: i64) -> Result<i64, ApiError> {
        let v = match self.q.get(k) {
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::invalid(format!("{k}: {v:?} is not a number")))?,
            None => default,
        };
        if !(1..=max).contains(&v) {
            return Err(ApiError::invalid(format!("{k} must be within 1..={max}")));
        }
        Ok(v)
    }
}

fn event_type(s: &str) -> Result<String, ApiError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    ok.then(|| s.to_string())
        .ok_or_else(|| ApiError::invalid(format!("{s:?} is not an event type")))
}

/// `GET /api/dashboard/stats` → totals over the range (`query::dashboard`).
pub(crate) async fn stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &[])?;
    r.check_rollup_range()?;
    state.cluster.read_barrier().await?;
    Ok(Json(state.query.dashboard().stats(&r.ask).await?))
}

/// `GET /api/dashboard/charts/events-over-time?interval=hour|day`.
pub(crate) async fn events_over_time(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["interval"])?;
    let interval = match r.q.get("interval").map_or("hour", String::as_str) {
        "hour" => Interval::Hour,
        "day" => Interval::Day,
        other => {
            return Err(ApiError::invalid(format!(
                "interval {other:?}: hour or day"
            )))
        }
    };
    r.check_rollup_range()?;
    state.cluster.read_barrier().await?;
    Ok(Json(
        state
            .query
            .dashboard()
            .events_over_time(&r.ask, interval)
            .await?,
    ))
}

/// `GET /api/dashboard/charts/platforms`.
pub(crate) async fn platforms(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &[])?;
    r.check_rollup_range()?;
    state.cluster.read_barrier().await?;
    Ok(Json(state.query.dashboard().platforms(&r.ask).await?))
}

/// `GET /api/dashboard/charts/top-campaigns?limit=10`.
pub(crate) async fn top_campaigns(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["limit"])?;
    let limit = r.int("limit", 10, 1000)? as usize;
    r.check_rollup_range()?;
    state.cluster.read_barrier().await?;
    Ok(Json(
        state.query.dashboard().top_campaigns(&r.ask, limit).await?,
    ))
}

/// `GET /api/dashboard/charts/user-retention?days=7&cohort_event=install`.
pub(crate) async fn user_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["days", "cohort_event"])?;
    let days = r.int("days", 7, 90)? as u32;
    let cohort_event = event_type(r.q.get("cohort_event").map_or("install", String::as_str))?;
    r.check_rollup_range()?;
    state.cluster.read_barrier().await?;
    Ok(Json(
        state
            .query
            .dashboard()
            .user_retention(&r.ask, days, &cohort_event)
            .await?,
    ))
}

/// `GET /api/dashboard/charts/funnel?steps=ad_click,install,purchase&window=7d`.
pub(crate) async fn funnel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["steps", "window"])?;
    let steps: Vec<String> =
        r.q.get("steps")
            .map_or("ad_click,install,purchase", String::as_str)
            .split(',')
            .map(|s| event_type(s.trim()))
            .collect::<Result<_, _>>()?;
    if !(2..=8).contains(&steps.len()) {
        return Err(ApiError::invalid(
            "steps: 2 to 8 comma-separated event types",
        ));
    }
    let window = r.q.get("window").map_or(Ok(7 * DAY_MS), |w| {
        parse_window_ms(w).map_err(|e| ApiError::invalid(format!("window: {e}")))
    })?;
    state.cluster.read_barrier().await?;
    Ok(Json(
        state
            .query
            .dashboard()
            .funnel(&r.ask, &steps, window)
            .await?,
    ))
}
