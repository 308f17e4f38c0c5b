//! The Raft state machine: applies committed entries to the engine, and makes, serves and
//! installs snapshots.
//!
//! Durability: the engine's manifest records, with each flush, the last log id and membership
//! it covers (the checkpoint). After a crash the state machine reports that flushed position,
//! so openraft replays the log from just after it. The log is purged only below a snapshot, and
//! a snapshot is only taken after a flush, so nothing unflushed is ever purged.
//!
//! Snapshots live in `<data>/snapshots/current/` as hard links to the (immutable) segment
//! files plus the manifest and `meta.json`; the archive streamed to a peer is packed from there
//! on demand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::{ApplyBatch, Engine, Event};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncSeekExt;

use super::archive;
use super::{NodeId, Request, Response, TypeConfig};

/// What the engine manifest records about Raft with each flush.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

impl Checkpoint {
    fn from_manifest(m: &engine::Manifest) -> Result<Self, StorageError<NodeId>> {
        if m.checkpoint.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(m.checkpoint.clone())
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)).into())
    }
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// Where snapshots are kept.
#[derive(Debug, Clone)]
struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    fn current(&self) -> PathBuf {
        self.dir.join("current")
    }

    fn load_meta(&self) -> Result<Option<SnapshotMeta<NodeId, BasicNode>>, StorageError<NodeId>> {
        let p = self.current().join("meta.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(snap_err),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(snap_err(e)),
        }
    }

    /// Records a snapshot of `root` (an engine generation) as the current one: hard links to
    /// its segment files, a copy of its manifest, and the meta, swapped in by renames.
    fn save(
        &self,
        root: &Path,
        manifest: &engine::Manifest,
        meta: &SnapshotMeta<NodeId, BasicNode>,
    ) -> Result<(), StorageError<NodeId>> {
        let building = self.dir.join(format!("building-{}", meta.snapshot_id));
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir_all(&building).map_err(snap_err)?;
        for seg in &manifest.segments {
            let dst = building.join(&seg.path);
            if let Some(p) = dst.parent() {
                std::fs::create_dir_all(p).map_err(snap_err)?;
            }
            std::fs::hard_link(root.join(&seg.path), &dst).map_err(snap_err)?;
        }
        manifest.store_in(&building).map_err(snap_err)?;
        let meta_bytes = serde_json::to_vec(meta).map_err(snap_err)?;
        wal::write_atomic(&building.join("meta.json"), &meta_bytes).map_err(snap_err)?;
        let current = self.current();
        let old = self.dir.join("old");
        let _ = std::fs::remove_dir_all(&old);
        if current.exists() {
            std::fs::rename(&current, &old).map_err(snap_err)?;
        }
        std::fs::rename(&building, &current).map_err(snap_err)?;
        wal::sync_dir(&self.dir).map_err(snap_err)?;
        let _ = std::fs::remove_dir_all(&old);
        self.clear_archives(Some(&meta.snapshot_id));
        Ok(())
    }

    fn archive_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("archive-{id}.snap"))
    }

    fn clear_archives(&self, keep: Option<&str>) {
        let keep_name = keep.map(|k| format!("archive-{k}.snap"));
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with("archive-") && Some(&n) != keep_name.as_ref() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// Packs (once) and opens the archive of the current snapshot.
    fn open_archive(
        &self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
    ) -> Result<std::fs::File, StorageError<NodeId>> {
        let path = self.archive_path(&meta.snapshot_id);
        if !path.exists() {
            let current = self.current();
            let mut files = vec![("manifest.json".to_string(), current.join("manifest.json"))];
            collect_files(&current.join("segments"), &current, &mut files).map_err(snap_err)?;
            let tmp = path.with_extension("tmp");
            archive::pack(&tmp, &files).map_err(snap_err)?;
            std::fs::rename(&tmp, &path).map_err(snap_err)?;
        }
        std::fs::File::open(&path).map_err(snap_err)
    }
}

fn collect_files(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = rd.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, base, out)?;
        } else if let Ok(rel) = p.strip_prefix(base) {
            out.push((rel.to_string_lossy().into_owned(), p.clone()));
        }
    }
    Ok(())
}

/// The state machine over the engine. Clones share state.
#[derive(Clone)]
pub struct EventStateMachine {
    engine: Engine,
    applied: Arc<Mutex<Applied>>,
    snapshots: SnapshotStore,
}

impl EventStateMachine {
    /// Opens the state machine; its applied position is what the engine has flushed.
    pub fn open(
        engine: Engine,
        snapshot_dir: impl Into<PathBuf>,
    ) -> Result<Self, StorageError<NodeId>> {
        let dir = snapshot_dir.into();
        std::fs::create_dir_all(&dir).map_err(snap_err)?;
        let cp = Checkpoint::from_manifest(&engine.manifest())?;
        Ok(Self {
            engine,
            applied: Arc::new(Mutex::new(Applied {
                last_applied: cp.last_applied,
                membership: cp.membership,
            })),
            snapshots: SnapshotStore { dir },
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.applied.lock().last_applied
    }
}

impl RaftStateMachine<TypeConfig> for EventStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let a = self.applied.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let mut items: Vec<(u64, &[Event])> = Vec::new();
        // For each entry: how many batches it contributed (None for non-ingest entries).
        let mut shape: Vec<Option<usize>> = Vec::with_capacity(entries.len());
        let checkpoint = {
            let mut a = self.applied.lock();
            for e in &entries {
                match &e.payload {
                    EntryPayload::Blank => shape.push(None),
                    EntryPayload::Normal(Request::Ingest { batches }) => {
                        for b in batches {
                            items.push((e.log_id.index, b.as_slice()));
                        }
                        shape.push(Some(batches.len()));
                    }
                    EntryPayload::Membership(m) => {
                        a.membership = StoredMembership::new(Some(e.log_id), m.clone());
                        shape.push(None);
                    }
                }
            }
            a.last_applied = Some(last);
            serde_json::to_value(Checkpoint {
                last_applied: Some(last),
                membership: a.membership.clone(),
            })
            .map_err(sm_err)?
        };
        let outcomes = self
            .engine
            .apply(ApplyBatch {
                entries: items,
                last_index: last.index,
                checkpoint,
            })
            .map_err(|e| -> StorageError<NodeId> {
                StorageIOError::apply(last, AnyError::new(&e)).into()
            })?;
        let mut it = outcomes.into_iter();
        Ok(shape
            .into_iter()
            .map(|s| match s {
                None => Response::None,
                Some(n) => Response::Ingest {
                    outcomes: it.by_ref().take(n).collect(),
                },
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let path = self
            .snapshots
            .dir
            .join(format!("incoming-{}.snap", uuid::Uuid::new_v4()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(snap_err)?;
        // The file stays reachable through the handle; its name is not needed again.
        let _ = std::fs::remove_file(&path);
        Ok(Box::new(tokio::fs::File::from_std(f)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        let received = self
            .snapshots
            .dir
            .join(format!("received-{}.snap", meta.snapshot_id));
        {
            snapshot
                .seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(snap_err)?;
            let mut out = tokio::fs::File::create(&received).await.map_err(snap_err)?;
            tokio::io::copy(&mut *snapshot, &mut out)
                .await
                .map_err(snap_err)?;
            out.sync_all().await.map_err(snap_err)?;
        }
        let staged = self.engine.staging_dir().map_err(sm_err)?;
        archive::unpack(&received, &staged).map_err(snap_err)?;
        let _ = std::fs::remove_file(&received);
        let manifest = self.engine.install(&staged).map_err(sm_err)?;
        {
            let mut a = self.applied.lock();
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        }
        self.snapshots.save(&self.engine.root(), &manifest, meta)?;
        tracing::info!(snapshot = %meta.snapshot_id, segments = manifest.segments.len(), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some(meta) = self.snapshots.load_meta()? else {
            return Ok(None);
        };
        let store = self.snapshots.clone();
        let m = meta.clone();
        let file = tokio::task::spawn_blocking(move || store.open_archive(&m))
            .await
            .map_err(snap_err)??;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for EventStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let engine = self.engine.clone();
        let manifest = tokio::task::spawn_blocking(move || engine.flush())
            .await
            .map_err(snap_err)?
            .map_err(sm_err)?;
        let cp = Checkpoint::from_manifest(&manifest)?;
        let id = match cp.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, manifest.edit),
            None => format!("empty-{}", manifest.edit),
        };
        let meta = SnapshotMeta {
            last_log_id: cp.last_applied,
            last_membership: cp.membership,
            snapshot_id: id,
        };
        self.snapshots.save(&self.engine.root(), &manifest, &meta)?;
        let store = self.snapshots.clone();
        let m = meta.clone();
        let file = tokio::task::spawn_blocking(move || store.open_archive(&m))
            .await
            .map_err(snap_err)??;
        tracing::info!(snapshot = %meta.snapshot_id, segments = manifest.segments.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}
