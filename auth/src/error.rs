/// Errors of the auth store and its helpers.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("auth store record {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error("auth store: {0}")]
    Corrupt(String),
    #[error("password hashing: {0}")]
    Password(String),
    #[error("token: {0}")]
    Token(String),
}

/// Protocol-neutral classes of [`AuthError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// RocksDB failed (IO).
    Storage,
    /// A stored record does not decode, or the store is inconsistent.
    Corruption,
    /// A token or value handed in is malformed.
    InvalidInput,
    /// Hashing or signing failed.
    Internal,
}

impl AuthError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Db(_) => ErrorKind::Storage,
            AuthError::Decode { .. } | AuthError::Corrupt(_) => ErrorKind::Corruption,
            AuthError::Token(_) => ErrorKind::InvalidInput,
            AuthError::Password(_) => ErrorKind::Internal,
        }
    }
}
