//! The internal Raft API peers call (`/raft/…`): bincode bodies, the cluster secret as a
//! bearer token, and the identity of both ends checked on every call. Served on
//! `cluster.raft_addr` when set, else on the HTTP listener.
//!
//! ```text
//! GET  /raft/identity          who this node is (id, uuid, addresses)        JSON
//! GET  /raft/status            role, term, leader, log and applied index     JSON
//! POST /raft/init              make the configured members a cluster         JSON
//! POST /raft/append            AppendEntries                                  bincode
//! POST /raft/vote              RequestVote                                    bincode
//! POST /raft/snapshot/chunk    one piece of one snapshot file (raw bytes)
//! POST /raft/snapshot/install  install the snapshot whose files were sent     bincode
//! POST /raft/write             commit a forwarded write (leader only)         bincode
//! POST /raft/read-index        the commit index a read must see (leader only) bincode
//! POST /raft/membership        a membership change (leader only)              bincode
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::Snapshot;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cluster::client::{H_FROM, H_FROM_UUID, H_TIME, H_TO, H_TO_UUID};
use crate::cluster::network::{decode, InstallSnapshot};
use crate::cluster::{ClusterError, MembershipChange};
use crate::node::AppState;
use crate::raft::snapshot::SnapshotDir;
use crate::raft::{ClusterNode, NodeId, Request as LogRequest};

pub fn router(state: AppState) -> Router {
    let limit = state.cfg.cluster.max_rpc_bytes;
    Router::new()
        .route("/raft/identity", get(identity))
        .route("/raft/status", get(status))
        .route("/raft/init", post(init))
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot/chunk", post(snapshot_chunk))
        .route("/raft/snapshot/install", post(snapshot_install))
        .route("/raft/write", post(write))
        .route("/raft/read-index", post(read_index))
        .route("/raft/membership", post(membership))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::map_response(stamp_time))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Every answer carries this node's wall clock, so callers measure the offset between nodes'
/// clocks (`unmogrowp_clock_peer_offset_seconds`), independent of NTP.
async fn stamp_time(mut resp: Response) -> Response {
    if let Ok(v) = crate::clock::now_ms().to_string().parse() {
        resp.headers_mut().insert(H_TIME, v);
    }
    resp
}

fn refuse(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The cluster secret, then the identities: the request must be meant for this node's data
/// directory, and a sender this node knows must present the identity the membership records.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.cluster.client().faults().isolated() {
        // A cut network: the peer's connection attempt gets nothing useful.
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "isolated by fault injection",
        );
    }
    let secret = state.cfg.cluster.secret.as_bytes();
    let presented = header(req.headers(), "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if secret.is_empty() {
        return refuse(
            StatusCode::FORBIDDEN,
            "clustering is not configured on this node (cluster.secret is empty)",
        );
    }
    if !ct_eq(presented.as_bytes(), secret) {
        state.metrics.raft_rpc_refused();
        return refuse(StatusCode::UNAUTHORIZED, "wrong or missing cluster secret");
    }
    let me = &state.identity;
    let h = req.headers();
    if let Some(to) = header(h, H_TO) {
        let to_uuid = header(h, H_TO_UUID).unwrap_or("");
        if to != me.node_id.to_string() || to_uuid != me.uuid {
            state.metrics.raft_rpc_refused();
            tracing::warn!(
                expected_node = to,
                expected_uuid = to_uuid,
                my_uuid = %me.uuid,
                "refused a Raft RPC meant for another identity: this node's data directory is not the one the cluster knows (wiped or replaced?); remove and re-add this node"
            );
            return refuse(
                StatusCode::CONFLICT,
                format!(
                    "identity mismatch: the request is for node {to} with identity {to_uuid}, this is node {} with identity {}; remove and re-add the node",
                    me.node_id, me.uuid
                ),
            );
        }
    }
    if let (Some(from), Some(from_uuid)) = (header(h, H_FROM), header(h, H_FROM_UUID)) {
        if let Ok(from) = from.parse::<NodeId>() {
            let known = state
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&from)
                .map(|n| n.uuid.clone());
            if let Some(uuid) = known {
                if uuid != from_uuid {
                    state.metrics.raft_rpc_refused();
                    return refuse(
                        StatusCode::CONFLICT,
                        format!("identity mismatch: node {from} presents identity {from_uuid}, the membership records {uuid}"),
                    );
                }
            }
        }
    }
    next.run(req).await
}

fn bin<T: Serialize>(v: &T) -> Response {
    match bincode::serialize(v) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn undecodable(e: impl std::fmt::Display) -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        format!("cannot decode the body: {e}"),
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IdentityView {
    pub node_id: NodeId,
    pub uuid: String,
    pub http_addr: String,
    pub raft_addr: String,
    /// `(id, uuid)` of every node in the membership this node knows (empty: in no cluster).
    #[serde(default)]
    pub members: Vec<(NodeId, String)>,
}

async fn identity(State(state): State<AppState>) -> Json<IdentityView> {
    let (http_addr, raft_addr) = state.cfg.advertised();
    let members = state
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, n)| (*id, n.uuid.clone()))
        .collect();
    Json(IdentityView {
        node_id: state.identity.node_id,
        uuid: state.identity.uuid.clone(),
        http_addr,
        raft_addr,
        members,
    })
}

/// This node's own view: what `/api/admin/cluster` gathers from every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    pub id: NodeId,
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    /// Entries up to this index have been removed from this node's log (0: none). A node
    /// that needs an older entry can only catch up from a snapshot.
    #[serde(default)]
    pub purged_index: u64,
    /// Every node of the membership this node knows (empty: not part of a cluster yet).
    pub members: Vec<NodeId>,
}

pub fn status_of(state: &AppState) -> StatusView {
    let m = state.raft.metrics().borrow().clone();
    StatusView {
        id: m.id,
        state: format!("{:?}", m.state).to_lowercase(),
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index.unwrap_or(0),
        applied_index: m.last_applied.map_or(0, |l| l.index),
        snapshot_index: m.snapshot.map_or(0, |l| l.index),
        purged_index: m.purged.map_or(0, |l| l.index),
        members: m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect(),
    }
}

async fn status(State(state): State<AppState>) -> Json<StatusView> {
    Json(status_of(&state))
}

/// Asks every configured member who it is, then makes them the cluster's first voters.
async fn init(State(state): State<AppState>) -> Response {
    let members = &state.cfg.cluster.members;
    if members.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "cluster.members is empty: a single-node cluster initialises itself",
        );
    }
    match state.raft.is_initialized().await {
        Ok(true) => {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "already_initialized", "message": "this node is already part of an initialised cluster"})),
            )
                .into_response()
        }
        Ok(false) => {}
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
    let mut nodes = BTreeMap::new();
    for m in members {
        let view: IdentityView = match state
            .cluster
            .client()
            .get(&m.raft_addr, "/raft/identity", Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "node {} at {} did not answer: {e}; start every member first",
                        m.id, m.raft_addr
                    ),
                )
            }
        };
        if view.node_id != m.id {
            return refuse(
                StatusCode::CONFLICT,
                format!(
                    "{} is node {}, not node {} as configured",
                    m.raft_addr, view.node_id, m.id
                ),
            );
        }
        nodes.insert(
            m.id,
            ClusterNode {
                http_addr: m.http_addr.clone(),
                raft_addr: m.raft_addr.clone(),
                uuid: view.uuid,
            },
        );
    }
    match state.raft.initialize(nodes.clone()).await {
        Ok(()) => {
            tracing::info!(members = ?nodes.keys().collect::<Vec<_>>(), "cluster initialised");
            (
                StatusCode::OK,
                Json(json!({"initialized": true, "members": nodes.keys().collect::<Vec<_>>()})),
            )
                .into_response()
        }
        Err(e) => refuse(StatusCode::CONFLICT, e.to_string()),
    }
}

async fn append(State(state): State<AppState>, body: Bytes) -> Response {
    let rpc = match decode(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    bin(&state.raft.append_entries(rpc).await)
}

async fn vote(State(state): State<AppState>, body: Bytes) -> Response {
    let rpc = match decode(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    bin(&state.raft.vote(rpc).await)
}

#[derive(Deserialize)]
struct ChunkQuery {
    transfer: String,
    file: String,
    offset: u64,
}

/// A transfer name or relative file path that cannot escape the snapshot directory.
fn safe_rel(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if p.is_empty() || path.is_absolute() {
        return None;
    }
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

fn transfer_dir(state: &AppState, transfer: &str) -> Option<PathBuf> {
    let ok = !transfer.is_empty()
        && transfer.len() <= 200
        && transfer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !transfer.starts_with('.');
    ok.then(|| {
        state
            .cfg
            .snapshot_dir()
            .join(format!("incoming-{transfer}"))
    })
}

async fn snapshot_chunk(
    State(state): State<AppState>,
    Query(q): Query<ChunkQuery>,
    body: Bytes,
) -> Response {
    let (Some(dir), Some(rel)) = (transfer_dir(&state, &q.transfer), safe_rel(&q.file)) else {
        return refuse(StatusCode::BAD_REQUEST, "bad transfer or file name");
    };
    if let Some(d) = state.cluster.client().faults().snapshot_chunk_delay() {
        tokio::time::sleep(d).await;
    }
    let res = tokio::task::spawn_blocking(move || -> Result<(), (StatusCode, String)> {
        if !dir.exists() {
            sweep_abandoned(&dir);
        }
        let path = dir.join(rel);
        let io = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(io)?;
        }
        let mut f = if q.offset == 0 {
            std::fs::File::create(&path).map_err(io)?
        } else {
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io)?;
            let len = f.metadata().map_err(io)?.len();
            if len != q.offset {
                return Err((
                    StatusCode::CONFLICT,
                    format!("chunk at offset {} but the file has {len} bytes", q.offset),
                ));
            }
            f
        };
        f.write_all(&body).map_err(io)
    })
    .await;
    match res {
        Ok(Ok(())) => (StatusCode::OK, "").into_response(),
        Ok(Err((s, m))) => refuse(s, m),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A transfer whose files have not changed for this long was abandoned (its sender died or
/// lost leadership part way); a live one writes a chunk every few milliseconds.
const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// Removes the directories of abandoned transfers when a new one starts (a restart removes
/// them all), so a node that outlives several failed transfers does not fill its disk.
fn sweep_abandoned(new: &Path) {
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        let mut best = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let t = if e.file_type().is_ok_and(|t| t.is_dir()) {
                newest(&e.path())
            } else {
                e.metadata().and_then(|m| m.modified()).ok()
            };
            best = best.max(t);
        }
        best
    }
    let Some(parent) = new.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let abandoned = e.file_name().to_string_lossy().starts_with("incoming-")
            && path != new
            && newest(&path)
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_AFTER);
        if abandoned {
            tracing::info!(dir = %path.display(), "removing an abandoned snapshot transfer");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Checks every file arrived whole, makes them durable, and hands the directory to Raft.
async fn snapshot_install(State(state): State<AppState>, body: Bytes) -> Response {
    let req: InstallSnapshot = match decode(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    let Some(dir) = transfer_dir(&state, &req.transfer) else {
        return refuse(StatusCode::BAD_REQUEST, "bad transfer name");
    };
    let files = req.files.clone();
    let check_dir = dir.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        for (rel, size) in &files {
            let rel = safe_rel(rel).ok_or_else(|| format!("bad file name {rel}"))?;
            let path = check_dir.join(rel);
            let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            if len != *size {
                return Err(format!("{} has {len} of {size} bytes", path.display()));
            }
            f.sync_all().map_err(|e| e.to_string())?;
            if let Some(p) = path.parent() {
                wal::sync_dir(p).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
    .await;
    match checked {
        Ok(Ok(())) => {}
        Ok(Err(m)) => {
            let _ = std::fs::remove_dir_all(&dir);
            return refuse(StatusCode::CONFLICT, format!("incomplete snapshot: {m}"));
        }
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let snapshot = Snapshot {
        meta: req.meta,
        snapshot: Box::new(SnapshotDir { path: dir.clone() }),
    };
    let res = state.raft.install_full_snapshot(req.vote, snapshot).await;
    // Installed snapshots were moved away; anything left was refused (older than ours, or a
    // stale leader's) and is not needed.
    let _ = std::fs::remove_dir_all(&dir);
    bin(&res)
}

/// Not the leader: refused before anything was done, so the sender may retry elsewhere.
fn not_leader(state: &AppState) -> Option<Response> {
    let leader = state.raft.metrics().borrow().current_leader;
    (leader != Some(state.identity.node_id)).then(|| {
        refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!("not the leader (leader: {leader:?})"),
        )
    })
}

fn cluster_refusal(e: ClusterError) -> Response {
    let status = match e {
        ClusterError::Conflict(_) => StatusCode::CONFLICT,
        ClusterError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    refuse(status, e.to_string())
}

async fn write(State(state): State<AppState>, body: Bytes) -> Response {
    if let Some(r) = not_leader(&state) {
        return r;
    }
    let req: LogRequest = match decode(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    match state.cluster.write_local(req).await {
        Ok(resp) => bin(&resp),
        Err(e) => cluster_refusal(e),
    }
}

async fn read_index(State(state): State<AppState>) -> Response {
    if let Some(r) = not_leader(&state) {
        return r;
    }
    match state.cluster.read_index_local().await {
        Ok(i) => bin(&i),
        Err(e) => cluster_refusal(e),
    }
}

async fn membership(State(state): State<AppState>, body: Body) -> Response {
    if let Some(r) = not_leader(&state) {
        return r;
    }
    let bytes = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(e) => return undecodable(e),
    };
    let change: MembershipChange = match decode(&bytes) {
        Ok(c) => c,
        Err(e) => return undecodable(e),
    };
    match state.cluster.change_local(change).await {
        Ok(()) => (StatusCode::OK, "").into_response(),
        Err(e) => cluster_refusal(e),
    }
}
