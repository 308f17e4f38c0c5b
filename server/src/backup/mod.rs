//! Backups: a consistent copy of a live node, and restoring one into a fresh cluster.
//!
//! A backup is a tar archive of one Raft snapshot (see [`crate::raft::snapshot`]): the
//! Parquet segments, the manifest, the auth store's RocksDB checkpoint and the snapshot's
//! meta, preceded by `backup.json` ([`BackupInfo`]) listing every file with its size and
//! followed by `checksums.json` (the xxh3 of every file, computed while streaming).
//!
//! ```text
//! backup.json        format, source, log position, every file and its size
//! meta.json          the snapshot's Raft meta (last log id, membership)
//! manifest.json      the table's manifest (checksummed; every segment's xxh3)
//! segments/…         the Parquet segments
//! auth/…             RocksDB checkpoint of users, apps, keys, sessions and the audit log
//! checksums.json     xxh3 of every file above (last: its presence proves the end arrived)
//! ```
//!
//! * [`export`]: `POST /api/admin/backup` takes a read barrier (so the backup holds every
//!   event acknowledged before the request), has Raft build a snapshot covering it and
//!   streams a hard-linked copy of that snapshot.
//! * [`download`]: `unmogrowp backup` fetches it, verifies every file and publishes the
//!   archive atomically.
//! * [`restore`]: `unmogrowp restore` turns an archive into the data directory of the first
//!   node of a new cluster.

mod archive;
pub mod download;
pub mod export;
pub mod restore;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use archive::read_archive;

/// Version of the archive layout.
pub const FORMAT: u32 = 1;
/// The first member of every archive.
pub const INFO_FILE: &str = "backup.json";

/// What `backup.json` says about the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupInfo {
    pub format: u32,
    /// Version of the unmogrowp that wrote it.
    pub version: String,
    pub created_at: String,
    /// The node it was taken from.
    pub node_id: u64,
    pub snapshot_id: String,
    /// Every event committed at or below this log index is in the archive.
    pub last_log_index: u64,
    pub last_log_term: u64,
    /// The auth checkpoint's applied index (at or above `last_log_index`).
    pub auth_applied_index: u64,
    pub segments: usize,
    pub rows: u64,
    pub bytes: u64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the archive, `/`-separated.
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the archive is not a valid backup: {0}")]
    Invalid(String),
    #[error("the table in the archive: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("the auth store in the archive: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("{0}")]
    Wal(#[from] wal::WalError),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl BackupError {
    pub fn kind(&self) -> crate::kind::Kind {
        match self {
            BackupError::Cluster(c) => c.kind(),
            // A bad archive is met by `unmogrowp restore` (a CLI), not by an API client.
            _ => crate::kind::Kind::Internal,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Cluster(c) => c.code(),
            _ => "backup_failed",
        }
    }
}

/// Every regular file under `dir`, relative and `/`-separated, sorted, with its size.
pub(crate) fn list_files(dir: &Path) -> std::io::Result<Vec<FileEntry>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let ty = e.file_type()?;
            if ty.is_dir() {
                walk(root, &e.path(), out)?;
            } else if ty.is_file() {
                let rel = e.path();
                let rel = rel.strip_prefix(root).map_err(std::io::Error::other)?;
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(FileEntry {
                    path: parts.join("/"),
                    bytes: e.metadata()?.len(),
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
