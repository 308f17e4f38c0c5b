//! [`Engine`]: applies event batches to the memtable, flushes them to Parquet segments in the
//! background, and hands readers a consistent view (segments + in-memory batches).
//!
//! Layout under the engine directory:
//! ```text
//! CURRENT                      name of the live generation (replaced atomically)
//! gen-<n>/manifest.json        segment list, flushed index, owner checkpoint
//! gen-<n>/segments/app=<app>/day=<YYYY-MM-DD>/<id>.parquet
//! ```
//! A new generation is only created when a snapshot is installed.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::config::EngineConfig;
use crate::dedupe::{self, DedupeSet};
use crate::dictionary::DictionaryWriter;
use crate::error::{EngineError, Result};
use crate::event::{ApplyOutcome, EventRef};
use crate::generation;
use crate::hour_days;
use crate::io::Io;
use crate::manifest::{self, Manifest, SegmentMeta};
use crate::memory::MemoryUse;
use crate::memtable::Memtable;
use crate::pins::{LiveFiles, SegmentPins};
use crate::rollup::{RollupRow, Rollups};
use crate::scrub::SegmentChecks;
use crate::segment::{self, Granularity, SegmentFormat, SummaryOut, SEGMENTS_DIR};
use crate::step_days;
use crate::summary::SummaryBuilder;

const CURRENT_FILE: &str = "CURRENT";

/// Entries applied together: `(log index, events of that entry)`.
pub struct ApplyBatch<'a> {
    /// Events by log index (several batches may share an index); each batch gets an outcome.
    pub entries: Vec<(u64, Vec<EventRef<'a>>)>,
    /// Index of the last entry applied by this call (entries without events included).
    pub last_index: u64,
    /// Owner state to record with the flush that covers `last_index`.
    pub checkpoint: serde_json::Value,
}

impl<'a> ApplyBatch<'a> {
    /// One log entry `index` holding `events`, with no owner state to record.
    pub fn one_entry(index: u64, events: Vec<EventRef<'a>>) -> Self {
        Self {
            entries: vec![(index, events)],
            last_index: index,
            checkpoint: serde_json::Value::Null,
        }
    }
}

/// What a reader sees: immutable segment files plus in-memory rows, with no overlap.
#[derive(Debug, Clone)]
pub struct ReadView {
    pub root: PathBuf,
    pub segments: Vec<SegmentMeta>,
    pub batches: Vec<RecordBatch>,
    /// Every log entry up to this index is applied and in the view (none after it); `None`
    /// before the first apply on an empty table.
    pub applied_index: Option<u64>,
    /// Keeps the segment files on disk while the view is read (compaction may retire them).
    pub pins: SegmentPins,
    /// Erasures whose rows may still be in the view's segments (this node has not rewritten
    /// them all yet): readers that copy rows elsewhere leave those rows out
    /// ([`crate::without_erased`]).
    pub erasures: Vec<crate::Erasure>,
    /// The node's segment checks: a reader calls [`ReadView::check`] on the segments it is
    /// about to read.
    pub checks: SegmentChecks,
}

impl ReadView {
    pub fn segment_path(&self, s: &SegmentMeta) -> PathBuf {
        self.root.join(&s.path)
    }

    /// Fails naming the first damaged one of `segments` (checking those never checked
    /// before, which reads them whole: only the first reads after an open wait for that).
    pub fn check(&self, segments: &[SegmentMeta]) -> Result<()> {
        self.checks.check_all(&self.root, segments)
    }

    /// Those of `segments` not checked yet (a reader on an async runtime checks them off it).
    pub fn unchecked(&self, segments: &[SegmentMeta]) -> Vec<SegmentMeta> {
        segments
            .iter()
            .filter(|s| !self.checks.is_known(&self.root, s))
            .cloned()
            .collect()
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub flushes: AtomicU64,
    pub flush_micros_total: AtomicU64,
    pub partition_micros_total: AtomicU64,
    pub rows_flushed: AtomicU64,
    pub duplicates: AtomicU64,
    pub compactions: AtomicU64,
    pub segments_compacted: AtomicU64,
    pub compaction_failures: AtomicU64,
    /// Segment summaries found missing or damaged when a generation was opened, and rebuilt
    /// from the segments' rows.
    pub summaries_rebuilt: AtomicU64,
    /// Segments and rows removed because their app's retention floor passed them.
    pub retention_segments_dropped: AtomicU64,
    pub retention_rows_dropped: AtomicU64,
    /// Segments rewritten (or removed) and rows removed by erasures.
    pub erasure_segments_rewritten: AtomicU64,
    pub erasure_rows_removed: AtomicU64,
}

/// The dedupe state's size ([`Engine::dedupe_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupeStats {
    /// Keys of the days held in memory (the window, and older days asked lately).
    pub keys_in_memory: u64,
    pub days_in_memory: u64,
    /// Bytes of the key sets of those days.
    pub key_bytes: u64,
    /// Bytes of the segments' key filters held in memory.
    pub filter_bytes: u64,
    /// Filters the memory budget left in the segments' summaries.
    pub filters_in_summaries: u64,
    /// Lookups a filter could not settle, answered by reading a segment's ids.
    pub segment_reads: u64,
    /// Filters read back from summaries for a lookup.
    pub filter_reads: u64,
    /// Filters and days the memory budget sent out of memory.
    pub budget_evictions: u64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How often the housekeeping tick measures the rollups' sets for the memory budget.
const BUDGET_EVERY: Duration = Duration::from_secs(30);

/// What dedupe reads from stored segments (checked first, like every read of a segment).
struct Stored<'a>(&'a SegmentChecks);

impl dedupe::StoredKeys for Stored<'_> {
    fn keys(&self, root: &Path, seg: &SegmentMeta) -> Result<Vec<(u128, i64)>> {
        self.0.check(root, seg)?;
        segment::read_keys(root, seg)
    }

    fn filter(
        &self,
        root: &Path,
        seg: &SegmentMeta,
    ) -> std::result::Result<Option<xorf::BinaryFuse16>, String> {
        crate::summary::read_filter(root, seg)
    }
}

/// Fills the dedupe window after open: reads the ids of the segments of the window's days
/// (newest first) into memory, one segment at a time without holding up apply; until then
/// those segments are asked through their filters. Ends when the window is loaded, the engine
/// is dropped or another generation was installed (which starts its own loader).
fn load_dedupe_window(inner: std::sync::Weak<Inner>, root: PathBuf) {
    let mut tried: HashSet<u64> = HashSet::new();
    let t0 = Instant::now();
    loop {
        let Some(i) = inner.upgrade() else { return };
        let checks = i.checks.clone();
        // Pinned while read: compaction may retire them meanwhile.
        let (todo, _pins): (Vec<SegmentMeta>, _) = {
            let s = i.state.lock();
            if s.root != root {
                return;
            }
            let todo: Vec<SegmentMeta> = s
                .dedupe
                .window_to_load(now_ms())
                .into_iter()
                .filter(|m| !tried.contains(&m.id))
                .collect();
            let pins = s.files.pin(&todo);
            (todo, pins)
        };
        drop(i);
        if todo.is_empty() {
            tracing::info!(
                segments = tried.len(),
                ms = t0.elapsed().as_millis() as u64,
                "dedupe window loaded"
            );
            return;
        }
        for seg in todo {
            tried.insert(seg.id);
            let keys = match checks
                .check(&root, &seg)
                .and_then(|()| segment::read_keys(&root, &seg))
            {
                Ok(k) => k,
                Err(e) => {
                    // Left to its filter (and read, and reported, when asked).
                    tracing::warn!(segment = %seg.path, error = %e, "could not load a segment's ids");
                    continue;
                }
            };
            let Some(i) = inner.upgrade() else { return };
            let mut s = i.state.lock();
            if s.root != root {
                return;
            }
            s.dedupe.add_keys(seg.id, &keys);
            s.dedupe.seal_days(now_ms(), 1 << 16);
        }
    }
}

/// The background scrub of generation `root`: checks every segment not checked yet (newest
/// first: recent days are read most), then every `engine.scrub_interval_hours` reads them
/// all again. Ends when the engine is dropped or another generation was installed (which
/// starts its own).
fn scrub_loop(inner: std::sync::Weak<Inner>, root: PathBuf) {
    let mut again = false;
    loop {
        let t0 = Instant::now();
        let Some(i) = inner.upgrade() else { return };
        let (checks, interval, mut segments) = {
            let s = i.state.lock();
            if s.root != root {
                return;
            }
            (
                i.checks.clone(),
                i.cfg.scrub_interval_hours,
                s.manifest.segments.clone(),
            )
        };
        drop(i);
        checks.keep_only(&root, &segments);
        segments.sort_by_key(|s| std::cmp::Reverse(s.id));
        let mut bytes = 0u64;
        for seg in &segments {
            // A segment compacted or rewritten meanwhile is skipped (its file may be gone);
            // the one being read is pinned, so compaction leaves its file until it is read.
            let _pin = {
                let Some(i) = inner.upgrade() else { return };
                let s = i.state.lock();
                if s.root != root {
                    return;
                }
                if !s.manifest.segments.iter().any(|m| m.id == seg.id) {
                    continue;
                }
                s.files.pin(std::slice::from_ref(seg))
            };
            if !again && checks.is_known(&root, seg) {
                continue;
            }
            bytes += seg.bytes;
            // Damage is recorded and reported by the check itself.
            let _ = if again {
                checks.recheck(&root, seg)
            } else {
                checks.check(&root, seg)
            };
        }
        checks.pass_done();
        let damaged = checks.damaged().len();
        tracing::info!(
            segments = segments.len(),
            bytes,
            damaged,
            ms = t0.elapsed().as_millis() as u64,
            "segment scrub pass done"
        );
        if interval == 0 {
            return;
        }
        let until = Instant::now() + Duration::from_secs(interval * 3600);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_secs(1));
            match inner.upgrade() {
                Some(i) if i.state.lock().root == root => {}
                _ => return,
            }
        }
        again = true;
    }
}

/// What the flush thread is sent.
enum Job {
    Flush(Arc<Rotated>),
    /// Work arrived that it does between flushes (an erasure to rewrite).
    Wake,
}

struct Rotated {
    batches: Vec<RecordBatch>,
    flushed_index: u64,
    checkpoint: serde_json::Value,
}

struct State {
    root: PathBuf,
    manifest: Manifest,
    /// The files of `manifest.segments`, pinned by readers.
    files: LiveFiles,
    active: Memtable,
    active_since: Option<Instant>,
    rotated: VecDeque<Arc<Rotated>>,
    dedupe: DedupeSet,
    /// Rows stored by every entry applied so far (segments plus memory).
    stored_rows: u64,
    applied_index: Option<u64>,
    checkpoint: serde_json::Value,
    failed: Option<String>,
    /// The user dictionary the live generation's summaries number users by.
    dictionary_id: u64,
    /// Highest log index that added a row to each UTC day: days with rows not yet in a
    /// segment keep their hours and step times in memory (the summaries lack those rows).
    unflushed_days: std::collections::BTreeMap<i64, u64>,
    /// The last measure against the memory budget, and when it was taken.
    memory: MemoryUse,
    memory_at: Option<Instant>,
}

impl State {
    /// Every row in memory: the rotated memtables waiting for their flush, then the active one.
    fn memory_batches(&mut self) -> Result<Vec<RecordBatch>> {
        let mut batches: Vec<RecordBatch> = self
            .rotated
            .iter()
            .flat_map(|r| r.batches.iter().cloned())
            .collect();
        batches.extend(self.active.batches()?);
        Ok(batches)
    }
}

struct Inner {
    base: PathBuf,
    io: Io,
    cfg: EngineConfig,
    state: Mutex<State>,
    flushed: Condvar,
    flush_tx: Mutex<mpsc::Sender<Job>>,
    stats: EngineStats,
    /// Taken after `state` when both are needed (apply, install); readers take only this.
    rollups: RwLock<Rollups>,
    /// Appends the live generation's users before summaries refer to them (flush thread;
    /// replaced by install).
    dictionary: Mutex<DictionaryWriter>,
    /// [`EngineConfig::memory_budget_bytes`] ([`crate::memory`]).
    memory_budget: u64,
    /// What is known of the segment files' integrity ([`crate::scrub`]).
    checks: SegmentChecks,
}

/// Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn open(base: impl AsRef<Path>, cfg: EngineConfig) -> Result<Self> {
        Self::open_with(base, cfg, std::sync::Arc::new(disk::RealFs))
    }

    /// Opens the engine making every durable file operation through `fs` (the real file
    /// system in production; a [`disk::FaultFs`] in fault tests).
    pub fn open_with(
        base: impl AsRef<Path>,
        cfg: EngineConfig,
        fs: Arc<dyn disk::FileSystem>,
    ) -> Result<Self> {
        let io = Io::new(fs);
        cfg.validate().map_err(EngineError::Config)?;
        // Absolute: segment paths are handed to the query layer's object store, which
        // resolves them from the file system root.
        let base =
            std::path::absolute(base.as_ref()).map_err(|e| EngineError::io(base.as_ref(), e))?;
        std::fs::create_dir_all(&base).map_err(|e| EngineError::io(&base, e))?;
        let root = resolve_generation(&io, &base)?;
        let t0 = Instant::now();
        let checks = SegmentChecks::default();
        let generation::Loaded {
            manifest,
            dedupe,
            rollups,
            dictionary,
            rebuilt,
        } = generation::load(&io, &root, &cfg, cfg.verify_segments_on_open, &checks)?;
        tracing::info!(root = %root.display(), segments = manifest.segments.len(),
            flushed_index = ?manifest.flushed_index, summaries_rebuilt = rebuilt,
            open_ms = t0.elapsed().as_millis() as u64, "engine opened");
        let stats = EngineStats::default();
        let cfg_budget = cfg.memory_budget_bytes();
        stats.summaries_rebuilt.store(rebuilt, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let engine = Engine {
            inner: Arc::new(Inner {
                base,
                cfg,
                state: Mutex::new(State {
                    files: LiveFiles::new(&io, &root, &manifest.segments),
                    root,
                    applied_index: manifest.flushed_index,
                    checkpoint: manifest.checkpoint.clone(),
                    stored_rows: manifest.live_rows(),
                    manifest,
                    active: Memtable::new(),
                    active_since: None,
                    rotated: VecDeque::new(),
                    dedupe,
                    failed: None,
                    dictionary_id: dictionary.meta().numbering(),
                    unflushed_days: Default::default(),
                    memory: MemoryUse::default(),
                    memory_at: None,
                }),
                flushed: Condvar::new(),
                flush_tx: Mutex::new(tx),
                stats,
                rollups: RwLock::new(rollups),
                dictionary: Mutex::new(dictionary),
                memory_budget: cfg_budget,
                checks,
                io,
            }),
        };
        let weak = Arc::downgrade(&engine.inner);
        let nice = engine.inner.cfg.flush_thread_nice;
        std::thread::Builder::new()
            .name("engine-flush".into())
            .spawn(move || {
                crate::thread::lower_current_thread_priority(nice);
                flush_loop(weak, rx)
            })
            .map_err(|e| EngineError::io(&engine.inner.base, e))?;
        engine.start_window_loader()?;
        engine.start_scrub()?;
        Ok(engine)
    }

    /// Starts the background scrub of the live generation (`engine.scrub_segments`).
    fn start_scrub(&self) -> Result<()> {
        if !self.inner.cfg.scrub_segments {
            return Ok(());
        }
        self.spawn_for_generation("engine-scrub", scrub_loop)
    }

    fn start_window_loader(&self) -> Result<()> {
        self.spawn_for_generation("engine-dedupe-window", load_dedupe_window)
    }

    /// Runs `work` for the live generation on a thread of its own, at the flush thread's
    /// priority; it ends when the engine is dropped or another generation is installed.
    fn spawn_for_generation(
        &self,
        name: &str,
        work: fn(std::sync::Weak<Inner>, PathBuf),
    ) -> Result<()> {
        let weak = Arc::downgrade(&self.inner);
        let root = self.inner.state.lock().root.clone();
        let nice = self.inner.cfg.flush_thread_nice;
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                crate::thread::lower_current_thread_priority(nice);
                work(weak, root)
            })
            .map(|_| ())
            .map_err(|e| EngineError::io(&self.inner.base, e))
    }

    /// The checks of this node's segment files: what the scrub and the readers found.
    pub fn segment_checks(&self) -> &SegmentChecks {
        &self.inner.checks
    }

    /// The live table's segments found damaged: (file, reason).
    pub fn damaged_segments(&self) -> Vec<(PathBuf, String)> {
        let mut found = self.inner.checks.damaged();
        if found.is_empty() {
            return found;
        }
        let live: HashSet<PathBuf> = {
            let s = self.inner.state.lock();
            s.manifest
                .segments
                .iter()
                .map(|m| s.root.join(&m.path))
                .collect()
        };
        found.retain(|(p, _)| live.contains(p));
        found
    }

    /// What the checks know of the live table's segments ([`crate::scrub`]).
    pub fn scrub_stats(&self) -> crate::ScrubStats {
        let (root, segments) = {
            let s = self.inner.state.lock();
            (s.root.clone(), s.manifest.segments.clone())
        };
        self.inner.checks.stats(&root, &segments)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    pub fn stats(&self) -> &EngineStats {
        &self.inner.stats
    }

    /// The durable manifest (what survives a crash).
    pub fn manifest(&self) -> Manifest {
        self.inner.state.lock().manifest.clone()
    }

    pub fn memtable_rows(&self) -> usize {
        let s = self.inner.state.lock();
        s.active.rows()
            + s.rotated
                .iter()
                .map(|r| r.batches.iter().map(|b| b.num_rows()).sum::<usize>())
                .sum::<usize>()
    }

    /// The hourly rollups of every stored row (segments and memtable). Hold the guard briefly:
    /// apply waits for it.
    pub fn rollups(&self) -> RwLockReadGuard<'_, Rollups> {
        self.inner.rollups.read()
    }

    /// [`Self::rollups`] with every day of `app`'s `hours` (hour numbers, end exclusive) in
    /// memory: days left in the segments' summaries (older than `hot_days` at open, or sent
    /// out by the memory budget) are read back first — disk reads, so call it off the async
    /// runtime when [`Rollups::hour_days_out`] names any. While the guard is held, no day
    /// leaves memory.
    pub fn rollups_over(
        &self,
        app: &str,
        hours: std::ops::Range<i64>,
    ) -> Result<RwLockReadGuard<'_, Rollups>> {
        // The budget may send days out between the read and the restore: a few tries.
        for _ in 0..8 {
            let r = self.inner.rollups.read();
            let out = r.hour_days_out_numbered(app, hours.clone());
            if out.is_empty() {
                return Ok(r);
            }
            drop(r);
            let (root, segments, dictionary_id, _pins) = self.app_segments(app);
            let days: BTreeSet<i64> = out.iter().map(|(d, _)| *d).collect();
            let part = hour_days::read_days(
                &self.inner.checks,
                &root,
                &segments,
                dictionary_id,
                app,
                &days,
                &mut |f| f(&self.inner.rollups.read()),
            )?;
            let mut w = self.inner.rollups.write();
            w.restore_hours(app, &out, part);
            let r = RwLockWriteGuard::downgrade(w);
            if r.hour_days_out(app, hours.clone()).is_empty() {
                return Ok(r);
            }
        }
        Err(EngineError::Config(format!(
            "the rollups of {app} kept leaving memory while being read: engine.memory_budget_mb is too small for them"
        )))
    }

    /// `app`'s segments, pinned, with the generation root and the dictionary their summaries
    /// number users by.
    fn app_segments(&self, app: &str) -> (PathBuf, Vec<SegmentMeta>, u64, SegmentPins) {
        let s = self.inner.state.lock();
        let segs: Vec<SegmentMeta> = s
            .manifest
            .segments
            .iter()
            .filter(|m| m.app_id == app)
            .cloned()
            .collect();
        let pins = s.files.pin(&segs);
        (s.root.clone(), segs, s.dictionary_id, pins)
    }

    /// The last log index applied (`None` before the first on an empty table). Cheap: readers
    /// that only need to know whether anything new arrived ask this before taking a view.
    pub fn applied_index(&self) -> Option<u64> {
        self.inner.state.lock().applied_index
    }

    /// How many rows every entry applied so far stored (duplicates are not stored).
    pub fn stored_rows(&self) -> u64 {
        self.inner.state.lock().stored_rows
    }

    /// Applies entries in log order. Events whose `(app_id, event_id)` was stored before are
    /// counted as duplicates and skipped. Deterministic: replicas and replays decide alike.
    pub fn apply(&self, batch: ApplyBatch<'_>) -> Result<Vec<ApplyOutcome>> {
        let mut s = self.inner.state.lock();
        if let Some(f) = &s.failed {
            return Err(EngineError::FlushFailed(f.clone()));
        }
        let mut outcomes = Vec::with_capacity(batch.entries.len());
        let mut rollups = self.inner.rollups.write();
        for (index, events) in &batch.entries {
            let mut out = ApplyOutcome::default();
            for e in events.iter() {
                // Older than the app's retention floor: counted, not kept (every node alike).
                if !s.manifest.retention.is_empty()
                    && s.manifest
                        .floor(e.app_id)
                        .is_some_and(|f| e.timestamp_ms < f)
                {
                    out.accepted += 1;
                    continue;
                }
                if let Some(id) = e.event_id {
                    let k = dedupe::key(e.app_id, id);
                    if !s.dedupe.insert(
                        e.app_id,
                        k,
                        e.timestamp_ms,
                        *index,
                        &Stored(&self.inner.checks),
                    )? {
                        out.duplicates += 1;
                        continue;
                    }
                }
                s.active.push(e, *index)?;
                let day = crate::funnel::day_of(e.timestamp_ms);
                // A row on a day left in the summaries: the day comes back first (rare: late
                // events, replays).
                let gone = rollups.hour_days_out_numbered(e.app_id, day * 24..day * 24 + 1);
                if !gone.is_empty() {
                    let days = BTreeSet::from([day]);
                    let part = hour_days::read_days(
                        &self.inner.checks,
                        &s.root,
                        &s.manifest.segments,
                        s.dictionary_id,
                        e.app_id,
                        &days,
                        &mut |f| f(&rollups),
                    )?;
                    rollups.restore_hours(e.app_id, &gone, part);
                }
                let steps_out = rollups.step_day_out(e.app_id, day);
                if let Some(n) = steps_out.filter(|_| e.user_id.is_some()) {
                    let segs = step_days::segments_of(&s.manifest.segments, e.app_id, day);
                    let steps =
                        step_days::read_day(&s.root, &segs, s.dictionary_id, day, &mut |f| {
                            f(&rollups)
                        })?;
                    rollups.restore_steps(e.app_id, day, n, steps);
                }
                s.unflushed_days.insert(day, *index);
                rollups.add(RollupRow {
                    app_id: e.app_id,
                    event_type: e.event_type,
                    timestamp_ms: e.timestamp_ms,
                    user_id: e.user_id,
                    platform: e.platform,
                    revenue: e.revenue,
                    campaign: e.attribution.campaign,
                    source: e.attribution.source,
                    medium: e.attribution.medium,
                });
                out.accepted += 1;
            }
            s.stored_rows += out.accepted;
            if out.accepted > 0 && s.active_since.is_none() {
                s.active_since = Some(Instant::now());
            }
            self.inner
                .stats
                .duplicates
                .fetch_add(out.duplicates, Ordering::Relaxed);
            outcomes.push(out);
        }
        drop(rollups);
        s.applied_index = Some(batch.last_index);
        s.checkpoint = batch.checkpoint;
        let cfg = &self.inner.cfg;
        let due = s.active.rows() >= cfg.flush_rows || s.active.approx_bytes() >= cfg.flush_bytes;
        if due {
            self.rotate_locked(&mut s)?;
        }
        Ok(outcomes)
    }

    /// Rotates the memtable if it is older than the flush interval. Call periodically.
    pub fn tick(&self) -> Result<()> {
        self.tick_within(None)
    }

    /// [`Self::tick`], told the process's resident memory outside what running queries have
    /// reserved (`resident`, bytes): the budget then bounds the process rather than only the
    /// engine's counted state — whatever else it holds (memtable, footer cache, allocator
    /// slack) leaves that much less room, and more of what can be read back leaves memory.
    pub fn tick_within(&self, resident: Option<u64>) -> Result<()> {
        let mut s = self.inner.state.lock();
        let interval = Duration::from_secs(self.inner.cfg.flush_interval_secs);
        let old = s.active_since.is_some_and(|t| t.elapsed() >= interval);
        if old && s.rotated.is_empty() {
            self.rotate_locked(&mut s)?;
        }
        let flushed = s.manifest.flushed_index;
        let now = now_ms();
        s.dedupe.evict(now, flushed);
        let done = flushed.unwrap_or(0);
        s.unflushed_days.retain(|_, i| *i > done);
        self.keep_within_budget(&mut s, now, resident);
        Ok(())
    }

    /// Sends out of memory what the budget has no room for ([`crate::memory`]): step days
    /// older than `hot_days` first, then dedupe filters and days.
    fn keep_within_budget(&self, s: &mut State, now: i64, resident: Option<u64>) {
        // What the process holds besides the counted parts, as of the last measurement.
        // (Nothing before the first measurement: the parts were not counted yet.)
        let other_bytes = match (resident, s.memory_at) {
            (Some(r), Some(_)) => r.saturating_sub(s.memory.held()),
            _ => 0,
        };
        let budget = self.inner.memory_budget.saturating_sub(other_bytes);
        let today = crate::funnel::day_of(now);
        let horizon = today - i64::from(self.inner.cfg.hot_days);
        // Measured every few seconds (it walks every bitmap), under the read lock: dashboards
        // keep reading meanwhile.
        let (sets, dictionary_bytes) = if s.memory_at.is_none_or(|t| t.elapsed() >= BUDGET_EVERY) {
            s.memory_at = Some(Instant::now());
            let size = self.inner.rollups.read().size();
            (size.bitmap_bytes, size.dictionary_bytes)
        } else {
            (s.memory.rollup_bytes, s.memory.dictionary_bytes)
        };
        // The dictionaries numbering users never leave memory.
        let rollup_bytes = sets + dictionary_bytes;
        let mut rollups = self.inner.rollups.write();
        let dedupe_bytes = s.dedupe.bytes();
        let busy = &s.unflushed_days;
        let evictable = |d: i64| d < horizon && !busy.contains_key(&d);
        // Step days first, then days of hours (least recently used first, each), then the
        // dedupe filters and days.
        let step_room = budget.saturating_sub(rollup_bytes + dedupe_bytes);
        let sent = rollups.evict_steps(step_room, evictable);
        let step_bytes = rollups.step_bytes();
        let excess = (rollup_bytes + step_bytes + dedupe_bytes).saturating_sub(budget);
        // Today and yesterday stay whatever `hot_days` says (the last 24 hours are read by
        // every scrape of `/metrics`).
        // An app with an erasure not yet sealed keeps its days: sealing checks in memory that
        // no hour counts an erased user any more.
        let erasing: HashSet<&str> = s
            .manifest
            .erasures
            .iter()
            .filter(|e| !e.sealed)
            .map(|e| e.app_id.as_str())
            .collect();
        let freed = rollups.evict_hours(excess, |app, d| {
            evictable(d) && d < horizon.min(today - 1) && !erasing.contains(app)
        });
        drop(rollups);
        let (sets, rollup_bytes) = (
            sets.saturating_sub(freed),
            rollup_bytes.saturating_sub(freed),
        );
        if sent > 0 || freed > 0 {
            tracing::debug!(
                step_days = sent,
                hour_bytes = freed,
                "rollup days left in the summaries (memory budget)"
            );
        }
        let flushed = s.manifest.flushed_index;
        s.dedupe.shrink_to(
            budget.saturating_sub(rollup_bytes + step_bytes),
            now,
            flushed,
        );
        let memory = MemoryUse {
            budget: self.inner.memory_budget,
            other_bytes,
            rollup_bytes: sets,
            dictionary_bytes,
            dedupe_key_bytes: s.dedupe.key_bytes(),
            dedupe_filter_bytes: s.dedupe.filter_bytes(),
            step_bytes,
        };
        if memory.over() > 0 && s.memory.over() == 0 {
            tracing::warn!(?memory,
                "engine state exceeds engine.memory_budget_mb: the user dictionaries and the hot days' rollups cannot leave memory");
        }
        s.memory = memory;
    }

    /// Retention (issue 29), applied at the same log position on every node: raises `app`'s
    /// floor to `before_ms` (a UTC day start; a lower or equal one changes nothing) and, in
    /// one manifest edit, removes the app's segments whose rows all lie before it. The
    /// rollups forget the app's hours and step days before it; rows before it still in the
    /// memtable are left out by their flush, later ones are skipped by apply. Returns the
    /// segments and rows removed.
    pub fn drop_before(&self, app: &str, before_ms: i64) -> Result<(u64, u64)> {
        let mut s = self.inner.state.lock();
        if let Some(f) = &s.failed {
            return Err(EngineError::FlushFailed(f.clone()));
        }
        if s.manifest.floor(app).is_some_and(|f| f >= before_ms) {
            return Ok((0, 0));
        }
        let gone = |m: &SegmentMeta| m.app_id == app && m.max_ts_ms < before_ms;
        let mut next = s.manifest.clone();
        next.retention.insert(app.to_string(), before_ms);
        next.segments.retain(|m| !gone(m));
        // Segments an erasure listed that retention removes: their erased rows are gone too.
        for e in &mut next.erasures {
            let (old, kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut e.todo).into_iter().partition(|p| {
                    s.manifest
                        .segments
                        .iter()
                        .any(|m| m.id == p.segment && gone(m))
                });
            e.events_erased += old.iter().map(|p| p.rows).sum::<u64>();
            e.todo = kept;
        }
        next.edit += 1;
        let removed: Vec<SegmentMeta> = s
            .manifest
            .segments
            .iter()
            .filter(|m| gone(m))
            .cloned()
            .collect();
        manifest::store(&self.inner.io, &s.root, &next, &self.inner.cfg.crash_points)?;
        s.manifest = next;
        // (`stored_rows` counts what the log delivered, on every node alike: unchanged.)
        let rows: u64 = removed.iter().map(|m| m.rows).sum();
        for m in &removed {
            s.files.retire(m.id);
            s.dedupe.remove_segment(m.id);
        }
        self.inner.rollups.write().forget_before(app, before_ms);
        let st = &self.inner.stats;
        st.retention_segments_dropped
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        st.retention_rows_dropped.fetch_add(rows, Ordering::Relaxed);
        tracing::info!(
            app,
            before_ms,
            segments = removed.len(),
            rows,
            "retention: removed the app's rows before its floor"
        );
        Ok((removed.len() as u64, rows))
    }

    /// Erasure (issue 29), applied at log index `index` on every node: flushes the memtable,
    /// finds the segments holding rows `req` removes (rows of entries before `index`),
    /// records the erasure with them as its to-do list in one manifest edit (the erased
    /// events' ids written beside it first) and wakes the flush thread, which rewrites them
    /// one at a time ([`crate::erasure`]). Applying the same request again (a replay after a
    /// crash) changes nothing. Returns the erasure as recorded.
    pub fn erase(&self, req: crate::EraseRequest, index: u64) -> Result<crate::Erasure> {
        if !crate::erasure::valid_id(&req.id) {
            return Err(EngineError::Decode(format!(
                "erasure id {:?}: letters, digits and '-' only",
                req.id
            )));
        }
        let known = |s: &State| s.manifest.erasures.iter().find(|e| e.id == req.id).cloned();
        {
            let s = self.inner.state.lock();
            if let Some(f) = &s.failed {
                return Err(EngineError::FlushFailed(f.clone()));
            }
            if let Some(e) = known(&s) {
                return Ok(e);
            }
        }
        let t0 = Instant::now();
        // Every row of earlier entries into a segment: the memtable holds none of them after.
        self.flush()?;
        let out = self.erasure_days_out(&req);
        let mut s = self.inner.state.lock();
        if let Some(e) = known(&s) {
            return Ok(e);
        }
        let mut e = crate::Erasure {
            id: req.id,
            app_id: req.app_id,
            user_ids: req.user_ids,
            device_ids: req.device_ids,
            index,
            at_ms: req.at_ms,
            events: 0,
            events_erased: 0,
            segments_rewritten: 0,
            todo: Vec::new(),
            complete: false,
            sealed: false,
        };
        let candidates: Vec<SegmentMeta> = {
            let r = self.inner.rollups.read();
            crate::erasure::candidates(&s.manifest.segments, &r, &e, &out)
                .into_iter()
                .cloned()
                .collect()
        };
        let mut masks = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for seg in &candidates {
            let found = crate::erasure::scan(&s.root, seg, &e)?;
            if found.rows > 0 {
                e.todo.push(crate::ErasePart {
                    segment: seg.id,
                    rows: found.rows,
                });
                e.events += found.rows;
                masks.push((seg.id, found.keys));
                ids.extend(found.event_ids);
            }
        }
        let io = &self.inner.io;
        if !ids.is_empty() {
            let mut text = ids.join("\n");
            text.push('\n');
            io.write_synced(&crate::erasure::ids_file(&s.root, &e.id), text.as_bytes())?;
            io.sync_dir(&s.root)?;
        }
        let mut next = s.manifest.clone();
        next.erasures.push(e.clone());
        next.edit += 1;
        manifest::store(io, &s.root, &next, &self.inner.cfg.crash_points)?;
        s.manifest = next;
        // What the log delivered and is still stored (mirrors measure their lag by it).
        s.stored_rows = s.stored_rows.saturating_sub(e.events);
        for (seg, keys) in &masks {
            s.dedupe.mask(*seg, keys);
        }
        drop(s);
        tracing::info!(erasure = %e.id, app = %e.app_id, index, events = e.events,
            segments = e.todo.len(), scanned = candidates.len(),
            apply_ms = t0.elapsed().as_millis() as u64, "erasure recorded");
        if !e.todo.is_empty() {
            let _ = self.inner.flush_tx.lock().send(Job::Wake);
        }
        Ok(e)
    }

    /// The erasures applied so far, with this node's progress.
    pub fn erasures(&self) -> Vec<crate::Erasure> {
        self.inner.state.lock().manifest.erasures.clone()
    }

    /// For an erasure of users (not devices): the days of `req.app_id` whose hours are out of
    /// memory, and of them those counting one of the users — read from the summaries, before
    /// the erasure takes the engine's lock ([`crate::erasure::user_days_out`]).
    fn erasure_days_out(&self, req: &crate::EraseRequest) -> (BTreeSet<i64>, BTreeSet<i64>) {
        if !req.device_ids.is_empty() {
            return Default::default();
        }
        let (looked, numbers) = {
            let r = self.inner.rollups.read();
            let days = r.hour_days_out(&req.app_id, i64::MIN..i64::MAX);
            let numbers: roaring::RoaringBitmap = req
                .user_ids
                .iter()
                .filter_map(|u| r.user_number(&req.app_id, u))
                .collect();
            (days.into_iter().collect::<BTreeSet<i64>>(), numbers)
        };
        let (root, segments, dictionary_id, _pins) = self.app_segments(&req.app_id);
        let found = crate::erasure::user_days_out(
            &root,
            &segments,
            dictionary_id,
            &req.app_id,
            &looked,
            &numbers,
        );
        (looked, found)
    }

    /// The ids of the events erasure `id` removed (empty once sealed, or if none had one).
    pub fn erased_event_ids(&self, id: &str) -> Result<Vec<String>> {
        if !crate::erasure::valid_id(id) {
            return Ok(Vec::new());
        }
        let root = self.root();
        crate::erasure::read_ids(&root, id)
    }

    /// Records, at the same log position on every node, that erasure `id` is finished on the
    /// leader and on every mirror: nothing needs its identifiers any more, so each node seals
    /// it — forgets the user or device id and the erased events' ids — as soon as its own
    /// rewrite is done (now, or when the last segment is rewritten). Returns the erasure.
    pub fn complete_erasure(&self, id: &str) -> Result<Option<crate::Erasure>> {
        let mut s = self.inner.state.lock();
        let Some(pos) = s.manifest.erasures.iter().position(|e| e.id == id) else {
            return Ok(None);
        };
        if s.manifest.erasures[pos].complete {
            return Ok(Some(s.manifest.erasures[pos].clone()));
        }
        let mut next = s.manifest.clone();
        next.erasures[pos].complete = true;
        next.edit += 1;
        let root = s.root.clone();
        manifest::store(&self.inner.io, &root, &next, &self.inner.cfg.crash_points)?;
        s.manifest = next;
        seal_due(&self.inner, &mut s)?;
        Ok(Some(s.manifest.erasures[pos].clone()))
    }

    /// The app's retention floor ([`Self::drop_before`]), if one was set.
    pub fn retention_floor(&self, app: &str) -> Option<i64> {
        self.inner.state.lock().manifest.floor(app)
    }

    /// The engine's resident state against `engine.memory_budget_mb`, as last measured by
    /// [`Self::tick`] (the rollups' part every few seconds).
    pub fn memory_use(&self) -> MemoryUse {
        MemoryUse {
            budget: self.inner.memory_budget,
            ..self.inner.state.lock().memory
        }
    }

    /// The step times a funnel over `[from_ms, to_ms)` with `window_ms` reads, loading the
    /// days the memory budget left in the summaries.
    pub fn step_days(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
        window_ms: i64,
    ) -> Result<crate::StepDays> {
        // The budget may send days out between the read and the restore: a few tries.
        for _ in 0..8 {
            let out = self
                .inner
                .rollups
                .read()
                .step_days_out(app, from_ms, to_ms, window_ms);
            if out.is_empty() {
                break;
            }
            let (root, segments, dictionary_id, _pins) = self.app_segments(app);
            let mut loaded = Vec::with_capacity(out.len());
            for (day, n) in out {
                let segs = step_days::segments_of(&segments, app, day);
                let steps = step_days::read_day(&root, &segs, dictionary_id, day, &mut |f| {
                    f(&self.inner.rollups.read())
                })?;
                loaded.push((day, n, steps));
            }
            // Restored and taken under one lock: the housekeeping tick (memory budget) must
            // not send a restored day out again before this funnel has it.
            let mut r = self.inner.rollups.write();
            for (day, n, steps) in loaded {
                // Only if still out since listed: apply may have loaded it meanwhile (it adds
                // rows only to loaded days), and then the budget sent it out again.
                r.restore_steps(app, day, n, steps);
            }
            if r.step_days_out(app, from_ms, to_ms, window_ms).is_empty() {
                return Ok(r.step_days(app, from_ms, to_ms, window_ms));
            }
        }
        let r = self.inner.rollups.read();
        if !r.step_days_out(app, from_ms, to_ms, window_ms).is_empty() {
            return Err(EngineError::Config(format!(
                "the funnel step times of {app} kept leaving memory while being read: engine.memory_budget_mb is too small for them"
            )));
        }
        Ok(r.step_days(app, from_ms, to_ms, window_ms))
    }

    /// What the dedupe state holds (for `/metrics`).
    pub fn dedupe_stats(&self) -> DedupeStats {
        let s = self.inner.state.lock();
        DedupeStats {
            keys_in_memory: s.dedupe.len() as u64,
            days_in_memory: s.dedupe.days_in_memory() as u64,
            key_bytes: s.dedupe.key_bytes(),
            filter_bytes: s.dedupe.filter_bytes(),
            filters_in_summaries: s.dedupe.filters_in_summaries() as u64,
            segment_reads: s.dedupe.segment_reads,
            filter_reads: s.dedupe.filter_reads,
            budget_evictions: s.dedupe.budget_evictions,
        }
    }

    fn rotate_locked(&self, s: &mut State) -> Result<()> {
        let Some(applied) = s.applied_index else {
            return Ok(());
        };
        let already = s
            .rotated
            .back()
            .map(|r| r.flushed_index)
            .or(s.manifest.flushed_index);
        if already == Some(applied) && s.active.rows() == 0 {
            return Ok(());
        }
        let mut old = std::mem::replace(&mut s.active, Memtable::new());
        s.active_since = None;
        let rotated = Arc::new(Rotated {
            batches: old.batches()?,
            flushed_index: applied,
            checkpoint: s.checkpoint.clone(),
        });
        s.rotated.push_back(rotated.clone());
        self.inner
            .flush_tx
            .lock()
            .send(Job::Flush(rotated))
            .map_err(|_| EngineError::FlushFailed("flush thread exited".into()))
    }

    /// Makes everything applied so far durable in segments and waits for it.
    pub fn flush(&self) -> Result<Manifest> {
        let mut s = self.inner.state.lock();
        self.rotate_locked(&mut s)?;
        while !s.rotated.is_empty() && s.failed.is_none() {
            self.inner.flushed.wait(&mut s);
        }
        if let Some(f) = &s.failed {
            return Err(EngineError::FlushFailed(f.clone()));
        }
        Ok(s.manifest.clone())
    }

    /// A consistent view for a query: the durable segments and all in-memory rows.
    pub fn read_view(&self) -> Result<ReadView> {
        let mut s = self.inner.state.lock();
        let batches = s.memory_batches()?;
        Ok(ReadView {
            root: s.root.clone(),
            pins: s.files.pin(&s.manifest.segments),
            segments: s.manifest.segments.clone(),
            batches,
            applied_index: s.applied_index,
            erasures: s
                .manifest
                .erasures
                .iter()
                .filter(|e| !e.done())
                .cloned()
                .collect(),
            checks: self.inner.checks.clone(),
        })
    }

    /// Like [`Engine::flush`], also pinning the files of the returned manifest so they stay on
    /// disk (e.g. while a snapshot links them) even if compaction retires them meanwhile.
    /// The segments are checked first (those not checked yet are read whole): a copy of the
    /// table never carries a damaged file.
    pub fn flush_pinned(&self) -> Result<(Manifest, SegmentPins)> {
        self.flush()?;
        let (root, manifest, pins) = {
            let s = self.inner.state.lock();
            (
                s.root.clone(),
                s.manifest.clone(),
                s.files.pin(&s.manifest.segments),
            )
        };
        self.inner.checks.check_all(&root, &manifest.segments)?;
        Ok((manifest, pins))
    }

    /// Directory of the live generation (segment paths in the manifest are relative to it).
    pub fn root(&self) -> PathBuf {
        self.inner.state.lock().root.clone()
    }

    /// Replaces the whole table with the generation prepared in `staged` (a directory holding
    /// `manifest.json` and `segments/`), atomically: the staged directory becomes a new
    /// generation and `CURRENT` is switched with an atomic rename.
    pub fn install(&self, staged: &Path) -> Result<Manifest> {
        self.flush()?;
        let mut s = self.inner.state.lock();
        let next_gen = next_generation_name(&self.inner.base)?;
        let new_root = self.inner.base.join(&next_gen);
        let io = &self.inner.io;
        io.rename(staged, &new_root)?;
        io.sync_dir(&self.inner.base)?;
        let generation::Loaded {
            manifest,
            dedupe,
            rollups,
            dictionary,
            rebuilt,
        } = generation::load(io, &new_root, &self.inner.cfg, true, &self.inner.checks)?;
        set_current(io, &self.inner.base, &next_gen)?;
        self.inner
            .stats
            .summaries_rebuilt
            .fetch_add(rebuilt, Ordering::Relaxed);
        s.dictionary_id = dictionary.meta().numbering();
        s.unflushed_days.clear();
        *self.inner.rollups.write() = rollups;
        *self.inner.dictionary.lock() = dictionary;
        s.files = LiveFiles::new(io, &new_root, &manifest.segments);
        let old_root = std::mem::replace(&mut s.root, new_root);
        s.manifest = manifest.clone();
        s.dedupe = dedupe;
        s.active = Memtable::new();
        s.active_since = None;
        s.applied_index = manifest.flushed_index;
        s.checkpoint = manifest.checkpoint.clone();
        s.stored_rows = manifest.live_rows();
        drop(s);
        self.inner.checks.forget_under(&old_root);
        self.start_window_loader()?;
        self.start_scrub()?;
        if let Err(e) = self.inner.io.remove_dir_all(&old_root) {
            tracing::warn!(path = %old_root.display(), error = %e, "could not remove old generation");
        }
        Ok(manifest)
    }

    /// A fresh directory (inside the engine base, same file system) to stage a snapshot into.
    pub fn staging_dir(&self) -> Result<PathBuf> {
        let p = self
            .inner
            .base
            .join(format!("staging-{}", std::process::id()));
        let io = &self.inner.io;
        if p.exists() {
            io.remove_dir_all(&p)?;
        }
        let name = p.file_name().map(PathBuf::from).unwrap_or_default();
        io.create_dirs_durably(&self.inner.base, &name.join(SEGMENTS_DIR))?;
        Ok(p)
    }
}

/// Reads `CURRENT` (creating generation `gen-1` on first start) and removes stale generations
/// and staging directories left by an interrupted snapshot install.
fn resolve_generation(io: &Io, base: &Path) -> Result<PathBuf> {
    let current = base.join(CURRENT_FILE);
    let name = match std::fs::read_to_string(&current) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = "gen-1".to_string();
            io.create_dirs_durably(base, Path::new(&name))?;
            set_current(io, base, &name)?;
            name
        }
        Err(e) => return Err(EngineError::io(&current, e)),
    };
    if !name.starts_with("gen-") || name.contains('/') {
        return Err(EngineError::Corrupt {
            what: "CURRENT file",
            path: current,
            reason: format!("names {name:?}, not a generation"),
        });
    }
    for entry in std::fs::read_dir(base).map_err(|e| EngineError::io(base, e))? {
        let entry = entry.map_err(|e| EngineError::io(base, e))?;
        let n = entry.file_name().to_string_lossy().into_owned();
        if (n.starts_with("gen-") && n != name) || n.starts_with("staging-") {
            tracing::info!(dir = %n, "removing stale engine directory");
            io.remove_dir_all(&entry.path())?;
        }
    }
    let root = base.join(&name);
    if !root.is_dir() {
        return Err(EngineError::Corrupt {
            what: "CURRENT file",
            path: current,
            reason: format!("generation {name} does not exist"),
        });
    }
    Ok(root)
}

fn next_generation_name(base: &Path) -> Result<String> {
    let mut max = 0u64;
    for entry in std::fs::read_dir(base).map_err(|e| EngineError::io(base, e))? {
        let entry = entry.map_err(|e| EngineError::io(base, e))?;
        if let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("gen-"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            max = max.max(n);
        }
    }
    Ok(format!("gen-{}", max + 1))
}

fn set_current(io: &Io, base: &Path, name: &str) -> Result<()> {
    let tmp = base.join(format!("{CURRENT_FILE}.tmp"));
    io.write_synced(&tmp, name.as_bytes())?;
    let cur = base.join(CURRENT_FILE);
    io.rename(&tmp, &cur)?;
    io.sync_dir(base)
}

/// The background thread: flushes rotated memtables in order, and between flushes merges
/// small segments (one merge at a time, so a queued flush never waits for more than one).
fn flush_loop(inner: std::sync::Weak<Inner>, rx: mpsc::Receiver<Job>) {
    let mut failed_merges: HashSet<u64> = HashSet::new();
    let mut more_to_merge = true;
    loop {
        let idle = match inner.upgrade() {
            Some(_) if more_to_merge => Duration::ZERO,
            Some(i) => Duration::from_secs(i.cfg.compaction_interval_secs),
            None => return,
        };
        match rx.recv_timeout(idle) {
            Ok(Job::Wake) => more_to_merge = true,
            Ok(Job::Flush(job)) => {
                let Some(inner) = inner.upgrade() else { return };
                let t0 = Instant::now();
                match flush_one(&inner, &job) {
                    Ok(rows) => {
                        inner.stats.flushes.fetch_add(1, Ordering::Relaxed);
                        inner.stats.rows_flushed.fetch_add(rows, Ordering::Relaxed);
                        inner
                            .stats
                            .flush_micros_total
                            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "flush failed; the engine stops accepting writes");
                        inner.state.lock().failed = Some(e.to_string());
                    }
                }
                inner.flushed.notify_all();
                more_to_merge = true;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let Some(inner) = inner.upgrade() else { return };
                // Erasures and retention first: removing data waits for nobody's small files.
                match erase_one(&inner).and_then(|done| Ok(done || retention_one(&inner)?)) {
                    Ok(true) => {
                        more_to_merge = true;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        // Retried at the next idle step; reported each time.
                        tracing::error!(error = %e, "erasure or retention rewrite failed; retrying");
                        inner
                            .stats
                            .compaction_failures
                            .fetch_add(1, Ordering::Relaxed);
                        more_to_merge = false;
                        continue;
                    }
                }
                more_to_merge = match compact_one(&inner, &mut failed_merges) {
                    Ok(merged) => merged,
                    Err((ids, e)) => {
                        tracing::error!(error = %e, segments = ?ids,
                            "compaction failed; these segments stay as they are");
                        inner
                            .stats
                            .compaction_failures
                            .fetch_add(1, Ordering::Relaxed);
                        failed_merges.extend(ids);
                        true
                    }
                };
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Merges one group of small segments, if compaction finds one. Crash-safe: the merged
/// segment is written and fsynced, then one manifest edit swaps it for the old segments, then
/// the old files are removed once no reader pins them. Returns whether it merged anything.
fn compact_one(
    inner: &Inner,
    failed: &mut HashSet<u64>,
) -> std::result::Result<bool, (Vec<u64>, EngineError)> {
    let (root, picked, id) = {
        let mut s = inner.state.lock();
        if s.failed.is_some() {
            return Ok(false);
        }
        let mut skip = s.manifest.erasing();
        skip.extend(failed.iter().copied());
        let Some(picked) = crate::compaction::pick(&s.manifest.segments, &inner.cfg, &skip) else {
            return Ok(false);
        };
        // The id is reserved now; the manifest edit below records it.
        let id = s.manifest.next_segment_id;
        s.manifest.next_segment_id += 1;
        (s.root.clone(), picked, id)
    };
    let ids: Vec<u64> = picked.iter().map(|s| s.id).collect();
    let fail = |e: EngineError| (ids.clone(), e);
    let crash = &inner.cfg.crash_points;
    crash.hit("compact.before_write");
    let mut batches = Vec::new();
    for seg in &picked {
        batches.extend(segment::read_segment(&inner.checks, &root, seg).map_err(fail)?);
    }
    let written = write_rows(inner, &root, id, &batches, &picked[0], "compact").map_err(fail)?;
    drop(batches);
    let Some((meta, keys, dictionary)) = written else {
        return Ok(true); // a snapshot replaced the table meanwhile
    };
    crash.hit("compact.before_manifest");
    {
        let mut s = inner.state.lock();
        if s.root != root {
            // A snapshot replaced the table meanwhile; the new file is in the old generation,
            // which goes away with it.
            return Ok(true);
        }
        let erasing = s.manifest.erasing();
        if ids.iter().any(|id| erasing.contains(id)) {
            // An erasure listed one of them meanwhile: its rows must not move to a segment
            // the erasure does not know. The new file is left for the next open to remove.
            return Ok(true);
        }
        let mut next = s.manifest.clone();
        next.segments.retain(|seg| !ids.contains(&seg.id));
        if next.segments.len() + ids.len() != s.manifest.segments.len() {
            return Ok(true);
        }
        next.segments.push(meta.clone());
        next.dictionary = Some(dictionary);
        next.edit += 1;
        manifest::store(&inner.io, &root, &next, crash).map_err(fail)?;
        crash.hit("compact.after_manifest");
        s.manifest = next;
        s.files.add(&root, &meta);
        let in_memory = ids.iter().all(|old| s.dedupe.is_in_memory(*old));
        for old in &ids {
            s.files.retire(*old);
            s.dedupe.remove_segment(*old);
        }
        s.dedupe
            .add_segment(&meta, keys.has_ids, keys.filter, in_memory);
    }
    inner.stats.compactions.fetch_add(1, Ordering::Relaxed);
    inner
        .stats
        .segments_compacted
        .fetch_add(ids.len() as u64, Ordering::Relaxed);
    tracing::info!(app = %meta.app_id, day = %meta.day, merged = ids.len(), rows = meta.rows,
        segment = meta.id, "compacted segments");
    Ok(true)
}

/// Rewrites one segment an erasure lists, if there is one, without the erased rows (or
/// removes it, if nothing else is left). Crash-safe like a compaction: the new segment is
/// written and fsynced, then one manifest edit swaps it in and moves the erasure's progress,
/// then the rollups count the segment's days again. Returns whether it did anything.
fn erase_one(inner: &Inner) -> Result<bool> {
    let crash = &inner.cfg.crash_points;
    let (root, erasure, seg, id) = {
        let mut s = inner.state.lock();
        if s.failed.is_some() {
            return Ok(false);
        }
        let Some(e) = s.manifest.erasures.iter().find(|e| !e.done()).cloned() else {
            return Ok(false);
        };
        let part = e.todo[0].segment;
        let Some(seg) = s.manifest.segments.iter().find(|m| m.id == part).cloned() else {
            // Not listed any more (cannot happen: retention and compaction keep the list).
            let mut next = s.manifest.clone();
            if let Some(x) = next.erasures.iter_mut().find(|x| x.id == e.id) {
                x.todo.retain(|p| p.segment != part);
            }
            next.edit += 1;
            manifest::store(&inner.io, &s.root, &next, crash)?;
            s.manifest = next;
            return Ok(true);
        };
        let id = s.manifest.next_segment_id;
        s.manifest.next_segment_id += 1;
        (s.root.clone(), e, seg, id)
    };
    let Some((written, removed)) =
        rewrite_without(inner, &root, &seg, id, "erase", |b| erasure.matches(b))?
    else {
        return Ok(true); // a snapshot replaced the table meanwhile
    };
    crash.hit("erase.before_manifest");
    let mut s = inner.state.lock();
    if s.root != root || !s.manifest.segments.iter().any(|m| m.id == seg.id) {
        return Ok(true); // replaced meanwhile; the new file goes at the next open
    }
    let mut next = s.manifest.clone();
    replace_segment(&mut next, seg.id, &written);
    let Some(x) = next.erasures.iter_mut().find(|x| x.id == erasure.id) else {
        return Ok(true);
    };
    x.todo.retain(|p| p.segment != seg.id);
    x.events_erased += removed;
    x.segments_rewritten += 1;
    next.edit += 1;
    manifest::store(&inner.io, &root, &next, crash)?;
    crash.hit("erase.after_manifest");
    s.manifest = next;
    swapped(&mut s, &root, seg.id, written);
    let st = &inner.stats;
    st.erasure_segments_rewritten
        .fetch_add(1, Ordering::Relaxed);
    st.erasure_rows_removed
        .fetch_add(removed, Ordering::Relaxed);
    let memory = s.memory_batches()?;
    let mut rollups = inner.rollups.write();
    let days = crate::erasure::days_of(&seg);
    if let Err(e) = crate::erasure::recount_days(
        &root,
        &s.manifest.segments,
        s.dictionary_id,
        &memory,
        &mut rollups,
        &seg.app_id,
        &days,
        s.manifest.floor(&seg.app_id),
    ) {
        // The rows are erased; the dashboards' counts of these days are off until the node
        // restarts (which counts them from the summaries).
        tracing::error!(error = %e, app = %seg.app_id, ?days,
            "could not count the erased days again; restart the node to rebuild them");
    }
    drop(rollups);
    tracing::info!(erasure = %erasure.id, segment = seg.id, removed, "erasure rewrote a segment");
    // The last segment: sealed now if complete (its users' names leave the dictionary only
    // now that the rollups no longer count them).
    seal_due(inner, &mut s)?;
    Ok(true)
}

/// A segment written with its keys' filter and the dictionary its summary numbers users by.
type Written = (SegmentMeta, segment::SegmentKeysOut, crate::DictionaryMeta);

/// What [`rewrite_without`] wrote: the new segment (none if no row was left), and how many
/// rows it left out.
type Rewritten = (Option<Written>, u64);

/// Reads segment `seg` back and writes its rows but those `drop` picks as segment `id`, with
/// its summary (crash points `<stage>.before_write`, `<stage>.segment_written`). `None` if a
/// snapshot replaced the table meanwhile. The caller swaps it in with one manifest edit.
fn rewrite_without(
    inner: &Inner,
    root: &Path,
    seg: &SegmentMeta,
    id: u64,
    stage: &str,
    drop: impl Fn(&RecordBatch) -> Result<arrow::array::BooleanArray>,
) -> Result<Option<Rewritten>> {
    inner.cfg.crash_points.hit(&format!("{stage}.before_write"));
    let mut kept = Vec::new();
    let mut removed = 0u64;
    for b in segment::read_segment(&inner.checks, root, seg)? {
        let hit = drop(&b)?;
        removed += hit.true_count() as u64;
        let b = arrow::compute::filter_record_batch(&b, &arrow::compute::not(&hit)?)?;
        if b.num_rows() > 0 {
            kept.push(b);
        }
    }
    if kept.is_empty() {
        return Ok(Some((None, removed)));
    }
    Ok(write_rows(inner, root, id, &kept, seg, stage)?.map(|w| (Some(w), removed)))
}

/// `manifest` with segment `old` replaced by what [`rewrite_without`] wrote (or removed).
fn replace_segment(manifest: &mut Manifest, old: u64, written: &Option<Written>) {
    manifest.segments.retain(|m| m.id != old);
    if let Some((meta, _, dictionary)) = written {
        manifest.segments.push(meta.clone());
        manifest.dictionary = Some(*dictionary);
    }
}

/// After the manifest edit of [`replace_segment`]: the old file retired once unread, the new
/// one live, dedupe told (the new segment's keys are in memory if the old one's were).
fn swapped(s: &mut State, root: &Path, old: u64, written: Option<Written>) {
    s.files.retire(old);
    let in_memory = s.dedupe.remove_segment(old);
    if let Some((meta, keys, _)) = written {
        s.files.add(root, &meta);
        s.dedupe
            .add_segment(&meta, keys.has_ids, keys.filter, in_memory);
    }
}

/// Rewrites one segment that holds rows before its app's retention floor (a month- or
/// year-bucketed segment spanning the floor when it moved) without those rows. Crash-safe
/// like a compaction; after a crash the segment still spans the floor and is rewritten
/// again. The rollups forgot those rows when the floor moved. Returns whether it did anything.
fn retention_one(inner: &Inner) -> Result<bool> {
    let crash = &inner.cfg.crash_points;
    let (root, seg, floor, id) = {
        let mut s = inner.state.lock();
        if s.failed.is_some() || s.manifest.retention.is_empty() {
            return Ok(false);
        }
        let erasing = s.manifest.erasing();
        let found = s.manifest.segments.iter().find_map(|m| {
            let f = s.manifest.floor(&m.app_id)?;
            (m.min_ts_ms < f && !erasing.contains(&m.id)).then(|| (m.clone(), f))
        });
        let Some((seg, floor)) = found else {
            return Ok(false);
        };
        let id = s.manifest.next_segment_id;
        s.manifest.next_segment_id += 1;
        (s.root.clone(), seg, floor, id)
    };
    let old = |b: &RecordBatch| -> Result<arrow::array::BooleanArray> {
        let ts = b
            .column_by_name(crate::COL_TIMESTAMP)
            .ok_or_else(|| EngineError::Decode("stored rows lack timestamp".into()))?;
        let ts = arrow::array::AsArray::as_primitive::<arrow::datatypes::TimestampMillisecondType>(
            ts.as_ref(),
        );
        Ok(ts
            .iter()
            .map(|t| Some(t.is_some_and(|t| t < floor)))
            .collect())
    };
    let Some((written, removed)) = rewrite_without(inner, &root, &seg, id, "retention", old)?
    else {
        return Ok(true);
    };
    let mut s = inner.state.lock();
    if s.root != root || !s.manifest.segments.iter().any(|m| m.id == seg.id) {
        return Ok(true);
    }
    let mut next = s.manifest.clone();
    replace_segment(&mut next, seg.id, &written);
    next.edit += 1;
    manifest::store(&inner.io, &root, &next, crash)?;
    s.manifest = next;
    swapped(&mut s, &root, seg.id, written);
    let st = &inner.stats;
    st.retention_rows_dropped
        .fetch_add(removed, Ordering::Relaxed);
    tracing::info!(app = %seg.app_id, segment = seg.id, floor, removed,
        "retention: rewrote a segment spanning the floor");
    Ok(true)
}

/// Seals the erasures that are complete and done ([`crate::erasure::seal_due`]) in one
/// manifest edit, then removes their `.ids` files and the replaced dictionary file. Under the
/// state lock; takes the dictionary, then the rollups (the order the flush thread uses).
fn seal_due(inner: &Inner, s: &mut State) -> Result<()> {
    if !s.manifest.erasures.iter().any(|e| e.seal_due()) {
        return Ok(());
    }
    let root = s.root.clone();
    let old = s.manifest.dictionary;
    let mut next = s.manifest.clone();
    let sealed = {
        let mut dictionary = inner.dictionary.lock();
        let mut rollups = inner.rollups.write();
        crate::erasure::seal_due(&inner.io, &root, &mut next, &mut rollups, &mut dictionary)?
    };
    next.edit += 1;
    manifest::store(&inner.io, &root, &next, &inner.cfg.crash_points)?;
    let renamed = next.dictionary.map(|d| d.id) != old.map(|d| d.id);
    s.manifest = next;
    for id in &sealed {
        remove_ids_file(&inner.io, &root, id)?;
    }
    if let (true, Some(old)) = (renamed, old) {
        let path = root.join(old.file_name());
        if let Err(e) = inner.io.remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the replaced user dictionary; the next open does");
        }
    }
    tracing::info!(erasures = ?sealed, dictionary_rewritten = renamed, "erasures sealed");
    Ok(())
}

/// Removes erasure `id`'s file of erased event ids (sealed: nothing needs them any more).
fn remove_ids_file(io: &Io, root: &Path, id: &str) -> Result<()> {
    let path = crate::erasure::ids_file(root, id);
    match io.remove_file(&path) {
        Ok(()) => io.sync_dir(root),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(&path, e)),
    }
}

/// Writes `batches` (rows of `like`'s app and time bucket) as segment `id` with its summary:
/// the shared last step of compaction and erasure. `None` if a snapshot replaced the table
/// meanwhile.
fn write_rows(
    inner: &Inner,
    root: &Path,
    id: u64,
    batches: &[RecordBatch],
    like: &SegmentMeta,
    stage: &str,
) -> Result<Option<Written>> {
    let granularity = Granularity::of_label(&like.day);
    let mut parts = segment::partition_with(batches, usize::MAX, Some(granularity))?;
    if parts.len() != 1 || parts[0].app_id != like.app_id || parts[0].day != like.day {
        return Err(EngineError::Corrupt {
            what: "segment",
            path: root.join(&like.path),
            reason: "segments of one (app, day) hold rows of another".into(),
        });
    }
    let part = parts.remove(0);
    let fmt = SegmentFormat {
        zstd_level: inner.cfg.zstd_level,
        row_group_rows: inner.cfg.row_group_rows,
    };
    let dictionary = inner
        .dictionary
        .lock()
        .persist(&inner.io, root, &inner.rollups)?;
    let Some(dictionary) = dictionary else {
        return Ok(None);
    };
    let summary = SummaryOut {
        builder: SummaryBuilder::new(),
        rollups: &inner.rollups,
        dictionary_id: dictionary.numbering(),
    };
    let (meta, keys) = segment::write_segment(
        &inner.io,
        root,
        id,
        batches,
        &part,
        &fmt,
        &inner.cfg.crash_points,
        stage,
        Some(summary),
    )?;
    inner.checks.written(root, &meta);
    Ok(Some((meta, keys, dictionary)))
}

fn flush_one(inner: &Inner, job: &Rotated) -> Result<u64> {
    let crash = &inner.cfg.crash_points;
    let (root, mut manifest) = {
        let s = inner.state.lock();
        (s.root.clone(), s.manifest.clone())
    };
    crash.hit("flush.before_segments");
    let fmt = SegmentFormat {
        zstd_level: inner.cfg.zstd_level,
        row_group_rows: inner.cfg.row_group_rows,
    };
    let t0 = Instant::now();
    let mut parts = segment::partition(&job.batches, inner.cfg.max_partitions_per_flush)?;
    // Rows applied before their app's retention floor was raised stay out of the segments.
    if !manifest.retention.is_empty() {
        for p in &mut parts {
            if let Some(floor) = manifest.floor(&p.app_id) {
                p.keep_from(&job.batches, floor)?;
            }
        }
        parts.retain(|p| !p.rows.is_empty());
    }
    inner
        .stats
        .partition_micros_total
        .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
    let dictionary = inner
        .dictionary
        .lock()
        .persist(&inner.io, &root, &inner.rollups)?;
    let mut rows = 0;
    let mut written = Vec::with_capacity(parts.len());
    for part in &parts {
        let summary = dictionary.map(|d| SummaryOut {
            builder: SummaryBuilder::new(),
            rollups: &inner.rollups,
            dictionary_id: d.numbering(),
        });
        let id = manifest.next_segment_id;
        manifest.next_segment_id += 1;
        let (meta, keys) = segment::write_segment(
            &inner.io,
            &root,
            id,
            &job.batches,
            part,
            &fmt,
            crash,
            "flush",
            summary,
        )?;
        inner.checks.written(&root, &meta);
        rows += meta.rows;
        manifest.segments.push(meta.clone());
        written.push((meta, keys));
    }
    crash.hit("flush.before_manifest");
    // The edit is made to the manifest as it is now, under the lock: apply may have changed it
    // since the copy above (a retention floor, an erasure's completion), and those changes
    // must not be lost by writing the copy back.
    let mut s = inner.state.lock();
    let mut next = s.manifest.clone();
    next.next_segment_id = next.next_segment_id.max(manifest.next_segment_id);
    next.segments
        .extend(written.iter().map(|(seg, _)| seg.clone()));
    next.edit += 1;
    if dictionary.is_some() {
        next.dictionary = dictionary;
    }
    next.flushed_index = Some(job.flushed_index);
    next.checkpoint = job.checkpoint.clone();
    manifest::store(&inner.io, &root, &next, crash)?;
    crash.hit("flush.after_manifest");
    for (seg, keys) in written {
        s.files.add(&root, &seg);
        // Its rows' keys went into the day sets when they were applied.
        s.dedupe.add_segment(&seg, keys.has_ids, keys.filter, true);
    }
    s.manifest = next;
    s.rotated.pop_front();
    Ok(rows)
}
