//! The memory budget of funnel step times (issue 28): days older than `hot_days` leave memory
//! least recently used first once the budget is exceeded (and at open they stay in the
//! summaries); a funnel over them loads them back with the same answer, and a late event for
//! such a day loads the day before it is added.

use std::sync::atomic::Ordering;

use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event, FunnelStep};

const DAY: i64 = 86_400_000;

fn event(ts: i64, kind: &str, user: u64, id: u64) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: "a".into(),
        event_type: kind.into(),
        user_id: Some(format!("u{user}")),
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
        event_id: Some(format!("e{id}")),
    }
}

/// Over 20 days starting 50 days ago: each day, 4,000 users click, 2,500 of them install an
/// hour later (~1.3 MB of step times in all: more than a 1 MiB budget).
fn history(start: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let mut id = 0;
    for d in 0..20 {
        for u in 0..4_000u64 {
            id += 1;
            out.push(event(start + d * DAY + u as i64, "ad_click", u, id));
            if u < 2_500 {
                id += 1;
                out.push(event(
                    start + d * DAY + 3_600_000 + u as i64,
                    "install",
                    u,
                    id,
                ));
            }
        }
    }
    out
}

fn funnel(engine: &Engine, from: i64, to: i64) -> Vec<u64> {
    engine
        .step_days("a", from, to, DAY)
        .expect("step days")
        .funnel(&["ad_click", "install"], from, to, DAY)
        .iter()
        .map(|s: &FunnelStep| s.users)
        .collect()
}

/// Applies `events` as entries of 1,000.
fn apply_all(engine: &Engine, events: &[Event]) {
    for (i, chunk) in events.chunks(1000).enumerate() {
        engine
            .apply(ApplyBatch::one_entry(
                i as u64 + 1,
                chunk.iter().map(Event::as_ref).collect(),
            ))
            .expect("apply");
    }
}

#[test]
fn old_step_days_leave_memory_and_come_back_on_demand() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 50) * DAY;
    let events = history(start);
    // The budget counts the rollups' sets and the dedupe filters too: measure them, with the
    // step times, under a budget that holds everything, then give the step times less room
    // than they take (more than a day's worth).
    let (fixed, steps) = {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = EngineConfig {
            memory_budget_mb: 1 << 10,
            hot_days: 2,
            compaction_min_segments: 0,
            ..EngineConfig::default()
        };
        let engine = Engine::open(dir.path(), cfg).expect("open");
        apply_all(&engine, &events);
        engine.flush().expect("flush");
        engine.tick().expect("tick");
        let m = engine.memory_use();
        (m.held() - m.step_bytes, m.step_bytes)
    };
    assert!(
        steps > 1 << 20,
        "the test needs more than a MiB of step times: {steps}"
    );
    let budget_mb = (fixed + steps) >> 20;
    let room = (budget_mb << 20) - fixed;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        memory_budget_mb: budget_mb,
        hot_days: 2,
        compaction_min_segments: 0,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
    apply_all(&engine, &events);
    let whole = funnel(&engine, start, start + 20 * DAY);
    assert_eq!(whole, vec![4_000, 2_500]);
    let one_day = funnel(&engine, start + 5 * DAY, start + 6 * DAY);
    let bytes = |e: &Engine| e.rollups().size().funnel_bytes;
    let held = bytes(&engine);
    assert_eq!(held, steps);
    // Not flushed yet: nothing may leave memory.
    engine.tick().expect("tick");
    assert_eq!(bytes(&engine), held);
    engine.flush().expect("flush");
    // Day 0 used last: the least recently used days go first, day 0 stays.
    funnel(&engine, start, start + 1);
    engine.tick().expect("tick");
    let now_held = bytes(&engine);
    assert!(
        now_held <= room,
        "over the budget after a tick: {now_held} > {room}"
    );
    assert!(engine.memory_use().held() <= budget_mb << 20);
    let out = engine.rollups().step_days_out_count();
    assert!(out > 0 && out < 20, "{out} days out");
    assert!(
        !engine.rollups().steps_out("a", start / DAY),
        "the day used last stayed"
    );
    assert_eq!(
        funnel(&engine, start, start + 20 * DAY),
        whole,
        "loaded back"
    );
    drop(engine);

    // At open, days before the hot days stay in the summaries.
    let engine = Engine::open(dir.path(), cfg.clone()).expect("reopen");
    assert_eq!(bytes(&engine), 0, "no old step day loaded at open");
    assert_eq!(engine.rollups().step_days_out_count(), 20);
    assert_eq!(funnel(&engine, start + 5 * DAY, start + 6 * DAY), one_day);
    assert_eq!(
        engine.rollups().step_days_out_count(),
        18,
        "the funnel loaded the two days it reads"
    );
    assert_eq!(funnel(&engine, start, start + 20 * DAY), whole);
    assert_eq!(engine.rollups().step_days_out_count(), 0);

    // A late install for day 3 of a user who clicked that day (but had not installed): the
    // day is loaded before the event is added, so nothing of it is lost.
    drop(engine);
    let engine = Engine::open(dir.path(), cfg).expect("reopen");
    assert_eq!(engine.rollups().step_days_out_count(), 20);
    let late = event(
        start + 3 * DAY + 7_200_000 + 3_000,
        "install",
        3_000,
        1_000_000,
    );
    engine
        .apply(ApplyBatch::one_entry(10_000, vec![late.as_ref()]))
        .expect("apply");
    assert_eq!(engine.rollups().step_days_out_count(), 19);
    assert_eq!(
        funnel(&engine, start + 3 * DAY, start + 4 * DAY),
        vec![4_000, 2_501]
    );
    assert_eq!(engine.stats().summaries_rebuilt.load(Ordering::Relaxed), 0);
}

/// Told the process's resident memory, the budget bounds the process: what it holds besides
/// the counted parts leaves them that much less room, so step days leave memory that a
/// budget of the parts alone would have kept.
#[test]
fn the_rest_of_the_process_leaves_the_parts_less_room() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 50) * DAY;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        memory_budget_mb: 64,
        hot_days: 2,
        compaction_min_segments: 0,
        ..EngineConfig::default()
    };
    let budget = 64u64 << 20;
    let engine = Engine::open(dir.path(), cfg).expect("open");
    apply_all(&engine, &history(start));
    engine.flush().expect("flush");
    engine.tick().expect("tick");
    let before = engine.memory_use();
    assert_eq!(before.other_bytes, 0, "not told: the parts alone");
    assert_eq!(engine.rollups().step_days_out_count(), 0, "room for all");
    // The rest of the process takes all but half the step times' room.
    let other = budget - before.held() + before.step_bytes / 2;
    engine
        .tick_within(Some(before.held() + other))
        .expect("tick");
    let after = engine.memory_use();
    assert_eq!(after.other_bytes, other);
    assert!(
        after.held() + after.other_bytes <= budget,
        "{after:?} over {budget}"
    );
    assert_eq!(after.over(), 0);
    assert!(after.step_bytes <= before.step_bytes / 2, "{after:?}");
    assert!(engine.rollups().step_days_out_count() > 0);
    // Answers stay the same: the days come back from the summaries.
    assert_eq!(funnel(&engine, start, start + 20 * DAY), vec![4_000, 2_500]);
    // A process that holds more than the budget by itself: over by the difference.
    engine
        .tick_within(Some(engine.memory_use().held() + budget + 1_000))
        .expect("tick");
    assert!(engine.memory_use().over() >= 1_000);
}
