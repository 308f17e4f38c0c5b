//! `GROUP BY` on low-cardinality strings runs on their dictionary codes
//! (query/src/events/dictionary_group.rs): every answer equals the one computed on decoded
//! strings (`query.group_on_dictionary = false`) over the same engine — segments whose
//! dictionaries differ, NULL keys, keys only some segments hold, in-memory rows, aggregates with
//! conditions, filters on other columns — and EXPLAIN shows where it applies and where it must
//! not. (Groups outgrowing the memory pool: the unit test in the module.)

use engine::{Attribution, Engine, EngineConfig, Event};
use unmogrowp_query::{QueryConfig, QueryService};

mod common;
use common::{apply, explain, rows};

/// The rows of `sql` as strings, sorted.
async fn sorted(q: &QueryService, sql: &str) -> Vec<String> {
    let mut rows = rows(q, sql).await;
    rows.sort();
    rows
}

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(app: &str, day: i64, i: u64, id: u64) -> Event {
    let pick = |n: u64| (i * 7 + day as u64 * 3) % n;
    // Each day's segment sees other values, in another order, with NULLs.
    let source = match pick(5) {
        0 => None,
        1 => Some("google".to_string()),
        2 => Some(format!("net{}", day % 3)),
        3 => Some("facebook".to_string()),
        _ => Some(format!("only-{app}")),
    };
    Event {
        timestamp_ms: T0 + day * DAY + i as i64 * 1_000,
        app_id: app.into(),
        event_type: ["open", "purchase", "install"][(i % 3) as usize].into(),
        user_id: (i % 4 != 0).then(|| format!("u{}", id % 23)),
        session_id: None,
        device_id: format!("d{}", id % 37),
        platform: ["ios", "android", "web"][pick(3) as usize].into(),
        app_version: (day % 2 == 0).then(|| format!("1.{}", i % 2)),
        attribution: Attribution {
            source,
            medium: (pick(4) != 0).then(|| ["cpc", "social", "organic"][pick(3) as usize].into()),
            campaign: Some(format!("c{}", (i + day as u64) % 4)),
            content: None,
            term: None,
        },
        event_data: vec![],
        revenue: (i % 3 == 1).then_some((i % 10) as f64 + 0.5),
        currency: (i % 3 == 1).then(|| "USD".into()),
        ip: None,
        user_agent: None,
        received_at_ms: T0 + day * DAY + 60_000,
        event_id: Some(format!("e{id}")),
    }
}

/// 3 apps x 6 days of 300 events (18 segments), plus in-memory rows; two services over the
/// one engine, grouping on codes and on strings.
fn services() -> (QueryService, QueryService) {
    let cfg = scan_only();
    let dir = tempfile::tempdir().unwrap().keep();
    let engine = Engine::open(&dir, EngineConfig::default()).unwrap();
    let mut events = Vec::new();
    let mut id = 0;
    for app in ["a", "b", "c"] {
        for day in 0..6 {
            for i in 0..300 {
                id += 1;
                events.push(event(app, day, i, id));
            }
        }
    }
    apply(&engine, 1, &events);
    engine.flush().unwrap();
    let late: Vec<Event> = (0..40).map(|i| event("b", 7, i, 90_000 + i)).collect();
    apply(&engine, 2, &late);
    let on = QueryService::new(engine.clone(), cfg.clone()).unwrap();
    let off = QueryConfig {
        group_on_dictionary: false,
        ..cfg
    };
    (on, QueryService::new(engine, off).unwrap())
}

fn scan_only() -> QueryConfig {
    // Grouped counts of one app would come from the rollups; these tests are about the scan.
    QueryConfig {
        rollup_answers: false,
        ..QueryConfig::default()
    }
}

const ON_CODES: &[&str] = &[
    "SELECT attribution_source, attribution_medium, count() AS events, uniqExact(device_id) AS devices FROM events GROUP BY attribution_source, attribution_medium",
    "SELECT app_id, count(), sum(revenue), uniqExact(user_id) FROM events GROUP BY app_id",
    "SELECT platform, attribution_campaign, count(), count(DISTINCT user_id), sumIf(revenue, revenue > 3) FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2",
    "SELECT app_id, event_type, platform, app_version, currency, count(), min(timestamp), max(revenue) FROM events GROUP BY ALL",
    "SELECT attribution_medium, countIf(revenue > 2), avg(revenue) FROM events GROUP BY attribution_medium",
    "SELECT attribution_source AS s, count() AS n FROM events WHERE app_id = 'b' GROUP BY s",
    "SELECT app_id, attribution_source, count() FROM events WHERE timestamp >= '2026-01-03' GROUP BY 1, 2 HAVING count() > 10",
    "SELECT attribution_term, attribution_content, count() FROM events GROUP BY 1, 2",
    // Apps and a time range: pages pruned by both columns' page index.
    "SELECT platform, count(), uniq(user_id) FROM events WHERE app_id = 'a' AND timestamp >= '2026-01-02T01:17:00Z' AND timestamp < '2026-01-04T09:20:00Z' GROUP BY platform",
    // Selective: decoded while filtering (row filter), pages pruned by the page index.
    "SELECT platform, attribution_source, count(), sum(revenue) FROM events WHERE user_id = 'u3' AND event_type = 'purchase' GROUP BY 1, 2",
];

#[tokio::test]
async fn grouping_on_codes_answers_as_grouping_on_strings() {
    let (on, off) = services();
    for sql in ON_CODES {
        let expected = sorted(&off, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(sorted(&on, sql).await, expected, "{sql}");
        assert!(
            explain(&on, sql).await.contains("DictionaryGroupExec"),
            "{sql}\n{}",
            explain(&on, sql).await
        );
        assert!(!explain(&off, sql).await.contains("DictionaryGroupExec"));
    }
}

/// Where reading a key as a dictionary would change what an operator sees, the rule stays out
/// (and the answers are the same either way).
#[tokio::test]
async fn keys_read_by_other_operators_stay_strings() {
    let (on, off) = services();
    for sql in [
        // A filter on a key column, at the scan and above it.
        "SELECT platform, count() FROM events WHERE platform <> 'web' GROUP BY platform",
        "SELECT app_id, count() FROM events WHERE app_id IN ('a', 'c') GROUP BY app_id",
        // The key inside an aggregate, or computed.
        "SELECT platform, attribution_source, max(platform), count() FROM events GROUP BY 1, 2",
        "SELECT upper(platform), count() FROM events GROUP BY upper(platform)",
        // Not a low-cardinality column.
        "SELECT user_id, count() FROM events GROUP BY user_id",
        // Order-dependent aggregate.
        "SELECT platform, array_agg(event_id ORDER BY event_id) FROM events GROUP BY platform",
    ] {
        assert_eq!(sorted(&on, sql).await, sorted(&off, sql).await, "{sql}");
        let plan = explain(&on, sql).await;
        assert!(!plan.contains("DictionaryGroupExec"), "{sql}\n{plan}");
    }
}
