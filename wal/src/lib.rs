//! `wal`: the segmented, checksummed, group-committed write-ahead log of UnMoGrowP, and a thin
//! adapter that makes it openraft's `RaftLogStorage`.
//!
//! The log itself ([`Wal`]) knows nothing of Raft: it stores `(index, bytes)` records.
//! [`raft::RaftLogStore`] encodes openraft entries into records and keeps the vote and purge
//! point in a [`MetaFile`]. See README.md for what reaches disk and when.

/// The IO seam (the `disk` crate), re-exported for tests that open the log with a
/// [`FaultFs`](env::FaultFs).
pub use disk as env;
mod error;
mod format;
mod fsio;
mod log;
mod meta;
mod metrics;
pub mod raft;
mod recent;
mod recovery;

pub use env::{FileSystem, RealFs};
pub use error::{ErrorKind, Result, WalError};
pub use fsio::{sync_dir, sync_dir_with, write_atomic, write_atomic_with};
pub use log::{Done, Wal, WalOptions};
pub use meta::MetaFile;
pub use metrics::WalMetrics;
pub use recovery::RecoveryReport;
