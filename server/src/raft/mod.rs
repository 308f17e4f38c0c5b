//! Raft wiring: the type configuration, what log entries carry, the state machine over the
//! engine, snapshots, and the peer network.

pub mod network;
pub mod snapshot;
pub mod state_machine;

use engine::{ApplyOutcome, Event};
use serde::{Deserialize, Serialize};

/// What a log entry carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Event batches from one or more ingest requests, coalesced into one entry; each inner
    /// vector is one request's accepted events, answered separately.
    Ingest { batches: Vec<Vec<Event>> },
    /// A change to users, apps, keys or sessions, with its audit records.
    Auth(auth::AuthRequest),
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
}

openraft::declare_raft_types!(
    /// Type configuration of UnMoGrowP's Raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = snapshot::SnapshotDir,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogStore = wal::raft::RaftLogStore<TypeConfig>;
