//! Aggregations answered from the hourly rollups (`RollupAnswerExec` in EXPLAIN) return
//! exactly what the scan returns, over ranges with partial hours at either edge, within one
//! hour, unbounded, for every supported grouping and measure, with rows both in segments
//! and in the memtable; and anything the rollups cannot answer keeps the scan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};
use unmogrowp_query::{QueryConfig, QueryService, Scope};

const MIN: i64 = 60_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(i: i64) -> Event {
    let kind = ["install", "purchase", "open", "open", "ad_click"][(i % 5) as usize];
    let campaign = match i % 7 {
        0 | 1 => None,
        n => Some(format!("c{}", n % 3)),
    };
    Event {
        // Every 7 minutes and 13 seconds over ~3 days: hours are never filled evenly.
        timestamp_ms: T0 + i * (7 * MIN + 13_000),
        app_id: if i % 4 == 0 { "b" } else { "a" }.into(),
        event_type: kind.into(),
        user_id: (i % 9 != 0).then(|| format!("u{}", i % 23)),
        session_id: None,
        device_id: format!("d{i}"),
        platform: ["ios", "android", "web"][(i % 3) as usize].into(),
        app_version: None,
        attribution: Attribution {
            source: campaign.as_ref().map(|_| format!("s{}", i % 2)),
            medium: (i % 5 == 0).then(|| "cpc".to_string()),
            campaign,
            content: None,
            term: None,
        },
        event_data: vec![],
        // Purchases mostly have revenue; some other events too; some purchases none.
        revenue: match (kind, i % 6) {
            ("purchase", 0) => None,
            ("purchase", n) => Some(n as f64 * 1.25 + 0.01),
            (_, 3) => Some(0.5),
            _ => None,
        },
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: T0,
        event_id: Some(format!("e{i}")),
    }
}

/// The same engine behind two services: rollup answers on and off. 600 events, the first
/// 400 flushed to segments, the rest in the memtable.
fn services() -> (QueryService, QueryService) {
    let dir = tempfile::tempdir().unwrap().keep();
    let engine = Engine::open(&dir, EngineConfig::default()).unwrap();
    let events: Vec<Event> = (0..600).map(event).collect();
    let apply = |index: u64, evs: &[Event]| {
        engine
            .apply(ApplyBatch::one_entry(
                index,
                evs.iter().map(Event::as_ref).collect(),
            ))
            .unwrap();
    };
    apply(1, &events[..400]);
    engine.flush().unwrap();
    apply(2, &events[400..]);
    let on = QueryService::new(engine.clone(), QueryConfig::default()).unwrap();
    let off = QueryService::new(
        engine,
        QueryConfig {
            rollup_answers: false,
            ..QueryConfig::default()
        },
    )
    .unwrap();
    (on, off)
}

async fn text(q: &QueryService, sql: &str) -> String {
    let (_, batches) = q.run(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

fn at(minutes: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(T0 + minutes * MIN).unwrap();
    format!("'{}'", t.format("%Y-%m-%dT%H:%M:%SZ"))
}

#[tokio::test]
async fn rollup_answers_equal_the_scan() {
    let (on, off) = services();
    let ranges = [
        // partial hours at both edges
        format!("timestamp >= {} AND timestamp < {}", at(77), at(2000)),
        // strict and inclusive bounds
        format!("timestamp > {} AND timestamp <= {}", at(60), at(1800)),
        // lower bound only (the dashboard's `now() - INTERVAL …` shape), aligned
        format!("timestamp >= {}", at(120)),
        // lower bound only, unaligned
        format!("{} <= timestamp", at(185)),
        // within one hour
        format!("timestamp >= {} AND timestamp < {}", at(610), at(650)),
        // no time filter
        "true".to_string(),
        // nothing in range
        format!(
            "timestamp >= {} AND timestamp < {}",
            at(100_000),
            at(100_100)
        ),
    ];
    let shapes = [
        "SELECT count() AS n, uniqExact(user_id) AS users, round(sum(revenue), 6) AS revenue, \
         countIf(event_type = 'open') AS opens FROM events WHERE app_id = 'a' AND {R}",
        "SELECT platform, count() AS n, uniq(user_id) AS users FROM events \
         WHERE app_id = 'a' AND {R} GROUP BY platform ORDER BY platform",
        "SELECT event_type, count() AS n, uniqExact(user_id) AS users FROM events \
         WHERE {R} AND app_id = 'a' GROUP BY event_type ORDER BY event_type",
        "SELECT toStartOfHour(timestamp) AS h, count() AS n, uniqExact(user_id) AS users, \
         round(sum(revenue), 6) AS revenue, countIf(event_type = 'install') AS installs \
         FROM events WHERE app_id = 'a' AND {R} GROUP BY h ORDER BY h",
        "SELECT toStartOfDay(timestamp) AS d, count() AS n, uniq(user_id) AS users \
         FROM events WHERE app_id = 'a' AND {R} GROUP BY d ORDER BY d",
        "SELECT attribution_campaign AS campaign, count() AS n, \
         countIf(event_type = 'install') AS installs, countIf(event_type = 'purchase') AS buys, \
         round(sumIf(revenue, event_type = 'purchase'), 6) AS revenue, uniqExact(user_id) AS users \
         FROM events WHERE app_id = 'a' AND attribution_campaign IS NOT NULL AND {R} \
         GROUP BY campaign ORDER BY installs DESC, campaign LIMIT 10",
        // Several apps (or all) grouped by app: each app's rows answered on their own.
        "SELECT app_id, event_type, count() AS n, uniqExact(user_id) AS users FROM events \
         WHERE {R} GROUP BY app_id, event_type ORDER BY app_id, event_type",
        "SELECT app_id, toStartOfHour(timestamp) AS h, count() AS n, round(sum(revenue), 6) AS r \
         FROM events WHERE app_id IN ('a', 'b') AND {R} GROUP BY app_id, h ORDER BY app_id, h",
        "SELECT platform, app_id, count() AS n FROM events WHERE {R} \
         GROUP BY platform, app_id ORDER BY app_id, platform",
        // Several apps (or all) not grouped by app: added up, users counted by id across
        // apps (u1 of app a and u1 of app b are one user, as the scan counts them).
        "SELECT count() AS n, uniqExact(user_id) AS users, round(sum(revenue), 6) AS r \
         FROM events WHERE {R}",
        "SELECT count() AS n, count(DISTINCT user_id) AS users FROM events \
         WHERE app_id IN ('a', 'b') AND {R}",
        "SELECT count() AS n, uniqExact(user_id) AS users FROM events \
         WHERE app_id IN ('a', 'zz') AND {R}",
        "SELECT attribution_campaign, uniqExact(user_id) AS users, count() AS n FROM events \
         WHERE attribution_campaign IS NOT NULL AND {R} GROUP BY attribution_campaign \
         ORDER BY users DESC, attribution_campaign LIMIT 20",
        "SELECT platform, uniq(user_id) AS users FROM events WHERE {R} \
         GROUP BY platform ORDER BY platform",
        "SELECT toStartOfDay(timestamp) AS d, count() AS n, uniqExact(user_id) AS users \
         FROM events WHERE {R} GROUP BY d ORDER BY d",
    ];
    for shape in shapes {
        for r in &ranges {
            let sql = shape.replace("{R}", r);
            let plan = text(&on, &format!("EXPLAIN {sql}")).await;
            assert!(
                plan.contains("RollupAnswerExec"),
                "not answered from the rollups: {sql}\n{plan}"
            );
            assert_eq!(text(&on, &sql).await, text(&off, &sql).await, "{sql}");
        }
    }
}

#[tokio::test]
async fn other_aggregations_keep_the_scan() {
    let (on, off) = services();
    for sql in [
        // another filter
        "SELECT count() FROM events WHERE app_id = 'a' AND platform = 'ios'",
        // grouping the rollups do not hold
        "SELECT currency, count() FROM events WHERE app_id = 'a' GROUP BY currency",
        "SELECT platform, event_type, count() FROM events WHERE app_id = 'a' GROUP BY 1, 2",
        // measures they do not hold
        "SELECT platform, round(sum(revenue), 6) FROM events WHERE app_id = 'a' GROUP BY platform",
        "SELECT count(DISTINCT device_id) FROM events WHERE app_id = 'a'",
        "SELECT attribution_campaign, countIf(event_type = 'open') FROM events \
         WHERE app_id = 'a' AND attribution_campaign IS NOT NULL GROUP BY 1",
        // time buckets the rollups do not hold
        "SELECT toStartOfMinute(timestamp), count() FROM events WHERE app_id = 'a' GROUP BY 1",
        "SELECT toStartOfHour(received_at), count() FROM events WHERE app_id = 'a' GROUP BY 1",
        // names that are not the table's columns
        "SELECT count() FROM (SELECT platform AS app_id FROM events) t WHERE app_id = 'ios'",
        "SELECT platform, uniqExact(user_id) FROM (SELECT platform, device_id AS user_id \
         FROM events WHERE app_id = 'a') GROUP BY platform",
        // campaigns without the IS NOT NULL filter (the NULL group is not in the rollups)
        "SELECT attribution_campaign, count() FROM events WHERE app_id = 'a' GROUP BY 1",
    ] {
        let plan = text(&on, &format!("EXPLAIN {sql}")).await;
        assert!(
            !plan.contains("RollupAnswerExec"),
            "answered from the rollups: {sql}\n{plan}"
        );
        // Row order is not part of these answers: compare the sorted lines.
        let lines = |t: String| {
            let mut l: Vec<String> = t.lines().map(str::to_string).collect();
            l.sort();
            l
        };
        assert_eq!(
            lines(text(&on, sql).await),
            lines(text(&off, sql).await),
            "{sql}"
        );
    }
    // A caller who asked for a scan, or may not read the app, never gets the rollups.
    let sql = "EXPLAIN SELECT count() FROM events WHERE app_id = 'a'";
    let scan_only = Scope {
        scan_only: true,
        ..Scope::default()
    };
    let elsewhere = Scope {
        apps: Some(Arc::new(BTreeSet::from(["b".to_string()]))),
        ..Scope::default()
    };
    for scope in [&scan_only, &elsewhere] {
        let (_, batches) = on.run_at(sql, scope, None).await.unwrap();
        let plan = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(!plan.contains("RollupAnswerExec"), "{scope:?}\n{plan}");
    }
    let (_, batches) = on
        .run_at(
            "SELECT count() FROM events WHERE app_id = 'a'",
            &elsewhere,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        0,
        "another app's rows were counted"
    );
    // Grouped by app without an app filter: only the caller's apps, as the scan answers.
    let sql = "SELECT app_id, event_type, count() FROM events GROUP BY 1, 2 ORDER BY 1, 2";
    let run = |q: &QueryService, sql: String| {
        let elsewhere = elsewhere.clone();
        let q = q.clone();
        async move {
            let (_, batches) = q.run_at(&sql, &elsewhere, None).await.unwrap();
            arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        }
    };
    assert!(run(&on, format!("EXPLAIN {sql}"))
        .await
        .contains("RollupAnswerExec: app=b,"));
    let answer = run(&on, sql.to_string()).await;
    assert_eq!(answer, run(&off, sql.to_string()).await);
    assert!(!answer.contains("| a "), "{answer}");
    // An app without events: one row of zeros, like the scan.
    let sql = "SELECT count(), uniqExact(user_id), sum(revenue) FROM events WHERE app_id = 'zz'";
    assert!(text(&on, &format!("EXPLAIN {sql}"))
        .await
        .contains("RollupAnswerExec"));
    assert_eq!(text(&on, sql).await, text(&off, sql).await);
}
