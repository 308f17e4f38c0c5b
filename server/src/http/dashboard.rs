//! The dashboard API (the seed's `/api/dashboard/*`): one app's numbers over a time range,
//! each answered by one SQL query over `events` within the caller's app scope.
//!
//! Common parameters: `app_id` (required), `from` / `to` (RFC 3339, a date or epoch ms;
//! default the 7 days up to the end of the current UTC hour). Callers without access to the
//! app get 404, as if it did not exist.
//!
//! `stats`, `events-over-time` and `platforms` are answered from the engine's hourly rollups
//! (bitmap unions, no scan) when `from` and `to` fall on whole UTC hours, and by SQL otherwise;
//! `source=rollup|scan|auto` (default auto) chooses, and every answer says which it used. Reads are not audited (they change nothing and the SQL endpoint is the one
//! that can read everything).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use engine::HOUR_MS;
use query::attribution::{parse_time_ms, parse_window_ms, DAY_MS};
use serde_json::{json, Map, Value};

use super::ApiError;
use crate::node::AppState;
use crate::security::Caller;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// One request's app, range and other parameters, checked against the caller's access.
struct Request {
    app: String,
    from: i64,
    to: i64,
    q: HashMap<String, String>,
    scope: query::Scope,
    user: String,
}

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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
        let scope = super::app_read::app_scope(state, p, &app)?;
        Ok(Self {
            app,
            from,
            to,
            q,
            scope,
            user: p.user_id.clone(),
        })
    }

    /// `app_id = … AND timestamp` within the range.
    fn range(&self) -> String {
        format!(
            "app_id = {} AND timestamp >= to_timestamp_millis({}) AND timestamp < to_timestamp_millis({})",
            lit(&self.app),
            self.from,
            self.to
        )
    }

    /// The range as whole hour numbers, when the rollups can answer it (and were not refused
    /// by `source=scan`); `source=rollup` on a range that is not whole hours is an error.
    fn rollup_hours(&self) -> Result<Option<std::ops::Range<i64>>, ApiError> {
        let whole = self.from.rem_euclid(HOUR_MS) == 0 && self.to.rem_euclid(HOUR_MS) == 0;
        let hours = whole.then(|| self.from / HOUR_MS..self.to / HOUR_MS);
        match self.source()? {
            "auto" => Ok(hours),
            "scan" => Ok(None),
            _ => hours.map(Some).ok_or_else(|| {
                ApiError::invalid("source=rollup needs from and to on whole UTC hours")
            }),
        }
    }

    /// `source`: auto (default), rollup or scan.
    fn source(&self) -> Result<&str, ApiError> {
        match self.q.get("source").map_or("auto", String::as_str) {
            s @ ("auto" | "rollup" | "scan") => Ok(s),
            other => Err(ApiError::invalid(format!(
                "source {other:?}: auto, rollup or scan"
            ))),
        }
    }

    /// Whether a funnel comes from the rollups' step times, which hold exact times and so
    /// answer any range (`source=auto` or `rollup`), or from SQL (`source=scan`).
    fn funnel_from_rollups(&self) -> Result<bool, ApiError> {
        Ok(self.source()? != "scan")
    }

    /// The engine's rollups, after the same read barrier a query passes.
    async fn rollups<T>(
        &self,
        state: &AppState,
        f: impl FnOnce(&engine::Rollups) -> T,
    ) -> Result<T, ApiError> {
        state.cluster.read_barrier().await?;
        let r = state.engine.rollups();
        Ok(f(&r))
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

    async fn rows(&self, state: &AppState, sql: &str) -> Result<Vec<Map<String, Value>>, ApiError> {
        state.cluster.read_barrier().await?;
        let opts = query::QueryOptions {
            user: self.user.clone(),
            timeout: None,
            now: None,
        };
        let scope = query::Scope {
            scan_only: self.source()? == "scan",
            ..self.scope.clone()
        };
        let mut stream = state.query.start(sql, scope, opts).await?;
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b?);
        }
        Ok(query::format::to_objects(&batches)?)
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

/// `GET /api/dashboard/stats` → `{"total_events","active_users","revenue","conversion_rate"}`
/// (`conversion_rate`: purchases / installs in the range, null without installs).
pub(crate) async fn stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &[])?;
    if let Some(hours) = r.rollup_hours()? {
        let t = r
            .rollups(&state, |x| x.hours(&r.app, hours))
            .await?
            .totals();
        let n = |k: &str| t.by_type.get(k).copied().unwrap_or(0);
        let rate = (n("install") > 0).then(|| n("purchase") as f64 / n("install") as f64);
        return Ok(Json(json!({
            "total_events": t.events,
            "active_users": t.users,
            "revenue": t.revenue,
            "conversion_rate": rate,
            "installs": n("install"),
            "purchases": n("purchase"),
            "from": r.from, "to": r.to, "source": "rollup",
        })));
    }
    let sql = format!(
        "SELECT count() AS total_events, uniqExact(user_id) AS active_users, coalesce(sum(revenue), 0) AS revenue, \
         countIf(event_type = 'install') AS installs, countIf(event_type = 'purchase') AS purchases \
         FROM events WHERE {}",
        r.range()
    );
    let row = r.rows(&state, &sql).await?.pop().unwrap_or_default();
    let n = |k: &str| row.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let rate = (n("installs") > 0.0).then(|| n("purchases") / n("installs"));
    Ok(Json(json!({
        "total_events": n("total_events") as u64,
        "active_users": n("active_users") as u64,
        "revenue": n("revenue"),
        "conversion_rate": rate,
        "installs": n("installs") as u64,
        "purchases": n("purchases") as u64,
        "from": r.from, "to": r.to, "source": "scan",
    })))
}

/// `GET /api/dashboard/charts/events-over-time?interval=hour|day` →
/// `{"interval","points":[{"time","events","users","revenue"}]}`.
pub(crate) async fn events_over_time(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["interval"])?;
    let interval = r.q.get("interval").map_or("hour", String::as_str);
    let (bucket, width) = match interval {
        "hour" => ("toStartOfHour(timestamp)", 1),
        "day" => ("toStartOfDay(timestamp)", 24),
        other => {
            return Err(ApiError::invalid(format!(
                "interval {other:?}: hour or day"
            )))
        }
    };
    if let Some(hours) = r.rollup_hours()? {
        let buckets = r
            .rollups(&state, |x| x.hours(&r.app, hours))
            .await?
            .buckets(width);
        let points: Vec<Value> = buckets
            .into_iter()
            .map(|b| {
                json!({"time": utc_text(b.start_ms), "events": b.totals.events,
                    "users": b.totals.users, "revenue": b.totals.revenue})
            })
            .collect();
        return Ok(Json(
            json!({"interval": interval, "points": points, "source": "rollup"}),
        ));
    }
    let sql = format!(
        "SELECT {bucket} AS time, count() AS events, uniqExact(user_id) AS users, coalesce(sum(revenue), 0) AS revenue \
         FROM events WHERE {} GROUP BY time ORDER BY time",
        r.range()
    );
    Ok(Json(
        json!({"interval": interval, "points": r.rows(&state, &sql).await?, "source": "scan"}),
    ))
}

/// `GET /api/dashboard/charts/platforms` → `{"rows":[{"platform","events","users"}]}`.
pub(crate) async fn platforms(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &[])?;
    if let Some(hours) = r.rollup_hours()? {
        let t = r
            .rollups(&state, |x| x.hours(&r.app, hours))
            .await?
            .totals();
        let mut rows: Vec<(String, (u64, u64))> = t.platforms.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|(p, (events, users))| json!({"platform": p, "events": events, "users": users}))
            .collect();
        return Ok(table(rows, "rollup"));
    }
    let sql = format!(
        "SELECT platform, count() AS events, uniqExact(user_id) AS users FROM events WHERE {} \
         GROUP BY platform ORDER BY events DESC, platform",
        r.range()
    );
    Ok(table(r.rows(&state, &sql).await?, "scan"))
}

/// `GET /api/dashboard/charts/top-campaigns?limit=10` →
/// `{"rows":[{"campaign","source","medium","events","installs","purchases","revenue","users"}]}`.
pub(crate) async fn top_campaigns(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["limit"])?;
    let limit = r.int("limit", 10, 1000)?;
    if let Some(hours) = r.rollup_hours()? {
        let mut rows = r
            .rollups(&state, |x| x.campaigns(&r.app, hours))
            .await?
            .totals();
        // The scan's order: installs, revenue (both descending), then the names.
        rows.sort_by(|a, b| {
            b.installs
                .cmp(&a.installs)
                .then_with(|| b.revenue.total_cmp(&a.revenue))
                .then_with(|| a.key.cmp(&b.key))
        });
        let rows: Vec<Value> = rows
            .into_iter()
            .take(limit as usize)
            .map(|c| {
                json!({"campaign": c.key.campaign, "source": c.key.source, "medium": c.key.medium,
                    "events": c.events, "installs": c.installs, "purchases": c.purchases,
                    "revenue": c.revenue, "users": c.users})
            })
            .collect();
        return Ok(table(rows, "rollup"));
    }
    let sql = format!(
        "SELECT attribution_campaign AS campaign, attribution_source AS source, attribution_medium AS medium, \
         count() AS events, countIf(event_type = 'install') AS installs, countIf(event_type = 'purchase') AS purchases, \
         coalesce(sumIf(revenue, event_type = 'purchase'), 0) AS revenue, uniqExact(user_id) AS users \
         FROM events WHERE {} AND attribution_campaign IS NOT NULL \
         GROUP BY campaign, source, medium ORDER BY installs DESC, revenue DESC, campaign, source, medium LIMIT {limit}",
        r.range()
    );
    Ok(table(r.rows(&state, &sql).await?, "scan"))
}

/// `GET /api/dashboard/charts/user-retention?days=7&cohort_event=install` → day-N cohorts:
/// users whose first `cohort_event` in the range fell on a day, and how many of them were
/// active (any event) N days later: `{"cohorts":[{"cohort","size","retained":[d0,…,dN]}]}`.
pub(crate) async fn user_retention(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let r = Request::parse(&state, &caller, q, &["days", "cohort_event"])?;
    let days = r.int("days", 7, 90)?;
    let cohort_event = event_type(r.q.get("cohort_event").map_or("install", String::as_str))?;
    let answer = |cohorts: Vec<(String, Vec<u64>)>, source: &str| {
        let cohorts: Vec<Value> = cohorts
            .into_iter()
            .map(|(c, retained)| json!({"cohort": c, "size": retained[0], "retained": retained}))
            .collect();
        Json(
            json!({"cohort_event": cohort_event, "days": days, "cohorts": cohorts, "source": source}),
        )
    };
    if let Some(hours) = r.rollup_hours()? {
        let active_hours = hours.start..hours.end + days * 24;
        let (first, active) = r
            .rollups(&state, |x| {
                (
                    x.hours(&r.app, hours.clone()),
                    x.hours(&r.app, active_hours),
                )
            })
            .await?;
        let cohorts = engine::retention(&first, &active, &cohort_event, days as u32)
            .into_iter()
            .map(|c| (utc_day(c.day_ms), c.retained))
            .collect();
        return Ok(answer(cohorts, "rollup"));
    }
    let sql = format!(
        "WITH first AS (SELECT user_id, min(date_trunc('day', timestamp)) AS d0 FROM events \
           WHERE {range} AND event_type = {ev} AND user_id IS NOT NULL GROUP BY user_id), \
         active AS (SELECT DISTINCT user_id, date_trunc('day', timestamp) AS d FROM events \
           WHERE app_id = {app} AND timestamp >= to_timestamp_millis({from}) \
             AND timestamp < to_timestamp_millis({to}) + INTERVAL '{days} days' AND user_id IS NOT NULL) \
         SELECT to_char(f.d0, '%Y-%m-%d') AS cohort, \
           CAST((to_unixtime(a.d) - to_unixtime(f.d0)) / 86400 AS BIGINT) AS day, \
           count(DISTINCT f.user_id) AS users \
         FROM first f JOIN active a ON a.user_id = f.user_id AND a.d >= f.d0 \
           AND a.d <= f.d0 + INTERVAL '{days} days' \
         GROUP BY cohort, day ORDER BY cohort, day",
        range = r.range(),
        ev = lit(&cohort_event),
        app = lit(&r.app),
        from = r.from,
        to = r.to,
    );
    let rows = r.rows(&state, &sql).await?;
    let mut cohorts: Vec<(String, Vec<u64>)> = Vec::new();
    for row in rows {
        let cohort = row
            .get("cohort")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let day = row.get("day").and_then(Value::as_u64).unwrap_or(0) as usize;
        let users = row.get("users").and_then(Value::as_u64).unwrap_or(0);
        if cohorts.last().is_none_or(|c| c.0 != cohort) {
            cohorts.push((cohort, vec![0; days as usize + 1]));
        }
        if let Some(c) = cohorts.last_mut() {
            if day < c.1.len() {
                c.1[day] = users;
            }
        }
    }
    Ok(answer(cohorts, "scan"))
}

/// `GET /api/dashboard/charts/funnel?steps=ad_click,install,purchase&window=7d` → users who
/// did each step in order, each within `window` of their first step:
/// `{"window_ms","steps":[{"event_type","users","conversion"}],"source"}` (`conversion`: of the
/// first step). From the rollups' step times unless `source=scan` (the same answer by SQL).
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
    let rollup = r.funnel_from_rollups()?;
    let source = if rollup { "rollup" } else { "scan" };
    let users: Vec<u64> = if rollup {
        let names: Vec<&str> = steps.iter().map(String::as_str).collect();
        r.rollups(&state, |x| x.step_days(&r.app, r.from, r.to, window))
            .await?
            .funnel(&names, r.from, r.to, window)
            .iter()
            .map(|s| s.users)
            .collect()
    } else {
        let row = r
            .rows(&state, &funnel_sql(&r, &steps, window))
            .await?
            .pop()
            .unwrap_or_default();
        (1..=steps.len())
            .map(|k| {
                row.get(&format!("s{k}"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            })
            .collect()
    };
    let first = users.first().copied().unwrap_or(0);
    let out: Vec<Value> = steps
        .iter()
        .zip(&users)
        .map(|(s, &users)| {
            json!({"event_type": s, "users": users, "conversion": (first > 0).then(|| users as f64 / first as f64)})
        })
        .collect();
    Ok(Json(
        json!({"window_ms": window, "steps": out, "source": source}),
    ))
}

/// The funnel as SQL over the events table (`source=scan`).
fn funnel_sql(r: &Request, steps: &[String], window: i64) -> String {
    // s1: each user's first step-1 time in the range; s(k): the first step-k time after the
    // user's step-(k-1) time and within the window of its step-1 time.
    let mut ctes = vec![format!(
        "s1 AS (SELECT user_id, min(timestamp) AS t0, min(timestamp) AS t FROM events \
         WHERE {} AND event_type = {} AND user_id IS NOT NULL GROUP BY user_id)",
        r.range(),
        lit(&steps[0])
    )];
    for (i, step) in steps.iter().enumerate().skip(1) {
        ctes.push(format!(
            "s{k} AS (SELECT p.user_id, p.t0, min(e.timestamp) AS t FROM s{i} p JOIN events e ON e.user_id = p.user_id \
             WHERE e.app_id = {app} AND e.event_type = {ev} AND e.timestamp > p.t \
               AND e.timestamp <= p.t0 + INTERVAL '{window} milliseconds' GROUP BY p.user_id, p.t0)",
            k = i + 1,
            app = lit(&r.app),
            ev = lit(step),
        ));
    }
    let counts: Vec<String> = (1..=steps.len())
        .map(|k| format!("(SELECT count() FROM s{k}) AS s{k}"))
        .collect();
    format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", "))
}

/// The answer of the table-shaped charts: `{"rows":[…],"source":…}`.
fn table<T: serde::Serialize>(rows: Vec<T>, source: &str) -> Json<Value> {
    Json(json!({"rows": rows, "source": source}))
}

/// A UTC day as `YYYY-MM-DD`.
fn utc_day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A bucket start as the SQL answers render a UTC timestamp (`2026-11-21T13:00:00Z`).
fn utc_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}
