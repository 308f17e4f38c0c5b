//! [`FaultFs`]: the real file system with a recorder, chosen failures and power cuts, for
//! tests of what reaches disk (TESTPLAN WAL-01/02/03/07/08/09/10).
//!
//! Power-cut model: a file's data is durable up to its length at its last `fsync` /
//! `fdatasync`; a creation, removal or rename is durable once its directory is fsynced.
//! [`FaultFs::power_cut`] puts the files back in that state (truncates unsynced data, restores
//! bytes cut by an unsynced `set_len`, undoes unsynced creations, removals and renames) and
//! switches the file system off: every later call fails with EIO, as on a dead machine, so
//! threads still running cannot touch the files. Open the log again with a new `FaultFs` (or
//! [`RealFs`](super::RealFs)) to see what survived.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::{FileSystem, RealFs};

/// The kinds of calls, for faults and the recorded order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Create,
    Write,
    SyncData,
    SyncAll,
    SetLen,
    Remove,
    Rename,
    SyncDir,
}

/// One call that succeeded, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub path: PathBuf,
    /// Bytes written, or the new length for `SetLen`.
    pub len: u64,
}

/// A failure or stall to inject into the next matching call(s).
#[derive(Debug, Clone)]
pub struct Fault {
    kind: OpKind,
    errno: Option<i32>,
    stall: Option<Duration>,
    path_contains: Option<String>,
    skip: u32,
    sticky: bool,
}

impl Fault {
    /// The next `kind` call fails with this OS error (`libc::EIO`, `libc::ENOSPC`, …).
    pub fn error(kind: OpKind, errno: i32) -> Self {
        Self {
            kind,
            errno: Some(errno),
            stall: None,
            path_contains: None,
            skip: 0,
            sticky: false,
        }
    }
    /// The next `kind` call takes `d` longer (a slow or stalled disk), then succeeds.
    pub fn stall(kind: OpKind, d: Duration) -> Self {
        Self {
            kind,
            errno: None,
            stall: Some(d),
            path_contains: None,
            skip: 0,
            sticky: false,
        }
    }
    /// Only calls on a path containing `s`.
    pub fn on_path(mut self, s: &str) -> Self {
        self.path_contains = Some(s.to_string());
        self
    }
    /// Lets `n` matching calls through first.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }
    /// Every matching call from then on, not just the next.
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }
}

#[derive(Debug, Default)]
struct FileState {
    /// Length known durable.
    synced_len: u64,
    /// Bytes cut by a `set_len` not yet fsynced: (offset, bytes).
    cut: Option<(u64, Vec<u8>)>,
}

/// A change to a directory not yet made durable by fsyncing it.
#[derive(Debug)]
enum DirChange {
    Created(PathBuf),
    Removed {
        path: PathBuf,
        kept: PathBuf,
    },
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<Vec<u8>>,
    },
}

impl DirChange {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirChange::Created(p) | DirChange::Removed { path: p, .. } => p.parent(),
            DirChange::Renamed { to, .. } => to.parent(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    ops: Vec<Op>,
    faults: Vec<Fault>,
    files: HashMap<PathBuf, FileState>,
    pending: Vec<DirChange>,
    off: bool,
    kept_seq: u64,
    /// Durable-IO calls made so far (each call to a mutating method counts one).
    step: u64,
    /// The power goes out at (instead of) the n-th call from now on a path containing the
    /// string (any path if none).
    cut: Option<(u64, Option<String>)>,
}

/// What a power cut undid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PowerCutReport {
    pub bytes_dropped: u64,
    pub creations_undone: usize,
    pub removals_undone: usize,
    pub renames_undone: usize,
}

/// The real file system with a recorder, injected failures and power cuts.
#[derive(Debug, Default)]
pub struct FaultFs {
    real: RealFs,
    state: Mutex<State>,
    /// Held (shared) by every call for its whole duration and (exclusively) by a power cut,
    /// so a cut never lands in the middle of a call: a call either completed before the
    /// power went out (and counts as such) or fails.
    power: RwLock<()>,
    abort_on_cut: AtomicBool,
    /// Set: calls are not kept in `ops` (a long-running node would grow the list forever).
    unrecorded: AtomicBool,
}

fn off() -> io::Error {
    io::Error::other("the machine is off (simulated power cut)")
}

fn len_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl FaultFs {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn inject(&self, f: Fault) {
        self.state.lock().faults.push(f);
    }

    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// The calls that succeeded, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.state.lock().ops.clone()
    }

    pub fn clear_ops(&self) {
        self.state.lock().ops.clear();
    }

    pub fn is_off(&self) -> bool {
        self.state.lock().off
    }

    /// The power goes out at the `n`-th durable-IO call from now (1 = the next one): that
    /// call fails and [`FaultFs::power_cut`] is applied. For cutting at every step in turn.
    pub fn cut_at(&self, n: u64) {
        self.cut_at_matching(n, None);
    }

    /// Like [`FaultFs::cut_at`], counting only calls on a path containing `path`.
    pub fn cut_at_matching(&self, n: u64, path: Option<String>) {
        self.state.lock().cut = Some((n.max(1), path));
    }

    /// After a power cut the process aborts (as the machine would stop): for a node that
    /// obeys a [`FaultScript`](crate::FaultScript).
    /// Stops keeping the calls in [`FaultFs::ops`] (for a long-running process).
    pub fn stop_recording(&self) {
        self.unrecorded.store(true, Ordering::Relaxed);
    }

    pub fn abort_on_power_cut(&self) {
        self.abort_on_cut.store(true, Ordering::SeqCst);
    }

    /// Durable-IO calls made so far.
    pub fn steps(&self) -> u64 {
        self.state.lock().step
    }

    /// Admits a call: holds the power lock for the call's duration, unless the power is off,
    /// goes off now (`cut_at`), or a fault fails it.
    fn gate(&self, kind: OpKind, path: &Path) -> io::Result<RwLockReadGuard<'_, ()>> {
        let g = self.power.read();
        match self.before(kind, path) {
            Ok(false) => Ok(g),
            Ok(true) => {
                drop(g);
                self.power_cut()?;
                Err(off())
            }
            Err(e) => Err(e),
        }
    }

    /// Before a call: off, the cut point (`Ok(true)`), a matching fault (error or stall), or
    /// go ahead.
    fn before(&self, kind: OpKind, path: &Path) -> io::Result<bool> {
        let stall = {
            let mut st = self.state.lock();
            if st.off {
                return Err(off());
            }
            st.step += 1;
            let p = path.to_string_lossy();
            if let Some((left, on)) = &mut st.cut {
                if on.as_deref().is_none_or(|s| p.contains(s)) {
                    *left -= 1;
                    if *left == 0 {
                        st.cut = None;
                        return Ok(true);
                    }
                }
            }
            let hit = st.faults.iter().position(|f| {
                f.kind == kind && f.path_contains.as_deref().is_none_or(|s| p.contains(s))
            });
            let Some(i) = hit else { return Ok(false) };
            if st.faults[i].skip > 0 {
                st.faults[i].skip -= 1;
                return Ok(false);
            }
            let f = if st.faults[i].sticky {
                st.faults[i].clone()
            } else {
                st.faults.remove(i)
            };
            if let Some(errno) = f.errno {
                return Err(io::Error::from_raw_os_error(errno));
            }
            f.stall
        };
        if let Some(d) = stall {
            std::thread::sleep(d);
        }
        Ok(false)
    }

    fn record(&self, st: &mut State, kind: OpKind, path: &Path, len: u64) {
        if self.unrecorded.load(Ordering::Relaxed) {
            return;
        }
        st.ops.push(Op {
            kind,
            path: path.to_path_buf(),
            len,
        });
    }

    /// After a successful fsync of `file`: everything in it is durable now.
    fn synced(&self, file: &File, path: &Path, kind: OpKind) -> io::Result<()> {
        let mut st = self.state.lock();
        Self::track(&mut st, path);
        let len = file.metadata()?.len();
        if let Some(f) = st.files.get_mut(path) {
            f.synced_len = len;
            f.cut = None;
        }
        self.record(&mut st, kind, path, len);
        Ok(())
    }

    /// Tracks a file already on disk from its first use: what is there counts as durable.
    fn track(st: &mut State, path: &Path) {
        if !st.files.contains_key(path) {
            let synced_len = len_of(path);
            st.files.insert(
                path.to_path_buf(),
                FileState {
                    synced_len,
                    cut: None,
                },
            );
        }
    }

    /// Moves the tracked state of `from` (a file, or a directory and everything under it) to
    /// `to`.
    fn rekey(st: &mut State, from: &Path, to: &Path) {
        let moved: Vec<PathBuf> = st
            .files
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for p in moved {
            if let Some(s) = st.files.remove(&p) {
                let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
                let np = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
                st.files.insert(np, s);
            }
        }
    }

    /// Drops everything not yet durable and switches the file system off (see the module).
    pub fn power_cut(&self) -> io::Result<PowerCutReport> {
        let _no_calls = self.power.write();
        let mut st = self.state.lock();
        st.off = true;
        let mut report = PowerCutReport::default();
        for change in std::mem::take(&mut st.pending).into_iter().rev() {
            match change {
                DirChange::Created(p) => {
                    if p.is_dir() {
                        let _ = std::fs::remove_dir_all(&p);
                        st.files.retain(|f, _| !f.starts_with(&p));
                    } else {
                        let _ = std::fs::remove_file(&p);
                        st.files.remove(&p);
                    }
                    report.creations_undone += 1;
                }
                DirChange::Removed { path, kept } => {
                    std::fs::rename(&kept, &path)?;
                    report.removals_undone += 1;
                }
                DirChange::Renamed { from, to, replaced } => {
                    std::fs::rename(&to, &from)?;
                    if let Some(bytes) = replaced {
                        std::fs::write(&to, bytes)?;
                    }
                    Self::rekey(&mut st, &to, &from);
                    report.renames_undone += 1;
                }
            }
        }
        for (path, f) in st.files.iter_mut() {
            if !path.exists() {
                continue;
            }
            let len = len_of(path);
            if let Some((at, bytes)) = f.cut.take() {
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                file.set_len(at)?;
                let mut w = &file;
                std::io::Seek::seek(&mut w, std::io::SeekFrom::Start(at))?;
                w.write_all(&bytes)?;
                file.sync_all()?;
            } else if len > f.synced_len {
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                file.set_len(f.synced_len)?;
                file.sync_all()?;
                report.bytes_dropped += len - f.synced_len;
            }
        }
        if self.abort_on_cut.load(Ordering::SeqCst) {
            eprintln!("simulated power cut: {report:?}; the process stops now");
            std::process::abort();
        }
        Ok(report)
    }
}

impl FileSystem for FaultFs {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        let _g = self.gate(OpKind::Create, path)?;
        let f = self.real.create_new(path)?;
        let mut st = self.state.lock();
        st.files.insert(path.to_path_buf(), FileState::default());
        st.pending.push(DirChange::Created(path.to_path_buf()));
        self.record(&mut st, OpKind::Create, path, 0);
        Ok(f)
    }
    fn open_append(&self, path: &Path) -> io::Result<File> {
        let _g = self.power.read();
        if self.state.lock().off {
            return Err(off());
        }
        let f = self.real.open_append(path)?;
        Self::track(&mut self.state.lock(), path);
        Ok(f)
    }
    fn open_write(&self, path: &Path, truncate: bool) -> io::Result<File> {
        if truncate {
            // Truncating on open is a length change like set_len.
            let _g = self.gate(OpKind::SetLen, path)?;
            let mut st = self.state.lock();
            Self::track(&mut st, path);
            let old = std::fs::read(path)?;
            if let Some(f) = st.files.get_mut(path) {
                if f.cut.is_none() && !old.is_empty() {
                    f.cut = Some((0, old));
                }
            }
            self.record(&mut st, OpKind::SetLen, path, 0);
        } else if self.state.lock().off {
            return Err(off());
        }
        let _g = self.power.read();
        let f = self.real.open_write(path, truncate)?;
        Self::track(&mut self.state.lock(), path);
        Ok(f)
    }
    fn create(&self, path: &Path) -> io::Result<File> {
        let _g = self.gate(OpKind::Create, path)?;
        let existed = path.exists();
        let old = if existed {
            std::fs::read(path).ok()
        } else {
            None
        };
        let f = self.real.create(path)?;
        let mut st = self.state.lock();
        if existed {
            Self::track(&mut st, path);
            if let (Some(fs), Some(old)) = (st.files.get_mut(path), old) {
                if fs.cut.is_none() && !old.is_empty() {
                    fs.cut = Some((0, old));
                }
            }
        } else {
            st.files.insert(path.to_path_buf(), FileState::default());
            st.pending.push(DirChange::Created(path.to_path_buf()));
        }
        self.record(&mut st, OpKind::Create, path, 0);
        Ok(f)
    }
    fn write_all(&self, file: &File, path: &Path, buf: &[u8]) -> io::Result<()> {
        let _g = self.gate(OpKind::Write, path)?;
        Self::track(&mut self.state.lock(), path);
        self.real.write_all(file, path, buf)?;
        self.record(
            &mut self.state.lock(),
            OpKind::Write,
            path,
            buf.len() as u64,
        );
        Ok(())
    }
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        let _g = self.gate(OpKind::SyncData, path)?;
        self.real.sync_data(file, path)?;
        self.synced(file, path, OpKind::SyncData)
    }
    fn sync_all(&self, file: &File, path: &Path) -> io::Result<()> {
        let _g = self.gate(OpKind::SyncAll, path)?;
        self.real.sync_all(file, path)?;
        self.synced(file, path, OpKind::SyncAll)
    }
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let _g = self.gate(OpKind::SetLen, path)?;
        let mut st = self.state.lock();
        Self::track(&mut st, path);
        let cur = file.metadata()?.len();
        if len < cur {
            let bytes = std::fs::read(path)?;
            if let Some(f) = st.files.get_mut(path) {
                match &mut f.cut {
                    // An earlier unsynced cut at or after this one is inside the new one.
                    Some((at, old)) if *at >= len => {
                        let mut all = bytes[len as usize..].to_vec();
                        all.truncate((*at - len) as usize);
                        all.extend_from_slice(old);
                        *at = len;
                        *old = all;
                    }
                    Some(_) => {}
                    None => f.cut = Some((len, bytes[len as usize..].to_vec())),
                }
            }
        }
        self.real.set_len(file, path, len)?;
        self.record(&mut st, OpKind::SetLen, path, len);
        Ok(())
    }
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let _g = self.gate(OpKind::Create, dir)?;
        self.real.create_dir(dir)?;
        let mut st = self.state.lock();
        st.pending.push(DirChange::Created(dir.to_path_buf()));
        self.record(&mut st, OpKind::Create, dir, 0);
        Ok(())
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.remove_file(dir)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let _g = self.gate(OpKind::Remove, path)?;
        let mut st = self.state.lock();
        let created = st
            .pending
            .iter()
            .position(|c| matches!(c, DirChange::Created(p) if p == path));
        if let Some(i) = created {
            // Never durable: gone either way.
            st.pending.remove(i);
            if path.is_dir() {
                self.real.remove_dir_all(path)?;
                st.files.retain(|f, _| !f.starts_with(path));
            } else {
                self.real.remove_file(path)?;
            }
        } else {
            st.kept_seq += 1;
            let kept = path.with_extension(format!("faultfs-removed-{}", st.kept_seq));
            std::fs::rename(path, &kept)?;
            st.pending.push(DirChange::Removed {
                path: path.to_path_buf(),
                kept,
            });
        }
        self.record(&mut st, OpKind::Remove, path, 0);
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _g = self.gate(OpKind::Rename, to)?;
        let replaced = if to.is_file() {
            Some(std::fs::read(to)?)
        } else {
            None
        };
        self.real.rename(from, to)?;
        let mut st = self.state.lock();
        Self::rekey(&mut st, from, to);
        st.pending.push(DirChange::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
        });
        self.record(&mut st, OpKind::Rename, to, 0);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let _g = self.gate(OpKind::SyncDir, dir)?;
        self.real.sync_dir(dir)?;
        let mut st = self.state.lock();
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.pending)
            .into_iter()
            .partition(|c| c.dir() == Some(dir));
        st.pending = keep;
        for c in done {
            if let DirChange::Removed { kept, .. } = c {
                if kept.is_dir() {
                    let _ = std::fs::remove_dir_all(kept);
                } else {
                    let _ = std::fs::remove_file(kept);
                }
            }
        }
        self.record(&mut st, OpKind::SyncDir, dir, 0);
        Ok(())
    }
}
