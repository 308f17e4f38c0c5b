//! Fault injection for the cluster tests (TESTPLAN RAFT-03): while the file named by
//! `UNMOGROWP_FAULT_FILE` exists and holds `isolate`, this node neither sends nor accepts
//! Raft traffic — a network partition around it, without root or namespaces. Unset (always,
//! in production) it costs nothing.

use std::path::PathBuf;

pub const ENV: &str = "UNMOGROWP_FAULT_FILE";

#[derive(Debug, Clone, Default)]
pub struct Faults {
    file: Option<PathBuf>,
}

impl Faults {
    pub fn from_env() -> Self {
        Self {
            file: std::env::var_os(ENV).map(PathBuf::from),
        }
    }

    /// Whether this node is cut off from its peers right now.
    pub fn isolated(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|f| std::fs::read_to_string(f).is_ok_and(|s| s.trim() == "isolate"))
    }
}
