//! A power cut at every durable step of a Parquet flush, a compaction and a snapshot install
//! (issue 25; TESTPLAN PQ-01/02/03 at the IO seam): the engine writes through a `FaultFs`
//! whose power goes out at the k-th durable call, for every k until the operation completes
//! untouched. After each cut the engine is opened again on the real file system, and
//! - the stored rows are exactly the events of the log entries up to the manifest's
//!   `flushed_index` (nothing lost, nothing doubled, no half-written segment visible);
//! - replaying the entries after `flushed_index` (what the node does from its log) gives every
//!   event exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use disk::{FaultFs, FileSystem};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use unmogrowp_engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(app: &str, ts: i64, id: u64) -> Event {
    Event {
        timestamp_ms: ts,
        app_id: app.into(),
        event_type: if id % 3 == 0 { "purchase" } else { "open" }.into(),
        user_id: Some(format!("u{}", id % 7)),
        session_id: None,
        device_id: format!("d{id}"),
        platform: "ios".into(),
        app_version: None,
        attribution: Attribution::default(),
        event_data: vec![("n".into(), id.to_string())],
        revenue: None,
        currency: None,
        ip: None,
        user_agent: None,
        received_at_ms: ts + 5,
        event_id: Some(format!("e{id}")),
    }
}

/// The "log": entry index → its events (two apps, two days per entry).
fn log(entries: u64, per_entry: u64) -> BTreeMap<u64, Vec<Event>> {
    let mut out = BTreeMap::new();
    let mut id = 0;
    for index in 1..=entries {
        let mut evs = Vec::new();
        for i in 0..per_entry {
            id += 1;
            let app = if i % 2 == 0 { "a" } else { "b" };
            evs.push(event(
                app,
                T0 + (i as i64 / 2 % 2) * DAY + id as i64 * 1000,
                id,
            ));
        }
        out.insert(index, evs);
    }
    out
}

fn apply(engine: &Engine, index: u64, events: &[Event]) {
    engine
        .apply(ApplyBatch::one_entry(
            index,
            events.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply");
}

/// Every stored row (segments and memtable) as (event_id, log_index), sorted.
fn rows(engine: &Engine) -> Vec<(String, u64)> {
    let view = engine.read_view().expect("view");
    let mut batches: Vec<RecordBatch> = Vec::new();
    for s in &view.segments {
        let f = std::fs::File::open(view.segment_path(s)).expect("segment file");
        batches.extend(
            ParquetRecordBatchReader::try_new(f, 100_000)
                .expect("a listed segment reads as Parquet")
                .map(|b| b.expect("batch")),
        );
    }
    batches.extend(view.batches.iter().cloned());
    let mut out = Vec::new();
    for b in &batches {
        let ids = b.column_by_name("event_id").unwrap().as_string::<i32>();
        let idx = b
            .column_by_name("log_index")
            .unwrap()
            .as_primitive::<UInt64Type>();
        for r in 0..b.num_rows() {
            out.push((ids.value(r).to_string(), idx.value(r)));
        }
    }
    out.sort();
    out
}

fn expected(log: &BTreeMap<u64, Vec<Event>>, upto: Option<u64>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = log
        .iter()
        .filter(|(i, _)| upto.is_some_and(|u| **i <= u))
        .flat_map(|(i, evs)| evs.iter().map(move |e| (e.event_id.clone().unwrap(), *i)))
        .collect();
    out.sort();
    out
}

/// Per app: events by type and distinct users of the log's entries up to `upto`.
type AppCounts = BTreeMap<String, (BTreeMap<String, u64>, u64)>;

fn expected_rollups(log: &BTreeMap<u64, Vec<Event>>, upto: Option<u64>) -> AppCounts {
    let mut users: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut out = AppCounts::new();
    for (_, evs) in log.iter().filter(|(i, _)| upto.is_some_and(|u| **i <= u)) {
        for e in evs {
            let a = out.entry(e.app_id.clone()).or_default();
            *a.0.entry(e.event_type.clone()).or_default() += 1;
            if let Some(u) = &e.user_id {
                users.entry(e.app_id.clone()).or_default().insert(u.clone());
            }
        }
    }
    for (app, u) in users {
        out.entry(app).or_default().1 = u.len() as u64;
    }
    out
}

/// What the engine's rollups (loaded from summaries, or rebuilt) say per app.
fn rollups(engine: &Engine) -> AppCounts {
    let apps = engine.rollups().apps();
    apps.into_iter()
        .map(|a| {
            let all = i64::MIN / 2..i64::MAX / 2;
            let t = engine
                .rollups_over(&a, all.clone())
                .expect("rollups")
                .totals(&a, all);
            (a, (t.by_type, t.users))
        })
        .filter(|(_, (by_type, _))| !by_type.is_empty())
        .collect()
}

/// Opens the engine again on the real file system (what survived the cut) and checks the
/// stored rows and the rollups against the log, then replays the rest of the log and checks
/// everything.
fn recover_and_check(dir: &Path, cfg: &EngineConfig, log: &BTreeMap<u64, Vec<Event>>, k: u64) {
    let engine = Engine::open(dir, cfg.clone())
        .unwrap_or_else(|e| panic!("cut at step {k}: the engine does not open again: {e}"));
    let flushed = engine.manifest().flushed_index;
    assert_eq!(
        rows(&engine),
        expected(log, flushed),
        "cut at step {k}: stored rows differ from the log up to flushed_index {flushed:?}"
    );
    assert_eq!(
        rollups(&engine),
        expected_rollups(log, flushed),
        "cut at step {k}: rollups (from the summaries) differ from the log up to {flushed:?}"
    );
    for (i, evs) in log.range(flushed.map_or(1, |f| f + 1)..) {
        apply(&engine, *i, evs);
    }
    let last = log.keys().last().copied();
    assert_eq!(
        rows(&engine),
        expected(log, last),
        "cut at step {k}: after replaying the log"
    );
    assert_eq!(
        rollups(&engine),
        expected_rollups(log, last),
        "cut at step {k}: rollups after replaying the log"
    );
}

fn cfg() -> EngineConfig {
    EngineConfig {
        compaction_min_segments: 0,
        flush_interval_secs: 3600,
        ..EngineConfig::default()
    }
}

/// Runs `op` with the power going out at step 1, 2, … until a run completes without reaching
/// the cut; returns the number of durable steps the operation took.
fn every_step(mut run: impl FnMut(u64) -> bool) -> u64 {
    for k in 1..500 {
        if !run(k) {
            return k - 1;
        }
    }
    panic!("more than 500 durable steps")
}

#[test]
fn a_power_cut_at_every_step_of_a_flush_loses_and_doubles_nothing() {
    let log = log(6, 40);
    let steps = every_step(|k| {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        let engine = Engine::open_with(dir.path(), cfg(), fs.clone()).unwrap();
        // Entries 1-3 flushed before the cut; 4-6 in the memtable when it comes.
        for (i, evs) in log.range(1..=3) {
            apply(&engine, *i, evs);
        }
        engine.flush().unwrap();
        for (i, evs) in log.range(4..) {
            apply(&engine, *i, evs);
        }
        fs.cut_at(k);
        let done = engine.flush().is_ok() && !fs.is_off();
        drop(engine);
        if !fs.is_off() {
            fs.power_cut().unwrap();
        }
        recover_and_check(dir.path(), &cfg(), &log, k);
        !done
    });
    assert!(
        steps >= 10,
        "a flush of 4 segments took only {steps} durable steps"
    );
    eprintln!("flush: cut at each of {steps} durable steps, then once after");
}

#[test]
fn a_power_cut_at_every_step_of_a_compaction_loses_and_doubles_nothing() {
    let log = log(6, 40);
    let cfg = EngineConfig {
        compaction_min_segments: 6,
        compaction_max_rows: 10_000,
        compaction_interval_secs: 1,
        ..cfg()
    };
    let steps = every_step(|k| {
        let dir = tempfile::tempdir().unwrap();
        {
            // Six flushes: six small segments per (app, day), compaction off while writing.
            let engine = Engine::open(dir.path(), self::cfg()).unwrap();
            for (i, evs) in &log {
                apply(&engine, *i, evs);
                engine.flush().unwrap();
            }
        }
        let fs = FaultFs::new();
        fs.cut_at(k);
        let engine = Engine::open_with(dir.path(), cfg.clone(), fs.clone()).unwrap();
        let t0 = Instant::now();
        // Four merges (2 apps × 2 days), in the background.
        while engine.manifest().segments.len() > 4 && !fs.is_off() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "compaction did not run"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let cut = fs.is_off();
        drop(engine);
        if !cut {
            fs.power_cut().unwrap();
        }
        recover_and_check(dir.path(), &self::cfg(), &log, k);
        let reopened = Engine::open(dir.path(), self::cfg()).unwrap();
        let n = reopened.manifest().segments.len();
        assert!(n == 4 || n <= 24, "cut at step {k}: {n} segments");
        cut
    });
    assert!(steps >= 16, "four merges took only {steps} durable steps");
    eprintln!("compaction: cut at each of {steps} durable steps, then once after");
}

#[test]
fn a_power_cut_at_every_step_of_a_snapshot_install_keeps_one_whole_table() {
    let log = log(6, 40);
    // The snapshot: a table holding entries 1-6, built by another engine.
    let source_dir = tempfile::tempdir().unwrap();
    let source = Engine::open(source_dir.path(), cfg()).unwrap();
    for (i, evs) in &log {
        apply(&source, *i, evs);
    }
    let (snap_manifest, _pins) = source.flush_pinned().unwrap();
    let snap_root = source.root();
    let snapshot_rows = rows(&source);
    let steps = every_step(|k| {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        let engine = Engine::open_with(dir.path(), cfg(), fs.clone()).unwrap();
        // The installing node's own table: entries 1-2.
        for (i, evs) in log.range(1..=2) {
            apply(&engine, *i, evs);
        }
        let before = rows(&engine);
        engine.flush().unwrap();
        // Staged as the snapshot receiver does (files fsynced there, before the install).
        let staged = engine.staging_dir().unwrap();
        for s in &snap_manifest.segments {
            let to = staged.join(&s.path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(snap_root.join(&s.path), &to).unwrap();
            std::fs::File::open(&to).unwrap().sync_all().unwrap();
        }
        snap_manifest.store_in(&staged).unwrap();
        fs.cut_at(k);
        let done = engine.install(&staged).is_ok() && !fs.is_off();
        drop(engine);
        if !fs.is_off() {
            fs.power_cut().unwrap();
        }
        let reopened = Engine::open(dir.path(), cfg())
            .unwrap_or_else(|e| panic!("cut at step {k}: does not open again: {e}"));
        let after = rows(&reopened);
        assert!(
            after == before || after == snapshot_rows,
            "cut at step {k}: neither the old table ({} rows) nor the snapshot ({} rows): {} rows",
            before.len(),
            snapshot_rows.len(),
            after.len()
        );
        if done {
            assert_eq!(after, snapshot_rows, "a completed install is durable");
        }
        !done
    });
    assert!(steps >= 4, "an install took only {steps} durable steps");
    eprintln!("install: cut at each of {steps} durable steps, then once after");
}

/// The seam is really in the path: a failed fsync of a segment fails the flush, and the
/// failure is not retried: the engine refuses further applies and flushes (the node stops
/// applying and says why); what was flushed before stays.
#[test]
fn eio_on_a_segment_fsync_fails_the_flush_without_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let engine = Engine::open_with(dir.path(), cfg(), fs.clone() as Arc<dyn FileSystem>).unwrap();
    let log = log(3, 10);
    apply(&engine, 1, &log[&1]);
    engine.flush().unwrap();
    apply(&engine, 2, &log[&2]);
    fs.clear_ops();
    fs.inject(disk::Fault::error(disk::OpKind::SyncAll, libc::EIO).on_path("segments"));
    let err = engine.flush().unwrap_err();
    assert!(err.to_string().contains("Input/output error"), "{err}");
    let more = engine.apply(ApplyBatch::one_entry(
        3,
        log[&3].iter().map(Event::as_ref).collect(),
    ));
    assert!(more.is_err(), "an apply after a failed flush succeeded");
    assert!(
        engine.flush().is_err(),
        "a flush after a failed fsync succeeded"
    );
    let segment_syncs = fs
        .ops()
        .iter()
        .filter(|o| {
            o.kind == disk::OpKind::SyncAll && o.path.to_string_lossy().contains("segments")
        })
        .count();
    assert_eq!(segment_syncs, 0, "a segment fsync was retried after EIO");
    drop(engine);
    recover_and_check(dir.path(), &cfg(), &log, 0);
}

/// The log with erasure `user` of app `a` at `index` applied: that user's rows of earlier
/// entries gone.
fn erased(log: &BTreeMap<u64, Vec<Event>>, user: &str) -> BTreeMap<u64, Vec<Event>> {
    log.iter()
        .map(|(i, evs)| {
            let kept = evs
                .iter()
                .filter(|e| !(e.app_id == "a" && e.user_id.as_deref() == Some(user)))
                .cloned()
                .collect();
            (*i, kept)
        })
        .collect()
}

fn erase_request() -> unmogrowp_engine::EraseRequest {
    unmogrowp_engine::EraseRequest {
        id: "erase-u3".into(),
        app_id: "a".into(),
        user_ids: vec!["u3".into()],
        device_ids: Vec::new(),
        at_ms: 0,
    }
}

/// Waits until the erasure is done on `engine` (or the power went out).
fn wait_erased(engine: &Engine, fs: Option<&FaultFs>, k: u64) {
    let t0 = Instant::now();
    while !engine.erasures().iter().all(|e| e.done()) && !fs.is_some_and(|f| f.is_off()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "cut at step {k}: the erasure did not finish"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_power_cut_at_every_step_of_an_erasure_leaves_each_event_whole_or_erased() {
    let log = log(6, 40);
    let after = erased(&log, "u3");
    let last = log.keys().last().copied();
    let steps = every_step(|k| {
        let dir = tempfile::tempdir().unwrap();
        {
            // Entries 1-3 in three flushes (several segments hold u3).
            let engine = Engine::open(dir.path(), cfg()).unwrap();
            for (i, evs) in log.range(1..=3) {
                apply(&engine, *i, evs);
                engine.flush().unwrap();
            }
        }
        let fs = FaultFs::new();
        let engine = Engine::open_with(dir.path(), cfg(), fs.clone()).unwrap();
        // 4-6 in the memtable when the erasure (entry 7) arrives.
        for (i, evs) in log.range(4..) {
            apply(&engine, *i, evs);
        }
        fs.cut_at(k);
        if engine.erase(erase_request(), 7).is_ok() {
            wait_erased(&engine, Some(&fs), k);
            // Completion: the seal and the user dictionary rewritten without u3 of app a.
            if !fs.is_off() {
                let _ = engine.complete_erasure("erase-u3");
            }
        }
        let cut = fs.is_off();
        drop(engine);
        if !cut {
            fs.power_cut().unwrap();
        }
        // What the node does on restart: replay the log after the flushed index (the
        // erasure again: a no-op if its entry was recorded), then let the rewrite finish.
        let engine = Engine::open(dir.path(), cfg())
            .unwrap_or_else(|e| panic!("cut at step {k}: does not open again: {e}"));
        let stored = rows(&engine);
        let flushed = engine.manifest().flushed_index;
        // Every event is there once, or erased: never half, never twice.
        let whole = expected(&log, flushed);
        for r in &stored {
            assert!(
                whole.contains(r),
                "cut at step {k}: {r:?} was never written"
            );
        }
        let mut once = stored.clone();
        once.dedup();
        assert_eq!(once.len(), stored.len(), "cut at step {k}: an event twice");
        for (i, evs) in log.range(flushed.map_or(1, |f| f + 1)..) {
            apply(&engine, *i, evs);
        }
        engine.erase(erase_request(), 7).unwrap();
        wait_erased(&engine, None, k);
        let sealed = engine.complete_erasure("erase-u3").unwrap().unwrap();
        assert!(
            sealed.sealed && sealed.user_ids.is_empty(),
            "cut at step {k}"
        );
        assert_eq!(
            engine.rollups().user_number("a", "u3"),
            None,
            "cut at step {k}"
        );
        assert_eq!(
            rows(&engine),
            expected(&after, last),
            "cut at step {k}: rows after the erasure resumed"
        );
        assert_eq!(
            rollups(&engine),
            expected_rollups(&after, last),
            "cut at step {k}: rollups after the erasure resumed"
        );
        drop(engine);
        let engine = Engine::open(dir.path(), cfg()).unwrap();
        assert_eq!(
            rows(&engine),
            expected(&after, last),
            "cut at step {k}: reopened"
        );
        assert_eq!(rollups(&engine), expected_rollups(&after, last));
        let e = &engine.erasures()[0];
        assert_eq!(e.events_erased, e.events, "cut at step {k}: progress");
        assert!(e.sealed, "cut at step {k}");
        assert_eq!(
            engine.rollups().user_number("a", "u3"),
            None,
            "cut at step {k}: reopened"
        );
        assert!(engine.rollups().user_number("b", "u3").is_some());
        cut
    });
    assert!(steps >= 8, "an erasure took only {steps} durable steps");
    eprintln!("erasure: cut at each of {steps} durable steps, then once after");
}
