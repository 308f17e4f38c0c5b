//! Checking segment files against their manifest entries (size and xxh3) without making the
//! open wait for it: a segment is checked before anything reads it for the first time
//! (queries, mirrors, compaction, retention and erasure rewrites), and a background scrub
//! checks every segment right after the open and again every `engine.scrub_interval_hours`.
//!
//! A segment found damaged stays damaged for this process: every later read of it fails with
//! the same [`EngineError::Corrupt`] naming the file, and [`SegmentChecks::corrupt`] lists it
//! for `/ready` and `/metrics`. Nothing is skipped: a scan that needs the segment fails rather
//! than answering without its rows.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{EngineError, Result};
use crate::manifest::SegmentMeta;
use crate::segment;

/// What checking a segment found.
#[derive(Debug, Clone)]
enum Outcome {
    Intact,
    Damaged(String),
}

/// One segment's check; its lock is held while the file is read, so a segment two readers ask
/// for at once is read once.
type Slot = Arc<Mutex<Option<Outcome>>>;

/// The checks of one process, by the segment file's absolute path (a new generation's files
/// have other paths). Cheap to clone; clones share the record.
#[derive(Clone, Default)]
pub struct SegmentChecks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SegmentChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentChecks")
            .field("damaged", &self.inner.damaged.lock().len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    slots: Mutex<HashMap<PathBuf, Slot>>,
    damaged: Mutex<BTreeMap<PathBuf, String>>,
    passes: AtomicU64,
    bytes_read: AtomicU64,
}

/// What the checks found so far (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrubStats {
    /// Segments checked and found intact.
    pub intact: u64,
    /// Segments found damaged.
    pub damaged: u64,
    /// Segments not checked yet.
    pub unchecked: u64,
    /// Completed passes of the background scrub over every segment.
    pub passes: u64,
    /// Bytes read to check segments.
    pub bytes_read: u64,
}

impl SegmentChecks {
    /// Fails with the reason if `seg` (under generation `root`) is damaged, reading it first
    /// unless it was checked before.
    pub fn check(&self, root: &Path, seg: &SegmentMeta) -> Result<()> {
        self.run(root, seg, false)
    }

    /// Checks every one of `segments`, stopping at the first damaged one.
    pub fn check_all(&self, root: &Path, segments: &[SegmentMeta]) -> Result<()> {
        segments.iter().try_for_each(|s| self.check(root, s))
    }

    /// Whether `check` would answer `seg` without reading it.
    pub fn is_known(&self, root: &Path, seg: &SegmentMeta) -> bool {
        let slot = self.inner.slots.lock().get(&root.join(&seg.path)).cloned();
        slot.is_some_and(|s| s.lock().is_some())
    }

    /// Reads `seg` again even if it was checked (the periodic scrub).
    pub(crate) fn recheck(&self, root: &Path, seg: &SegmentMeta) -> Result<()> {
        self.run(root, seg, true)
    }

    /// Records `seg` as intact without reading it: this process has just written it.
    pub(crate) fn written(&self, root: &Path, seg: &SegmentMeta) {
        *self.slot(root.join(&seg.path)).lock() = Some(Outcome::Intact);
    }

    /// Forgets the checks of files under `root` (a generation replaced by a snapshot).
    pub(crate) fn forget_under(&self, root: &Path) {
        self.inner.slots.lock().retain(|p, _| !p.starts_with(root));
        self.inner
            .damaged
            .lock()
            .retain(|p, _| !p.starts_with(root));
    }

    /// Forgets the checks of files that left the table (compacted, rewritten, dropped):
    /// keeps only `segments` of `root`.
    pub(crate) fn keep_only(&self, root: &Path, segments: &[SegmentMeta]) {
        let live: std::collections::HashSet<PathBuf> =
            segments.iter().map(|s| root.join(&s.path)).collect();
        self.inner.slots.lock().retain(|p, _| live.contains(p));
        self.inner.damaged.lock().retain(|p, _| live.contains(p));
    }

    /// The damaged segments found so far: (file, reason).
    pub fn damaged(&self) -> Vec<(PathBuf, String)> {
        self.inner
            .damaged
            .lock()
            .iter()
            .map(|(p, r)| (p.clone(), r.clone()))
            .collect()
    }

    /// What is known of `segments` (the table under `root`), and the counters.
    pub fn stats(&self, root: &Path, segments: &[SegmentMeta]) -> ScrubStats {
        let slots = self.inner.slots.lock();
        let mut st = ScrubStats {
            passes: self.inner.passes.load(Ordering::Relaxed),
            bytes_read: self.inner.bytes_read.load(Ordering::Relaxed),
            ..ScrubStats::default()
        };
        for seg in segments {
            // `try_lock`: a slot being read right now is not known yet.
            let known = slots
                .get(&root.join(&seg.path))
                .and_then(|s| s.try_lock().map(|o| o.clone()))
                .flatten();
            match known {
                Some(Outcome::Intact) => st.intact += 1,
                Some(Outcome::Damaged(_)) => st.damaged += 1,
                None => st.unchecked += 1,
            }
        }
        st
    }

    pub(crate) fn pass_done(&self) {
        self.inner.passes.fetch_add(1, Ordering::Relaxed);
    }

    fn slot(&self, path: PathBuf) -> Slot {
        self.inner.slots.lock().entry(path).or_default().clone()
    }

    fn run(&self, root: &Path, seg: &SegmentMeta, again: bool) -> Result<()> {
        let path = root.join(&seg.path);
        let slot = self.slot(path.clone());
        let mut outcome = slot.lock();
        if again || outcome.is_none() {
            let found = segment::verify(root, seg);
            self.inner
                .bytes_read
                .fetch_add(seg.bytes, Ordering::Relaxed);
            *outcome = Some(match found {
                Ok(()) => {
                    self.inner.damaged.lock().remove(&path);
                    Outcome::Intact
                }
                Err(e) => {
                    let reason = match e {
                        EngineError::Corrupt { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    tracing::error!(segment = %path.display(), %reason,
                        "segment damaged: reads of it fail until it is restored from a replica");
                    self.inner
                        .damaged
                        .lock()
                        .insert(path.clone(), reason.clone());
                    Outcome::Damaged(reason)
                }
            });
        }
        match outcome.as_ref() {
            Some(Outcome::Damaged(reason)) => Err(EngineError::Corrupt {
                what: "segment",
                path,
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn meta(path: &str, bytes: u64, xxh3: u64) -> SegmentMeta {
        SegmentMeta {
            id: 1,
            path: path.into(),
            app_id: "a".into(),
            day: "2026-01-01".into(),
            rows: 1,
            bytes,
            xxh3,
            min_ts_ms: 0,
            max_ts_ms: 0,
            min_log_index: 1,
            max_log_index: 1,
            min_received_ms: None,
            max_received_ms: None,
        }
    }

    #[test]
    fn a_damaged_file_is_reported_once_and_refused_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"segment bytes".to_vec();
        std::fs::write(dir.path().join("s.parquet"), &body).unwrap();
        let good = meta(
            "s.parquet",
            body.len() as u64,
            xxhash_rust::xxh3::xxh3_64(&body),
        );
        let checks = SegmentChecks::default();
        checks.check(dir.path(), &good).unwrap();
        assert!(checks.is_known(dir.path(), &good));
        let one = std::slice::from_ref(&good);
        assert_eq!(checks.stats(dir.path(), one).intact, 1);

        // Damaged after it was checked: found by the next scrub pass, not before.
        std::fs::write(dir.path().join("s.parquet"), b"segment bytez").unwrap();
        checks.check(dir.path(), &good).unwrap();
        let err = checks.recheck(dir.path(), &good).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        // Every later read is refused with the same reason, without reading the file again.
        let read = checks.stats(dir.path(), one).bytes_read;
        let again = checks.check(dir.path(), &good).unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        assert_eq!(checks.stats(dir.path(), one).bytes_read, read);
        assert_eq!(checks.damaged().len(), 1);
        let st = checks.stats(dir.path(), one);
        assert_eq!((st.intact, st.damaged, st.unchecked), (0, 1, 0));

        // A missing file is damage too.
        let gone = meta("gone.parquet", 5, 0);
        let never = meta("never.parquet", 5, 0);
        assert_eq!(checks.stats(dir.path(), &[never.clone()]).unchecked, 1);
        assert!(checks.check(dir.path(), &gone).is_err());
        assert_eq!(checks.damaged().len(), 2);

        // A file that left the table leaves the report.
        checks.keep_only(dir.path(), &[good.clone()]);
        assert_eq!(checks.damaged().len(), 1);
    }
}
