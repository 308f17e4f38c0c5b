//! The Raft state machine: applies committed entries to the engine, and makes, serves and
//! installs snapshots.
//!
//! Durability: the engine's manifest records, with each flush, the last log id and membership
//! it covers (the checkpoint). After a crash the state machine reports that flushed position,
//! so openraft replays the log from just after it. The log is purged only below a snapshot, and
//! a snapshot is only taken after a flush, so nothing unflushed is ever purged.
//!
//! Snapshots are directories of hard links to the (immutable) segment files plus the manifest
//! (see [`super::snapshot`]).

use std::sync::Arc;

use super::mirror_book::{MirrorBook, MirrorProgress};
use super::snapshot::{snap_err, stage, SnapshotDir, SnapshotStore};
use super::{ClusterNode, NodeId, Request, Response, TypeConfig};
use engine::{ApplyBatch, Engine, Event, EventRef};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// What the engine manifest records about Raft with each flush.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, ClusterNode>,
    #[serde(default)]
    pub mirrors: MirrorBook,
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

struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ClusterNode>,
    mirrors: MirrorBook,
}

impl Applied {
    fn from_checkpoint(cp: Checkpoint) -> Self {
        Self {
            last_applied: cp.last_applied,
            membership: cp.membership,
            mirrors: cp.mirrors,
        }
    }

    /// The checkpoint as of `last`, to be recorded with the flush that covers it.
    fn checkpoint(&self, last: LogId<NodeId>) -> Result<serde_json::Value, StorageError<NodeId>> {
        serde_json::to_value(Checkpoint {
            last_applied: Some(last),
            membership: self.membership.clone(),
            mirrors: self.mirrors.clone(),
        })
        .map_err(sm_err)
    }
}

/// Read access to what the state machine has applied besides the table and the auth store:
/// the mirrors' book. Clones share state.
#[derive(Clone)]
pub struct Replicated(Arc<Mutex<Applied>>);

impl Replicated {
    pub fn mirrors(&self) -> MirrorBook {
        self.0.lock().mirrors.clone()
    }

    pub fn mirror(&self, name: &str) -> Option<MirrorProgress> {
        self.0.lock().mirrors.get(name).cloned()
    }
}

/// The state machine over the engine. Clones share state.
#[derive(Clone)]
pub struct EventStateMachine {
    engine: Engine,
    auth: auth::AuthStore,
    applied: Arc<Mutex<Applied>>,
    snapshots: SnapshotStore,
}

impl EventStateMachine {
    /// Opens the state machine; its applied position is what the engine has flushed.
    pub fn open(
        engine: Engine,
        auth: auth::AuthStore,
        snapshots: SnapshotStore,
    ) -> Result<Self, StorageError<NodeId>> {
        let cp = Checkpoint::from_manifest(&engine.manifest())?;
        Ok(Self {
            engine,
            auth,
            applied: Arc::new(Mutex::new(Applied::from_checkpoint(cp))),
            snapshots,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.applied.lock().last_applied
    }

    pub fn replicated(&self) -> Replicated {
        Replicated(self.applied.clone())
    }
}

/// Event batches waiting to be applied to the engine, and where their answers go.
#[derive(Default)]
struct Chunk<'a> {
    items: Vec<(u64, Vec<EventRef<'a>>)>,
    /// (answer position, number of batches) per ingest entry.
    slots: Vec<(usize, usize)>,
}

impl EventStateMachine {
    /// Applies the chunk's events, the entries up to `last` being applied (the checkpoint is
    /// recorded as of it), and fills in their answers. The state lock is not held while the
    /// engine applies: readers of the mirrors' book never wait for an ingest batch.
    fn apply_chunk(
        &self,
        last: LogId<NodeId>,
        chunk: &mut Chunk<'_>,
        answers: &mut [Response],
    ) -> Result<(), StorageError<NodeId>> {
        let items = std::mem::take(&mut chunk.items);
        let slots = std::mem::take(&mut chunk.slots);
        let checkpoint = {
            let mut a = self.applied.lock();
            a.last_applied = Some(last);
            a.checkpoint(last)?
        };
        // Even without events: the engine records the applied index and the checkpoint.
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
        for (pos, n) in slots {
            answers[pos] = Response::Ingest {
                outcomes: it.by_ref().take(n).collect(),
            };
        }
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for EventStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, ClusterNode>), StorageError<NodeId>>
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
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // Event entries go to the engine in chunks: a mirror entry needs the count of stored
        // events up to itself, so the events before it are applied first.
        let mut chunk = Chunk::default();
        // Answers by position; ingest answers are filled in when their chunk is applied.
        let mut answers: Vec<Response> = Vec::with_capacity(entries.len());
        // Only this task changes the state; entries are applied one after another.
        let mut last: Option<LogId<NodeId>> = None;
        for e in &entries {
            let answer = match &e.payload {
                EntryPayload::Blank => Response::None,
                EntryPayload::Normal(Request::Ingest { batches }) => {
                    for b in batches {
                        chunk
                            .items
                            .push((e.log_id.index, b.iter().map(Event::as_ref).collect()));
                    }
                    chunk.slots.push((answers.len(), batches.len()));
                    Response::None
                }
                EntryPayload::Normal(Request::Events { batches }) => {
                    for b in batches {
                        let events = b.events().map_err(|err| {
                            StorageError::from(StorageIOError::apply(e.log_id, AnyError::new(&err)))
                        })?;
                        chunk.items.push((e.log_id.index, events));
                    }
                    chunk.slots.push((answers.len(), batches.len()));
                    Response::None
                }
                EntryPayload::Normal(Request::Auth(req)) => {
                    let outcome = self.auth.apply(e.log_id.index, req).map_err(|err| {
                        StorageError::from(StorageIOError::apply(e.log_id, AnyError::new(&err)))
                    })?;
                    Response::Auth(outcome)
                }
                EntryPayload::Normal(Request::AuthTraced { request_id, req }) => {
                    let outcome = self
                        .auth
                        .apply_traced(e.log_id.index, req, request_id)
                        .map_err(|err| {
                            StorageError::from(StorageIOError::apply(e.log_id, AnyError::new(&err)))
                        })?;
                    Response::Auth(outcome)
                }
                EntryPayload::Normal(Request::Retention { app_id, before_ms }) => {
                    // Everything before it applied first: the floor holds from here on.
                    if let Some(before) = last {
                        self.apply_chunk(before, &mut chunk, &mut answers)?;
                    }
                    self.engine.drop_before(app_id, *before_ms).map_err(|err| {
                        StorageError::from(StorageIOError::apply(e.log_id, AnyError::new(&err)))
                    })?;
                    Response::None
                }
                EntryPayload::Normal(Request::Erase {
                    request_id,
                    app_id,
                    user_ids,
                    device_ids,
                    at_ms,
                }) => {
                    // Everything before it applied (and flushed by the engine) first.
                    if let Some(before) = last {
                        self.apply_chunk(before, &mut chunk, &mut answers)?;
                    }
                    let req = engine::EraseRequest {
                        id: request_id.clone(),
                        app_id: app_id.clone(),
                        user_ids: user_ids.clone(),
                        device_ids: device_ids.clone(),
                        at_ms: *at_ms,
                    };
                    self.engine.erase(req, e.log_id.index).map_err(|err| {
                        StorageError::from(StorageIOError::apply(e.log_id, AnyError::new(&err)))
                    })?;
                    Response::None
                }
                EntryPayload::Normal(Request::EraseComplete { request_id }) => {
                    self.engine.complete_erasure(request_id).map_err(|err| {
                        StorageError::from(StorageIOError::apply(e.log_id, AnyError::new(&err)))
                    })?;
                    Response::None
                }
                EntryPayload::Normal(Request::Mirror(op)) => {
                    if let Some(before) = last {
                        self.apply_chunk(before, &mut chunk, &mut answers)?;
                    }
                    let stored = self.engine.stored_rows();
                    let mut a = self.applied.lock();
                    Response::Mirror(a.mirrors.apply(e.log_id.index, stored, op))
                }
                EntryPayload::Membership(m) => {
                    self.applied.lock().membership =
                        StoredMembership::new(Some(e.log_id), m.clone());
                    Response::None
                }
            };
            last = Some(e.log_id);
            answers.push(answer);
        }
        if let Some(last) = last {
            self.apply_chunk(last, &mut chunk, &mut answers)?;
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotDir>, StorageError<NodeId>> {
        Ok(Box::new(self.snapshots.incoming()?))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<SnapshotDir>,
    ) -> Result<(), StorageError<NodeId>> {
        let engine = self.engine.clone();
        let auth = self.auth.clone();
        let snapshots = self.snapshots.clone();
        let meta_owned = meta.clone();
        let manifest = tokio::task::spawn_blocking(
            move || -> Result<engine::Manifest, StorageError<NodeId>> {
                let staged = engine.staging_dir().map_err(sm_err)?;
                stage(&snapshot, &staged)?;
                // Verifies every segment's size and checksum before anything is replaced.
                engine.install(&staged).map_err(sm_err)?;
                // Pinned: compaction may start merging the installed segments at once.
                let (manifest, _pins) = engine.flush_pinned().map_err(sm_err)?;
                // Users, apps, keys and the audit log as of the snapshot (replay of the log
                // after it continues from the checkpoint's own applied index).
                let auth_dir = snapshot.path.join(super::snapshot::AUTH);
                if auth_dir.exists() {
                    auth.install_checkpoint(&auth_dir).map_err(sm_err)?;
                }
                snapshots.save(&engine.root(), &manifest, &meta_owned, Some(&auth))?;
                if snapshots.is_incoming(&snapshot) {
                    let _ = std::fs::remove_dir_all(&snapshot.path);
                }
                Ok(manifest)
            },
        )
        .await
        .map_err(snap_err)??;
        {
            let mut a = self.applied.lock();
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
            a.mirrors = Checkpoint::from_manifest(&manifest)?.mirrors;
        }
        tracing::info!(snapshot = %meta.snapshot_id, segments = manifest.segments.len(), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.snapshots.current()?.map(|(meta, dir)| Snapshot {
            meta,
            snapshot: Box::new(dir),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for EventStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // Auth writes are synced as they are applied; this also covers RocksDB's own WAL.
        self.auth.sync().map_err(sm_err)?;
        let engine = self.engine.clone();
        // Pinned until the snapshot has linked them: compaction may retire segments meanwhile.
        let (manifest, _pins) = tokio::task::spawn_blocking(move || engine.flush_pinned())
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
        // After the flush: the auth store has applied at least as far as the flushed table.
        let dir = self
            .snapshots
            .save(&self.engine.root(), &manifest, &meta, Some(&self.auth))?;
        tracing::info!(snapshot = %meta.snapshot_id, segments = manifest.segments.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(dir),
        })
    }
}
