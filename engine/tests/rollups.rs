//! Hourly rollups agree with a brute-force count of the stored events: while rows are in the
//! memtable, after they are flushed and compacted, after the engine is reopened (rebuilt from
//! the segments, the unflushed tail replayed as the log would), and duplicates never count.

use std::collections::{BTreeMap, BTreeSet};

use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event, Totals, HOUR_MS};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// A small deterministic generator (xorshift), so the test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn history(seed: u64, n: u64) -> Vec<Event> {
    let mut r = Rng(seed);
    let kinds = ["app_open", "install", "purchase", "ad_click"];
    let platforms = ["ios", "android", "web"];
    (0..n)
        .map(|i| {
            let kind = kinds[r.next(4) as usize];
            Event {
                timestamp_ms: T0 + r.next(72) as i64 * HOUR_MS + r.next(HOUR_MS as u64) as i64
                    - 3 * HOUR_MS,
                app_id: format!("app{}", r.next(3)),
                event_type: kind.into(),
                user_id: (r.next(5) > 0).then(|| format!("u{}", r.next(400))),
                session_id: None,
                device_id: format!("d{}", r.next(500)),
                platform: platforms[r.next(3) as usize].into(),
                app_version: None,
                attribution: Attribution::default(),
                event_data: Vec::new(),
                revenue: (kind == "purchase").then(|| r.next(10_000) as f64 / 100.0),
                currency: None,
                ip: None,
                user_agent: None,
                received_at_ms: T0,
                event_id: Some(format!("e{i}")),
            }
        })
        .collect::<Vec<Event>>()
        .into_iter()
        .enumerate()
        .scan(Vec::new(), |sent: &mut Vec<Event>, (i, e)| {
            // Every tenth event is a retry of the one sent five before (same payload, so the
            // same app, id and timestamp): stored once.
            let e = if i % 10 == 9 { sent[i - 5].clone() } else { e };
            sent.push(e.clone());
            Some(e)
        })
        .collect()
}

/// What the rollups must say, counted from the events the engine stores (first of each id).
fn expected(events: &[Event], app: &str, hours: std::ops::Range<i64>) -> Totals {
    let mut seen = BTreeSet::new();
    let mut t = Totals::default();
    let mut users = BTreeSet::new();
    let mut platform_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut revenue = 0i128;
    for e in events {
        if !seen.insert((e.app_id.clone(), e.event_id.clone())) {
            continue;
        }
        let h = e.timestamp_ms.div_euclid(HOUR_MS);
        if e.app_id != app || !hours.contains(&h) {
            continue;
        }
        t.events += 1;
        *t.by_type.entry(e.event_type.clone()).or_default() += 1;
        revenue += e.revenue.map_or(0, |r| (r * 1e6).round() as i128);
        t.platforms.entry(e.platform.clone()).or_default().0 += 1;
        let pu = platform_users.entry(e.platform.clone()).or_default();
        if let Some(u) = &e.user_id {
            users.insert(u.clone());
            pu.insert(u.clone());
        }
    }
    t.users = users.len() as u64;
    for (p, u) in platform_users {
        if let Some(e) = t.platforms.get_mut(&p) {
            e.1 = u.len() as u64;
        }
    }
    t.revenue = revenue as f64 / 1e6;
    t
}

fn apply_all(engine: &Engine, events: &[Event], first_index: u64) {
    for (i, chunk) in events.chunks(50).enumerate() {
        let index = first_index + i as u64;
        engine
            .apply(ApplyBatch::one_entry(
                index,
                chunk.iter().map(Event::as_ref).collect(),
            ))
            .expect("apply");
    }
}

fn check(engine: &Engine, events: &[Event], stage: &str) {
    let base = T0 / HOUR_MS;
    let ranges = [
        base - 10..base + 100,
        base..base + 24,
        base + 5..base + 6,
        base - 3..base + 1,
        base + 30..base + 71,
    ];
    for app in ["app0", "app1", "app2"] {
        // Days older than `hot_days` were left in the summaries at open: read back here.
        let r = engine
            .rollups_over(app, base - 10..base + 100)
            .expect("rollups");
        for hours in ranges.clone() {
            let got = r.totals(app, hours.clone());
            let want = expected(events, app, hours.clone());
            assert_eq!(got, want, "{stage}: {app} hours {hours:?}");
        }
        // Day buckets add up to the whole.
        let days = r.buckets(app, base - 10..base + 100, 24);
        let sum: u64 = days.iter().map(|d| d.totals.events).sum();
        assert_eq!(sum, r.totals(app, base - 10..base + 100).events, "{stage}");
        for d in &days {
            let h = d.start_ms / HOUR_MS;
            let want = expected(events, app, h.max(base - 10)..(h + 24).min(base + 100));
            assert_eq!(d.totals, want, "{stage}: {app} day {}", d.start_ms);
        }
    }
}

#[test]
fn rollups_match_the_stored_events_through_flush_compaction_and_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = EngineConfig {
        flush_rows: 700,
        compaction_min_segments: 2,
        compaction_interval_secs: 1,
        ..EngineConfig::default()
    };
    let events = history(0x9e37_79b9_7f4a_7c15, 6_000);
    let (flushed, tail) = events.split_at(4_000);

    let engine = Engine::open(dir.path(), cfg.clone()).expect("open");
    apply_all(&engine, flushed, 1);
    check(&engine, flushed, "memtable and segments");
    engine.flush().expect("flush");
    // Let compaction merge the small segments.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    check(&engine, flushed, "flushed and compacted");
    let tail_first = 1 + flushed.len().div_ceil(50) as u64;
    apply_all(&engine, tail, tail_first);
    check(&engine, &events, "with an unflushed tail");
    drop(engine);
    // The dropped engine's flush thread may still be finishing a merge in this directory (a
    // server holds a lock file so this cannot happen there); later opens do not compact.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let cfg = EngineConfig {
        compaction_min_segments: 1_000_000,
        ..cfg
    };

    // Reopen: the rollups are rebuilt from the segments (everything up to the flushed index);
    // the rest comes back when the log replays it, duplicates included.
    let engine = Engine::open(dir.path(), cfg.clone()).expect("reopen");
    let fi = engine.manifest().flushed_index.expect("flushed index");
    let covered = (fi as usize * 50).min(events.len());
    check(&engine, &events[..covered], "reopened");
    apply_all(&engine, &events[covered..], fi + 1);
    check(&engine, &events, "tail replayed");
    engine.flush().expect("flush");
    drop(engine);
    let engine = Engine::open(dir.path(), cfg).expect("reopen again");
    check(&engine, &events, "all flushed and reopened");
    assert!(engine.rollups().size().users > 0);
}
