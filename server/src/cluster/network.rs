//! openraft's peer network over HTTP: AppendEntries and Vote as bincode POSTs to the peer's
//! internal Raft API, and snapshots streamed file by file in chunks (see [`super::rpc`]).
//!
//! Every call has the deadline openraft gives it (`RPCOption::hard_ttl`); openraft retries
//! replication itself, backing off from peers reported unreachable. An append larger than
//! `cluster.max_rpc_bytes` is refused here with a hint, and openraft resends fewer entries.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use bytes::Bytes;
use openraft::error::{
    Fatal, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Snapshot, Vote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::client::{PeerClient, PeerError};
use crate::raft::{ClusterNode, NodeId, TypeConfig};

/// The body of `POST /raft/snapshot/install`, sent after every file of the snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InstallSnapshot {
    pub transfer: String,
    pub vote: Vote<NodeId>,
    pub meta: openraft::SnapshotMeta<NodeId, ClusterNode>,
    /// Relative path and size of every file sent.
    pub files: Vec<(String, u64)>,
}

/// The snapshots this node streams to peers. The leader does not take a new snapshot while one
/// is being sent, nor right after a peer installed one (see `node::housekeeping`): the new one
/// would purge the entries the follower needs next, and it would have to start over.
#[derive(Clone, Debug, Default)]
pub struct SnapshotSends {
    in_flight: Arc<AtomicUsize>,
    installed: Arc<AtomicU64>,
    last_installed: Arc<Mutex<Option<Instant>>>,
}

impl SnapshotSends {
    /// Sends under way (counted from the first chunk the peer accepted).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Snapshots sent and installed by the peer since this process started.
    pub fn installed(&self) -> u64 {
        self.installed.load(Ordering::Relaxed)
    }

    /// Whether a send is under way, or a peer installed one less than `catch_up` ago (and may
    /// still be fetching the entries after it).
    pub fn busy(&self, catch_up: Duration) -> bool {
        self.in_flight() > 0
            || self
                .last_installed
                .lock()
                .is_some_and(|t| t.elapsed() < catch_up)
    }

    /// Counts one send until the guard is dropped (finished, failed or cancelled).
    fn begin(&self) -> SendGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        SendGuard(self.in_flight.clone())
    }

    fn finished(&self) {
        self.installed.fetch_add(1, Ordering::Relaxed);
        *self.last_installed.lock() = Some(Instant::now());
    }
}

struct SendGuard(Arc<AtomicUsize>);

impl Drop for SendGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub struct HttpNetwork {
    client: PeerClient,
    chunk_bytes: usize,
    sends: SnapshotSends,
}

impl HttpNetwork {
    pub fn new(client: PeerClient, chunk_bytes: usize, sends: SnapshotSends) -> Self {
        Self {
            client,
            chunk_bytes,
            sends,
        }
    }
}

pub struct Peer {
    id: NodeId,
    node: ClusterNode,
    client: PeerClient,
    chunk_bytes: usize,
    sends: SnapshotSends,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> Self::Network {
        Peer {
            id: target,
            node: node.clone(),
            client: self.client.clone(),
            chunk_bytes: self.chunk_bytes,
            sends: self.sends.clone(),
        }
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Bytes, NetworkError> {
    bincode::serialize(v)
        .map(Bytes::from)
        .map_err(|e| NetworkError::new(&e))
}

pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, NetworkError> {
    bincode::deserialize(b).map_err(|e| NetworkError::new(&e))
}

fn rpc_err<E: std::error::Error>(e: PeerError) -> RPCError<NodeId, ClusterNode, E> {
    if e.not_delivered() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

impl Peer {
    async fn rpc<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, ClusterNode, RaftError<NodeId>>> {
        let body = encode(req).map_err(RPCError::Network)?;
        let answer = self
            .client
            .post(
                &self.node.raft_addr,
                path,
                Some((self.id, &self.node)),
                body,
                option.hard_ttl(),
            )
            .await
            .map_err(rpc_err)?;
        let res: Result<Resp, RaftError<NodeId>> = decode(&answer).map_err(RPCError::Network)?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.id, e)))
    }

    async fn send_file(
        &self,
        transfer: &str,
        root: &Path,
        rel: &str,
        deadline: Duration,
        sending: &mut Option<SendGuard>,
    ) -> Result<u64, PeerError> {
        use tokio::io::AsyncReadExt;
        let path = root.join(rel);
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| PeerError::Transport(path.display().to_string(), e.to_string()))?;
        let mut offset = 0u64;
        let mut buf = vec![0u8; self.chunk_bytes];
        loop {
            let mut n = 0;
            while n < buf.len() {
                let r = f
                    .read(&mut buf[n..])
                    .await
                    .map_err(|e| PeerError::Transport(path.display().to_string(), e.to_string()))?;
                if r == 0 {
                    break;
                }
                n += r;
            }
            // A zero-length first chunk still creates the (empty) file on the receiver.
            if n > 0 || offset == 0 {
                let q = format!(
                    "/raft/snapshot/chunk?transfer={}&file={}&offset={offset}",
                    urlencode(transfer),
                    urlencode(rel)
                );
                self.client
                    .post(
                        &self.node.raft_addr,
                        &q,
                        Some((self.id, &self.node)),
                        Bytes::copy_from_slice(&buf[..n]),
                        deadline,
                    )
                    .await?;
                sending.get_or_insert_with(|| self.sends.begin());
            }
            offset += n as u64;
            if n < buf.len() {
                return Ok(offset);
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every file under `root`, as paths relative to it, in a stable order.
pub(crate) fn list_files(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                if let Ok(rel) = e.path().strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, ClusterNode, RaftError<NodeId>>>
    {
        let n = rpc.entries.len() as u64;
        let size = bincode::serialized_size(&rpc).unwrap_or(0);
        if n > 1 && size > self.client.max_bytes() as u64 {
            let hint = (n * self.client.max_bytes() as u64 / size).clamp(1, n - 1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.rpc("/raft/append", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, ClusterNode, RaftError<NodeId>>> {
        self.rpc("/raft/vote", &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        // Counted from the first chunk the peer accepts: a peer that cannot be reached
        // does not hold back the leader's snapshots.
        let mut sending: Option<SendGuard> = None;
        let root = snapshot.snapshot.path.clone();
        let transfer = format!(
            "{}-{}",
            snapshot.meta.snapshot_id,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        // Each chunk gets a generous deadline of its own: a snapshot may be large.
        let per_call = option.hard_ttl().max(Duration::from_secs(30));
        let send = async {
            let names = list_files(&root)
                .map_err(|e| StreamingError::StorageError(crate::raft::snapshot::snap_err(e)))?;
            let mut files = Vec::with_capacity(names.len());
            for rel in names {
                let size = self
                    .send_file(&transfer, &root, &rel, per_call, &mut sending)
                    .await
                    .map_err(stream_err)?;
                files.push((rel, size));
            }
            tracing::info!(target_node = self.id, files = files.len(), transfer = %transfer, "snapshot sent; asking the peer to install it");
            let req = InstallSnapshot {
                transfer: transfer.clone(),
                vote,
                meta: snapshot.meta.clone(),
                files,
            };
            let body = encode(&req).map_err(StreamingError::Network)?;
            let answer = self
                .client
                .post(
                    &self.node.raft_addr,
                    "/raft/snapshot/install",
                    Some((self.id, &self.node)),
                    body,
                    per_call * 4,
                )
                .await
                .map_err(stream_err)?;
            let res: Result<SnapshotResponse<NodeId>, Fatal<NodeId>> =
                decode(&answer).map_err(StreamingError::Network)?;
            let res = res.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.id, e)))?;
            self.sends.finished();
            Ok(res)
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = send => r,
        }
    }
}

fn stream_err(e: PeerError) -> StreamingError<TypeConfig, Fatal<NodeId>> {
    if e.not_delivered() {
        StreamingError::Unreachable(Unreachable::new(&e))
    } else {
        StreamingError::Network(NetworkError::new(&e))
    }
}
