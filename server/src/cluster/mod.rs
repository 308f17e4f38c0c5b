//! Clustering: node identity, the HTTP peer network openraft talks over, the internal Raft
//! API peers call, and the handle the rest of the server uses to write (forwarding to the
//! leader), to read (read-index) and to change the membership.

pub mod client;
pub mod fault;
pub mod handle;
pub mod identity;
pub mod metrics;
pub mod network;

pub use handle::{Cluster, MembershipChange};

use crate::kind::Kind;
pub use identity::Identity;

/// Why the cluster could not do what was asked. Mapped to HTTP once, in `http::error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// No leader is known, or leadership moved during the write: retry shortly (503).
    #[error("no leader is available ({0}); retry shortly")]
    NoLeader(String),
    /// The write reached a leader but its outcome is not known; retrying with the same
    /// `event_id`s is safe (503).
    #[error("the outcome of the write is unknown ({0}); retry it, events with an event_id are deduplicated")]
    Unknown(String),
    /// This node is behind the leader and cannot serve the read yet (503).
    #[error("this node is behind: {0}")]
    Behind(String),
    /// The node is shutting down, or its Raft core stopped (503).
    #[error("the node cannot serve this: {0}")]
    Unavailable(String),
    /// The change conflicts with the cluster's state (409).
    #[error("{0}")]
    Conflict(String),
    /// The request names something that does not exist or is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// The data disk is (nearly) full: writes pause until space returns (507).
    #[error("{0}")]
    DiskFull(String),
}

impl ClusterError {
    pub fn kind(&self) -> Kind {
        match self {
            ClusterError::NoLeader(_)
            | ClusterError::Unknown(_)
            | ClusterError::Behind(_)
            | ClusterError::Unavailable(_) => Kind::Unavailable,
            ClusterError::Conflict(_) => Kind::Conflict,
            ClusterError::Invalid(_) => Kind::InvalidInput,
            ClusterError::DiskFull(_) => Kind::InsufficientStorage,
        }
    }

    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            ClusterError::NoLeader(_) => "no_leader",
            ClusterError::Unknown(_) => "outcome_unknown",
            ClusterError::Behind(_) => "node_behind",
            ClusterError::Unavailable(_) => "unavailable",
            ClusterError::Conflict(_) => "conflict",
            ClusterError::Invalid(_) => "invalid_request",
            ClusterError::DiskFull(_) => "insufficient_storage",
        }
    }
}
