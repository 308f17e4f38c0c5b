//! The manifest: which Parquet segments make up the table, and how far the log is flushed.
//!
//! Stored as `manifest.json` with a checksum header, replaced atomically on every edit:
//! write `manifest.json.tmp`, fsync it, rename over `manifest.json`, fsync the directory.
//! A segment file exists on disk (fsynced, directory fsynced) before any manifest names it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crash::CrashPoints;
use crate::error::{EngineError, Result};
use crate::io::Io;

const MAGIC: &[u8; 8] = b"UMGPMANI";
const FORMAT_VERSION: u32 = 1;
pub(crate) const MANIFEST_FILE: &str = "manifest.json";

/// One immutable Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub id: u64,
    /// Path relative to the engine directory.
    pub path: String,
    pub app_id: String,
    /// UTC day of every row, `YYYY-MM-DD`.
    pub day: String,
    pub rows: u64,
    pub bytes: u64,
    /// xxh3-64 of the whole file.
    pub xxh3: u64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    /// Range of log indexes whose rows this segment holds.
    pub min_log_index: u64,
    pub max_log_index: u64,
    /// Range of `received_at` (absent in manifests written before it was recorded).
    #[serde(default)]
    pub min_received_ms: Option<i64>,
    #[serde(default)]
    pub max_received_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Number of edits made so far.
    pub edit: u64,
    pub next_segment_id: u64,
    /// Every log entry at or below this index is in the segments listed here.
    pub flushed_index: Option<u64>,
    /// Opaque state of the owner recorded with the flush (e.g. the Raft log id and membership).
    pub checkpoint: serde_json::Value,
    pub segments: Vec<SegmentMeta>,
    /// The user dictionary the segments' summaries number users by (absent before
    /// summaries existed, or before the first flush).
    #[serde(default)]
    pub dictionary: Option<crate::dictionary::DictionaryMeta>,
    /// Retention floors (issue 29): no row of the app older than this time (ms, a UTC day
    /// start) is kept — segments wholly before it were removed when it was set, flushes leave
    /// such rows out, apply skips them ([`crate::Engine::drop_before`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub retention: std::collections::BTreeMap<String, i64>,
    /// Erasures applied (issue 29), with their progress on this node ([`crate::Engine::erase`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erasures: Vec<crate::erasure::Erasure>,
}

impl Manifest {
    /// The app's retention floor, if one was set.
    pub fn floor(&self, app: &str) -> Option<i64> {
        self.retention.get(app).copied()
    }

    /// Segments an erasure has still to rewrite (compaction leaves them alone).
    pub(crate) fn erasing(&self) -> std::collections::HashSet<u64> {
        self.erasures
            .iter()
            .flat_map(|e| e.todo.iter().map(|p| p.segment))
            .collect()
    }
}

impl Manifest {
    /// Rows in all listed segments.
    pub fn rows(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum()
    }

    /// Rows in the listed segments that no erasure removes ([`Self::rows`] less the rows
    /// erasures have still to rewrite away).
    pub fn live_rows(&self) -> u64 {
        let erasing: u64 = self
            .erasures
            .iter()
            .flat_map(|e| e.todo.iter().map(|p| p.rows))
            .sum();
        self.rows().saturating_sub(erasing)
    }

    /// Writes this manifest durably as `dir/manifest.json` (used to build snapshot directories).
    pub fn store_in(&self, dir: &Path) -> Result<()> {
        store(&Io::default(), dir, self, &CrashPoints::default())
    }

    /// Checks that every segment listed is present in `dir` with its size and xxh3.
    pub fn verify_in(&self, dir: &Path) -> Result<()> {
        self.segments
            .iter()
            .try_for_each(|s| crate::segment::verify(dir, s))
    }

    /// Reads `dir/manifest.json`; a missing file is an empty manifest.
    pub fn load_from(dir: &Path) -> Result<Self> {
        Ok(load(dir)?.unwrap_or_default())
    }
}

pub(crate) fn load(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(&path, e)),
    };
    Manifest::decode(&bytes, &path).map(Some)
}

impl Manifest {
    /// Decodes the bytes of a `manifest.json` (read from `path`, named in errors), checking
    /// its header and checksum.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |reason: String| EngineError::Corrupt {
            what: "manifest",
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(corrupt("bad magic or short file".into()));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION {
            return Err(corrupt(format!("unsupported format version {version}")));
        }
        let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let body = &bytes[16..];
        if (xxhash_rust::xxh3::xxh3_64(body) as u32) != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        serde_json::from_slice(body).map_err(|e| corrupt(format!("does not decode: {e}")))
    }
}

/// Durably replaces the manifest (crash points: `manifest.after_tmp`, `manifest.after_rename`).
/// The engine calls it only under its state lock, with the manifest as it is then: one writer
/// of `manifest.json.tmp` at a time, and no edit made from a stale copy.
pub(crate) fn store(io: &Io, dir: &Path, m: &Manifest, crash: &CrashPoints) -> Result<()> {
    let body = serde_json::to_vec(m).map_err(|e| EngineError::Corrupt {
        what: "manifest",
        path: dir.join(MANIFEST_FILE),
        reason: format!("does not encode: {e}"),
    })?;
    let mut out = Vec::with_capacity(body.len() + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(xxhash_rust::xxh3::xxh3_64(&body) as u32).to_le_bytes());
    out.extend_from_slice(&body);
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    io.write_synced(&tmp, &out)?;
    crash.hit("manifest.after_tmp");
    let path = dir.join(MANIFEST_FILE);
    io.rename(&tmp, &path)?;
    crash.hit("manifest.after_rename");
    io.sync_dir(dir)
}
