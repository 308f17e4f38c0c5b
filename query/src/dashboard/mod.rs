//! [`Dashboard`]: the dashboard's numbers for one app over a time range (the seed's
//! `/api/dashboard/*`), each from the engine's hourly rollups (bitmap unions, no scan) when
//! they can answer, or from one SQL statement over `events` within the caller's scope. The
//! choice is made here, and every answer says which road it took (`"source"`). HTTP parses
//! the parameters into an [`Ask`] and writes the answer; the read barrier is the caller's.

mod sql;

use engine::{CampaignSets, Hours, Rollups, HOUR_MS};
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::service::{QueryOptions, QueryService, Scope};

/// Where an answer may come from (`source=auto|rollup|scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The rollups when the range is whole UTC hours, else a scan.
    Auto,
    /// The rollups (the caller checked the range is whole hours where that matters).
    Rollup,
    /// Always SQL over the events.
    Scan,
}

/// One dashboard request: an app the caller may read, a range, and who asks.
#[derive(Debug, Clone)]
pub struct Ask {
    pub app: String,
    /// Epoch ms, inclusive.
    pub from: i64,
    /// Epoch ms, exclusive.
    pub to: i64,
    pub source: Source,
    /// The caller's scope (their apps).
    pub scope: Scope,
    /// For admission (per user).
    pub user: String,
}

impl Ask {
    /// The range as whole hour numbers, when the rollups may answer it.
    fn rollup_hours(&self) -> Option<std::ops::Range<i64>> {
        let whole = self.from.rem_euclid(HOUR_MS) == 0 && self.to.rem_euclid(HOUR_MS) == 0;
        (whole && self.source != Source::Scan).then(|| self.from / HOUR_MS..self.to / HOUR_MS)
    }
}

/// Chart buckets of events over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    fn name(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }
}

/// The dashboard's queries over one [`QueryService`] (and its engine's rollups).
pub struct Dashboard<'a> {
    svc: &'a QueryService,
}

impl QueryService {
    pub fn dashboard(&self) -> Dashboard<'_> {
        Dashboard { svc: self }
    }
}

impl Dashboard<'_> {
    /// `f` of the rollups with every day of `app`'s `hours` in memory (days the engine left in
    /// the segments' summaries are read back first).
    async fn rollups<T: Send + 'static>(
        &self,
        app: &str,
        hours: std::ops::Range<i64>,
        f: impl FnOnce(&Rollups) -> T + Send + 'static,
    ) -> Result<T> {
        Ok(crate::rollup::rollups_over(self.svc.engine(), app, hours, f).await?)
    }

    /// `app`'s hours over `hours` (hour numbers, end exclusive).
    async fn hours(&self, app: &str, hours: std::ops::Range<i64>) -> Result<Hours> {
        Ok(crate::rollup::hours_over(self.svc.engine(), app, hours).await?)
    }

    /// `app`'s campaign days over `hours`.
    async fn campaigns(&self, app: &str, hours: std::ops::Range<i64>) -> Result<CampaignSets> {
        Ok(crate::rollup::campaigns_over(self.svc.engine(), app, hours).await?)
    }

    async fn rows(&self, ask: &Ask, sql: &str) -> Result<Vec<Map<String, Value>>> {
        let opts = QueryOptions {
            user: ask.user.clone(),
            timeout: None,
            now: None,
        };
        let scope = Scope {
            scan_only: ask.source == Source::Scan,
            ..ask.scope.clone()
        };
        let mut stream = self.svc.start(sql, scope, opts).await?;
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b?);
        }
        crate::format::to_objects(&batches)
    }

    /// `{"total_events","active_users","revenue","conversion_rate","installs","purchases",
    /// "from","to","source"}` (`conversion_rate`: purchases / installs, null without installs).
    pub async fn stats(&self, ask: &Ask) -> Result<Value> {
        if let Some(hours) = ask.rollup_hours() {
            let t = self.hours(&ask.app, hours).await?.totals();
            let n = |k: &str| t.by_type.get(k).copied().unwrap_or(0);
            let rate = (n("install") > 0).then(|| n("purchase") as f64 / n("install") as f64);
            return Ok(json!({
                "total_events": t.events,
                "active_users": t.users,
                "revenue": t.revenue,
                "conversion_rate": rate,
                "installs": n("install"),
                "purchases": n("purchase"),
                "from": ask.from, "to": ask.to, "source": "rollup",
            }));
        }
        let row = self
            .rows(ask, &sql::stats(ask))
            .await?
            .pop()
            .unwrap_or_default();
        let n = |k: &str| row.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let rate = (n("installs") > 0.0).then(|| n("purchases") / n("installs"));
        Ok(json!({
            "total_events": n("total_events") as u64,
            "active_users": n("active_users") as u64,
            "revenue": n("revenue"),
            "conversion_rate": rate,
            "installs": n("installs") as u64,
            "purchases": n("purchases") as u64,
            "from": ask.from, "to": ask.to, "source": "scan",
        }))
    }

    /// `{"interval","points":[{"time","events","users","revenue"}],"source"}`.
    pub async fn events_over_time(&self, ask: &Ask, interval: Interval) -> Result<Value> {
        if let Some(hours) = ask.rollup_hours() {
            let width = match interval {
                Interval::Hour => 1,
                Interval::Day => 24,
            };
            let points: Vec<Value> = self
                .hours(&ask.app, hours)
                .await?
                .buckets(width)
                .into_iter()
                .map(|b| {
                    json!({"time": utc_text(b.start_ms), "events": b.totals.events,
                        "users": b.totals.users, "revenue": b.totals.revenue})
                })
                .collect();
            return Ok(json!({"interval": interval.name(), "points": points, "source": "rollup"}));
        }
        let points = self
            .rows(ask, &sql::events_over_time(ask, interval))
            .await?;
        Ok(json!({"interval": interval.name(), "points": points, "source": "scan"}))
    }

    /// `{"rows":[{"platform","events","users"}],"source"}`, most events first.
    pub async fn platforms(&self, ask: &Ask) -> Result<Value> {
        if let Some(hours) = ask.rollup_hours() {
            let t = self.hours(&ask.app, hours).await?.totals();
            let mut rows: Vec<(String, (u64, u64))> = t.platforms.into_iter().collect();
            rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
            let rows: Vec<Value> = rows
                .into_iter()
                .map(
                    |(p, (events, users))| json!({"platform": p, "events": events, "users": users}),
                )
                .collect();
            return Ok(table(rows, "rollup"));
        }
        Ok(table(self.rows(ask, &sql::platforms(ask)).await?, "scan"))
    }

    /// `{"rows":[{"campaign","source","medium","events","installs","purchases","revenue",
    /// "users"}],"source"}`: the `limit` campaigns with most installs, then revenue.
    pub async fn top_campaigns(&self, ask: &Ask, limit: usize) -> Result<Value> {
        if let Some(hours) = ask.rollup_hours() {
            let mut rows = self.campaigns(&ask.app, hours).await?.totals();
            // The scan's order: installs, revenue (both descending), then the names.
            rows.sort_by(|a, b| {
                b.installs
                    .cmp(&a.installs)
                    .then_with(|| b.revenue.total_cmp(&a.revenue))
                    .then_with(|| a.key.cmp(&b.key))
            });
            let rows: Vec<Value> = rows
                .into_iter()
                .take(limit)
                .map(|c| {
                    json!({"campaign": c.key.campaign, "source": c.key.source, "medium": c.key.medium,
                        "events": c.events, "installs": c.installs, "purchases": c.purchases,
                        "revenue": c.revenue, "users": c.users})
                })
                .collect();
            return Ok(table(rows, "rollup"));
        }
        Ok(table(
            self.rows(ask, &sql::top_campaigns(ask, limit)).await?,
            "scan",
        ))
    }

    /// Day-N cohorts: users whose first `cohort_event` in the range fell on a day, and how
    /// many of them were active (any event) N days later:
    /// `{"cohort_event","days","cohorts":[{"cohort","size","retained":[d0,…,dN]}],"source"}`.
    pub async fn user_retention(&self, ask: &Ask, days: u32, cohort_event: &str) -> Result<Value> {
        let answer = |cohorts: Vec<(String, Vec<u64>)>, source: &str| {
            let cohorts: Vec<Value> = cohorts
                .into_iter()
                .map(
                    |(c, retained)| json!({"cohort": c, "size": retained[0], "retained": retained}),
                )
                .collect();
            json!({"cohort_event": cohort_event, "days": days, "cohorts": cohorts, "source": source})
        };
        if let Some(hours) = ask.rollup_hours() {
            let active_hours = hours.start..hours.end + i64::from(days) * 24;
            let app = ask.app.clone();
            let (first, active) = self
                .rollups(&ask.app, hours.start..active_hours.end, move |x| {
                    (x.hours(&app, hours), x.hours(&app, active_hours))
                })
                .await?;
            let cohorts = engine::retention(&first, &active, cohort_event, days)
                .into_iter()
                .map(|c| (utc_day(c.day_ms), c.retained))
                .collect();
            return Ok(answer(cohorts, "rollup"));
        }
        let rows = self
            .rows(ask, &sql::user_retention(ask, days, cohort_event))
            .await?;
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

    /// Users who did each step in order, each within `window_ms` of their first step:
    /// `{"window_ms","steps":[{"event_type","users","conversion"}],"source"}` (`conversion`:
    /// of the first step). From the rollups' step times, which hold exact times and so answer
    /// any range, unless `source=scan` (the same answer by SQL).
    pub async fn funnel(&self, ask: &Ask, steps: &[String], window_ms: i64) -> Result<Value> {
        let rollup = ask.source != Source::Scan;
        let users: Vec<u64> = if rollup {
            let names: Vec<&str> = steps.iter().map(String::as_str).collect();
            // Days the memory budget left in the segments' summaries are read back (disk).
            let engine = self.svc.engine().clone();
            let (app, from, to) = (ask.app.clone(), ask.from, ask.to);
            tokio::task::spawn_blocking(move || engine.step_days(&app, from, to, window_ms))
                .await
                .map_err(|e| crate::QueryError::Execution(e.to_string()))??
                .funnel(&names, ask.from, ask.to, window_ms)
                .iter()
                .map(|s| s.users)
                .collect()
        } else {
            let row = self
                .rows(ask, &sql::funnel(ask, steps, window_ms))
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
                json!({"event_type": s, "users": users,
                    "conversion": (first > 0).then(|| users as f64 / first as f64)})
            })
            .collect();
        let source = if rollup { "rollup" } else { "scan" };
        Ok(json!({"window_ms": window_ms, "steps": out, "source": source}))
    }
}

/// The answer of the table-shaped charts: `{"rows":[…],"source":…}`.
fn table<T: serde::Serialize>(rows: Vec<T>, source: &str) -> Value {
    json!({"rows": rows, "source": source})
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
