//! What can stop a mirror's batch. Never an HTTP answer: the runner reports it as the mirror's
//! `last_error` (scrubbed of secrets) and retries.

/// One error type for the crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MirrorError {
    /// The `[[mirror]]` entry cannot run as written.
    #[error("{0}")]
    Config(String),
    /// The sink's table exists but does not have the columns the mirror writes.
    #[error("{0}")]
    Schema(String),
    /// The sink could not be reached or refused a write; retried with backoff.
    #[error("{0}")]
    Sink(String),
    /// The stored rows could not be read from the table.
    #[error("reading stored events: {0}")]
    Read(String),
}

impl MirrorError {
    /// Whether retrying the same batch later can succeed without an operator (a missing
    /// column or a bad URL will not fix itself, but they are retried too, slowly, since the
    /// operator may fix the sink without restarting the node).
    pub fn is_transient(&self) -> bool {
        matches!(self, MirrorError::Sink(_) | MirrorError::Read(_))
    }
}

impl From<engine::EngineError> for MirrorError {
    fn from(e: engine::EngineError) -> Self {
        MirrorError::Read(e.to_string())
    }
}
