//! The SQL each dashboard answer runs when the rollups cannot answer it (`source=scan`, or a
//! range that is not whole hours). The app and event types are quoted literals; the numbers
//! were parsed by the caller.

use super::{Ask, Interval};

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `app_id = … AND timestamp` within the range.
fn range(ask: &Ask) -> String {
    format!(
        "app_id = {} AND timestamp >= to_timestamp_millis({}) AND timestamp < to_timestamp_millis({})",
        lit(&ask.app),
        ask.from,
        ask.to
    )
}

pub(super) fn stats(ask: &Ask) -> String {
    format!(
        "SELECT count() AS total_events, uniqExact(user_id) AS active_users, coalesce(sum(revenue), 0) AS revenue, \
         countIf(event_type = 'install') AS installs, countIf(event_type = 'purchase') AS purchases \
         FROM events WHERE {}",
        range(ask)
    )
}

pub(super) fn events_over_time(ask: &Ask, interval: Interval) -> String {
    let bucket = match interval {
        Interval::Hour => "toStartOfHour(timestamp)",
        Interval::Day => "toStartOfDay(timestamp)",
    };
    format!(
        "SELECT {bucket} AS time, count() AS events, uniqExact(user_id) AS users, coalesce(sum(revenue), 0) AS revenue \
         FROM events WHERE {} GROUP BY time ORDER BY time",
        range(ask)
    )
}

pub(super) fn platforms(ask: &Ask) -> String {
    format!(
        "SELECT platform, count() AS events, uniqExact(user_id) AS users FROM events WHERE {} \
         GROUP BY platform ORDER BY events DESC, platform",
        range(ask)
    )
}

pub(super) fn top_campaigns(ask: &Ask, limit: usize) -> String {
    format!(
        "SELECT attribution_campaign AS campaign, attribution_source AS source, attribution_medium AS medium, \
         count() AS events, countIf(event_type = 'install') AS installs, countIf(event_type = 'purchase') AS purchases, \
         coalesce(sumIf(revenue, event_type = 'purchase'), 0) AS revenue, uniqExact(user_id) AS users \
         FROM events WHERE {} AND attribution_campaign IS NOT NULL \
         GROUP BY campaign, source, medium ORDER BY installs DESC, revenue DESC, campaign, source, medium LIMIT {limit}",
        range(ask)
    )
}

pub(super) fn user_retention(ask: &Ask, days: u32, cohort_event: &str) -> String {
    format!(
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
        range = range(ask),
        ev = lit(cohort_event),
        app = lit(&ask.app),
        from = ask.from,
        to = ask.to,
    )
}

/// s1: each user's first step-1 time in the range; s(k): the first step-k time after the
/// user's step-(k-1) time and within the window of its step-1 time.
pub(super) fn funnel(ask: &Ask, steps: &[String], window: i64) -> String {
    let mut ctes = vec![format!(
        "s1 AS (SELECT user_id, min(timestamp) AS t0, min(timestamp) AS t FROM events \
         WHERE {} AND event_type = {} AND user_id IS NOT NULL GROUP BY user_id)",
        range(ask),
        lit(&steps[0])
    )];
    for (i, step) in steps.iter().enumerate().skip(1) {
        ctes.push(format!(
            "s{k} AS (SELECT p.user_id, p.t0, min(e.timestamp) AS t FROM s{i} p JOIN events e ON e.user_id = p.user_id \
             WHERE e.app_id = {app} AND e.event_type = {ev} AND e.timestamp > p.t \
               AND e.timestamp <= p.t0 + INTERVAL '{window} milliseconds' GROUP BY p.user_id, p.t0)",
            k = i + 1,
            app = lit(&ask.app),
            ev = lit(step),
        ));
    }
    let counts: Vec<String> = (1..=steps.len())
        .map(|k| format!("(SELECT count() FROM s{k}) AS s{k}"))
        .collect();
    format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", "))
}
