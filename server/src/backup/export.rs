//! Taking a backup on a live node: a read barrier, a Raft snapshot that covers it, and a
//! private hard-linked copy of that snapshot streamed out as tar. Ingest and queries go on
//! meanwhile; the copy costs O(files) and the files are immutable.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::archive::write_archive;
use super::{list_files, BackupError, BackupInfo, FORMAT};
use crate::cluster::Cluster;
use crate::cluster::ClusterError;
use crate::raft::snapshot::{SnapshotStore, AUTH};
use crate::raft::Raft;

/// How long a backup waits for a snapshot that covers its read index.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(600);
/// Size of the pieces the archive is streamed in.
const CHUNK: usize = 256 << 10;

/// The hard-linked copy a backup streams from; removed when dropped.
struct ExportDir(PathBuf);

impl Drop for ExportDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a backup export");
        }
    }
}

/// A backup ready to stream.
pub struct Export {
    pub info: BackupInfo,
    dir: ExportDir,
}

impl Export {
    /// The file name offered to clients.
    pub fn file_name(&self) -> String {
        format!(
            "unmogrowp-backup-node{}-{}.tar",
            self.info.node_id, self.info.last_log_index
        )
    }
}

/// What a backup is taken from: the node's Raft, its cluster handle (for the read barrier)
/// and its snapshots.
pub struct Source<'a> {
    pub raft: &'a Raft,
    pub cluster: &'a Cluster,
    pub snapshots: &'a SnapshotStore,
    pub node_id: u64,
}

/// Prepares a backup holding everything committed before the call.
pub async fn prepare(src: Source<'_>) -> Result<Export, BackupError> {
    let target = src.cluster.read_barrier().await?;
    covering_snapshot(src.raft, target).await?;
    let snapshots = src.snapshots.clone();
    let node_id = src.node_id;
    tokio::task::spawn_blocking(move || describe(&snapshots, node_id, target))
        .await
        .map_err(|e| BackupError::Storage(e.to_string()))?
}

/// Waits until this node has a snapshot covering log index `target`, asking Raft to build one.
async fn covering_snapshot(raft: &Raft, target: u64) -> Result<(), ClusterError> {
    let deadline = Instant::now() + SNAPSHOT_WAIT;
    let covered = move |m: &openraft::RaftMetrics<
        crate::raft::NodeId,
        crate::raft::ClusterNode,
    >| { m.snapshot.is_some_and(|s| s.index >= target) };
    loop {
        if covered(&raft.metrics().borrow()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::Unavailable(format!(
                "no snapshot covering log index {target} within {SNAPSHOT_WAIT:?}"
            )));
        }
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        // A snapshot already being built may not cover the target; then trigger again.
        let _ = raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(covered, "backup snapshot")
            .await;
    }
}

fn describe(snapshots: &SnapshotStore, node_id: u64, target: u64) -> Result<Export, BackupError> {
    let (meta, snap) = snapshots
        .export()
        .map_err(|e| BackupError::Storage(e.to_string()))?
        .ok_or_else(|| BackupError::Storage("this node has no snapshot".into()))?;
    let dir = ExportDir(snap.path);
    let last = meta
        .last_log_id
        .ok_or_else(|| BackupError::Storage("the snapshot is empty".into()))?;
    if last.index < target {
        return Err(BackupError::Storage(format!(
            "the current snapshot covers log index {}, the backup needs {target}",
            last.index
        )));
    }
    // Listed before the auth checkpoint is opened (opening may add RocksDB's own log file).
    let files = list_files(&dir.0)?;
    let manifest = engine::Manifest::load_from(&dir.0)?;
    let auth_applied_index = auth::AuthStore::open_read_only(&dir.0.join(AUTH))?.applied_index();
    let info = BackupInfo {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now().to_rfc3339(),
        node_id,
        snapshot_id: meta.snapshot_id.clone(),
        last_log_index: last.index,
        last_log_term: last.leader_id.term,
        auth_applied_index,
        segments: manifest.segments.len(),
        rows: manifest.segments.iter().map(|s| s.rows).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
    };
    Ok(Export { info, dir })
}

/// Feeds what the tar writer produces into the response body in [`CHUNK`]s.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The archive as a body stream. A failure part way ends the stream with an error, so the
/// client sees a truncated transfer (which `unmogrowp backup` detects), never a short archive
/// that looks whole.
pub fn stream(export: Export) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let t0 = Instant::now();
        match write_archive(w, &export.dir.0, &export.info) {
            Ok(()) => tracing::info!(
                snapshot = %export.info.snapshot_id,
                bytes = export.info.bytes,
                secs = t0.elapsed().as_secs_f64(),
                "backup streamed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "backup stream ended early");
                let _ = tx.blocking_send(Err(e));
            }
        }
        drop(export);
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}
