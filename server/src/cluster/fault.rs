//! Fault injection for the cluster tests (TESTPLAN RAFT-03, RAFT-10), read from the file named
//! by `UNMOGROWP_FAULT_FILE` while it exists, one fault per line:
//!
//! ```text
//! isolate                      this node neither sends nor accepts Raft traffic (a network
//!                              partition around it, without root or namespaces)
//! snapshot-chunk-delay-ms=N    this node answers each snapshot chunk it receives N ms late
//!                              (a slow link to a follower that needs a snapshot)
//! ```
//! Unset (always, in production) it costs nothing.

use std::path::PathBuf;
use std::time::Duration;

pub const ENV: &str = "UNMOGROWP_FAULT_FILE";

#[derive(Debug, Clone, Default)]
pub struct Faults {
    file: Option<PathBuf>,
}

impl Faults {
    /// Faults read from `file` (`UNMOGROWP_FAULT_FILE`, passed in by `main`).
    pub fn from_file(file: Option<PathBuf>) -> Self {
        Self { file }
    }

    fn lines(&self) -> Vec<String> {
        self.file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|s| s.lines().map(|l| l.trim().to_string()).collect())
            .unwrap_or_default()
    }

    /// Whether this node is cut off from its peers right now.
    pub fn isolated(&self) -> bool {
        self.lines().iter().any(|l| l == "isolate")
    }

    /// How late to answer each snapshot chunk received.
    pub fn snapshot_chunk_delay(&self) -> Option<Duration> {
        self.lines().iter().find_map(|l| {
            l.strip_prefix("snapshot-chunk-delay-ms=")
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
        })
    }
}
