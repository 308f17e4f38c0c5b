//! `disk`: the IO seam of the write-ahead log (`wal`) and the columnar engine (`engine`).
//! Every write, fsync, truncation, creation, rename and removal they make goes through a
//! [`FileSystem`]. Production uses [`RealFs`] (the calls themselves, nothing added); tests use
//! [`FaultFs`], which records the order of durable steps, fails chosen calls with an OS error
//! (EIO, ENOSPC) and can drop everything not yet fsynced, which is what a power cut does. Reads
//! stay plain `std::fs` (a power cut is applied to the files before they are opened again). In
//! the style of raft-engine's `env/`. A running node obeys a [`FaultScript`] file (test-only
//! flag), so process-level tests can fail or cut its disk from outside.

mod fault;
mod script;
mod writer;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub use fault::{Fault, FaultFs, Op, OpKind, PowerCutReport};
pub use script::{FaultScript, ScriptError};
pub use writer::SeamWriter;

/// The durable-IO calls of the log.
pub trait FileSystem: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `path` (it must not exist), opened for reading and appending.
    fn create_new(&self, path: &Path) -> io::Result<File>;
    /// Opens an existing file for reading and appending.
    fn open_append(&self, path: &Path) -> io::Result<File>;
    /// Opens an existing file for writing (truncation, header rewrite).
    fn open_write(&self, path: &Path, truncate: bool) -> io::Result<File>;
    /// Creates or replaces `path` for writing.
    fn create(&self, path: &Path) -> io::Result<File>;
    fn write_all(&self, file: &File, path: &Path, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()>;
    /// `fsync`.
    fn sync_all(&self, file: &File, path: &Path) -> io::Result<()>;
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsyncs a directory, making creations, renames and removals in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Creates one directory (its parent must exist); durable once the parent is fsynced.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it; durable once the parent is fsynced.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's file system, called directly.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).append(true).open(path)
    }
    fn open_write(&self, path: &Path, truncate: bool) -> io::Result<File> {
        OpenOptions::new().write(true).truncate(truncate).open(path)
    }
    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
    }
    fn write_all(&self, mut file: &File, _path: &Path, buf: &[u8]) -> io::Result<()> {
        file.write_all(buf)
    }
    fn sync_data(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }
    fn sync_all(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_all()
    }
    fn set_len(&self, file: &File, _path: &Path, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(dir)
    }
}
