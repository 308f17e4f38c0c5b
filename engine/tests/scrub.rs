//! Damaged segment files are found without making the open read every byte: a segment is
//! checked before its first read, the background scrub checks them all after the open, a
//! damaged one is refused to every reader (never skipped) and never merged into a new file
//! that checks out; `engine.verify_segments_on_open` still refuses to open (TESTPLAN P5).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, EngineError, Event};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(id: u64) -> Event {
    Event {
        timestamp_ms: T0 + id as i64 * 1000,
        app_id: "app".into(),
        event_type: "open".into(),
        user_id: Some(format!("u{}", id % 7)),
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
        received_at_ms: T0,
        event_id: Some(format!("e{id}")),
    }
}

fn config(scrub: bool, compaction_min_segments: usize) -> EngineConfig {
    EngineConfig {
        scrub_segments: scrub,
        compaction_min_segments,
        compaction_interval_secs: 1,
        ..EngineConfig::default()
    }
}

/// Writes `n` segments of one (app, day), 50 rows each, and closes the engine.
fn write_segments(dir: &Path, n: u64) -> Vec<PathBuf> {
    let engine = Engine::open(dir, config(false, 0)).expect("open");
    for s in 0..n {
        let events: Vec<Event> = (0..50).map(|i| event(s * 50 + i)).collect();
        engine
            .apply(ApplyBatch::one_entry(
                s + 1,
                events.iter().map(Event::as_ref).collect(),
            ))
            .expect("apply");
        engine.flush().expect("flush");
    }
    let view = engine.read_view().expect("view");
    view.segments.iter().map(|s| view.segment_path(s)).collect()
}

fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).expect("segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(path, &bytes).expect("write");
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "{what} did not happen in {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_damaged_segment_is_refused_at_its_first_read_and_never_merged() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_segments(dir.path(), 4);
    assert_eq!(files.len(), 4);
    damage(&files[1]);

    // No scrub, no check at open: the open does not read the segments, a reader does.
    // (No compaction yet either: it would read them in the background.)
    let engine = Engine::open(dir.path(), config(false, 0)).expect("open reads no segment");
    let view = engine.read_view().expect("view");
    assert_eq!(view.unchecked(&view.segments).len(), 4);
    let err = view
        .check(&view.segments)
        .expect_err("damaged segment refused");
    match &err {
        EngineError::Corrupt { path, reason, .. } => {
            assert_eq!(path, &files[1]);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // Refused again on every read, reported, the intact ones readable.
    assert!(view.check(&view.segments).is_err());
    assert!(view.check(&view.segments[2..]).is_ok());
    assert_eq!(engine.damaged_segments()[0].0, files[1]);
    drop(view);
    drop(engine);

    // Compaction (4 small segments of one day) must not make the damage a checked-out file.
    let engine = Engine::open(dir.path(), config(false, 4)).expect("open");
    let view = engine.read_view().expect("view");
    assert!(view.check(&view.segments).is_err());
    assert!(view.check(&view.segments[2..]).is_ok());
    drop(view);
    wait_for("a compaction attempt", Duration::from_secs(30), || {
        engine.stats().compaction_failures.load(Ordering::Relaxed) > 0
    });
    let after = engine.read_view().expect("view");
    assert_eq!(after.segments.len(), 4, "the damaged group stays as it was");
    assert!(after
        .segments
        .iter()
        .any(|s| after.segment_path(s) == files[1]));
    let st = engine.scrub_stats();
    assert_eq!((st.damaged, st.unchecked), (1, 0), "{st:?}");
}

#[test]
fn the_scrub_finds_damage_after_the_open_and_strict_open_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_segments(dir.path(), 3);
    damage(&files[2]);

    let engine = Engine::open(dir.path(), config(true, 0)).expect("open");
    wait_for("a scrub pass", Duration::from_secs(30), || {
        engine.scrub_stats().passes > 0
    });
    let st = engine.scrub_stats();
    assert_eq!((st.intact, st.damaged, st.unchecked), (2, 1, 0), "{st:?}");
    assert!(st.bytes_read > 0);
    let damaged = engine.damaged_segments();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].0, files[2]);
    drop(engine);

    // The open that checks everything first refuses, naming the file.
    let strict = EngineConfig {
        verify_segments_on_open: true,
        ..config(false, 0)
    };
    match Engine::open(dir.path(), strict) {
        Err(EngineError::Corrupt { path, reason, .. }) => {
            assert_eq!(path, files[2]);
            assert!(reason.contains("checksum"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a damaged segment must fail the strict open"),
    }
}

#[test]
fn segments_this_process_writes_need_no_second_read() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), config(false, 0)).expect("open");
    let events: Vec<Event> = (0..50).map(event).collect();
    engine
        .apply(ApplyBatch::one_entry(
            1,
            events.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply");
    engine.flush().expect("flush");
    let view = engine.read_view().expect("view");
    assert!(view.unchecked(&view.segments).is_empty());
    view.check(&view.segments).expect("intact");
    assert_eq!(engine.scrub_stats().bytes_read, 0);
}
