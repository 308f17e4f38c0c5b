//! [`FaultScript`]: disk faults a running process obeys, written to a file by a test (a
//! test-only flag of the server, never set in production). The watcher reads the file, applies
//! it to the process's [`FaultFs`] and deletes it, so a test knows it took effect once the file
//! is gone. One command per line, `#` starts a comment:
//!
//! ```text
//! fail fsync eio                 # the next fsync/fdatasync fails with EIO
//! fail write enospc sticky       # every write fails with ENOSPC until `clear`
//! fail fsync eio path=segments after=3
//! stall fsync 200ms sticky       # every fsync takes 200 ms longer
//! power-cut                      # drop everything not fsynced, then the process dies
//! power-cut after=40 path=segments   # the power goes out at the 40th durable call from now
//! clear                          # no more faults
//! ```
//!
//! `fsync` means both `fdatasync` and `fsync` of files and directories; `write` is a data
//! write; also `create`, `rename`, `remove`, `truncate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::fault::{Fault, FaultFs, OpKind};

/// A script line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fault script line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

#[derive(Debug, Clone)]
enum Command {
    Inject(Vec<Fault>),
    PowerCut { after: u64, path: Option<String> },
    Clear,
}

/// Parsed commands of one script file.
#[derive(Debug, Clone, Default)]
pub struct FaultScript {
    commands: Vec<Command>,
}

fn kinds(word: &str) -> Option<Vec<OpKind>> {
    Some(match word {
        "fsync" => vec![OpKind::SyncData, OpKind::SyncAll, OpKind::SyncDir],
        "write" => vec![OpKind::Write],
        "create" => vec![OpKind::Create],
        "rename" => vec![OpKind::Rename],
        "remove" => vec![OpKind::Remove],
        "truncate" => vec![OpKind::SetLen],
        _ => return None,
    })
}

fn errno(word: &str) -> Option<i32> {
    Some(match word {
        "eio" => 5,
        "enospc" => 28,
        "erofs" => 30,
        _ => return None,
    })
}

fn duration(word: &str) -> Option<Duration> {
    let ms = word.strip_suffix("ms")?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

impl FaultScript {
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let mut commands = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| ScriptError {
                line: i + 1,
                message,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let (mut path, mut after, mut sticky) = (None, 0u64, false);
            let mut plain = Vec::new();
            for w in &words {
                if let Some(p) = w.strip_prefix("path=") {
                    path = Some(p.to_string());
                } else if let Some(n) = w.strip_prefix("after=") {
                    after = n.parse().map_err(|_| err(format!("bad count {w:?}")))?;
                } else if *w == "sticky" {
                    sticky = true;
                } else {
                    plain.push(*w);
                }
            }
            let cmd = match plain.as_slice() {
                ["clear"] => Command::Clear,
                ["power-cut"] => Command::PowerCut { after, path },
                [verb @ ("fail" | "stall"), what, how] => {
                    let ks = kinds(what).ok_or_else(|| err(format!("unknown call {what:?}")))?;
                    let faults = ks
                        .into_iter()
                        .map(|k| {
                            let f = if *verb == "fail" {
                                errno(how)
                                    .map(|e| Fault::error(k, e))
                                    .ok_or_else(|| err(format!("unknown error {how:?}")))
                            } else {
                                duration(how)
                                    .map(|d| Fault::stall(k, d))
                                    .ok_or_else(|| err(format!("bad duration {how:?}")))
                            }?;
                            let f = f.after(after as u32);
                            let f = match &path {
                                Some(p) => f.on_path(p),
                                None => f,
                            };
                            Ok(if sticky { f.sticky() } else { f })
                        })
                        .collect::<Result<Vec<_>, ScriptError>>()?;
                    Command::Inject(faults)
                }
                _ => return Err(err(format!("unknown command {line:?}"))),
            };
            commands.push(cmd);
        }
        Ok(Self { commands })
    }

    /// Applies the commands to `fs` in order.
    pub fn apply(&self, fs: &FaultFs) {
        for c in &self.commands {
            match c {
                Command::Clear => fs.clear_faults(),
                Command::Inject(faults) => faults.iter().for_each(|f| fs.inject(f.clone())),
                Command::PowerCut { after, path } => match (after, path) {
                    (0, None) => {
                        let _ = fs.power_cut();
                    }
                    (n, p) => fs.cut_at_matching((*n).max(1), p.clone()),
                },
            }
        }
    }

    /// Polls `path` every `every`: a script found there is applied to `fs` and the file
    /// removed; a script that does not parse is reported on stderr and removed. Runs for the
    /// life of the process (a background thread).
    pub fn watch(fs: Arc<FaultFs>, path: PathBuf, every: Duration) {
        let spawned = std::thread::Builder::new()
            .name("disk-fault-script".into())
            .spawn(move || loop {
                Self::poll_once(&fs, &path);
                std::thread::sleep(every);
            });
        if let Err(e) = spawned {
            eprintln!("disk fault script watcher did not start: {e}");
        }
    }

    fn poll_once(fs: &FaultFs, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        match Self::parse(&text) {
            Ok(script) => {
                eprintln!("disk fault script {}: applying", path.display());
                let _ = std::fs::remove_file(path);
                script.apply(fs);
            }
            Err(e) => {
                eprintln!("disk fault script {}: {e}", path.display());
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_rejects_the_rest() {
        let s = FaultScript::parse(
            "fail fsync eio\nfail write enospc sticky path=wal\nstall fsync 200ms\n\
             power-cut after=3 path=segments # comment\nclear\n",
        )
        .unwrap();
        assert_eq!(s.commands.len(), 5);
        for bad in [
            "fail fsync",
            "fail disk eio",
            "stall fsync 2s",
            "jump",
            "power-cut after=x",
        ] {
            assert!(FaultScript::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_applied_script_fails_the_call_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        // `path=` matches a substring of the whole path: a name no temporary directory can
        // contain by chance (`path=b` failed whenever the random directory name held a `b`).
        FaultScript::parse("fail fsync enospc path=file-beta")
            .unwrap()
            .apply(&fs);
        let a = dir.path().join("file-alpha");
        let b = dir.path().join("file-beta");
        let fa = crate::FileSystem::create_new(&*fs, &a).unwrap();
        let fb = crate::FileSystem::create_new(&*fs, &b).unwrap();
        crate::FileSystem::sync_all(&*fs, &fa, &a).unwrap();
        let e = crate::FileSystem::sync_all(&*fs, &fb, &b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        crate::FileSystem::sync_all(&*fs, &fb, &b).unwrap();
    }
}
