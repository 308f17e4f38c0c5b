//! Compaction merges the small segments of one (app, day) into one sorted segment without
//! losing, doubling or reordering anything; files still read by a view stay until dropped;
//! a flush whose rows span too many days writes coarser segments (TESTPLAN Q-05).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(app: &str, kind: &str, ts: i64, id: u64) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: app.into(),
        event_type: kind.into(),
        user_id: Some(format!("u{}", id % 7)),
        session_id: None,
        device_id: format!("d{id}"),
        platform: "ios".into(),
        app_version: None,
        attribution: Attribution::default(),
        event_data: vec![("n".into(), id.to_string())],
        revenue: Some(id as f64),
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts + 5,
        event_id: Some(format!("e{id}")),
    }
}

fn apply(engine: &Engine, index: u64, events: &[Event]) {
    engine
        .apply(ApplyBatch::one_entry(
            index,
            events.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply");
}

fn read_file(path: &std::path::Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).expect("segment file");
    ParquetRecordBatchReader::try_new(f, 100_000)
        .expect("parquet")
        .map(|b| b.expect("batch"))
        .collect()
}

/// Every stored row as (event_id, event_data["n"], timestamp), sorted.
fn rows(engine: &Engine) -> Vec<(String, String, i64)> {
    let view = engine.read_view().expect("view");
    let mut batches: Vec<RecordBatch> = view
        .segments
        .iter()
        .flat_map(|s| read_file(&view.segment_path(s)))
        .collect();
    batches.extend(view.batches.iter().cloned());
    let mut out = Vec::new();
    for b in &batches {
        let ids = b.column_by_name("event_id").unwrap().as_string::<i32>();
        let ts = b
            .column_by_name("timestamp")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let data = b.column_by_name("event_data").unwrap().as_map();
        for r in 0..b.num_rows() {
            let n = data
                .value(r)
                .column(1)
                .as_string::<i32>()
                .value(0)
                .to_string();
            out.push((ids.value(r).to_string(), n, ts.value(r)));
        }
    }
    out.sort();
    out
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn merges_small_segments_and_keeps_pinned_files_until_released() {
    let dir = tempfile::tempdir().unwrap();
    // 6: the merge can only start once all six flushes of a group are in (a merge between
    // flushes would leave merged + later segments, below the threshold).
    let cfg = EngineConfig {
        compaction_min_segments: 6,
        compaction_max_rows: 10_000,
        compaction_interval_secs: 1,
        flush_interval_secs: 3600,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg.clone()).unwrap();
    let mut id = 0;
    let mut index = 0;
    let mut pinned = None;
    for round in 0..6 {
        let mut events = Vec::new();
        for app in ["a", "b"] {
            for i in 0..50 {
                id += 1;
                let kind = if i % 3 == 0 { "purchase" } else { "open" };
                events.push(event(
                    app,
                    kind,
                    T0 + (i % 2) * DAY + (id as i64) * 1000,
                    id,
                ));
            }
        }
        index += 1;
        apply(&engine, index, &events);
        let (_, pins) = engine.flush_pinned().unwrap();
        if round == 0 {
            // Pin the first flush's segments: they must survive their compaction while held.
            pinned = Some((engine.read_view().unwrap(), pins));
        }
    }
    let before = rows(&engine);
    assert_eq!(before.len(), 600);
    // 2 apps x 2 days, 6 segments each; compaction leaves one per (app, day).
    wait_for("compaction", || engine.manifest().segments.len() == 4);
    let m = engine.manifest();
    assert!(m.segments.iter().all(|s| s.rows == 150), "{:?}", m.segments);
    assert_eq!(rows(&engine), before, "rows changed by compaction");
    assert_eq!(
        engine.stats().segments_compacted.load(Ordering::Relaxed),
        24
    );
    // Merged segments are sorted by (event_type, timestamp).
    let view = engine.read_view().unwrap();
    for seg in &view.segments {
        for b in read_file(&view.segment_path(seg)) {
            let kinds = b.column_by_name("event_type").unwrap().as_string::<i32>();
            let ts = b
                .column_by_name("timestamp")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let keys: Vec<(&str, i64)> = (0..b.num_rows())
                .map(|r| (kinds.value(r), ts.value(r)))
                .collect();
            assert!(
                keys.windows(2).all(|w| w[0] <= w[1]),
                "merged segment not sorted"
            );
        }
    }
    // The first flush's files are retired but still on disk while pinned.
    let (old_view, old_pins) = pinned.take().unwrap();
    let old_paths: Vec<_> = old_view
        .segments
        .iter()
        .map(|s| old_view.segment_path(s))
        .collect();
    assert_eq!(old_paths.len(), 4);
    assert!(old_paths.iter().all(|p| p.exists()), "pinned files removed");
    drop(old_view);
    drop(old_pins);
    assert!(
        old_paths.iter().all(|p| !p.exists()),
        "retired files kept after release"
    );
    // Reopen: the compacted manifest is what is durable; the dedupe set still knows every id.
    drop(view);
    drop(engine);
    let engine = Engine::open(dir.path(), cfg).unwrap();
    assert_eq!(engine.manifest().segments.len(), 4);
    assert_eq!(rows(&engine), before);
    let again = engine
        .apply(ApplyBatch::one_entry(
            index + 1,
            vec![event("a", "open", T0, 1).as_ref()],
        ))
        .unwrap();
    assert_eq!((again[0].accepted, again[0].duplicates), (0, 1));
}

#[test]
fn a_flush_spanning_decades_writes_coarser_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        max_partitions_per_flush: 64,
        compaction_min_segments: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg).unwrap();
    // One event every 3 days over 26 years: ~3,200 days, ~312 months, 27 years.
    let start = 946_684_800_000; // 2000-01-01
    let events: Vec<Event> = (0..3200u64)
        .map(|i| event("spray", "open", start + i as i64 * 3 * DAY, i))
        .collect();
    apply(&engine, 1, &events);
    let m = engine.flush().unwrap();
    let per_label: BTreeMap<&str, u64> = m
        .segments
        .iter()
        .map(|s| (s.day.as_str(), s.rows))
        .collect();
    assert!(m.segments.len() <= 64, "{} segments", m.segments.len());
    assert!(
        per_label.keys().all(|l| l.len() == 4),
        "year segments: {per_label:?}"
    );
    assert_eq!(per_label.values().sum::<u64>(), 3200);
    assert_eq!(rows(&engine).len(), 3200);
}
