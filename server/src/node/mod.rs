//! Assembling one node: the log, the engine, the auth store, the state machine, Raft, the
//! proposer and the query service, plus the background housekeeping task.

mod bootstrap;
mod erasure;
pub mod metrics;
mod retention;

pub(crate) use bootstrap::new_jwt_secret;

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::SnapshotPolicy;

use crate::raft::ClusterNode;

use crate::cluster::client::{Me, PeerClient};
use crate::cluster::network::{HttpNetwork, SnapshotSends};
use crate::cluster::{Cluster, Identity};
use crate::config::ServerConfig;
use crate::ingest::proposer::Proposer;
use crate::metrics::Metrics;
use crate::mirror::{Mirrors, Supervisor};
use crate::raft::snapshot::SnapshotStore;
use crate::raft::state_machine::{EventStateMachine, Replicated};
use crate::raft::{LogStore, Raft};
use crate::security::Security;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("data directory {0} is in use by another unmogrowp process")]
    Locked(String),
    #[error("cannot open the log: {0}")]
    Log(#[from] wal::WalError),
    #[error("cannot open the table: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("query: {0}")]
    Query(#[from] query::QueryError),
    #[error("cannot open the auth store: {0}")]
    Auth(#[from] auth::AuthError),
    #[error("{0}")]
    Bootstrap(String),
    #[error("{0}")]
    Identity(#[from] crate::cluster::identity::IdentityError),
}

/// Everything request handlers need; one shared allocation, so a clone (every request
/// clones it for each extractor and middleware) is a single reference-count increment.
#[derive(Clone)]
pub struct AppState(Arc<NodeParts>);

impl std::ops::Deref for AppState {
    type Target = NodeParts;
    fn deref(&self) -> &NodeParts {
        &self.0
    }
}

/// The parts of a running node, shared by its handlers and background tasks.
pub struct NodeParts {
    pub cfg: Arc<ServerConfig>,
    pub raft: Raft,
    /// Writes (forwarded to the leader), read barriers and membership changes.
    pub cluster: Cluster,
    /// The identity of this node's data directory.
    pub identity: Arc<Identity>,
    pub log: LogStore,
    pub engine: engine::Engine,
    /// This node's snapshots (backups are exported from them).
    pub snapshots: SnapshotStore,
    /// Snapshots being streamed to followers now.
    pub snapshot_sends: SnapshotSends,
    /// Peers' clocks as measured on this node's internal calls to them.
    pub peer_clocks: crate::cluster::client::PeerClocks,
    /// Webhook deliveries of security alerts from this node.
    pub alert_stats: Arc<crate::security::alerts::AlertStats>,
    pub proposer: Proposer,
    pub query: query::QueryService,
    pub security: Arc<Security>,
    pub metrics: Arc<Metrics>,
    /// The configured mirrors and their node-local counters.
    pub mirrors: Arc<Mirrors>,
    /// What the state machine applied besides the table (the mirrors' positions).
    pub book: Replicated,
    /// Highest index known committed when the node started; the node is ready once it has
    /// applied at least this far (it then serves no older view than before the restart).
    pub recovered_commit: Option<u64>,
    pub started: Instant,
}

pub struct Node {
    pub state: AppState,
    _lock: File,
}

fn lock_data_dir(cfg: &ServerConfig) -> Result<File, StartError> {
    crate::data_dir::lock(&cfg.data_dir).map_err(|e| match e {
        crate::data_dir::LockError::Io(dir, e) => StartError::DataDir(dir, e),
        crate::data_dir::LockError::Locked(dir) => StartError::Locked(dir),
    })
}

/// The file system the log and the table write through: the real one, or (tests only) one that
/// obeys a disk fault script.
fn disk_seam(cfg: &ServerConfig) -> Arc<dyn disk::FileSystem> {
    match &cfg.process.disk_faults {
        None => Arc::new(disk::RealFs),
        Some(script) => {
            tracing::warn!(script = %script.display(), "disk fault injection is on (tests only)");
            let fs = disk::FaultFs::new();
            fs.abort_on_power_cut();
            fs.stop_recording();
            disk::FaultScript::watch(fs.clone(), script.clone(), Duration::from_millis(20));
            fs
        }
    }
}

impl Node {
    pub async fn start(cfg: ServerConfig) -> Result<Self, StartError> {
        let lock = lock_data_dir(&cfg)?;
        let identity = Arc::new(Identity::load_or_create(
            &cfg.data_dir,
            cfg.node_id,
            &[cfg.log_dir(), cfg.engine_dir(), cfg.auth_dir()],
        )?);
        let cfg = Arc::new(cfg);
        let fs = disk_seam(&cfg);
        let log = LogStore::open_with(cfg.log_dir(), cfg.wal.clone(), fs.clone())?;
        let recovered_commit = {
            let mut l = log.clone();
            use openraft::storage::RaftLogStorage;
            l.read_committed()
                .await
                .map_err(|e| StartError::Raft(e.to_string()))?
                .map(|c| c.index)
        };
        let mut ecfg = cfg.engine_config();
        if !cfg.process.crash_points.is_empty() {
            ecfg.crash_points = engine::CrashPoints::new(cfg.process.crash_points.iter().cloned());
        }
        let engine = engine::Engine::open_with(cfg.engine_dir(), ecfg, fs)?;
        let auth_store = auth::AuthStore::open(&cfg.auth_dir(), cfg.auth.lockout)?;
        let security = Arc::new(
            Security::new(
                auth_store.clone(),
                cfg.auth.clone(),
                &cfg.alerts,
                cfg.node_id,
            )
            .map_err(StartError::Bootstrap)?,
        );
        let snapshots =
            SnapshotStore::open(cfg.snapshot_dir()).map_err(|e| StartError::Raft(e.to_string()))?;
        let sm = EventStateMachine::open(engine.clone(), auth_store, snapshots.clone())
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let book = sm.replicated();
        let r = &cfg.raft;
        let raft_cfg = openraft::Config {
            cluster_name: "unmogrowp".into(),
            heartbeat_interval: r.heartbeat_interval_ms,
            election_timeout_min: r.election_timeout_min_ms,
            election_timeout_max: r.election_timeout_max_ms,
            // Snapshots are triggered by log size from the housekeeping task.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: r.keep_after_snapshot,
            purge_batch_size: 64,
            // Entries can be large (up to max_events_per_entry events); the network splits
            // further if an append exceeds cluster.max_rpc_bytes.
            max_payload_entries: 64,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let client = PeerClient::new(
            &cfg.cluster.secret,
            Me {
                id: cfg.node_id,
                uuid: identity.uuid.clone(),
            },
            cfg.cluster.max_rpc_bytes,
        )
        .with_faults(crate::cluster::fault::Faults::from_file(
            cfg.process.fault_file.clone(),
        ));
        let snapshot_sends = SnapshotSends::default();
        let peer_clocks = client.clocks().clone();
        let network = HttpNetwork::new(
            client.clone(),
            cfg.cluster.snapshot_chunk_bytes,
            snapshot_sends.clone(),
        );
        let raft = Raft::new(cfg.node_id, Arc::new(raft_cfg), network, log.clone(), sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        if !initialized && cfg.cluster.members.is_empty() {
            let (http_addr, raft_addr) = cfg.advertised();
            let mut members = BTreeMap::new();
            members.insert(
                cfg.node_id,
                ClusterNode {
                    http_addr,
                    raft_addr,
                    uuid: identity.uuid.clone(),
                },
            );
            raft.initialize(members)
                .await
                .map_err(|e| StartError::Raft(e.to_string()))?;
            tracing::info!(
                node_id = cfg.node_id,
                "initialised a new single-node cluster"
            );
        } else if !initialized {
            tracing::warn!(
                node_id = cfg.node_id,
                uuid = %identity.uuid,
                "not part of a cluster yet: waiting for `unmogrowp cluster init` (first start) or to be added by the leader"
            );
        }
        let cluster = Cluster::new(
            raft.clone(),
            client,
            Duration::from_millis(cfg.cluster.write_timeout_ms),
            Duration::from_millis(cfg.cluster.read_timeout_ms),
        );
        let proposer = Proposer::start(
            cluster.clone(),
            crate::ingest::disk_space::DiskSpace::new(
                cfg.data_dir.clone(),
                cfg.ingest.min_free_disk_mb,
            ),
            r.max_requests_per_entry,
            r.max_events_per_entry,
            r.max_inflight_entries,
        );
        if let Some(p) = &cfg.process.admin_password {
            auth::password::check_strength(p).map_err(|m| {
                StartError::Bootstrap(format!("{}: {m}", bootstrap::ADMIN_PASSWORD_ENV))
            })?;
        }
        tokio::spawn(bootstrap::run(
            cfg.clone(),
            cluster.clone(),
            security.clone(),
        ));
        let mut qcfg = cfg.query.clone();
        if qcfg.spill_dir.is_none() {
            // Spill files of queries killed with the process are of no use: start empty.
            let dir = cfg.data_dir.join("query-spill");
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not empty the spill directory");
                }
            }
            qcfg.spill_dir = Some(dir);
        }
        let query = query::QueryService::new(engine.clone(), qcfg)?
            .with_idle_hook(Arc::new(crate::memory::release_freed));
        let mirrors = Arc::new(Mirrors::from_config(&cfg.mirror, crate::clock::now_ms()));
        if !mirrors.configured.is_empty() {
            tokio::spawn(
                Supervisor {
                    mirrors: mirrors.clone(),
                    raft: raft.clone(),
                    cluster: cluster.clone(),
                    engine: engine.clone(),
                    book: book.clone(),
                    node_id: cfg.node_id,
                }
                .run(),
            );
        }
        let alert_stats = Arc::new(crate::security::alerts::AlertStats::default());
        tokio::spawn(
            crate::security::alerts::AlertService {
                security: security.clone(),
                cluster: cluster.clone(),
                raft: raft.clone(),
                node_id: cfg.node_id,
                cfg: cfg.alerts.clone(),
                stats: alert_stats.clone(),
            }
            .run(),
        );
        let state = AppState(Arc::new(NodeParts {
            alert_stats,
            cfg: cfg.clone(),
            raft: raft.clone(),
            cluster,
            identity,
            log,
            engine,
            snapshots,
            snapshot_sends,
            peer_clocks,
            proposer,
            query,
            security,
            metrics: Arc::new(Metrics::default()),
            mirrors: mirrors.clone(),
            book: book.clone(),
            recovered_commit,
            started: Instant::now(),
        }));
        tokio::spawn(housekeeping(state.clone()));
        tokio::spawn(retention::run(state.clone()));
        tokio::spawn(erasure::run(state.clone()));
        Ok(Node { state, _lock: lock })
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.state.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

impl AppState {
    /// Whether this node has recovered and can accept writes.
    pub fn readiness(&self) -> (bool, String) {
        let m = self.raft.metrics().borrow().clone();
        if let Err(e) = &m.running_state {
            return (false, format!("raft stopped: {e}"));
        }
        let Some(leader) = m.current_leader else {
            if m.membership_config
                .membership()
                .get_node(&self.cfg.node_id)
                .is_none()
            {
                return (
                    false,
                    "not a member of a cluster yet: run `unmogrowp cluster init` once all members run, or add this node".into(),
                );
            }
            return (false, "no leader elected yet".into());
        };
        if !self.security.store.is_bootstrapped() {
            return (false, "creating the signing key and the first admin".into());
        }
        let applied = m.last_applied.map(|l| l.index);
        // The log already starts after a snapshot this node has not finished applying (one is
        // being installed): until it has, its table is older than its log claims.
        if let Some(p) = m.purged.map(|l| l.index) {
            if applied.is_none_or(|a| a < p) {
                return (
                    false,
                    format!("installing a snapshot: applied {applied:?}, the log starts after {p}"),
                );
            }
        }
        if let Some(c) = self.recovered_commit {
            if applied.is_none_or(|a| a < c) {
                return (
                    false,
                    format!("replaying the log: applied {applied:?} of {c}"),
                );
            }
        }
        if let Some((path, reason)) = self.engine.damaged_segments().first() {
            return (
                false,
                format!(
                    "segment {} is damaged ({reason}): queries reading it fail; restore this node from a replica (docs/operations.md)",
                    path.display()
                ),
            );
        }
        (true, format!("leader is node {leader}"))
    }
}

/// On the leader: deletes expired and revoked login sessions through the log, so the auth
/// store does not grow with every login ever made (audited as `sessions.purge`).
async fn purge_sessions(state: &AppState) {
    let leader = state.raft.metrics().borrow().current_leader;
    let sec = &state.security;
    let now = crate::clock::now_ms();
    let dead = sec.store.dead_sessions(now);
    if leader != Some(sec.node_id()) || dead == 0 {
        return;
    }
    let ev = crate::security::event(
        "system".into(),
        "",
        "sessions.purge",
        format!("{dead} expired or revoked sessions"),
        "",
    );
    let req = sec.request(auth::AuthOp::PurgeSessions { before_ms: now }, vec![ev]);
    match crate::security::submit(&state.cluster, req).await {
        Ok(_) => tracing::info!(sessions = dead, "purged expired and revoked sessions"),
        Err(e) => tracing::warn!(error = %e, "session purge failed; retried later"),
    }
}

/// How long after a follower installed a snapshot from this node no new snapshot is taken: the
/// follower fetches the entries after the snapshot right after installing it, which takes far
/// less than this.
const CATCH_UP_AFTER_INSTALL: Duration = Duration::from_secs(10);

/// How often the footers of deleted segment files leave the query footer cache.
const FOOTER_PURGE_EVERY: Duration = Duration::from_secs(60);

/// Rotates old memtables into Parquet and takes a snapshot (which purges the log) once the log
/// has grown past `raft.snapshot_log_bytes`.
///
/// Not while a snapshot is being sent to a follower (or just after, see
/// [`CATCH_UP_AFTER_INSTALL`]), unless the log has grown past `raft.snapshot_defer_max_bytes`:
/// a new snapshot would purge the entries after the one being sent, so the follower would need
/// yet another snapshot right after installing it. When sending takes longer than the log
/// takes to reach the threshold, that never ends.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_trigger: Option<Instant> = None;
    let mut deferring = false;
    let mut last_session_purge = Instant::now();
    let mut last_footer_purge = Instant::now();
    // The first verification soon after start, then every interval.
    let mut last_audit_verify: Option<Instant> = None;
    loop {
        tick.tick().await;
        if state.raft.metrics().borrow().running_state.is_err() {
            return;
        }
        let purge_every = Duration::from_secs(state.cfg.auth.session_purge_interval_secs);
        if last_session_purge.elapsed() >= purge_every {
            last_session_purge = Instant::now();
            purge_sessions(&state).await;
        }
        if last_footer_purge.elapsed() >= FOOTER_PURGE_EVERY {
            // Compaction, retention and erasure replace segment files: their cached footers go.
            last_footer_purge = Instant::now();
            let query = state.query.clone();
            let _ = tokio::task::spawn_blocking(move || query.forget_deleted_footers()).await;
        }
        let verify_every = state.cfg.auth.audit_verify_interval_secs;
        if verify_every > 0
            && last_audit_verify.is_none_or(|t| t.elapsed() >= Duration::from_secs(verify_every))
            && state.security.store.is_bootstrapped()
        {
            last_audit_verify = Some(Instant::now());
            let security = state.security.clone();
            let _ = tokio::task::spawn_blocking(move || security.verify_audit_now()).await;
        }
        // The engine's budget bounds the process's memory outside running queries.
        let resident = metrics::resident_bytes()
            .map(|r| r.saturating_sub(state.query.memory().reserved_bytes as u64));
        let held = state.engine.memory_use().held();
        if let Err(e) = state.engine.tick_within(resident) {
            tracing::error!(error = %e, "memtable rotation failed");
        }
        if state.engine.memory_use().held() < held {
            // What left memory goes back to the OS now, not at the allocator's leisure: the
            // next tick measures the process again.
            crate::memory::release_freed();
        }
        let bytes = state.log.wal().disk_bytes();
        let cooled = last_trigger.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        // Only when a snapshot would let the log be purged further than it already is.
        let m = state.raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let covered = m.snapshot.map_or(0, |l| l.index);
        let progress = applied.saturating_sub(covered) > state.cfg.raft.keep_after_snapshot;
        if bytes >= state.cfg.raft.snapshot_log_bytes && cooled && progress {
            let sending = state.snapshot_sends.busy(CATCH_UP_AFTER_INSTALL);
            if sending && bytes < state.cfg.raft.snapshot_defer_max_bytes {
                if !deferring {
                    tracing::info!(
                        log_bytes = bytes,
                        "log size reached the snapshot threshold; waiting until the follower being sent a snapshot has it and the entries after it"
                    );
                }
                deferring = true;
                continue;
            }
            if sending {
                tracing::warn!(
                    log_bytes = bytes,
                    limit = state.cfg.raft.snapshot_defer_max_bytes,
                    "taking a snapshot while one is being sent: the log reached raft.snapshot_defer_max_bytes; the follower may need another snapshot after this one"
                );
            }
            deferring = false;
            last_trigger = Some(Instant::now());
            tracing::info!(
                log_bytes = bytes,
                "log size reached the snapshot threshold; taking a snapshot"
            );
            if let Err(e) = state.raft.trigger().snapshot().await {
                tracing::error!(error = %e, "snapshot trigger failed");
            }
        }
    }
}
