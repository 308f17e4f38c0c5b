use std::path::PathBuf;

/// Everything that can go wrong in the log. Variants carry the file and offset involved.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt log segment {path} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("log is not contiguous: {0}")]
    Gap(String),
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("the log writer has stopped after an earlier failure: {0}")]
    WriterStopped(String),
}

/// Protocol-neutral classification of a [`WalError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Io,
    Corruption,
    InvalidInput,
    Unavailable,
}

impl WalError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WalError::Io { .. } => ErrorKind::Io,
            WalError::Corrupt { .. } | WalError::Gap(_) => ErrorKind::Corruption,
            WalError::InvalidAppend(_) => ErrorKind::InvalidInput,
            WalError::WriterStopped(_) => ErrorKind::Unavailable,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;
