//! Small durable-IO helpers shared by the log and its metadata file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, WalError};

/// fsyncs a directory so that file creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| WalError::io(dir, e))?;
    f.sync_all().map_err(|e| WalError::io(dir, e))
}

/// Replaces `path` with `bytes` atomically and durably: write `path.tmp`, fsync it,
/// rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| WalError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| WalError::io(&tmp, e))?;
        f.sync_all().map_err(|e| WalError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| WalError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes at `offset` without moving a shared cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
        .map_err(|e| WalError::io(path, e))
}
