//! Filters on app, event time and receive time skip whole segments (shown by EXPLAIN), and
//! answers with pruning equal the answers computed without any filter pushed down.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use engine::{Attribution, Engine, EngineConfig, Event};
use unmogrowp_query::{QueryConfig, QueryService};

mod common;
use common::{apply, explain, rows};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(app: &str, kind: &str, ts: i64, id: u64) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: app.into(),
        event_type: kind.into(),
        user_id: Some(format!("u{}", id % 11)),
        session_id: None,
        device_id: format!("d{id}"),
        platform: "ios".into(),
        app_version: None,
        attribution: Attribution::default(),
        event_data: vec![],
        revenue: None,
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts + 60_000,
        event_id: Some(format!("e{id}")),
    }
}

/// 3 apps x 10 days, 20 events per (app, day) of two kinds, flushed: 30 segments. Plus a few
/// memtable rows on the last day.
fn dataset() -> QueryService {
    let dir = tempfile::tempdir().unwrap().keep();
    let engine = Engine::open(&dir, EngineConfig::default()).unwrap();
    write_dataset(&engine);
    service(engine)
}

fn write_dataset(engine: &Engine) {
    let mut events = Vec::new();
    let mut id = 0;
    for app in ["a", "b", "c"] {
        for day in 0..10 {
            for i in 0..20 {
                id += 1;
                let kind = if i % 4 == 0 { "purchase" } else { "open" };
                events.push(event(app, kind, T0 + day * DAY + i * 60_000, id));
            }
        }
    }
    apply(engine, 1, &events);
    engine.flush().unwrap();
    let late: Vec<Event> = (0..5)
        .map(|i| event("a", "open", T0 + 9 * DAY + i, 10_000 + i as u64))
        .collect();
    apply(engine, 2, &late);
}

fn service(engine: Engine) -> QueryService {
    // These tests are about the scan: counts of one app would come from the rollups.
    let cfg = QueryConfig {
        rollup_answers: false,
        ..QueryConfig::default()
    };
    QueryService::new(engine, cfg).unwrap()
}

async fn count(q: &QueryService, sql: &str) -> i64 {
    let (_, batches) = q.run(sql).await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn segments_are_pruned_by_app_time_and_receive_time() {
    let q = dataset();
    let cases: &[(&str, i64, &str)] = &[
        (
            "app_id = 'a'",
            205,
            "segments=10 of 30 (pruned 0 by app access, 20 by statistics)",
        ),
        (
            "app_id IN ('a', 'c')",
            405,
            "segments=20 of 30 (pruned 0 by app access, 10 by statistics)",
        ),
        (
            "app_id = 'b' AND timestamp >= '2026-01-08T00:00:00Z'",
            60,
            "segments=3 of 30 (pruned 0 by app access, 27 by statistics)",
        ),
        (
            "timestamp BETWEEN '2026-01-02T00:00:00Z' AND '2026-01-02T23:59:59Z'",
            60,
            "segments=3 of 30",
        ),
        (
            "created_at < '2026-01-01T12:00:00Z'",
            60,
            "segments=3 of 30",
        ),
        ("event_type = 'purchase'", 150, "segments=30 of 30"),
        ("app_id = 'zzz'", 0, "segments=0 of 30"),
        // App filters are answered by the scan itself: both sides, intersections, and
        // filters that only mention the app among other things still evaluated row by row.
        ("'c' = app_id", 200, "segments=10 of 30"),
        (
            "app_id = 'a' AND app_id IN ('a', 'b')",
            205,
            "segments=10 of 30",
        ),
        ("app_id = 'a' AND app_id = 'b'", 0, "segments=0 of 30"),
        ("app_id NOT IN ('a', 'b')", 200, "segments=10 of 30"),
        (
            "app_id = 'a' OR event_type = 'purchase'",
            305,
            "segments=30 of 30",
        ),
        (
            "app_id IN ('a', 'b') AND event_type = 'purchase'",
            100,
            "segments=20 of 30",
        ),
    ];
    for (filter, expected, shown) in cases {
        let sql = format!("SELECT count(*) FROM events WHERE {filter}");
        assert_eq!(count(&q, &sql).await, *expected, "{filter}");
        let plan = explain(&q, &sql).await;
        assert!(
            plan.contains(shown),
            "{filter}: expected {shown:?} in\n{plan}"
        );
    }
    // No FilterExec is left for an app filter, and the answer is still per app.
    let sql = "SELECT app_id, count(*) FROM events WHERE app_id IN ('a', 'b') GROUP BY app_id ORDER BY app_id";
    let plan = explain(&q, sql).await;
    assert!(!plan.contains("FilterExec"), "{plan}");
    let (_, batches) = q.run(sql).await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(
        text.contains("| a      | 205") && text.contains("| b      | 200"),
        "{text}"
    );
    let total = count(&q, "SELECT count(*) FROM events").await;
    assert_eq!(total, 605);
    let plan = explain(&q, "SELECT count(*) FROM events").await;
    assert!(
        plan.contains("segments=30 of 30 (pruned 0 by app access, 0 by statistics)"),
        "{plan}"
    );
}

/// `ORDER BY <time> LIMIT n` bounds the scan by the best n rows seen (query/src/events/topk.rs):
/// the answers equal the first n of the full ordered answer (ascending, descending, filtered,
/// renamed, with memtable rows), and EXPLAIN ANALYZE shows row groups pruned by the bound.
#[tokio::test]
async fn order_by_limit_prunes_by_the_best_rows_seen() {
    let q = dataset();
    for (select, filter, order, n) in [
        ("event_id, timestamp", "", "timestamp, event_id", 7),
        ("event_id, timestamp", "", "timestamp DESC, event_id", 7),
        ("*", "WHERE user_id = 'u3'", "timestamp, event_id", 5),
        ("*", "WHERE user_id = 'u3'", "timestamp DESC, event_id DESC", 5),
        ("event_id, timestamp AS t", "WHERE app_id = 'a'", "t DESC, event_id", 9),
        ("event_id, received_at", "WHERE event_type = 'purchase'", "received_at, event_id", 30),
        ("event_id", "", "timestamp, event_id", 700),
        // Names swapped in a subquery, filtered above it: the bound follows the column.
        (
            "*",
            "FROM (SELECT timestamp AS received_at, received_at AS timestamp, event_id, user_id FROM events) s WHERE user_id = 'u3'",
            "timestamp DESC, event_id",
            4,
        ),
    ] {
        let from = if filter.starts_with("FROM") { "" } else { "FROM events" };
        let full = rows(&q, &format!("SELECT {select} {from} {filter} ORDER BY {order}")).await;
        let sql = format!("SELECT {select} {from} {filter} ORDER BY {order} LIMIT {n}");
        let top = rows(&q, &sql).await;
        assert_eq!(top, full[..n.min(full.len())], "{sql}");
        let plan = explain(&q, &sql).await;
        assert!(plan.contains("TopKBoundExec"), "{sql}\n{plan}");
    }
    // An expression as the first key: no bound (and the same answers).
    let sql =
        "SELECT event_id FROM events ORDER BY timestamp + INTERVAL '1' SECOND, event_id LIMIT 3";
    assert!(!explain(&q, sql).await.contains("TopKBoundExec"));
    // Day 0 holds the answer: the segments of later days are pruned by the bound.
    let (_, batches) = q
        .run("EXPLAIN ANALYZE SELECT * FROM events ORDER BY timestamp, event_id LIMIT 5")
        .await
        .unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    let pruned: u64 = text
        .split("row_groups_pruned_statistics=")
        .skip(1)
        .filter_map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(pruned >= 20, "{pruned} row groups pruned:\n{text}");
}

/// A damaged segment the background scrub has not reached yet is checked when a scan first
/// needs it: the query fails naming the file (`storage_error`), never answers without its
/// rows; a query whose scan prunes it away still answers.
#[tokio::test]
async fn a_damaged_segment_fails_the_scans_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    write_dataset(&engine);
    let view = engine.read_view().unwrap();
    let victim = view
        .segments
        .iter()
        .find(|s| s.app_id == "b")
        .map(|s| view.segment_path(s))
        .unwrap();
    drop(view);
    drop(engine);
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();

    let cfg = EngineConfig {
        scrub_segments: false,
        ..EngineConfig::default()
    };
    let q = service(Engine::open(dir.path(), cfg).unwrap());
    // 200: the 5 rows that were in memory went with the engine (the log replays them in a node).
    assert_eq!(
        count(&q, "SELECT count(*) FROM events WHERE app_id = 'a'").await,
        200
    );
    for sql in [
        "SELECT count(*) FROM events",
        "SELECT max(event_id) FROM events WHERE app_id = 'b'",
    ] {
        let err = q
            .run(sql)
            .await
            .expect_err("a damaged segment must fail the scan");
        assert_eq!(err.code(), "storage_error", "{sql}: {err}");
        let msg = err.to_string();
        let name = victim.file_name().unwrap().to_string_lossy();
        assert!(
            msg.contains(name.as_ref()) && msg.contains("checksum"),
            "{sql}: {msg}"
        );
    }
}
