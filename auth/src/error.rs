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
