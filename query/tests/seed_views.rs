//! The seed's views (issue 28): `dashboard_stats` / `dashboard_stats_mv` equal the seed's
//! materialized-view SQL over `events`, `user_retention_mv` answers the seed's retention chart
//! query as a direct computation over the events does, both are scoped to the caller's apps
//! like `events`, and neither can be written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};
use unmogrowp_query::{QueryConfig, QueryService, Scope};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(i: i64) -> Event {
    Event {
        // Every 47 minutes over ~20 days.
        timestamp_ms: T0 + i * 47 * 60_000,
        app_id: if i % 4 == 0 { "b" } else { "a" }.into(),
        event_type: ["install", "open", "purchase"][(i % 3) as usize].into(),
        user_id: (i % 11 != 0).then(|| format!("u{}", (i * 7) % 37)),
        session_id: None,
        device_id: format!("d{i}"),
        platform: "ios".into(),
        app_version: None,
        attribution: Attribution::default(),
        event_data: vec![],
        revenue: (i % 3 == 2).then_some((i % 10) as f64 + 0.25),
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: T0,
        event_id: Some(format!("e{i}")),
    }
}

fn service() -> (QueryService, Vec<Event>) {
    let (on, _, events) = services();
    (on, events)
}

/// The same engine behind two services: rollup answers on and off.
fn services() -> (QueryService, QueryService, Vec<Event>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let engine = Engine::open(&dir, EngineConfig::default()).unwrap();
    let events: Vec<Event> = (0..600).map(event).collect();
    engine
        .apply(ApplyBatch::one_entry(
            1,
            events[..300].iter().map(Event::as_ref).collect(),
        ))
        .unwrap();
    engine.flush().unwrap();
    engine
        .apply(ApplyBatch::one_entry(
            2,
            events[300..].iter().map(Event::as_ref).collect(),
        ))
        .unwrap();
    let off = QueryConfig {
        rollup_answers: false,
        ..QueryConfig::default()
    };
    (
        QueryService::new(engine.clone(), QueryConfig::default()).unwrap(),
        QueryService::new(engine, off).unwrap(),
        events,
    )
}

async fn text(q: &QueryService, sql: &str, scope: &Scope) -> String {
    let (_, batches) = q
        .run_at(sql, scope, None)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn dashboard_stats_is_the_seeds_view_over_events() {
    let (q, _) = service();
    let all = Scope::default();
    let view = "SELECT app_id, hour, event_count, unique_users, round(revenue, 6) AS revenue \
                FROM dashboard_stats ORDER BY app_id, hour";
    let direct = "SELECT app_id, toStartOfHour(timestamp) AS hour, count() AS event_count, \
                  uniqExact(user_id) AS unique_users, round(coalesce(sum(revenue), 0), 6) AS revenue \
                  FROM events GROUP BY app_id, hour ORDER BY app_id, hour";
    let a = text(&q, view, &all).await;
    assert_eq!(a, text(&q, direct, &all).await);
    assert!(a.lines().count() > 300, "{a}");
    assert_eq!(
        a,
        text(
            &q,
            &view.replace("dashboard_stats", "dashboard_stats_mv"),
            &all
        )
        .await
    );
    // The seed's dashboard question, per app and day.
    let per_day = "SELECT toStartOfDay(hour) AS day, sum(event_count) AS events, \
                   round(sum(revenue), 6) AS revenue FROM dashboard_stats WHERE app_id = 'a' \
                   GROUP BY day ORDER BY day";
    let per_day_direct = "SELECT toStartOfDay(timestamp) AS day, count() AS events, \
                   round(coalesce(sum(revenue), 0), 6) AS revenue FROM events WHERE app_id = 'a' \
                   GROUP BY day ORDER BY day";
    assert_eq!(
        text(&q, per_day, &all).await,
        text(&q, per_day_direct, &all).await
    );
}

#[tokio::test]
async fn user_retention_mv_answers_the_seeds_chart_query() {
    let (q, events) = service();
    let sql = "SELECT retention_day, count() AS users FROM user_retention_mv \
               WHERE app_id = 'a' GROUP BY retention_day ORDER BY retention_day";
    let (_, batches) = q.run(sql).await.unwrap();
    let mut got = BTreeMap::new();
    for b in &batches {
        let (d, n) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            got.insert(d.value(i), n.value(i));
        }
    }
    // The same, directly: each user's active days against their first.
    let mut days: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.app_id == "a") {
        if let Some(u) = &e.user_id {
            days.entry(u.clone())
                .or_default()
                .insert(e.timestamp_ms.div_euclid(DAY));
        }
    }
    let mut want: BTreeMap<i64, i64> = BTreeMap::new();
    for d in days.values() {
        let first = *d.iter().next().unwrap();
        for day in d {
            *want.entry(day - first).or_insert(0) += 1;
        }
    }
    assert_eq!(got, want);
    assert_eq!(got.get(&0).copied(), Some(days.len() as i64));
}

#[tokio::test]
async fn the_views_show_only_the_callers_apps_and_cannot_be_written() {
    let (q, _) = service();
    let only_b = Scope {
        apps: Some(Arc::new(BTreeSet::from(["b".to_string()]))),
        ..Scope::default()
    };
    for view in ["dashboard_stats", "dashboard_stats_mv", "user_retention_mv"] {
        let apps = text(
            &q,
            &format!("SELECT DISTINCT app_id FROM {view} ORDER BY app_id"),
            &only_b,
        )
        .await;
        assert!(
            apps.contains("| b ") && !apps.contains("| a "),
            "{view}: {apps}"
        );
    }
    for sql in [
        "INSERT INTO dashboard_stats VALUES ('a', now(), 1, 1, 1.0)",
        "DROP VIEW user_retention_mv",
        "CREATE VIEW dashboard_stats AS SELECT 1",
    ] {
        assert!(q.run(sql).await.is_err(), "{sql} was allowed");
    }
}

#[tokio::test]
async fn dashboard_stats_of_one_app_is_answered_from_the_rollups() {
    let (on, off, _) = services();
    let all = Scope::default();
    for range in [
        "true",
        "hour >= '2026-01-03'",
        "hour >= '2026-01-03T05:30:00Z' AND hour < '2026-01-09T10:00:00Z'",
        "hour > '2026-01-03T05:00:00Z' AND hour <= '2026-01-09T10:15:00Z'",
        "hour >= '2027-01-01'",
    ] {
        for shape in [
            "SELECT app_id, hour, event_count, unique_users, round(revenue, 6) AS revenue \
             FROM dashboard_stats WHERE app_id = 'a' AND {R} ORDER BY hour",
            "SELECT hour, event_count FROM dashboard_stats_mv WHERE {R} AND app_id = 'b' ORDER BY hour",
            "SELECT sum(event_count) AS n, round(sum(revenue), 6) AS r FROM dashboard_stats \
             WHERE app_id = 'a' AND {R}",
            // Grouped by the one app it is filtered to (renamed): a constant column.
            "SELECT app_id AS platform, count() AS n FROM events WHERE app_id = 'a' AND \
             {E} GROUP BY 1",
        ] {
            let sql = shape
                .replace("{R}", range)
                .replace("{E}", &range.replace("hour", "toStartOfHour(timestamp)"));
            let plan = text(&on, &format!("EXPLAIN {sql}"), &all).await;
            assert!(
                plan.contains("RollupAnswerExec"),
                "not answered from the rollups: {sql}\n{plan}"
            );
            assert_eq!(
                text(&on, &sql, &all).await,
                text(&off, &sql, &all).await,
                "{sql}"
            );
        }
    }
}
