//! [`Wal`]: a segmented, checksummed, group-committed log of `(index, payload)` records.
//!
//! Appends are made readable at once (an in-memory tail) and handed to one writer thread,
//! which drains every queued append, writes them with one `write` and one `fdatasync`, and
//! only then runs their completion callbacks. Many concurrent appends therefore share one
//! fsync ("group commit"). Truncate, purge and barriers go through the same queue, so all
//! write IO is applied in the order it was issued.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::env::{FileSystem, RealFs};
use crate::error::{Result, WalError};
use crate::format::{
    decode_record, encode_header, encode_record, segment_path, Decoded, HEADER_LEN,
};
use crate::fsio::{read_exact_at, sync_dir_with};
use crate::metrics::WalMetrics;
use crate::recovery::{recover, RecoveryReport};

/// Tuning of the log; see `config/example.toml` (`[wal]`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalOptions {
    /// A segment is sealed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Largest record accepted; also bounds allocations when reading a damaged length field.
    pub max_record_bytes: u32,
    /// Bytes of recent (already durable) records kept in memory for readers.
    pub cache_bytes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_record_bytes: 64 << 20,
            cache_bytes: 128 << 20,
        }
    }
}

impl WalOptions {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.segment_bytes < 4096 {
            return Err("wal.segment_bytes must be at least 4096".into());
        }
        if self.max_record_bytes < 1024 {
            return Err("wal.max_record_bytes must be at least 1024".into());
        }
        Ok(())
    }
}

/// Completion callback of a queued write.
pub type Done = Box<dyn FnOnce(Result<()>) + Send + 'static>;

enum Cmd {
    Append { count: usize, done: Done },
    Truncate { from: u64, done: Done },
    Purge { upto: u64, done: Done },
    Barrier { done: Done },
    Seal { done: Done },
}

struct SegmentState {
    first_index: u64,
    path: PathBuf,
    file: Arc<File>,
    offsets: Vec<u64>,
    size: u64,
}

impl SegmentState {
    fn end_index(&self) -> u64 {
        self.first_index + self.offsets.len() as u64
    }
}

/// State shared between callers, readers and the writer thread.
struct Shared {
    segments: BTreeMap<u64, SegmentState>,
    /// Recent records: every not-yet-written record plus durable ones up to `cache_bytes`.
    tail: BTreeMap<u64, Bytes>,
    tail_bytes: usize,
    /// Index the next append must carry; `None` for a log that has never held a record.
    next_index: Option<u64>,
    /// First index not yet written by the writer thread.
    written_end: Option<u64>,
    /// Records at or below this index are logically gone.
    purged_upto: Option<u64>,
    failed: Option<String>,
}

/// A handle to an open log; cheap to clone.
#[derive(Clone)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    shared: Arc<RwLock<Shared>>,
    tx: mpsc::Sender<Cmd>,
    metrics: Arc<WalMetrics>,
    report: RecoveryReport,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, validating every segment.
    /// `purged_upto` is the purge point recorded by the owner of the log, if any.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions, purged_upto: Option<u64>) -> Result<Self> {
        Self::open_with(dir, opts, purged_upto, Arc::new(RealFs))
    }

    /// [`Wal::open`] with every write, fsync, creation and removal going through `fs`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: WalOptions,
        purged_upto: Option<u64>,
        fs: Arc<dyn FileSystem>,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| WalError::io(&dir, e))?;
        sync_dir_with(fs.as_ref(), &dir)?;
        let (mut recovered, report) = recover(fs.as_ref(), &dir, opts.max_record_bytes)?;
        // Segments wholly at or below the purge point were dropped before a crash but not yet
        // unlinked: remove them now (the newest segment always stays).
        if let Some(p) = purged_upto {
            let mut removed = false;
            while recovered.len() > 1 && recovered[1].first_index <= p + 1 {
                let seg = recovered.remove(0);
                fs.remove_file(&seg.path)
                    .map_err(|e| WalError::io(&seg.path, e))?;
                removed = true;
            }
            if removed {
                sync_dir_with(fs.as_ref(), &dir)?;
            }
        }
        let mut segments = BTreeMap::new();
        for seg in recovered {
            let file = fs
                .open_append(&seg.path)
                .map_err(|e| WalError::io(&seg.path, e))?;
            segments.insert(
                seg.first_index,
                SegmentState {
                    first_index: seg.first_index,
                    path: seg.path,
                    file: Arc::new(file),
                    offsets: seg.offsets,
                    size: seg.size,
                },
            );
        }
        let end = segments.values().next_back().map(SegmentState::end_index);
        let next_index = match (end, purged_upto) {
            (Some(e), Some(p)) => Some(e.max(p + 1)),
            (Some(e), None) => Some(e),
            (None, Some(p)) => Some(p + 1),
            (None, None) => None,
        };
        let metrics = Arc::new(WalMetrics::default());
        let shared = Arc::new(RwLock::new(Shared {
            segments,
            tail: BTreeMap::new(),
            tail_bytes: 0,
            next_index,
            written_end: next_index,
            purged_upto,
            failed: None,
        }));
        let (del_tx, del_rx) = mpsc::channel::<PathBuf>();
        let del_dir = dir.clone();
        let del_fs = fs.clone();
        std::thread::Builder::new()
            .name("wal-deleter".into())
            .spawn(move || delete_loop(del_fs.as_ref(), &del_dir, del_rx))
            .map_err(|e| WalError::io(&dir, e))?;
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            deleter: del_tx,
            fs: fs.clone(),
            dir: dir.clone(),
            opts: opts.clone(),
            shared: shared.clone(),
            metrics: metrics.clone(),
            buf: Vec::with_capacity(1 << 20),
            seal_next: false,
        };
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| WalError::io(&dir, e))?;
        tracing::info!(dir = %dir.display(), segments = report.segments, records = report.records,
            torn_tail_bytes = report.torn_tail_bytes_truncated, "log recovered");
        Ok(Self {
            dir,
            opts,
            shared,
            tx,
            metrics,
            report,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Why the writer stopped (a failed write or fsync), if it did: no record is accepted
    /// after that until the process restarts and recovers the log.
    pub fn writer_failure(&self) -> Option<String> {
        self.shared.read().failed.clone()
    }

    pub fn metrics(&self) -> &Arc<WalMetrics> {
        &self.metrics
    }

    /// The half-open range of indexes that can be read: `(purged_upto + 1)..next_index`.
    pub fn range(&self) -> Range<u64> {
        let s = self.shared.read();
        let next = s.next_index.unwrap_or(0);
        let first = s
            .purged_upto
            .map(|p| p + 1)
            .or_else(|| s.segments.values().next().map(|g| g.first_index))
            .or_else(|| s.tail.keys().next().copied())
            .unwrap_or(next);
        first.min(next)..next
    }

    /// Queues records `first..first+payloads.len()`. They are readable when this returns;
    /// `done` runs once they are written and fsynced (or the write failed).
    pub fn append(&self, first: u64, payloads: Vec<Bytes>, done: Done) -> Result<()> {
        if payloads.is_empty() {
            done(Ok(()));
            return Ok(());
        }
        let count = payloads.len();
        {
            let mut s = self.shared.write();
            if let Some(f) = &s.failed {
                return Err(WalError::WriterStopped(f.clone()));
            }
            // A record may never replace an existing one (truncate first); a gap is allowed and
            // starts a new segment whose header records where the previous one ended.
            if let Some(next) = s.next_index {
                if first < next {
                    return Err(WalError::InvalidAppend(format!(
                        "append at index {first} would overwrite; the next index is {next} (truncate first)"
                    )));
                }
            } else {
                s.written_end = Some(first);
            }
            for (i, p) in payloads.into_iter().enumerate() {
                if p.len() > self.opts.max_record_bytes as usize {
                    return Err(WalError::InvalidAppend(format!(
                        "record of {} bytes exceeds wal.max_record_bytes {}",
                        p.len(),
                        self.opts.max_record_bytes
                    )));
                }
                s.tail_bytes += p.len();
                s.tail.insert(first + i as u64, p);
            }
            s.next_index = Some(first + count as u64);
        }
        self.send(Cmd::Append { count, done })
    }

    /// Removes every record at or after `from`; `done` runs once that is durable.
    pub fn truncate(&self, from: u64, done: Done) -> Result<()> {
        self.send(Cmd::Truncate { from, done })
    }

    /// Drops records at or below `upto`; whole segments are deleted once all their records are.
    pub fn purge(&self, upto: u64, done: Done) -> Result<()> {
        self.send(Cmd::Purge { upto, done })
    }

    /// The next record starts a new segment (if the current one holds any): a later purge
    /// past everything written so far can then delete the files holding it (an erasure
    /// purges the log past the erased events). `done` runs once earlier writes are durable.
    pub fn seal_segment(&self, done: Done) -> Result<()> {
        self.send(Cmd::Seal { done })
    }

    /// `done` runs after every earlier queued write is durable.
    pub fn barrier(&self, done: Done) -> Result<()> {
        self.send(Cmd::Barrier { done })
    }

    fn send(&self, cmd: Cmd) -> Result<()> {
        self.tx
            .send(cmd)
            .map_err(|_| WalError::WriterStopped("writer thread exited".into()))
    }

    /// Reads the records in `range` that exist (clamped to [`Wal::range`]).
    pub fn read(&self, range: Range<u64>) -> Result<Vec<(u64, Bytes)>> {
        let s = self.shared.read();
        let live = {
            let next = s.next_index.unwrap_or(0);
            let first = s.purged_upto.map(|p| p + 1).unwrap_or(0);
            range.start.max(first)..range.end.min(next)
        };
        let mut out = Vec::with_capacity(live.end.saturating_sub(live.start).min(4096) as usize);
        let mut idx = live.start;
        while idx < live.end {
            if let Some(p) = s.tail.get(&idx) {
                out.push((idx, p.clone()));
                idx += 1;
                continue;
            }
            match s.segments.range(..=idx).next_back() {
                Some((_, seg)) if idx < seg.end_index() => {
                    let stop = live.end.min(seg.end_index());
                    for j in idx..stop {
                        out.push((j, read_record(seg, j, self.opts.max_record_bytes)?));
                    }
                    idx = stop;
                }
                _ => {
                    // Not present (a gap): continue at the next index that exists.
                    let next_seg = s.segments.range(idx + 1..).next().map(|(k, _)| *k);
                    let next_tail = s.tail.range(idx + 1..).next().map(|(k, _)| *k);
                    idx = match (next_seg, next_tail) {
                        (Some(a), Some(b)) => a.min(b),
                        (Some(a), None) | (None, Some(a)) => a,
                        (None, None) => live.end,
                    };
                }
            }
        }
        Ok(out)
    }
}

fn read_record(seg: &SegmentState, index: u64, max: u32) -> Result<Bytes> {
    let pos = (index - seg.first_index) as usize;
    let start = seg.offsets[pos];
    let end = seg.offsets.get(pos + 1).copied().unwrap_or(seg.size);
    let mut buf = vec![0u8; (end - start) as usize];
    read_exact_at(&seg.file, &mut buf, start, &seg.path)?;
    match decode_record(&buf, max) {
        Decoded::Record {
            index: got,
            payload,
        } if got == index => Ok(Bytes::from(buf).slice(payload)),
        other => Err(WalError::Corrupt {
            path: seg.path.clone(),
            offset: start,
            reason: format!("record {index} unreadable after recovery: {other:?}"),
        }),
    }
}

/// The segment being appended to.
struct Active {
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    count: usize,
    first: u64,
}

/// The single thread that performs all write IO.
struct Writer {
    /// Segment files dropped by a purge, removed off the append path.
    deleter: mpsc::Sender<PathBuf>,
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    opts: WalOptions,
    shared: Arc<RwLock<Shared>>,
    metrics: Arc<WalMetrics>,
    buf: Vec<u8>,
    /// The next record written starts a new segment ([`Wal::seal_segment`]).
    seal_next: bool,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let mut deferred: Option<Cmd> = None;
        loop {
            let cmd = match deferred.take() {
                Some(c) => c,
                None => match rx.recv() {
                    Ok(c) => c,
                    Err(_) => return,
                },
            };
            match cmd {
                Cmd::Append { count, done } => {
                    let mut total = count;
                    let mut dones = vec![done];
                    while let Ok(next) = rx.try_recv() {
                        match next {
                            Cmd::Append { count, done } => {
                                total += count;
                                dones.push(done);
                            }
                            other => {
                                deferred = Some(other);
                                break;
                            }
                        }
                    }
                    let res = self.guard(|w| w.write_batch(total));
                    self.metrics.record_group(dones.len() as u64, total as u64);
                    for d in dones {
                        d(res.as_ref().map(|_| ()).map_err(clone_err));
                    }
                }
                Cmd::Truncate { from, done } => done(self.guard(|w| w.truncate(from))),
                Cmd::Purge { upto, done } => done(self.guard(|w| w.purge(upto))),
                Cmd::Barrier { done } => done(self.guard(|_| Ok(()))),
                Cmd::Seal { done } => done(self.guard(|w| {
                    w.seal_next = true;
                    Ok(())
                })),
            }
        }
    }

    /// Runs `f` unless an earlier write failed; a failure stops all later writes
    /// (a failed fsync is never retried).
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        if let Some(msg) = self.shared.read().failed.clone() {
            return Err(WalError::WriterStopped(msg));
        }
        let res = f(self);
        if let Err(e) = &res {
            tracing::error!(error = %e, "log write failed; the log refuses further writes");
            self.shared.write().failed = Some(e.to_string());
        }
        res
    }

    fn write_batch(&mut self, count: usize) -> Result<()> {
        let records: Vec<(u64, Bytes)> = {
            let s = self.shared.read();
            let start = s.written_end.unwrap_or(0);
            s.tail
                .range(start..)
                .take(count)
                .map(|(i, p)| (*i, p.clone()))
                .collect()
        };
        let Some(&(first_index, _)) = records.first() else {
            return Ok(());
        };
        let mut new_offsets: Vec<(u64, Vec<u64>)> = Vec::new();
        let mut active = self.active_segment(first_index)?;
        let mut offs: Vec<u64> = Vec::with_capacity(records.len());
        let mut pos = active.size;
        let mut expected = active.first + active.count as u64;
        self.buf.clear();
        let t0 = Instant::now();
        for (index, payload) in &records {
            let full = (pos >= self.opts.segment_bytes || self.seal_next)
                && (active.count > 0 || !offs.is_empty());
            self.seal_next = false;
            if full || *index != expected {
                // Seal the current segment (its records durable first) and start the next one.
                self.flush_buf(&active.file, &active.path)?;
                new_offsets.push((active.first, std::mem::take(&mut offs)));
                active = self.create_segment(*index, expected)?;
                pos = active.size;
            }
            offs.push(pos);
            let before = self.buf.len();
            encode_record(&mut self.buf, *index, payload);
            pos += (self.buf.len() - before) as u64;
            expected = index + 1;
        }
        self.flush_buf(&active.file, &active.path)?;
        new_offsets.push((active.first, offs));
        self.metrics.record_fsync(t0.elapsed());

        let mut s = self.shared.write();
        for (first, offs) in new_offsets {
            if let Some(seg) = s.segments.get_mut(&first) {
                seg.offsets.extend(offs);
            }
        }
        if let Some(seg) = s.segments.get_mut(&active.first) {
            seg.size = pos;
        }
        s.written_end = Some(expected);
        evict_tail(&mut s, self.opts.cache_bytes);
        Ok(())
    }

    fn flush_buf(&mut self, file: &Arc<File>, path: &Path) -> Result<()> {
        self.fs
            .write_all(file, path, &self.buf)
            .map_err(|e| WalError::io(path, e))?;
        self.fs
            .sync_data(file, path)
            .map_err(|e| WalError::io(path, e))?;
        self.buf.clear();
        Ok(())
    }

    /// The segment the next record goes to (the newest one), creating one at `index` if the
    /// log has none.
    fn active_segment(&mut self, index: u64) -> Result<Active> {
        {
            let s = self.shared.read();
            if let Some(seg) = s.segments.values().next_back() {
                return Ok(Active {
                    path: seg.path.clone(),
                    file: seg.file.clone(),
                    size: seg.size,
                    count: seg.offsets.len(),
                    first: seg.first_index,
                });
            }
        }
        self.create_segment(index, index)
    }

    /// Creates segment `first`: header written and fsynced, then the directory fsynced.
    fn create_segment(&mut self, first: u64, prev_end: u64) -> Result<Active> {
        let path = segment_path(&self.dir, first);
        let file = self
            .fs
            .create_new(&path)
            .map_err(|e| WalError::io(&path, e))?;
        self.fs
            .write_all(&file, &path, &encode_header(first, prev_end))
            .map_err(|e| WalError::io(&path, e))?;
        self.fs
            .sync_all(&file, &path)
            .map_err(|e| WalError::io(&path, e))?;
        sync_dir_with(self.fs.as_ref(), &self.dir)?;
        let file = Arc::new(file);
        self.shared.write().segments.insert(
            first,
            SegmentState {
                first_index: first,
                path: path.clone(),
                file: file.clone(),
                offsets: Vec::new(),
                size: HEADER_LEN,
            },
        );
        self.metrics
            .segments_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Active {
            path,
            file,
            size: HEADER_LEN,
            count: 0,
            first,
        })
    }

    fn truncate(&mut self, from: u64) -> Result<()> {
        let mut s = self.shared.write();
        let doomed: Vec<u64> = s.segments.range(from..).map(|(k, _)| *k).collect();
        let mut dir_changed = false;
        for first in doomed {
            if let Some(seg) = s.segments.remove(&first) {
                self.fs
                    .remove_file(&seg.path)
                    .map_err(|e| WalError::io(&seg.path, e))?;
                dir_changed = true;
            }
        }
        if let Some((_, seg)) = s.segments.range_mut(..from).next_back() {
            if from < seg.end_index() {
                let pos = (from - seg.first_index) as usize;
                let cut = seg.offsets[pos];
                self.fs
                    .set_len(&seg.file, &seg.path, cut)
                    .map_err(|e| WalError::io(&seg.path, e))?;
                self.fs
                    .sync_all(&seg.file, &seg.path)
                    .map_err(|e| WalError::io(&seg.path, e))?;
                seg.offsets.truncate(pos);
                seg.size = cut;
            }
        }
        if dir_changed {
            sync_dir_with(self.fs.as_ref(), &self.dir)?;
        }
        for (_, p) in s.tail.split_off(&from) {
            s.tail_bytes -= p.len();
        }
        // The log now ends after its last remaining record (or at the purge point).
        let end = last_present(&s).map(|l| l + 1);
        let floor = s.purged_upto.map(|p| p + 1);
        let new_next = match (end, floor) {
            (Some(e), Some(f)) => Some(e.max(f)),
            (e, f) => e.or(f),
        };
        s.next_index = new_next;
        s.written_end = new_next;
        Ok(())
    }

    fn purge(&mut self, upto: u64) -> Result<()> {
        let mut s = self.shared.write();
        s.purged_upto = Some(s.purged_upto.map_or(upto, |p| p.max(upto)));
        let firsts: Vec<u64> = s.segments.keys().copied().collect();
        for (i, first) in firsts.iter().enumerate() {
            let end = match firsts.get(i + 1) {
                Some(next_first) => *next_first,
                None => s.segments[first].end_index(),
            };
            let is_last = i + 1 == firsts.len();
            // The newest segment is only dropped if the log is empty past the purge point.
            let all_purged =
                end <= upto + 1 && (!is_last || s.next_index.is_none_or(|n| n <= upto + 1));
            if !all_purged {
                break;
            }
            if let Some(seg) = s.segments.remove(first) {
                // The purge point is already durable (the owner stores it first) and the files
                // are out of the index, so unlinking can happen off the append path; files left
                // by a crash are removed by the next open.
                if self.deleter.send(seg.path.clone()).is_err() {
                    self.fs
                        .remove_file(&seg.path)
                        .map_err(|e| WalError::io(&seg.path, e))?;
                    sync_dir_with(self.fs.as_ref(), &self.dir)?;
                }
            }
        }
        let keep = s.tail.split_off(&(upto + 1));
        let dropped = std::mem::replace(&mut s.tail, keep);
        s.tail_bytes -= dropped.values().map(Bytes::len).sum::<usize>();
        let next = s.next_index.map_or(upto + 1, |n| n.max(upto + 1));
        s.next_index = Some(next);
        if s.written_end.is_none_or(|w| w < next) && s.tail.is_empty() {
            s.written_end = Some(next);
        }
        Ok(())
    }
}

/// Removes purged segment files in the background, fsyncing the directory after each batch.
fn delete_loop(fs: &dyn FileSystem, dir: &Path, rx: mpsc::Receiver<PathBuf>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        for p in &batch {
            if let Err(e) = fs.remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove purged log segment");
            }
        }
        if let Err(e) = sync_dir_with(fs, dir) {
            tracing::warn!(error = %e, "could not fsync the log directory after purging");
        }
    }
}

/// Index of the last record held (in the tail or on disk), if any.
fn last_present(s: &Shared) -> Option<u64> {
    let in_tail = s.tail.last_key_value().map(|(k, _)| *k);
    let on_disk = s
        .segments
        .values()
        .rev()
        .find(|g| !g.offsets.is_empty())
        .map(|g| g.end_index() - 1);
    in_tail.max(on_disk)
}

/// Drops durable records from the front of the in-memory tail beyond the cache budget.
fn evict_tail(s: &mut Shared, budget: usize) {
    let written_end = s.written_end.unwrap_or(0);
    while s.tail_bytes > budget {
        match s.tail.first_key_value() {
            Some((i, _)) if *i < written_end => {
                if let Some((_, p)) = s.tail.pop_first() {
                    s.tail_bytes -= p.len();
                }
            }
            _ => break,
        }
    }
}

fn clone_err(e: &WalError) -> WalError {
    WalError::WriterStopped(e.to_string())
}

impl Wal {
    /// Index of the last record in the log (not counting purged ones), if any.
    pub fn last_index(&self) -> Option<u64> {
        let s = self.shared.read();
        let floor = s.purged_upto;
        last_present(&s).filter(|l| floor.is_none_or(|p| *l > p))
    }

    /// The index the next append must carry at least (`None` for a never-written log).
    pub fn next_index(&self) -> Option<u64> {
        self.shared.read().next_index
    }

    /// Bytes held by the segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.read().segments.values().map(|s| s.size).sum()
    }
}
