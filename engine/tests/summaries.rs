//! Segment summaries and the user dictionary (what opening a generation reads instead of the
//! rows): the rollups and dedupe state loaded from them equal those rebuilt from the rows, at
//! every level the dashboard reads (totals, hourly buckets, groups, campaigns, funnels,
//! retention); a missing or damaged summary or dictionary is rebuilt, reported and written
//! again; nothing depends on the order a node numbered its users.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use unmogrowp_engine::{
    retention, ApplyBatch, Attribution, Engine, EngineConfig, Event, RollupDim, HOUR_MS,
};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const APPS: [&str; 3] = ["app0", "app1", "app2"];

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
    let campaigns = ["spring", "summer", "brand"];
    (0..n)
        .map(|i| {
            let kind = kinds[r.next(4) as usize];
            let campaign = (r.next(3) > 0).then(|| campaigns[r.next(3) as usize].to_string());
            Event {
                timestamp_ms: T0 + r.next(96) as i64 * HOUR_MS + r.next(HOUR_MS as u64) as i64,
                app_id: APPS[r.next(3) as usize].into(),
                event_type: kind.into(),
                user_id: (r.next(5) > 0).then(|| format!("u{}", r.next(300))),
                session_id: None,
                device_id: format!("d{}", r.next(500)),
                platform: platforms[r.next(3) as usize].into(),
                app_version: None,
                attribution: Attribution {
                    source: campaign.as_ref().map(|_| "google".to_string()),
                    medium: (r.next(2) == 0).then(|| "cpc".to_string()),
                    campaign,
                    ..Attribution::default()
                },
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

fn apply_all(engine: &Engine, events: &[Event], first_index: u64) -> u64 {
    let mut accepted = 0;
    for (i, chunk) in events.chunks(50).enumerate() {
        let out = engine
            .apply(ApplyBatch::one_entry(
                first_index + i as u64,
                chunk.iter().map(Event::as_ref).collect(),
            ))
            .expect("apply");
        accepted += out.iter().map(|o| o.accepted).sum::<u64>();
    }
    accepted
}

/// Everything the dashboard reads from the rollups, in a form that does not depend on how
/// users or campaigns are numbered.
fn fingerprint(engine: &Engine) -> String {
    // Funnels through the engine (days left in the summaries are loaded back), before the
    // rollups are locked for the rest.
    let steps = ["ad_click", "install", "purchase"];
    let (from, to) = (T0, T0 + 2 * 24 * HOUR_MS);
    let funnels: std::collections::BTreeMap<&str, _> = APPS
        .iter()
        .map(|app| {
            let f = engine
                .step_days(app, from, to, 24 * HOUR_MS)
                .expect("step days")
                .funnel(&steps, from, to, 24 * HOUR_MS);
            (*app, f)
        })
        .collect();
    let base = T0 / HOUR_MS;
    let all = base - 24..base + 24 * 6;
    let mut out = String::new();
    for app in APPS {
        let r = engine.rollups_over(app, all.clone()).expect("rollups");
        let hours = r.hours(app, all.clone());
        out += &format!("{app} buckets {:?}\n", hours.buckets(1));
        out += &format!("{app} days {:?}\n", hours.buckets(24));
        for dim in [RollupDim::All, RollupDim::Platform, RollupDim::EventType] {
            out += &format!("{app} groups {dim:?} {:?}\n", hours.groups(dim, true));
        }
        for range in [all.clone(), base + 5..base + 50] {
            let mut c = r.campaigns(app, range.clone()).totals();
            c.sort_by(|a, b| a.key.cmp(&b.key));
            out += &format!("{app} campaigns {range:?} {c:?}\n");
            out += &format!(
                "{app} by campaign {range:?} {:?}\n",
                r.campaigns(app, range.clone()).by_campaign()
            );
        }
        out += &format!("{app} funnel {:?}\n", funnels[app]);
        let first = r.hours(app, base..base + 48);
        let active = r.hours(app, base..base + 96);
        out += &format!(
            "{app} retention {:?}\n",
            retention(&first, &active, "install", 2)
        );
    }
    numbering_free(&out)
}

/// `text` without the smallest and largest user numbers Debug prints for bitmaps ("N values
/// between A and B"): numbers depend on the order a node met its users.
fn numbering_free(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" between ") {
        out += &rest[..i];
        let tail = &rest[i + " between ".len()..];
        let end = tail.find('>').unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out + rest
}

/// Equal fingerprints, or a failure naming the first line that differs.
#[track_caller]
fn same(got: &str, want: &str, stage: &str) {
    if got != want {
        let (g, w) = got
            .lines()
            .zip(want.lines())
            .find(|(g, w)| g != w)
            .unwrap_or(("(missing)", "(missing)"));
        panic!("{stage}: rollups differ\n got: {g}\nwant: {w}");
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rebuilt(engine: &Engine) -> u64 {
    engine.stats().summaries_rebuilt.load(Ordering::Relaxed)
}

fn cfg() -> EngineConfig {
    EngineConfig {
        flush_rows: 600,
        compaction_min_segments: 2,
        compaction_interval_secs: 1,
        ..EngineConfig::default()
    }
}

#[test]
fn summaries_equal_a_rebuild_from_the_rows_and_damage_is_rebuilt_and_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let events = history(7, 6_000);
    let engine = Engine::open(dir.path(), cfg()).expect("open");
    let stored = apply_all(&engine, &events, 1);
    engine.flush().expect("flush");
    // Let compaction merge some segments (their summaries are made from the merged rows).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let live = fingerprint(&engine);
    let segments = engine.manifest().segments.len();
    let root = engine.root();
    drop(engine);

    // Every segment has a summary; opening reads them and rebuilds nothing.
    let sums = files(&root, "summary");
    assert_eq!(sums.len(), segments, "one summary per segment");
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert_eq!(rebuilt(&engine), 0);
    same(&fingerprint(&engine), &live, "loaded from summaries");
    assert_eq!(engine.stored_rows(), stored);
    // The dedupe set came from the summaries: every event again is a duplicate.
    assert_eq!(apply_all(&engine, &events, 10_000), 0, "all duplicates");
    drop(engine);

    // One summary deleted, one with a flipped byte: both rebuilt from rows and reported.
    std::fs::remove_file(&sums[0]).expect("rm");
    let mut bytes = std::fs::read(&sums[1]).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&sums[1], &bytes).expect("write");
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert_eq!(rebuilt(&engine), 2);
    same(
        &fingerprint(&engine),
        &live,
        "after rebuilding two summaries",
    );
    drop(engine);
    // ... and written again: the next open reads them.
    assert_eq!(files(&root, "summary").len(), segments);
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert_eq!(rebuilt(&engine), 0);
    same(&fingerprint(&engine), &live, "reopened");
    drop(engine);

    // A damaged dictionary: every summary is rebuilt, with a new dictionary.
    let dicts = files(&root, "dict");
    assert_eq!(dicts.len(), 1);
    let mut bytes = std::fs::read(&dicts[0]).expect("read");
    bytes[20] ^= 0x01;
    std::fs::write(&dicts[0], &bytes).expect("write");
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert_eq!(rebuilt(&engine), segments as u64);
    same(
        &fingerprint(&engine),
        &live,
        "after rebuilding the dictionary",
    );
    assert_eq!(apply_all(&engine, &events, 20_000), 0, "all duplicates");
    drop(engine);
    let dicts_now = files(&root, "dict");
    assert_eq!(dicts_now.len(), 1);
    assert_ne!(
        dicts_now, dicts,
        "a new dictionary file replaced the damaged one"
    );
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert_eq!(rebuilt(&engine), 0);
    same(&fingerprint(&engine), &live, "reopened");
}

#[test]
fn rows_replayed_after_open_number_new_users_after_the_dictionary() {
    // Users first seen after a reopen get numbers after the loaded dictionary's; their
    // segments' summaries refer to them and load again.
    let dir = tempfile::tempdir().expect("tmp");
    let events = history(11, 4_000);
    let (a, b) = events.split_at(2_000);
    let engine = Engine::open(dir.path(), cfg()).expect("open");
    apply_all(&engine, a, 1);
    engine.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(engine);
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    apply_all(&engine, b, 1_000);
    engine.flush().expect("flush");
    // Let compaction settle: a merge still running when the engine is dropped would
    // finish behind the next open's back.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let live = fingerprint(&engine);
    drop(engine);
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert_eq!(rebuilt(&engine), 0);
    same(&fingerprint(&engine), &live, "reopened");
    // The same from the rows alone.
    let root = engine.root();
    drop(engine);
    for f in files(&root, "summary") {
        std::fs::remove_file(f).expect("rm");
    }
    let engine = Engine::open(dir.path(), cfg()).expect("reopen");
    assert!(rebuilt(&engine) > 0);
    same(&fingerprint(&engine), &live, "reopened");
}
