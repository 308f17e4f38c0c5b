//! Small durable-IO helpers shared by the log and its metadata file, over the IO seam
//! ([`crate::env`]); the plain versions use the real file system.

use std::fs::File;
use std::path::Path;

use crate::env::{FileSystem, RealFs};
use crate::error::{Result, WalError};

/// fsyncs a directory so that file creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    sync_dir_with(&RealFs, dir)
}

/// [`sync_dir`] through `fs`.
pub fn sync_dir_with(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|e| WalError::io(dir, e))
}

/// Replaces `path` with `bytes` atomically and durably: write `path.tmp`, fsync it,
/// rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(&RealFs, path, bytes)
}

/// [`write_atomic`] through `fs`.
pub fn write_atomic_with(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = fs.create(&tmp).map_err(|e| WalError::io(&tmp, e))?;
        fs.write_all(&f, &tmp, bytes)
            .map_err(|e| WalError::io(&tmp, e))?;
        fs.sync_all(&f, &tmp).map_err(|e| WalError::io(&tmp, e))?;
    }
    fs.rename(&tmp, path).map_err(|e| WalError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir_with(fs, dir)?;
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes at `offset` without moving a shared cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
        .map_err(|e| WalError::io(path, e))
}
