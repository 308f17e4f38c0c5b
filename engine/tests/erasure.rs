//! Erasure (issue 29): the rows of one user (or device) of one app before the erasure's log
//! index are removed from every segment; the rollups equal a count of what is left (users
//! whose other devices remain stay counted); dedupe answers the erased ids as new, alike
//! before and after the rewrite; later rows of the same user stay; sealing forgets the
//! identifiers and the erased ids.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, EraseRequest, Event};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn event(app: &str, ts: i64, user: u64, device: u64, id: u64) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: app.into(),
        event_type: if id % 4 == 0 { "purchase" } else { "open" }.into(),
        user_id: Some(format!("u{user}")),
        session_id: None,
        device_id: format!("d{device}"),
        platform: if id % 2 == 0 { "ios" } else { "android" }.into(),
        app_version: None,
        attribution: Attribution {
            campaign: Some(format!("c{}", id % 3)),
            ..Attribution::default()
        },
        event_data: Vec::new(),
        revenue: (id % 4 == 0).then_some(1.5),
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts,
        event_id: Some(format!("e{id}")),
    }
}

fn apply(engine: &Engine, index: u64, events: &[Event]) -> (u64, u64) {
    let o = &engine
        .apply(ApplyBatch::one_entry(
            index,
            events.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply")[0];
    (o.accepted, o.duplicates)
}

/// Every stored row as (app, user, device, event id), from the segment files and memory.
fn stored(engine: &Engine) -> Vec<(String, String, String, String)> {
    let view = engine.read_view().expect("view");
    let mut batches: Vec<RecordBatch> = view.batches.clone();
    for s in &view.segments {
        let f = std::fs::File::open(view.segment_path(s)).expect("segment");
        batches.extend(
            ParquetRecordBatchReader::try_new(f, 8192)
                .unwrap()
                .map(|b| b.unwrap()),
        );
    }
    let mut out = Vec::new();
    for b in &batches {
        let col = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (a, u, d, e) = (
            col("app_id"),
            col("user_id"),
            col("device_id"),
            col("event_id"),
        );
        for r in 0..b.num_rows() {
            out.push((
                a.value(r).into(),
                u.value(r).into(),
                d.value(r).into(),
                e.value(r).into(),
            ));
        }
    }
    out.sort();
    out
}

/// The rollups' totals of an app against a count of the stored rows: events, revenue
/// events, distinct users (all, per platform), events per campaign.
fn check_rollups(engine: &Engine, app: &str) {
    let rows: Vec<_> = stored(engine).into_iter().filter(|r| r.0 == app).collect();
    let users: BTreeSet<&String> = rows.iter().map(|r| &r.1).collect();
    let r = engine
        .rollups_over(app, 0..i64::MAX / HOUR / 2)
        .expect("rollups");
    let t = r.totals(app, 0..i64::MAX / HOUR / 2);
    assert_eq!(t.events, rows.len() as u64, "events of {app}");
    assert_eq!(t.users, users.len() as u64, "users of {app}");
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        let id: u64 = r.3[1..].parse().unwrap();
        *by_type
            .entry(if id % 4 == 0 { "purchase" } else { "open" }.into())
            .or_default() += 1;
    }
    assert_eq!(t.by_type, by_type, "events by type of {app}");
    let c = r.campaigns(app, 0..i64::MAX / HOUR / 2);
    let counted: u64 = c.totals().iter().map(|c| c.events).sum();
    assert_eq!(counted, rows.len() as u64, "campaign events of {app}");
}

fn wait_done(engine: &Engine) {
    let t0 = Instant::now();
    while !engine.erasures().iter().all(|e| e.done()) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "erasure never finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn req(id: &str, app: &str, user: Option<&str>, device: Option<&str>) -> EraseRequest {
    EraseRequest {
        id: id.into(),
        app_id: app.into(),
        user_ids: user.into_iter().map(str::to_string).collect(),
        device_ids: device.into_iter().map(str::to_string).collect(),
        at_ms: 1,
    }
}

#[test]
fn erasing_a_user_and_a_device_leaves_exactly_the_rest_counted_alike() {
    let start = (chrono::Utc::now().timestamp_millis() / DAY - 10) * DAY;
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        compaction_min_segments: 0,
        flush_interval_secs: 3600,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path(), cfg.clone()).unwrap();
    // 5 entries, each over 4 days, 2 apps, 20 users with 2 devices each (d = 2u, 2u+1).
    let mut id = 0u64;
    for index in 1..=5u64 {
        let mut evs = Vec::new();
        for app in ["a", "b"] {
            for day in 0..4 {
                for u in 0..20u64 {
                    id += 1;
                    let ts = start + day * DAY + (u as i64) * HOUR / 2 + index as i64;
                    evs.push(event(app, ts, u, 2 * u + (day as u64 % 2), id));
                }
            }
        }
        apply(&engine, index, &evs);
        if index < 5 {
            engine.flush().unwrap();
        }
    }
    let before = stored(&engine);
    // User u7 of app a, and device d10 (user u5's, who keeps d11) of app a.
    let e = engine.erase(req("r1", "a", Some("u7"), None), 6).unwrap();
    let u7 = before.iter().filter(|r| r.0 == "a" && r.1 == "u7").count() as u64;
    assert_eq!(e.events, u7);
    assert!(e.todo.len() >= 4, "u7 is in several segments: {:?}", e.todo);
    // An event of u7 after the erasure is kept; an erased id re-sent is stored again.
    let later = event("a", start + DAY, 7, 14, 9_000_001);
    let erased_id = before
        .iter()
        .find(|r| r.0 == "a" && r.1 == "u7")
        .unwrap()
        .3
        .clone();
    let num = |id: &str| id[1..].parse::<u64>().unwrap();
    let resent = event("a", start + 2 * DAY, 7, 14, num(&erased_id));
    let kept_dup = event("a", start, 1, 2, 1_000_000);
    let kept_id = before
        .iter()
        .find(|r| r.0 == "a" && r.1 == "u1")
        .unwrap()
        .3
        .clone();
    let dup = Event {
        event_id: Some(kept_id),
        ..kept_dup
    };
    assert_eq!(apply(&engine, 7, &[later.clone(), resent, dup]), (2, 1));
    wait_done(&engine);
    let e = engine.erase(req("r2", "a", None, Some("d10")), 8).unwrap();
    assert!(e.events > 0);
    wait_done(&engine);

    let after = stored(&engine);
    let expect: Vec<_> = before
        .iter()
        .filter(|r| !(r.0 == "a" && (r.1 == "u7" || r.2 == "d10")))
        .cloned()
        .collect();
    let u7_now: Vec<_> = after.iter().filter(|r| r.0 == "a" && r.1 == "u7").collect();
    assert_eq!(
        u7_now.len(),
        2,
        "only the two events sent after the erasure"
    );
    let old: Vec<_> = after
        .iter()
        .filter(|r| !(r.0 == "a" && r.1 == "u7"))
        .cloned()
        .collect();
    let expect_old: Vec<_> = expect
        .iter()
        .filter(|r| !(r.0 == "a" && r.1 == "u7"))
        .cloned()
        .collect();
    assert_eq!(
        old, expect_old,
        "exactly the user's and the device's rows are gone"
    );
    assert!(
        after.iter().any(|r| r.0 == "a" && r.1 == "u5"),
        "u5 keeps d11"
    );
    check_rollups(&engine, "a");
    check_rollups(&engine, "b");
    let es = engine.erasures();
    assert_eq!(es[0].events_erased, es[0].events);
    assert_eq!(es[1].events_erased, es[1].events);
    assert!(es.iter().all(|e| e.segments_rewritten > 0));

    // The erased ids are kept for mirrors until sealed; sealing forgets them and the ids.
    assert_eq!(engine.erased_event_ids("r1").unwrap().len() as u64, u7);
    let r1 = engine.complete_erasure("r1").unwrap().unwrap();
    assert!(r1.sealed);
    assert!(engine.erased_event_ids("r1").unwrap().is_empty());
    let sealed = &engine.erasures()[0];
    assert!(sealed.sealed && sealed.user_ids.is_empty());
    let manifest = std::fs::read(engine.root().join("manifest.json")).unwrap();
    assert!(!String::from_utf8_lossy(&manifest).contains("\"u7\""));

    // Reopened: the same rows, counted the same, the same answers from dedupe.
    drop(engine);
    let engine = Engine::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(stored(&engine), after);
    check_rollups(&engine, "a");
    check_rollups(&engine, "b");
    let gone = before
        .iter()
        .find(|r| r.0 == "a" && r.2 == "d10")
        .unwrap()
        .3
        .clone();
    let again = event("a", start + 3 * DAY, 5, 10, gone[1..].parse().unwrap());
    assert_eq!(apply(&engine, 9, &[again, later]), (1, 1));
    // A user with no event left: once complete, their name leaves the user dictionary too
    // (the file is rewritten with the same numbering), and stays out after a reopen.
    let dict_holds = |engine: &Engine, name: &str| {
        let mut needle = (name.len() as u64).to_le_bytes().to_vec();
        needle.extend_from_slice(name.as_bytes());
        std::fs::read_dir(engine.root())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".dict"))
            .any(|e| {
                let b = std::fs::read(e.path()).unwrap();
                b.windows(needle.len()).any(|w| w == needle.as_slice())
            })
    };
    assert!(dict_holds(&engine, "u3"));
    // (Both apps have a u3: erased in app a, the name is still there for app b.)
    let e = engine.erase(req("r3", "a", Some("u3"), None), 10).unwrap();
    assert!(e.events > 0);
    wait_done(&engine);
    assert!(engine.complete_erasure("r3").unwrap().unwrap().sealed);
    assert_eq!(engine.rollups().user_number("a", "u3"), None);
    assert!(
        engine.rollups().user_number("b", "u3").is_some(),
        "app b keeps its u3"
    );
    assert!(dict_holds(&engine, "u3"));
    assert!(
        engine
            .erase(req("r4", "b", Some("u3"), None), 11)
            .unwrap()
            .events
            > 0
    );
    wait_done(&engine);
    assert!(engine.complete_erasure("r4").unwrap().unwrap().sealed);
    assert!(
        !dict_holds(&engine, "u3"),
        "the erased user's name is still in the dictionary"
    );
    assert!(dict_holds(&engine, "u4"), "(the search sees the others)");
    check_rollups(&engine, "a");
    let rows_now = stored(&engine);
    drop(engine);
    let engine = Engine::open(dir.path(), cfg.clone()).unwrap();
    assert!(!dict_holds(&engine, "u3"));
    assert_eq!(stored(&engine), rows_now);
    check_rollups(&engine, "a");
    check_rollups(&engine, "b");
    // The same user again later: numbered anew, counted.
    assert_eq!(
        apply(&engine, 12, &[event("a", start + DAY, 3, 6, 9_100_000)]),
        (1, 0)
    );
    check_rollups(&engine, "a");

    // Replaying an applied erasure changes nothing.
    let r1 = engine.erase(req("r1", "a", Some("u7"), None), 6).unwrap();
    assert!(r1.sealed);
    assert!(engine
        .erase(req("bad/id", "a", Some("u7"), None), 10)
        .is_err());
}
