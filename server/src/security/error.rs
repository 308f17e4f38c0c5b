//! What can go wrong in `security`, without HTTP: `http/error.rs` maps each kind to a status
//! and a JSON code once.

use crate::cluster::ClusterError;
use crate::kind::Kind;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A credential is missing, malformed, expired, revoked or unknown.
    #[error("{0}")]
    Unauthorized(String),
    /// The cluster has no signing key yet (first start still bootstrapping).
    #[error("the cluster is not bootstrapped yet")]
    NotReady,
    /// Every password-hashing slot stayed busy for `auth.hash_queue_timeout_ms`.
    #[error("too many logins in progress; retry shortly")]
    HashingBusy,
    /// A defect or a failed system call (signing, a joined blocking task).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl SecurityError {
    pub fn kind(&self) -> Kind {
        match self {
            SecurityError::Unauthorized(_) => Kind::Unauthenticated,
            // Busy hashing answers 503 (retry shortly), like a node still bootstrapping.
            SecurityError::NotReady | SecurityError::HashingBusy => Kind::Unavailable,
            SecurityError::Internal(_) => Kind::Internal,
            SecurityError::Cluster(c) => c.kind(),
        }
    }

    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            SecurityError::Unauthorized(_) => "unauthorized",
            SecurityError::NotReady => "not_ready",
            SecurityError::HashingBusy => "busy",
            SecurityError::Internal(_) => "internal",
            SecurityError::Cluster(c) => c.code(),
        }
    }
}
