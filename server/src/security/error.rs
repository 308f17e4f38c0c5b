//! What can go wrong in `security`, without HTTP: `http/error.rs` maps each kind to a status
//! and a JSON code once.

use crate::cluster::ClusterError;

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

/// Protocol-neutral classes of [`SecurityError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityErrorKind {
    Unauthenticated,
    /// Try again shortly.
    Unavailable,
    Internal,
}

impl SecurityError {
    pub fn kind(&self) -> SecurityErrorKind {
        match self {
            SecurityError::Unauthorized(_) => SecurityErrorKind::Unauthenticated,
            SecurityError::NotReady | SecurityError::HashingBusy => SecurityErrorKind::Unavailable,
            SecurityError::Internal(_) | SecurityError::Cluster(_) => SecurityErrorKind::Internal,
        }
    }

    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            SecurityError::Unauthorized(_) => "unauthorized",
            SecurityError::NotReady => "not_ready",
            SecurityError::HashingBusy => "busy",
            SecurityError::Internal(_) | SecurityError::Cluster(_) => "internal",
        }
    }
}
