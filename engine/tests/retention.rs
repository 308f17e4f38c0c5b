//! Retention floors (issue 29): `drop_before` removes an app's segments wholly before the
//! floor in one manifest edit, the rollups forget those days, rows still in the memtable
//! stay out of the flush, later rows before the floor are skipped, and all of it holds after
//! a reopen. Other apps keep everything.

use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn event(app: &str, ts: i64, user: u64, id: u64) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: app.into(),
        event_type: "app_open".into(),
        user_id: Some(format!("u{user}")),
        session_id: None,
        device_id: format!("d{user}"),
        platform: "ios".into(),
        app_version: None,
        attribution: Attribution::default(),
        event_data: Vec::new(),
        revenue: None,
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts,
        event_id: Some(format!("00000000-0000-4000-8000-{id:012}")),
    }
}

fn apply(engine: &Engine, index: u64, events: &[Event]) -> u64 {
    engine
        .apply(ApplyBatch::one_entry(
            index,
            events.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply")[0]
        .accepted
}

/// 100 events a day for apps `a` and `b` over days 0..5.
fn days(start: i64, first_id: u64) -> Vec<Event> {
    let mut out = Vec::new();
    let mut id = first_id;
    for app in ["a", "b"] {
        for d in 0..5 {
            for u in 0..100 {
                id += 1;
                out.push(event(app, start + d * DAY + 12 * HOUR + u as i64, u, id));
            }
        }
    }
    out
}

fn rows(engine: &Engine, app: &str) -> u64 {
    engine
        .manifest()
        .segments
        .iter()
        .filter(|s| s.app_id == app)
        .map(|s| s.rows)
        .sum()
}

fn counted(engine: &Engine, app: &str, start: i64) -> u64 {
    let hours = (start - DAY) / HOUR..(start + 10 * DAY) / HOUR;
    engine
        .rollups_over(app, hours.clone())
        .expect("rollups")
        .totals(app, hours)
        .events
}

#[test]
fn a_floor_drops_the_old_days_of_one_app_everywhere_and_for_good() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 30) * DAY;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        compaction_min_segments: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
    assert_eq!(apply(&engine, 1, &days(start, 0)), 1_000);
    engine.flush().expect("flush");
    // Day 2 of app a again (new ids), still in the memtable when the floor comes.
    let late: Vec<Event> = (0..10)
        .map(|u| event("a", start + 2 * DAY + 13 * HOUR, u, 5_000 + u))
        .collect();
    assert_eq!(apply(&engine, 2, &late), 10);
    assert_eq!(counted(&engine, "a", start), 510);

    let floor = start + 3 * DAY;
    let (segments, dropped) = engine.drop_before("a", floor).expect("drop");
    assert_eq!((segments, dropped), (3, 300), "days 0, 1 and 2 of app a");
    assert_eq!(engine.retention_floor("a"), Some(floor));
    assert_eq!(engine.retention_floor("b"), None);
    assert_eq!(rows(&engine, "a"), 200);
    assert_eq!(rows(&engine, "b"), 500, "other apps keep everything");
    assert_eq!(
        counted(&engine, "a", start),
        200,
        "the rollups forgot days 0-2"
    );
    assert_eq!(counted(&engine, "b", start), 500);
    // Again, or a lower floor: nothing changes.
    assert_eq!(engine.drop_before("a", floor).expect("again"), (0, 0));
    assert_eq!(engine.drop_before("a", floor - DAY).expect("lower"), (0, 0));
    assert_eq!(engine.retention_floor("a"), Some(floor));

    // Rows before the floor applied from now on are counted as delivered, not kept.
    let older = vec![
        event("a", start + DAY, 7, 9_000),
        event("a", floor, 7, 9_001),
    ];
    assert_eq!(apply(&engine, 3, &older), 2);
    assert_eq!(counted(&engine, "a", start), 201);
    engine.flush().expect("flush");
    assert_eq!(
        rows(&engine, "a"),
        201,
        "the memtable's day-2 rows and the late day-1 row stayed out"
    );
    assert!(engine
        .manifest()
        .segments
        .iter()
        .filter(|s| s.app_id == "a")
        .all(|s| s.min_ts_ms >= floor));
    drop(engine);

    // After a reopen: the floor, the segments and the rollups are as they were.
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    assert_eq!(engine.retention_floor("a"), Some(floor));
    assert_eq!(rows(&engine, "a"), 201);
    assert_eq!(counted(&engine, "a", start), 201);
    assert_eq!(counted(&engine, "b", start), 500);
    // The removed files are gone from disk.
    let mut files = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path().display().to_string());
            }
        }
    }
    let a_parquet = files
        .iter()
        .filter(|f| f.contains("app=a/") && f.ends_with(".parquet"))
        .count();
    assert_eq!(a_parquet, 3, "{files:#?}");
}

/// A floor (or any change apply makes to the manifest) is never lost to a flush running at
/// the same time: the flush edits the manifest as it is when it ends, and every manifest
/// write happens under the engine's lock (two writers once raced on `manifest.json.tmp`, and
/// a failed write stops a node's state machine).
#[test]
fn floors_raised_while_flushes_run_are_kept() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 300) * DAY;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        compaction_min_segments: 0,
        // Every entry below fills the memtable: a flush starts in the background each time.
        flush_rows: 40,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
    let mut id = 0;
    for i in 0..200u64 {
        let evs: Vec<Event> = (0..50)
            .map(|u| {
                id += 1;
                event("a", start + 250 * DAY + u as i64, u, id)
            })
            .collect();
        apply(&engine, i + 1, &evs);
        let floor = start + (i as i64 + 1) * DAY;
        engine.drop_before("b", floor).expect("floor");
        assert_eq!(engine.retention_floor("b"), Some(floor), "entry {i}");
    }
    engine.flush().expect("flush");
    let last = start + 200 * DAY;
    assert_eq!(engine.retention_floor("b"), Some(last));
    assert_eq!(rows(&engine, "a"), 10_000);
    drop(engine);
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    assert_eq!(engine.retention_floor("b"), Some(last));
    assert_eq!(rows(&engine, "a"), 10_000);
}

/// A segment spanning the floor (a flush of more (app, day) pairs than
/// `max_partitions_per_flush` writes month buckets) is rewritten without its rows before it,
/// in the background: the rows left are exactly those from the floor on, after a reopen too.
#[test]
fn a_segment_spanning_the_floor_is_rewritten_without_the_older_rows() {
    let day0 = (chrono::Utc::now().timestamp_millis() / DAY - 40) * DAY;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        compaction_min_segments: 0,
        max_partitions_per_flush: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
    // Ten days of one app in one flush: coarser buckets than days.
    let evs: Vec<Event> = (0..10)
        .flat_map(|d| {
            (0..10u64).map(move |u| event("a", day0 + d * DAY + HOUR, u, d as u64 * 10 + u))
        })
        .collect();
    assert_eq!(apply(&engine, 1, &evs), 100);
    engine.flush().expect("flush");
    assert!(
        engine.manifest().segments.iter().any(|s| s.day.len() != 10),
        "month buckets: {:?}",
        engine.manifest().segments
    );
    let floor = day0 + 4 * DAY;
    engine.drop_before("a", floor).expect("floor");
    let t0 = std::time::Instant::now();
    while engine
        .manifest()
        .segments
        .iter()
        .any(|s| s.min_ts_ms < floor)
    {
        assert!(t0.elapsed().as_secs() < 30, "not rewritten");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(rows(&engine, "a"), 60, "days 4-9 stay");
    assert_eq!(counted(&engine, "a", day0), 60);
    drop(engine);
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    assert_eq!(rows(&engine, "a"), 60);
    assert_eq!(counted(&engine, "a", day0), 60);
}
