//! The data directory's lock: one process per `data_dir` (`serve`, `restore`). The lock is
//! an advisory lock on `<data_dir>/LOCK`, held as long as the returned file is open, and
//! released by the kernel when the process dies (a `kill -9` never leaves it stale).

use std::fs::File;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {0}: {1}")]
    Io(String, std::io::Error),
    #[error("data directory {0} is in use by another unmogrowp process")]
    Locked(String),
}

/// Creates `dir` if needed and takes its lock.
pub fn lock(dir: &Path) -> Result<File, LockError> {
    let name = dir.display().to_string();
    std::fs::create_dir_all(dir).map_err(|e| LockError::Io(name.clone(), e))?;
    let f = File::create(dir.join("LOCK")).map_err(|e| LockError::Io(name.clone(), e))?;
    if f.try_lock().is_err() {
        return Err(LockError::Locked(name));
    }
    Ok(f)
}
