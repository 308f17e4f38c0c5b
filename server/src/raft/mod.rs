//! Raft wiring: the type configuration, what log entries carry, the state machine over the
//! engine and snapshots. (The peer network is in the `cluster` module.)

pub mod mirror_book;
pub mod snapshot;
pub mod state_machine;

use engine::{ApplyOutcome, Event, EventBatch};
use serde::{Deserialize, Serialize};

/// What a log entry carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Event batches from one or more ingest requests, coalesced into one entry; each inner
    /// vector is one request's accepted events, answered separately. Written by earlier
    /// versions; still applied when a log holding it is replayed, no longer proposed.
    Ingest { batches: Vec<Vec<Event>> },
    /// A change to users, apps, keys or sessions, with its audit records.
    Auth(auth::AuthRequest),
    /// Like `Ingest`, each request's events encoded once where they were accepted, so the log,
    /// the network and apply move bytes rather than millions of small strings. (Variants are
    /// only ever appended: the log stores the variant's position.)
    Events { batches: Vec<EventBatch> },
    /// A mirror's progress, pause or replay (see [`mirror_book`]).
    Mirror(mirror_book::MirrorOp),
    /// Like `Auth`, proposed while serving the HTTP request `request_id` (its `x-request-id`),
    /// which the entry's audit records carry.
    AuthTraced {
        request_id: String,
        req: auth::AuthRequest,
    },
    /// Retention (issue 29): no event of `app_id` before `before_ms` (a UTC day start) is kept
    /// any more, on every node from this entry on ([`engine::Engine::drop_before`]).
    Retention { app_id: String, before_ms: i64 },
    /// Erasure (issue 29): the stored events of `app_id` with one of these user ids or device
    /// ids (as sent and as the app's privacy transform stores them), of the entries before
    /// this one, are removed on every node ([`engine::Engine::erase`]) and from every mirror.
    Erase {
        request_id: String,
        app_id: String,
        user_ids: Vec<String>,
        device_ids: Vec<String>,
        at_ms: i64,
    },
    /// Erasure `request_id` is finished on the leader and on every mirror: each node forgets
    /// its identifiers once its own rewrite is done ([`engine::Engine::complete_erasure`]).
    EraseComplete { request_id: String },
}

/// What applying an entry answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Response {
    #[default]
    None,
    Ingest {
        outcomes: Vec<ApplyOutcome>,
    },
    Auth(auth::AuthOutcome),
    Mirror(mirror_book::MirrorOutcome),
}

/// What the membership records about each node: where to reach it, and the identity of its
/// data directory. RPCs carry the identity they expect, so a node whose data directory was
/// wiped (new identity) is refused until it is removed and added again (TESTPLAN RAFT-08).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Client API address (`host:port`), used for links and forwarding hints.
    pub http_addr: String,
    /// Address serving the internal Raft API (`host:port`).
    pub raft_addr: String,
    /// UUID generated when the node's data directory was created.
    pub uuid: String,
}

impl std::fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (raft {})", self.http_addr, self.raft_addr)
    }
}

openraft::declare_raft_types!(
    /// Type configuration of UnMoGrowP's Raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = snapshot::SnapshotDir,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogStore = wal::raft::RaftLogStore<TypeConfig>;
