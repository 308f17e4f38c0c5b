//! Snapshots as directories: the manifest and the segment files (hard links to the immutable
//! files of the table generation they were taken from), plus `meta.json`. Taking one costs
//! O(files), never a copy of the data.
//!
//! ```text
//! snapshots/CURRENT            id of the current snapshot (atomic replace)
//! snapshots/snap-<id>/         meta.json, manifest.json, segments/…, auth/ (RocksDB checkpoint)
//! snapshots/incoming-<uuid>/   a snapshot being received
//! snapshots/export-<uuid>/     a snapshot being streamed out as a backup (hard links)
//! ```
//! The previous snapshot directory is kept until the next one replaces it, so a transfer that
//! started from it can finish.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use openraft::storage::SnapshotMeta;
use openraft::{AnyError, StorageError, StorageIOError};

use super::{ClusterNode, NodeId};

/// openraft's snapshot data: a directory holding one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDir {
    pub path: PathBuf,
}

pub(crate) fn snap_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

const CURRENT: &str = "CURRENT";
const META: &str = "meta.json";
/// The auth store's RocksDB checkpoint inside a snapshot.
pub(crate) const AUTH: &str = "auth";

/// Cheap to clone; clones share one store.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    /// Held while old snapshot directories are dropped and while one is exported, so an
    /// export never links a directory that is being removed.
    prune: Arc<Mutex<()>>,
}

impl SnapshotStore {
    /// Opens the store, removing directories left by interrupted builds or transfers.
    pub fn open(dir: PathBuf) -> Result<Self, StorageError<NodeId>> {
        std::fs::create_dir_all(&dir).map_err(snap_err)?;
        for e in std::fs::read_dir(&dir).map_err(snap_err)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if ["building-", "incoming-", "export-"]
                .iter()
                .any(|p| n.starts_with(p))
            {
                tracing::info!(dir = %e.path().display(), "removing an interrupted snapshot transfer");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(Self {
            dir,
            prune: Arc::new(Mutex::new(())),
        })
    }

    /// A private copy (hard links) of the current snapshot, for streaming out as a backup;
    /// the caller removes it when done.
    pub fn export(
        &self,
    ) -> Result<Option<(SnapshotMeta<NodeId, ClusterNode>, SnapshotDir)>, StorageError<NodeId>>
    {
        let _held = self.prune.lock();
        let Some((meta, dir)) = self.current()? else {
            return Ok(None);
        };
        let to = self.dir.join(format!("export-{}", uuid::Uuid::new_v4()));
        link_tree(&dir.path, &to)?;
        Ok(Some((meta, SnapshotDir { path: to })))
    }

    fn snap_dir(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snap-{id}"))
    }

    /// The current snapshot's meta and directory, if there is one.
    pub(crate) fn current(
        &self,
    ) -> Result<Option<(SnapshotMeta<NodeId, ClusterNode>, SnapshotDir)>, StorageError<NodeId>>
    {
        let id = match std::fs::read_to_string(self.dir.join(CURRENT)) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(snap_err(e)),
        };
        let path = self.snap_dir(&id);
        let bytes = std::fs::read(path.join(META)).map_err(snap_err)?;
        let meta = serde_json::from_slice(&bytes).map_err(snap_err)?;
        Ok(Some((meta, SnapshotDir { path })))
    }

    /// A fresh directory to receive a snapshot into.
    pub(crate) fn incoming(&self) -> Result<SnapshotDir, StorageError<NodeId>> {
        let path = self.dir.join(format!("incoming-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).map_err(snap_err)?;
        Ok(SnapshotDir { path })
    }

    pub(crate) fn is_incoming(&self, d: &SnapshotDir) -> bool {
        d.path.parent() == Some(self.dir.as_path())
            && d.path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("incoming-"))
    }

    /// Records a snapshot of table generation `root` (whose manifest is `manifest`) as the
    /// current one and returns its directory.
    pub(crate) fn save(
        &self,
        root: &Path,
        manifest: &engine::Manifest,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        auth: Option<&auth::AuthStore>,
    ) -> Result<SnapshotDir, StorageError<NodeId>> {
        let building = self.dir.join(format!("building-{}", meta.snapshot_id));
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir_all(&building).map_err(snap_err)?;
        copy_table(root, manifest, &building)?;
        if let Some(a) = auth {
            a.checkpoint_to(&building.join(AUTH)).map_err(snap_err)?;
        }
        manifest.store_in(&building).map_err(snap_err)?;
        let meta_bytes = serde_json::to_vec(meta).map_err(snap_err)?;
        wal::write_atomic(&building.join(META), &meta_bytes).map_err(snap_err)?;
        let target = self.snap_dir(&meta.snapshot_id);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&building, &target).map_err(snap_err)?;
        wal::sync_dir(&self.dir).map_err(snap_err)?;
        let previous = std::fs::read_to_string(self.dir.join(CURRENT)).ok();
        wal::write_atomic(&self.dir.join(CURRENT), meta.snapshot_id.as_bytes())
            .map_err(snap_err)?;
        // Keep the previous snapshot (a transfer may be reading it); drop older ones.
        let _held = self.prune.lock();
        let keep = [
            Some(format!("snap-{}", meta.snapshot_id)),
            previous.map(|p| format!("snap-{}", p.trim())),
        ];
        for e in std::fs::read_dir(&self.dir).map_err(snap_err)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("snap-") && !keep.iter().flatten().any(|k| *k == n) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(SnapshotDir { path: target })
    }
}

/// Hard-links `src` to `dst` (creating parents), copying if the link is not possible.
pub(crate) fn link_or_copy(src: &Path, dst: &Path) -> Result<(), StorageError<NodeId>> {
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p).map_err(snap_err)?;
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).map_err(snap_err)?;
        std::fs::File::open(dst)
            .and_then(|f| f.sync_all())
            .map_err(snap_err)?;
    }
    Ok(())
}

/// Recreates in `to` the files of `manifest`'s table found in `from` (segments and their
/// summaries linked; the named prefix of the user dictionary, which is appended to, copied).
fn copy_table(
    from: &Path,
    manifest: &engine::Manifest,
    to: &Path,
) -> Result<(), StorageError<NodeId>> {
    for f in engine::table_files(from, manifest) {
        let (src, dst) = (from.join(&f.path), to.join(&f.path));
        match f.prefix {
            None => link_or_copy(&src, &dst)?,
            Some(n) => copy_prefix(&src, &dst, n)?,
        }
    }
    Ok(())
}

/// Copies the first `n` bytes of `src` to a new file `dst` and fsyncs it.
fn copy_prefix(src: &Path, dst: &Path, n: u64) -> Result<(), StorageError<NodeId>> {
    use std::io::Read;
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p).map_err(snap_err)?;
    }
    let mut out = std::fs::File::create(dst).map_err(snap_err)?;
    let copied = std::io::copy(
        &mut std::fs::File::open(src).map_err(snap_err)?.take(n),
        &mut out,
    )
    .map_err(snap_err)?;
    if copied != n {
        return Err(snap_err(std::io::Error::other(format!(
            "{} holds {copied} bytes, the manifest names {n}",
            src.display()
        ))));
    }
    out.sync_all().map_err(snap_err)
}

/// Recreates the directory tree `src` in `dst` with hard links (copies where linking fails).
pub(crate) fn link_tree(src: &Path, dst: &Path) -> Result<(), StorageError<NodeId>> {
    std::fs::create_dir_all(dst).map_err(snap_err)?;
    for e in std::fs::read_dir(src).map_err(snap_err)? {
        let e = e.map_err(snap_err)?;
        let to = dst.join(e.file_name());
        if e.file_type().map_err(snap_err)?.is_dir() {
            link_tree(&e.path(), &to)?;
        } else {
            link_or_copy(&e.path(), &to)?;
        }
    }
    Ok(())
}

/// Recreates the table files of snapshot `from` (manifest + segments) in `to`.
pub(crate) fn stage(
    from: &SnapshotDir,
    to: &Path,
) -> Result<engine::Manifest, StorageError<NodeId>> {
    let manifest = engine::Manifest::load_from(&from.path).map_err(snap_err)?;
    copy_table(&from.path, &manifest, to)?;
    manifest.store_in(to).map_err(snap_err)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{LogId, StoredMembership};

    fn meta(id: &str, index: u64) -> SnapshotMeta<NodeId, ClusterNode> {
        SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: id.to_string(),
        }
    }

    #[test]
    fn save_keeps_current_and_previous_and_survives_reopen() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("gen");
        std::fs::create_dir_all(root.join("segments/app=a")).unwrap();
        std::fs::write(root.join("segments/app=a/1.parquet"), b"data").unwrap();
        let manifest = engine::Manifest {
            segments: vec![engine::SegmentMeta {
                id: 1,
                path: "segments/app=a/1.parquet".into(),
                app_id: "a".into(),
                day: "2026-01-01".into(),
                rows: 1,
                bytes: 4,
                xxh3: 0,
                min_ts_ms: 0,
                max_ts_ms: 0,
                min_log_index: 1,
                max_log_index: 1,
                min_received_ms: None,
                max_received_ms: None,
            }],
            ..Default::default()
        };
        let store = SnapshotStore::open(d.path().join("snaps")).unwrap();
        assert!(store.current().unwrap().is_none());
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            store
                .save(&root, &manifest, &meta(id, i as u64 + 1), None)
                .unwrap();
        }
        let (m, dir) = store.current().unwrap().unwrap();
        assert_eq!(m.snapshot_id, "c");
        assert_eq!(
            std::fs::read(dir.path.join("segments/app=a/1.parquet")).unwrap(),
            b"data"
        );
        // "b" is kept for a transfer that may still read it, "a" is gone.
        assert!(d.path().join("snaps/snap-b").exists());
        assert!(!d.path().join("snaps/snap-a").exists());
        // Leftovers of an interrupted receive are removed on open.
        let inc = store.incoming().unwrap();
        assert!(store.is_incoming(&inc));
        let store = SnapshotStore::open(d.path().join("snaps")).unwrap();
        assert!(!inc.path.exists());
        assert_eq!(store.current().unwrap().unwrap().0.snapshot_id, "c");
        // Staging recreates the table files.
        let staged = d.path().join("staged");
        std::fs::create_dir_all(&staged).unwrap();
        let got = stage(&dir, &staged).unwrap();
        assert_eq!(got.segments.len(), 1);
        assert!(staged.join("segments/app=a/1.parquet").exists());
        assert!(staged.join("manifest.json").exists());
    }
}
