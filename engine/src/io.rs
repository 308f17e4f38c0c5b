//! [`Io`]: the engine's durable file operations, made through the `disk` seam (the real file
//! system in production, a [`disk::FaultFs`] in power-cut and failed-fsync tests), with errors
//! as [`EngineError`]s naming the path. Reads stay plain `std::fs`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use disk::{FileSystem, RealFs, SeamWriter};

use crate::error::{EngineError, Result};

/// Cheap to clone; all clones share one file system.
#[derive(Debug, Clone)]
pub(crate) struct Io(Arc<dyn FileSystem>);

impl Default for Io {
    fn default() -> Self {
        Self(Arc::new(RealFs))
    }
}

impl Io {
    pub(crate) fn new(fs: Arc<dyn FileSystem>) -> Self {
        Self(fs)
    }

    /// Creates (or replaces) `path`, writes `bytes`, fsyncs it. The directory entry is durable
    /// only after the caller fsyncs the directory.
    pub(crate) fn write_synced(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let io = |e| EngineError::io(path, e);
        let f = self.0.create(path).map_err(io)?;
        self.0.write_all(&f, path, bytes).map_err(io)?;
        self.0.sync_all(&f, path).map_err(io)
    }

    /// Appends `bytes` to `path` after its first `at` bytes (cutting off anything past them,
    /// e.g. an append a crash interrupted) and fsyncs it.
    pub(crate) fn append_synced(&self, path: &Path, at: u64, bytes: &[u8]) -> Result<()> {
        let io = |e| EngineError::io(path, e);
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len != at {
            let f = self.0.open_write(path, false).map_err(io)?;
            self.0.set_len(&f, path, at).map_err(io)?;
        }
        let f = self.0.open_append(path).map_err(io)?;
        self.0.write_all(&f, path, bytes).map_err(io)?;
        self.0.sync_all(&f, path).map_err(io)
    }

    /// A new file written in pieces through the seam (`SeamWriter::sync_all` to make it durable).
    pub(crate) fn create_streamed(&self, path: &Path) -> Result<SeamWriter<'_>> {
        let f: File = self.0.create(path).map_err(|e| EngineError::io(path, e))?;
        Ok(SeamWriter::new(&*self.0, f, path))
    }

    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.0.sync_dir(dir).map_err(|e| EngineError::io(dir, e))
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.0.rename(from, to).map_err(|e| EngineError::io(to, e))
    }

    pub(crate) fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_file(path)
    }

    pub(crate) fn remove_dir_all(&self, dir: &Path) -> Result<()> {
        self.0
            .remove_dir_all(dir)
            .map_err(|e| EngineError::io(dir, e))
    }

    /// Creates `rel` under `root` one directory at a time, fsyncing each parent whose entry
    /// was added.
    pub(crate) fn create_dirs_durably(&self, root: &Path, rel: &Path) -> Result<()> {
        let mut cur = root.to_path_buf();
        for comp in rel.components() {
            let parent = cur.clone();
            cur.push(comp);
            if !cur.exists() {
                self.0
                    .create_dir(&cur)
                    .map_err(|e| EngineError::io(&cur, e))?;
                self.sync_dir(&parent)?;
            }
        }
        Ok(())
    }
}
