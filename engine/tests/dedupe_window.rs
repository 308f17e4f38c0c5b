//! The idempotency window (issue 28): ids of the days within `dedupe_window_secs` stay in
//! memory, older days leave memory once flushed, and an event re-sent after that — or after
//! a restart, when only the window is loaded back — is still stored once (its segment's filter
//! says "maybe", the segment's ids settle it). Memory holds the window, not the history.

use std::time::{Duration, Instant};

use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};

const DAY: i64 = 86_400_000;

fn event(app: &str, ts: i64, id: &str) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: app.into(),
        event_type: "open".into(),
        user_id: Some(format!("u-{id}")),
        session_id: None,
        device_id: "d".into(),
        platform: "ios".into(),
        app_version: None,
        attribution: Attribution::default(),
        event_data: Vec::new(),
        revenue: None,
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts,
        event_id: Some(id.into()),
    }
}

/// Accepted and duplicate counts of applying `events` as one entry at `index`.
fn apply(engine: &Engine, index: u64, events: &[Event]) -> (u64, u64) {
    let out = engine
        .apply(ApplyBatch::one_entry(
            index,
            events.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply");
    (
        out.iter().map(|o| o.accepted).sum(),
        out.iter().map(|o| o.duplicates).sum(),
    )
}

fn cfg() -> EngineConfig {
    EngineConfig {
        compaction_min_segments: 0,
        dedupe_window_secs: 2 * 86_400,
        ..EngineConfig::default()
    }
}

#[test]
fn events_re_sent_after_the_window_are_stored_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let now = chrono::Utc::now().timestamp_millis();
    // 30 days ago (outside the 2-day window) and now (inside), two apps.
    let old: Vec<Event> = (0..2_000)
        .map(|i| {
            event(
                ["a", "b"][i % 2],
                now - 30 * DAY + i as i64,
                &format!("old{i}"),
            )
        })
        .collect();
    let recent: Vec<Event> = (0..500)
        .map(|i| event("a", now - 1000 + i as i64, &format!("new{i}")))
        .collect();
    let engine = Engine::open(dir.path(), cfg()).expect("open");
    assert_eq!(apply(&engine, 1, &old), (2_000, 0));
    assert_eq!(apply(&engine, 2, &recent), (500, 0));
    assert_eq!(engine.dedupe_stats().keys_in_memory, 2_500);
    // Nothing leaves memory before it is in a segment.
    engine.tick().expect("tick");
    assert_eq!(engine.dedupe_stats().keys_in_memory, 2_500);
    engine.flush().expect("flush");
    engine.tick().expect("tick");
    let st = engine.dedupe_stats();
    assert_eq!(st.keys_in_memory, 500, "the old day left memory: {st:?}");
    assert!(st.filter_bytes > 0);

    // Re-sent after the window: stored once, settled by reading the old segments' ids.
    assert_eq!(apply(&engine, 3, &old), (0, 2_000));
    assert_eq!(apply(&engine, 4, &recent), (0, 500));
    let st = engine.dedupe_stats();
    assert_eq!(
        st.segment_reads, 2,
        "one read per old segment (two apps): {st:?}"
    );
    // A new event of the old day is new; once flushed, the old day leaves memory again.
    assert_eq!(
        apply(&engine, 5, &[event("a", now - 30 * DAY, "old-late")]),
        (1, 0)
    );
    engine.flush().expect("flush");
    engine.tick().expect("tick");
    assert_eq!(engine.dedupe_stats().keys_in_memory, 500);
    assert_eq!(
        apply(&engine, 6, &[event("a", now - 30 * DAY, "old-late")]),
        (0, 1)
    );
    // The dedupe key includes the UTC day of the timestamp: the same id on another day is
    // another event.
    assert_eq!(
        apply(&engine, 7, &[event("a", now - 29 * DAY, "old0")]),
        (1, 0)
    );
    engine.flush().expect("flush");
    drop(engine);

    // After a restart only the window is loaded back (in the background); older days are
    // still answered exactly.
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    let t0 = Instant::now();
    while engine.dedupe_stats().keys_in_memory < 500 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "window never loaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(engine.dedupe_stats().keys_in_memory, 500);
    assert_eq!(apply(&engine, 8, &recent), (0, 500));
    assert_eq!(apply(&engine, 9, &old), (0, 2_000));
    assert_eq!(
        apply(&engine, 10, &[event("a", now - 30 * DAY, "old-late")]),
        (0, 1)
    );
    assert_eq!(engine.stored_rows(), 2_502);
}

/// Re-sends each of `days` (one entry each from log index `first`): every event a duplicate.
fn all_duplicates(engine: &Engine, first: u64, days: &[Vec<Event>]) {
    for (i, d) in days.iter().enumerate() {
        let n = d.len() as u64;
        assert_eq!(apply(engine, first + i as u64, d), (0, n), "day {}", i + 1);
    }
}

/// `engine.memory_budget_mb` bounds the window too: over the budget, filters go back to the
/// summaries and whole days of the window leave memory, oldest first (never yesterday or
/// today), and every re-send is still a duplicate — settled by filters read back and ids.
#[test]
fn the_memory_budget_sends_window_days_out_and_answers_stay_exact() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        compaction_min_segments: 0,
        dedupe_window_secs: 30 * 86_400,
        memory_budget_mb: 1,
        ..EngineConfig::default()
    };
    let now = chrono::Utc::now().timestamp_millis();
    // 12 days of 15k events each (180k keys: ~3 MB packed, well over 1 MiB), and today.
    let days: Vec<Vec<Event>> = (1..=12)
        .map(|d| {
            (0..15_000)
                .map(|i| event("a", now - d * DAY + i, &format!("d{d}-{i}")))
                .collect()
        })
        .collect();
    let today: Vec<Event> = (0..1_000)
        .map(|i| event("a", now - 5_000 + i, &format!("t{i}")))
        .collect();
    let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
    for (i, d) in days.iter().enumerate() {
        assert_eq!(apply(&engine, i as u64 + 1, d), (15_000, 0));
    }
    assert_eq!(apply(&engine, 20, &today), (1_000, 0));
    // Nothing leaves memory before it is in a segment.
    engine.tick().expect("tick");
    assert_eq!(engine.dedupe_stats().keys_in_memory, 181_000);
    engine.flush().expect("flush");
    engine.tick().expect("tick");
    let st = engine.dedupe_stats();
    let mem = engine.memory_use();
    assert_eq!(mem.budget, 1 << 20);
    assert!(
        mem.dedupe_key_bytes + mem.dedupe_filter_bytes <= mem.budget,
        "{mem:?}"
    );
    assert!(
        st.budget_evictions > 0 && st.filters_in_summaries > 0,
        "{st:?}"
    );
    // Yesterday and today stay.
    assert!(st.keys_in_memory >= 16_000, "{st:?}");
    assert!(st.keys_in_memory < 100_000, "{st:?}");

    // Every re-send is a duplicate; new ids on those days are new.
    all_duplicates(&engine, 30, &days);
    assert_eq!(apply(&engine, 50, &today), (0, 1_000));
    let st = engine.dedupe_stats();
    assert!(st.filter_reads > 0, "{st:?}");
    let late: Vec<Event> = (1..=12)
        .map(|d| event("a", now - d * DAY, &format!("late{d}")))
        .collect();
    assert_eq!(apply(&engine, 51, &late), (12, 0));
    engine.flush().expect("flush");
    engine.tick().expect("tick");
    let mem = engine.memory_use();
    assert!(
        mem.dedupe_key_bytes + mem.dedupe_filter_bytes <= mem.budget,
        "back within the budget after the re-sends: {mem:?}"
    );
    drop(engine);

    // After a restart the window loader stops at the budget; answers stay exact.
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    for _ in 0..20 {
        engine.tick().expect("tick");
        std::thread::sleep(Duration::from_millis(50));
    }
    all_duplicates(&engine, 60, &days);
    assert_eq!(apply(&engine, 80, &late), (0, 12));
    assert_eq!(engine.stored_rows(), 181_012);
}
