//! [`SeamWriter`]: an `io::Write` over a file whose writes go through the seam, for encoders
//! that write in pieces (the Parquet writer of a segment).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::FileSystem;

/// Writes to `file` through `fs` (each `write` is one seam `write_all`).
#[derive(Debug)]
pub struct SeamWriter<'a> {
    fs: &'a dyn FileSystem,
    file: File,
    path: PathBuf,
    written: u64,
}

impl<'a> SeamWriter<'a> {
    pub fn new(fs: &'a dyn FileSystem, file: File, path: &Path) -> Self {
        Self {
            fs,
            file,
            path: path.to_path_buf(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// `fsync` through the seam; the writer stays usable.
    pub fn sync_all(&self) -> io::Result<()> {
        self.fs.sync_all(&self.file, &self.path)
    }
}

impl io::Write for SeamWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs.write_all(&self.file, &self.path, buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
