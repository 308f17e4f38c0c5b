use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt {what} {path}: {reason}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet error on {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("the flush thread failed earlier; the engine refuses further work: {0}")]
    FlushFailed(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("event batch: {0}")]
    Decode(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Io,
    Corruption,
    Internal,
    InvalidInput,
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Io { .. } | EngineError::Parquet { .. } => ErrorKind::Io,
            EngineError::Corrupt { .. } | EngineError::Decode(_) => ErrorKind::Corruption,
            EngineError::Arrow(_) | EngineError::FlushFailed(_) => ErrorKind::Internal,
            EngineError::Config(_) => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
