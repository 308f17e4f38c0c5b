//! The rollups' hours and campaign days by UTC day, paged (issue 28): days older than
//! `hot_days` stay in the segments' summaries at open, the memory budget sends the least
//! recently used loaded days out, and a reader ([`Engine::rollups_over`]) loads the days it
//! reads back with the same answers; a late event for such a day loads the day before it is
//! added; an erasure finds a user on days out of memory, and their name leaves the dictionary.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use unmogrowp_engine::{
    retention, ApplyBatch, Attribution, Engine, EngineConfig, EraseRequest, Event, RollupDim,
};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const DAYS: i64 = 20;

fn event(ts: i64, kind: &str, user: u64, id: u64) -> Event {
    let campaign = (kind == "install").then(|| format!("c{}", user % 3));
    Event {
        timestamp_ms: ts,
        app_id: "a".into(),
        event_type: kind.into(),
        user_id: Some(format!("u{user}")),
        session_id: None,
        device_id: format!("d{user}"),
        platform: if user % 2 == 0 { "ios" } else { "android" }.into(),
        app_version: None,
        attribution: Attribution {
            campaign,
            source: Some("s".into()),
            medium: None,
            ..Attribution::default()
        },
        event_data: Vec::new(),
        revenue: (kind == "purchase").then_some(1.25 + (user % 7) as f64),
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts,
        event_id: Some(format!("e{id}")),
    }
}

/// 20 days from `start`: each day 3,000 users open the app (spread over the day's hours), a
/// third of them install (with a campaign), a tenth purchase. User 7 only on days 3 and 11.
fn history(start: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let mut id = 0;
    let mut push = |out: &mut Vec<Event>, ts: i64, kind: &str, u: u64| {
        id += 1;
        out.push(event(ts, kind, u, id));
    };
    for d in 0..DAYS {
        for u in 0..3_000u64 {
            if u == 7 && d != 3 && d != 11 {
                continue;
            }
            let ts = start + d * DAY + (u as i64 % 24) * HOUR + u as i64;
            push(&mut out, ts, "app_open", u);
            if u % 3 == 0 {
                push(&mut out, ts + 60_000, "install", u);
            }
            if u % 10 == 0 {
                push(&mut out, ts + 120_000, "purchase", u);
            }
        }
    }
    out
}

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

/// Everything the dashboards and SQL read from the hours, over `all` and ranges cutting
/// days: one text to compare.
fn answers(engine: &Engine, all: Range<i64>) -> String {
    let r = engine.rollups_over("a", all.clone()).expect("rollups");
    let mut out = String::new();
    let h = r.hours("a", all.clone());
    out += &format!("totals {:?}\n", h.totals());
    out += &format!("days {:?}\n", h.buckets(24));
    for dim in [RollupDim::All, RollupDim::Platform, RollupDim::EventType] {
        out += &format!("groups {dim:?} {:?}\n", h.groups(dim, true));
    }
    let edges = all.start + 5..all.end - 7;
    out += &format!("hours {:?}\n", r.hours("a", edges.clone()).buckets(1));
    for range in [all.clone(), edges] {
        let c = r.campaigns("a", range.clone());
        out += &format!("campaigns {range:?} {:?}\n", c.totals());
        out += &format!("by campaign {range:?} {:?}\n", c.by_campaign());
    }
    let first = r.hours("a", all.start..all.start + 5 * 24);
    out += &format!("retention {:?}\n", retention(&first, &h, "install", 3));
    out
}

fn config(budget_mb: u64) -> EngineConfig {
    EngineConfig {
        memory_budget_mb: budget_mb,
        hot_days: 2,
        compaction_min_segments: 0,
        ..EngineConfig::default()
    }
}

fn counted_hours(engine: &Engine) -> u64 {
    engine.rollups().size().hours
}

#[test]
fn old_days_of_hours_leave_memory_and_come_back_with_the_same_answers() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 50) * DAY;
    let all = start / HOUR..(start + DAYS * DAY) / HOUR;
    let events = history(start);
    let dir = tempfile::tempdir().expect("tmp");
    let budget = 64u64 << 20;
    let engine = Engine::open(dir.path(), config(64)).expect("open");
    apply_all(&engine, &events);
    let want = answers(&engine, all.clone());
    let hours = counted_hours(&engine);
    assert_eq!(hours, DAYS as u64 * 24);

    // Not flushed yet: the rest of the process leaves no room, and still nothing leaves.
    engine.tick().expect("tick");
    let held = engine.memory_use().held();
    engine.tick_within(Some(held + budget)).expect("tick");
    assert_eq!(counted_hours(&engine), hours, "rows not in a segment stay");
    assert_eq!(engine.rollups().hour_days_out_count(), 0);

    // Flushed, day 0 read last: room for half the sets. Step days go first (all of them),
    // then the least recently used days of hours; day 0 stays.
    engine.flush().expect("flush");
    engine.tick_within(None).expect("tick");
    let before = engine.memory_use();
    assert!(
        before.rollup_bytes > 0 && before.step_bytes > 0,
        "{before:?}"
    );
    let day0 = all.start..all.start + 24;
    engine
        .rollups_over("a", day0.clone())
        .expect("day 0")
        .totals("a", day0);
    let other = budget - before.held() + before.step_bytes + before.rollup_bytes / 2;
    engine
        .tick_within(Some(before.held() + other))
        .expect("tick");
    let after = engine.memory_use();
    assert_eq!(after.step_bytes, 0, "{after:?}");
    assert!(
        after.rollup_bytes <= before.rollup_bytes / 2,
        "{after:?} vs {before:?}"
    );
    assert_eq!(after.over(), 0, "{after:?}");
    let out = engine.rollups().hour_days_out_count();
    assert!(out > 0 && out < DAYS as u64, "{out} days out");
    assert!(
        !engine.rollups().hours_out("a", start / DAY),
        "the day read last stayed"
    );
    // (Days 1-4 were read after the others by `answers`' retention.)
    assert!(engine.rollups().hours_out("a", start / DAY + 5));
    // Read back: the same answers, every day in memory again.
    assert_eq!(answers(&engine, all.clone()), want);
    assert_eq!(engine.rollups().hour_days_out_count(), 0);
    assert_eq!(counted_hours(&engine), hours);
    drop(engine);

    // At open, days before the hot days stay in the summaries: none of these is loaded.
    let engine = Engine::open(dir.path(), config(64)).expect("reopen");
    assert_eq!(counted_hours(&engine), 0, "no old hour loaded at open");
    assert_eq!(engine.rollups().size().bitmap_bytes, 0);
    assert_eq!(engine.rollups().hour_days_out_count(), DAYS as u64);
    let day5 = all.start + 5 * 24..all.start + 6 * 24;
    let r = engine.rollups_over("a", day5.clone()).expect("day 5");
    assert_eq!(r.hours("a", day5.clone()).buckets(1).len(), 24);
    drop(r);
    assert_eq!(engine.rollups().hour_days_out_count(), DAYS as u64 - 1);
    assert_eq!(answers(&engine, all.clone()), want);
    assert_eq!(engine.rollups().hour_days_out_count(), 0);
    assert_eq!(engine.stats().summaries_rebuilt.load(Ordering::Relaxed), 0);
    drop(engine);

    // A late event for day 3: the day is loaded before it is added, so nothing of it is lost.
    let engine = Engine::open(dir.path(), config(64)).expect("reopen");
    let day3 = all.start + 3 * 24..all.start + 4 * 24;
    let was = engine
        .rollups_over("a", day3.clone())
        .expect("day 3")
        .totals("a", day3.clone());
    drop(engine);
    let engine = Engine::open(dir.path(), config(64)).expect("reopen");
    assert!(engine.rollups().hours_out("a", start / DAY + 3));
    let late = event(start + 3 * DAY + 5 * HOUR, "purchase", 5_000, 1_000_000);
    engine
        .apply(ApplyBatch::one_entry(100_000, vec![late.as_ref()]))
        .expect("apply");
    assert!(!engine.rollups().hours_out("a", start / DAY + 3));
    let now = engine
        .rollups_over("a", day3.clone())
        .expect("day 3")
        .totals("a", day3);
    assert_eq!(now.events, was.events + 1);
    assert_eq!(now.users, was.users + 1);
    assert_eq!(now.by_type["purchase"], was.by_type["purchase"] + 1);
    assert!((now.revenue - was.revenue - 1.25 - (5_000 % 7) as f64).abs() < 1e-9);
    // Flushed and reopened: the late event is in the day's summary like the rest.
    engine.flush().expect("flush");
    drop(engine);
    let engine = Engine::open(dir.path(), config(64)).expect("reopen");
    let total = engine
        .rollups_over("a", all.clone())
        .expect("all")
        .totals("a", all.clone());
    assert_eq!(total.events, events.len() as u64 + 1);
}

#[test]
fn an_erasure_finds_a_user_on_days_out_of_memory() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 50) * DAY;
    let all = start / HOUR..(start + DAYS * DAY) / HOUR;
    let events = history(start);
    let u7 = events
        .iter()
        .filter(|e| e.user_id.as_deref() == Some("u7"))
        .count() as u64;
    let dir = tempfile::tempdir().expect("tmp");
    {
        let engine = Engine::open(dir.path(), config(64)).expect("open");
        apply_all(&engine, &events);
        engine.flush().expect("flush");
    }
    let engine = Engine::open(dir.path(), config(64)).expect("reopen");
    let before = engine
        .rollups_over("a", all.clone())
        .expect("all")
        .totals("a", all.clone());
    drop(engine);
    // Every day out of memory again: the erasure looks for u7 in the summaries.
    let engine = Engine::open(dir.path(), config(64)).expect("reopen");
    assert_eq!(engine.rollups().hour_days_out_count(), DAYS as u64);
    let e = engine
        .erase(
            EraseRequest {
                id: "r1".into(),
                app_id: "a".into(),
                user_ids: vec!["u7".into()],
                device_ids: Vec::new(),
                at_ms: 1,
            },
            100_000,
        )
        .expect("erase");
    assert_eq!(e.events, u7);
    assert_eq!(e.todo.len(), 2, "the segments of days 3 and 11 only: {e:?}");
    let t0 = Instant::now();
    while !engine.erasures().iter().all(|e| e.done()) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "erasure never finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        engine.rollups().hour_days_out_count(),
        DAYS as u64 - 2,
        "the two rewritten days are counted again, in memory"
    );
    let after = engine
        .rollups_over("a", all.clone())
        .expect("all")
        .totals("a", all.clone());
    assert_eq!(after.events, before.events - u7);
    assert_eq!(after.users, before.users - 1);
    // Sealed: no hour counts u7 any more, so the name leaves the dictionary.
    assert!(
        engine
            .complete_erasure("r1")
            .expect("seal")
            .expect("known")
            .sealed
    );
    assert_eq!(engine.rollups().user_number("a", "u7"), None);
    assert!(engine.rollups().user_number("a", "u8").is_some());
}
