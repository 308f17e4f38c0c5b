//! `unmogrowp restore`: turns a backup archive into the data directory of the first node of a
//! new cluster. Offline: the node must not run, and its data directory must be new.
//!
//! The restored node is a cluster of one whose log starts just after the backup:
//!
//! * the table is the archive's segments and manifest, installed as a table generation;
//! * the auth store is the archive's RocksDB checkpoint;
//! * the log is empty with its purge point at `P` = the backup's log position (the larger of
//!   the table's and the auth checkpoint's applied index: the auth store may be a little
//!   ahead, and the new log must not reuse indexes it has already applied);
//! * the state machine's checkpoint and a snapshot both say: applied up to `P`, membership
//!   {this node}. The snapshot is what later members catch up from.
//!
//! Start the node, then add the other (empty) nodes with `POST /api/admin/cluster/nodes` and
//! promote them (docs/operations.md, "Restore").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::storage::{RaftLogStorage, SnapshotMeta};
use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership, Vote};
use serde::Serialize;

use super::{read_archive, BackupError, BackupInfo};
use crate::cluster::Identity;
use crate::config::ServerConfig;
use crate::raft::snapshot::{stage, SnapshotDir, SnapshotStore, AUTH};
use crate::raft::state_machine::Checkpoint;
use crate::raft::{ClusterNode, LogStore};

/// What `unmogrowp restore` did.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub data_dir: String,
    pub node_id: u64,
    /// The restored node's log continues after this index.
    pub log_index: u64,
    pub term: u64,
    pub segments: usize,
    pub rows: u64,
    pub users: usize,
    pub apps: usize,
    pub backup: BackupInfo,
}

fn storage(e: impl std::fmt::Display) -> BackupError {
    BackupError::Storage(e.to_string())
}

/// Restores `archive` into `cfg.data_dir`, which must not exist or be empty. The node is
/// built in a sibling directory and renamed into place at the end, so a failure (a damaged
/// archive, a full disk) leaves no half-restored node behind.
pub async fn restore(cfg: &ServerConfig, archive: &Path) -> Result<RestoreReport, BackupError> {
    let data = &cfg.data_dir;
    if std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::Invalid(format!(
            "data directory {} is not empty; restore needs a new one",
            data.display()
        )));
    }
    let name = data
        .file_name()
        .ok_or_else(|| BackupError::Invalid(format!("{} is not a directory name", data.display())))?
        .to_string_lossy()
        .into_owned();
    let building = data.with_file_name(format!(".{name}.restoring-{}", uuid::Uuid::new_v4()));
    let mut staged_cfg = cfg.clone();
    staged_cfg.data_dir = building.clone();
    let res = build(&staged_cfg, archive).await;
    let report = match res {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&building);
            return Err(e);
        }
    };
    if data.exists() {
        std::fs::remove_dir(data)?;
    }
    std::fs::rename(&building, data)?;
    if let Some(parent) = data.parent().filter(|p| !p.as_os_str().is_empty()) {
        wal::sync_dir(parent)?;
    }
    Ok(RestoreReport {
        data_dir: data.display().to_string(),
        ..report
    })
}

/// Builds the restored node in `cfg.data_dir` (a new directory).
async fn build(cfg: &ServerConfig, archive: &Path) -> Result<RestoreReport, BackupError> {
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data)?;
    let _lock = crate::data_dir::lock(&cfg.data_dir).map_err(storage)?;
    let unpacked = data.join("restore.tmp");
    let file = std::fs::File::open(archive)
        .map_err(|e| BackupError::Invalid(format!("cannot open {}: {e}", archive.display())))?;
    let info = read_archive(std::io::BufReader::new(file), Some(&unpacked))?;
    let (identity, auth) = new_node(cfg)?;
    auth.install_checkpoint(&unpacked.join(AUTH))?;
    let (index, manifest) = finish(
        cfg,
        &identity,
        &auth,
        &unpacked,
        info.last_log_index,
        info.last_log_term,
    )
    .await?;
    Ok(RestoreReport {
        data_dir: data.display().to_string(),
        node_id: cfg.node_id,
        log_index: index,
        term: info.last_log_term,
        segments: manifest.segments.len(),
        rows: manifest.segments.iter().map(|s| s.rows).sum(),
        users: auth.users().len(),
        apps: auth.apps().len(),
        backup: info,
    })
}

/// The identity and the (empty) auth store of the node being built in `cfg.data_dir`.
fn new_node(cfg: &ServerConfig) -> Result<(Identity, auth::AuthStore), BackupError> {
    let identity = Identity::load_or_create(
        &cfg.data_dir,
        cfg.node_id,
        &[cfg.log_dir(), cfg.engine_dir(), cfg.auth_dir()],
    )
    .map_err(storage)?;
    let auth = auth::AuthStore::open(&cfg.auth_dir(), cfg.auth.lockout)?;
    Ok((identity, auth))
}

/// Makes `cfg.data_dir` a cluster of one whose table is the snapshot-shaped directory
/// `unpacked` (its manifest and segments; removed at the end) and whose auth store is `auth`:
/// the log purged up to the larger of `last_log_index` and the auth store's applied index, a
/// snapshot and the state machine's checkpoint at that point, membership {this node}.
async fn finish(
    cfg: &ServerConfig,
    identity: &Identity,
    auth: &auth::AuthStore,
    unpacked: &Path,
    last_log_index: u64,
    last_log_term: u64,
) -> Result<(u64, engine::Manifest), BackupError> {
    let index = last_log_index.max(auth.applied_index());
    let log_id = LogId::new(CommittedLeaderId::new(last_log_term, cfg.node_id), index);
    let (http_addr, raft_addr) = cfg.advertised();
    let me = ClusterNode {
        http_addr,
        raft_addr,
        uuid: identity.uuid.clone(),
    };
    let membership = StoredMembership::new(
        Some(log_id),
        Membership::new(
            vec![BTreeSet::from([cfg.node_id])],
            BTreeMap::from([(cfg.node_id, me)]),
        ),
    );

    let mut manifest = engine::Manifest::load_from(unpacked)?;
    manifest.flushed_index = Some(index);
    // The mirrors continue from where the backed-up cluster's sinks had acknowledged.
    let mirrors = serde_json::from_value::<Checkpoint>(manifest.checkpoint.clone())
        .map(|c| c.mirrors)
        .unwrap_or_default();
    manifest.checkpoint = serde_json::to_value(Checkpoint {
        last_applied: Some(log_id),
        membership: membership.clone(),
        mirrors,
    })
    .map_err(storage)?;
    manifest.store_in(unpacked)?;
    let engine = engine::Engine::open(cfg.engine_dir(), cfg.engine_config())?;
    let staged = engine.staging_dir()?;
    stage(
        &SnapshotDir {
            path: unpacked.to_path_buf(),
        },
        &staged,
    )
    .map_err(storage)?;
    let manifest = engine.install(&staged)?;

    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: membership,
        snapshot_id: format!("restored-{last_log_term}-{index}"),
    };
    let snapshots = SnapshotStore::open(cfg.snapshot_dir()).map_err(storage)?;
    snapshots
        .save(&engine.root(), &manifest, &meta, Some(auth))
        .map_err(storage)?;

    let mut log = LogStore::open(cfg.log_dir(), cfg.wal.clone())?;
    log.purge(log_id).await.map_err(storage)?;
    log.save_vote(&Vote::new(last_log_term, cfg.node_id))
        .await
        .map_err(storage)?;
    log.save_committed(Some(log_id)).await.map_err(storage)?;
    std::fs::remove_dir_all(unpacked)?;
    wal::sync_dir(&cfg.data_dir)?;
    Ok((index, manifest))
}

/// What [`from_table`] made.
#[derive(Debug, Serialize)]
pub struct TableReport {
    pub data_dir: String,
    pub node_id: u64,
    pub log_index: u64,
    pub segments: usize,
    pub rows: u64,
}

/// Makes `cfg.data_dir` (new or empty) the first node of a cluster whose table is the engine
/// directory `table` — an engine root (manifest and segments) whose rows were written there
/// directly, such as `unmogrowp-bench generate`'s dataset — with an empty auth store (the node
/// creates its admin when it first starts, like any new node). `table` is moved into the node.
pub async fn from_table(cfg: &ServerConfig, table: &Path) -> Result<TableReport, BackupError> {
    let data = &cfg.data_dir;
    if std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::Invalid(format!(
            "data directory {} is not empty",
            data.display()
        )));
    }
    std::fs::create_dir_all(data)?;
    let _lock = crate::data_dir::lock(data).map_err(storage)?;
    let (identity, auth) = new_node(cfg)?;
    let unpacked = data.join("restore.tmp");
    std::fs::rename(table, &unpacked)?;
    let last = engine::Manifest::load_from(&unpacked)?
        .flushed_index
        .unwrap_or(0);
    let (index, manifest) = finish(cfg, &identity, &auth, &unpacked, last, 1).await?;
    Ok(TableReport {
        data_dir: data.display().to_string(),
        node_id: cfg.node_id,
        log_index: index,
        segments: manifest.segments.len(),
        rows: manifest.segments.iter().map(|s| s.rows).sum(),
    })
}
