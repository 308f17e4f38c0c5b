//! [`Kind`]: what class of failure an error is, in no protocol's terms. Every error that can
//! reach a client says its kind (`ClusterError`, `BodyError`, `BackupError`, `SecurityError`
//! here; `engine`, `wal`, `query` and `auth` errors through their own `kind()`, converted
//! below); `http/error.rs` turns a kind into a status in one table.

/// Protocol-neutral classes of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or names something impossible.
    InvalidInput,
    /// No valid credential.
    Unauthenticated,
    /// A valid credential without the right.
    Forbidden,
    NotFound,
    /// Conflicts with the current state.
    Conflict,
    /// The request is larger than allowed.
    TooLarge,
    /// The request's encoding is not one we read.
    UnsupportedEncoding,
    /// Too many requests in progress or per interval: retry shortly.
    Busy,
    /// The request alone needs more than it may use (memory, rows).
    ResourcesExhausted,
    /// Ran past its deadline.
    Timeout,
    /// This node cannot serve it now (no leader, behind, stopped after a disk error): retry,
    /// maybe elsewhere.
    Unavailable,
    /// The disk is (nearly) full.
    InsufficientStorage,
    /// A defect, corruption or a failed system call.
    Internal,
}

impl From<engine::ErrorKind> for Kind {
    fn from(k: engine::ErrorKind) -> Self {
        match k {
            engine::ErrorKind::InvalidInput => Kind::InvalidInput,
            engine::ErrorKind::Io | engine::ErrorKind::Corruption | engine::ErrorKind::Internal => {
                Kind::Internal
            }
        }
    }
}

impl From<wal::ErrorKind> for Kind {
    fn from(k: wal::ErrorKind) -> Self {
        match k {
            wal::ErrorKind::InvalidInput => Kind::InvalidInput,
            wal::ErrorKind::Unavailable => Kind::Unavailable,
            wal::ErrorKind::Io | wal::ErrorKind::Corruption => Kind::Internal,
        }
    }
}

impl From<query::ErrorKind> for Kind {
    fn from(k: query::ErrorKind) -> Self {
        match k {
            query::ErrorKind::InvalidInput => Kind::InvalidInput,
            query::ErrorKind::ResourcesExhausted => Kind::ResourcesExhausted,
            query::ErrorKind::Busy => Kind::Busy,
            query::ErrorKind::Timeout => Kind::Timeout,
            query::ErrorKind::Internal => Kind::Internal,
        }
    }
}

impl From<auth::ErrorKind> for Kind {
    fn from(k: auth::ErrorKind) -> Self {
        match k {
            auth::ErrorKind::InvalidInput => Kind::InvalidInput,
            auth::ErrorKind::Storage | auth::ErrorKind::Corruption | auth::ErrorKind::Internal => {
                Kind::Internal
            }
        }
    }
}
