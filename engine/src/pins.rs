//! Segment files stay on disk while anyone reads them. Compaction retires the segments it
//! merged; a retired file is removed when the last [`SegmentPins`] holding it is dropped (at
//! once if no query or snapshot holds it). A crash before that leaves an orphan file that the
//! next start removes, since no manifest names it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::io::Io;
use crate::manifest::SegmentMeta;

#[derive(Debug)]
struct SegmentFile {
    io: Io,
    path: PathBuf,
    retired: AtomicBool,
}

impl Drop for SegmentFile {
    /// A retired segment goes with its summary (pinned alike: snapshots link both).
    fn drop(&mut self) {
        if self.retired.load(Ordering::Acquire) {
            let summary = self.path.with_extension(crate::summary::EXTENSION);
            for path in [&self.path, &summary] {
                if let Err(e) = self.io.remove_file(path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %path.display(), error = %e,
                            "could not remove a compacted segment's file (removed at next start)");
                    }
                }
            }
        }
    }
}

/// Keeps a set of segment files on disk while held. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SegmentPins(Vec<Arc<SegmentFile>>);

impl SegmentPins {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The live segment files of one generation, by segment id.
#[derive(Debug, Default)]
pub(crate) struct LiveFiles {
    io: Io,
    files: HashMap<u64, Arc<SegmentFile>>,
}

impl LiveFiles {
    pub(crate) fn new(io: &Io, root: &std::path::Path, segments: &[SegmentMeta]) -> Self {
        let mut live = Self {
            io: io.clone(),
            files: HashMap::new(),
        };
        for s in segments {
            live.add(root, s);
        }
        live
    }

    pub(crate) fn add(&mut self, root: &std::path::Path, s: &SegmentMeta) {
        self.files.insert(
            s.id,
            Arc::new(SegmentFile {
                io: self.io.clone(),
                path: root.join(&s.path),
                retired: AtomicBool::new(false),
            }),
        );
    }

    /// Pins the files of `segments` (all of which must be live).
    pub(crate) fn pin(&self, segments: &[SegmentMeta]) -> SegmentPins {
        SegmentPins(
            segments
                .iter()
                .filter_map(|s| self.files.get(&s.id).cloned())
                .collect(),
        )
    }

    /// Retires segment `id`: its file is removed once no pin holds it.
    pub(crate) fn retire(&mut self, id: u64) {
        if let Some(f) = self.files.remove(&id) {
            f.retired.store(true, Ordering::Release);
        }
    }
}
