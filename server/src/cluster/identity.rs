//! The identity of a node's data directory: a UUID made when the directory is first used.
//! The membership records it for every node, and every Raft RPC names the identity it is
//! meant for, so a node whose data directory was wiped (and so has forgotten its votes and
//! log) cannot take part until an operator removes and re-adds it (TESTPLAN RAFT-08).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "identity.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: u64,
    pub uuid: String,
    pub created_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot write the identity file: {0}")]
    Write(#[from] wal::WalError),
    #[error("{0} is not a valid identity file: {1}")]
    Corrupt(PathBuf, serde_json::Error),
    #[error(
        "data directory {dir} belongs to node {found}, but this node is configured as node {configured}"
    )]
    WrongNode {
        dir: PathBuf,
        found: u64,
        configured: u64,
    },
    #[error(
        "data directory {0} holds a log or table but no identity.json: refusing to start with a new identity over old state (restore identity.json, or wipe the directory and re-add the node)"
    )]
    Missing(PathBuf),
}

impl Identity {
    /// Loads the identity of `data_dir`, creating it if the directory holds no state yet.
    /// `state_dirs` are the subdirectories whose presence means the node has state.
    pub fn load_or_create(
        data_dir: &Path,
        node_id: u64,
        state_dirs: &[PathBuf],
    ) -> Result<Self, IdentityError> {
        let path = data_dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let id: Identity = serde_json::from_slice(&bytes)
                    .map_err(|e| IdentityError::Corrupt(path.clone(), e))?;
                if id.node_id != node_id {
                    return Err(IdentityError::WrongNode {
                        dir: data_dir.to_path_buf(),
                        found: id.node_id,
                        configured: node_id,
                    });
                }
                Ok(id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let has_state = state_dirs.iter().any(|d| {
                    std::fs::read_dir(d).is_ok_and(|mut entries| entries.next().is_some())
                });
                if has_state {
                    return Err(IdentityError::Missing(data_dir.to_path_buf()));
                }
                let id = Identity {
                    node_id,
                    uuid: uuid::Uuid::new_v4().to_string(),
                    created_at_ms: crate::clock::now_ms(),
                };
                let bytes = serde_json::to_vec_pretty(&id)
                    .map_err(|e| IdentityError::Corrupt(path.clone(), e))?;
                wal::write_atomic(&path, &bytes)?;
                Ok(id)
            }
            Err(e) => Err(IdentityError::Io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        let a = Identity::load_or_create(d.path(), 2, std::slice::from_ref(&log)).unwrap();
        let b = Identity::load_or_create(d.path(), 2, std::slice::from_ref(&log)).unwrap();
        assert_eq!(a, b);
        assert!(matches!(
            Identity::load_or_create(d.path(), 3, std::slice::from_ref(&log)),
            Err(IdentityError::WrongNode { .. })
        ));
        // State without an identity is refused.
        std::fs::remove_file(d.path().join(FILE)).unwrap();
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(log.join("x"), b"1").unwrap();
        assert!(matches!(
            Identity::load_or_create(d.path(), 2, &[log]),
            Err(IdentityError::Missing(_))
        ));
    }
}
