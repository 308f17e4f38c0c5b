//! The durable ceiling: the parse-only server plus the cheapest durable acknowledgement this
//! stack can give. Every valid body is appended to one file and answered only after a durable
//! write that covers it; concurrent requests share one durable write (group commit). No Raft,
//! no log format, no storage engine, no dedupe, no auth: what is left is HTTP, parsing and the
//! disk, so the appliance's distance to it is the cost of everything it adds.
//!
//! Three ways to run the group commit (`--commit`; `unmogrowp-bench ingest` uses `direct`):
//! - `thread`: handlers queue their bytes and a dedicated thread writes and fsyncs each group,
//!   as the appliance's WAL does;
//! - `inline`: a request that finds no fsync running leads: it writes and fsyncs the queued
//!   group itself on its tokio worker, then hands the group queued meanwhile to that group's
//!   first request (no thread hand-off, at the price of blocking a worker during each fsync);
//! - `direct`: as `thread`, with `O_DIRECT | O_DSYNC` writes instead of append + `fdatasync`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::servers::{accepted_answer, error_answer, parse_body, ParseOutcome};

/// Group commit mode of the durable ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Commit {
    Thread,
    Inline,
    /// As `thread`, but each group is one `O_DIRECT | O_DSYNC` write over blocks written
    /// before (the file is filled with zeros first and reused from the start when full), which
    /// is this disk's cheapest durable write (`docs/experiments/fsync-modes.py`). Each group is
    /// padded to whole 4 KiB blocks.
    Direct,
}

/// The file is cut back to empty once it holds this much, so a long run does not fill the disk.
const FILE_LIMIT: u64 = 256 << 20;

type Outcome = Result<(), String>;

/// What a queued request is told: its bytes are durable (or failed), or it is the next leader
/// and must commit the group it is handed (`inline` mode).
enum Msg {
    Done(Outcome),
    Lead(Group),
}

#[derive(Default)]
struct Group {
    bytes: Vec<u8>,
    waiters: Vec<oneshot::Sender<Msg>>,
}

struct Queue {
    group: Group,
    /// `inline` mode: some request is committing; later ones only queue.
    leader: bool,
}

struct Sink {
    queue: Mutex<Queue>,
    wake: Condvar,
    file: Mutex<LogFile>,
    commit: Commit,
}

/// Where groups are written: the file, the next write offset, and (direct mode) an aligned
/// staging buffer.
struct LogFile {
    file: File,
    offset: u64,
    aligned: Option<AlignedBuf>,
}

/// A 4 KiB-aligned buffer for `O_DIRECT` writes.
struct AlignedBuf {
    raw: Vec<u8>,
}

impl AlignedBuf {
    /// Copies `bytes` into an aligned slice padded with zeros to whole blocks.
    fn stage(&mut self, bytes: &[u8]) -> &[u8] {
        let len = bytes.len().div_ceil(BLOCK) * BLOCK;
        if self.raw.len() < len + BLOCK {
            self.raw = vec![0u8; len + BLOCK];
        }
        let start = self.raw.as_ptr().align_offset(BLOCK);
        let out = &mut self.raw[start..start + len];
        out[..bytes.len()].copy_from_slice(bytes);
        out[bytes.len()..].fill(0);
        out
    }
}

const BLOCK: usize = 4096;

impl Sink {
    fn open(dir: &Path, commit: Commit) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("durable.log");
        let target = if commit == Commit::Direct {
            // Written once in full so that later writes overwrite allocated, written blocks.
            let mut f = File::create(&path)?;
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..(DIRECT_FILE >> 20) {
                f.write_all(&zeros)?;
            }
            f.sync_all()?;
            use std::os::unix::fs::OpenOptionsExt;
            LogFile {
                file: OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
                    .open(&path)?,
                offset: 0,
                aligned: Some(AlignedBuf { raw: Vec::new() }),
            }
        } else {
            LogFile {
                file: OpenOptions::new().create(true).append(true).open(&path)?,
                offset: 0,
                aligned: None,
            }
        };
        File::open(dir)?.sync_all()?;
        let sink = Arc::new(Self {
            queue: Mutex::new(Queue {
                group: Group::default(),
                leader: false,
            }),
            wake: Condvar::new(),
            file: Mutex::new(target),
            commit,
        });
        if commit != Commit::Inline {
            let s = sink.clone();
            std::thread::Builder::new()
                .name("durable-writer".into())
                .spawn(move || s.writer_loop())?;
        }
        Ok(sink)
    }

    /// Returns once `body` is fsynced (or the write failed).
    async fn append(&self, body: &[u8]) -> Outcome {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut q = self.queue.lock();
            let was_empty = q.group.waiters.is_empty();
            q.group.bytes.extend_from_slice(body);
            q.group.waiters.push(tx);
            match self.commit {
                Commit::Thread | Commit::Direct => {
                    if was_empty {
                        self.wake.notify_one();
                    }
                    None
                }
                Commit::Inline if !q.leader => {
                    q.leader = true;
                    Some(std::mem::take(&mut q.group))
                }
                Commit::Inline => None,
            }
        };
        let mut group = match lead {
            Some(g) => g,
            None => match rx.await {
                Ok(Msg::Done(r)) => return r,
                Ok(Msg::Lead(g)) => g,
                Err(_) => return Err("writer gone".into()),
            },
        };
        // This request leads: commit its group, then hand the next one to its first member.
        let res = self.commit_group(std::mem::take(&mut group));
        let mut q = self.queue.lock();
        loop {
            if q.group.waiters.is_empty() {
                q.leader = false;
                break;
            }
            let mut next = std::mem::take(&mut q.group);
            let first = next.waiters.remove(0);
            match first.send(Msg::Lead(next)) {
                Ok(()) => break,
                // That request was abandoned: offer the group to the one after it.
                Err(Msg::Lead(g)) => q.group = g,
                Err(Msg::Done(_)) => unreachable!("sent Lead"),
            }
        }
        res
    }

    fn writer_loop(&self) {
        loop {
            let group = {
                let mut q = self.queue.lock();
                while q.group.waiters.is_empty() {
                    self.wake.wait(&mut q);
                }
                std::mem::take(&mut q.group)
            };
            let _ = self.commit_group(group);
        }
    }

    /// Writes and fsyncs `group`, tells its waiters, and returns the outcome.
    fn commit_group(&self, group: Group) -> Outcome {
        let res = write_durably(&mut self.file.lock(), &group.bytes).map_err(|e| e.to_string());
        for w in group.waiters {
            let _ = w.send(Msg::Done(res.clone()));
        }
        res
    }
}

/// Size of the pre-written file of `direct` mode.
const DIRECT_FILE: u64 = 64 << 20;

fn write_durably(t: &mut LogFile, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    match &mut t.aligned {
        None => {
            if t.offset + bytes.len() as u64 > FILE_LIMIT {
                t.file.set_len(0)?;
                t.offset = 0;
            }
            t.file.write_all(bytes)?;
            t.file.sync_data()?;
        }
        Some(buf) => {
            let staged = buf.stage(bytes);
            if staged.len() as u64 > DIRECT_FILE {
                return Err(std::io::Error::other(
                    "group larger than the direct-mode file",
                ));
            }
            if t.offset + staged.len() as u64 > DIRECT_FILE {
                t.offset = 0;
            }
            // O_DSYNC: the write returns once the data is on stable storage.
            t.file.write_all_at(staged, t.offset)?;
            t.offset += staged.len() as u64 - bytes.len() as u64;
        }
    }
    t.offset += bytes.len() as u64;
    Ok(())
}

pub(crate) async fn serve(addr: SocketAddr, dir: &Path, commit: Commit) -> anyhow::Result<()> {
    let sink = Sink::open(dir, commit)?;
    let app = Router::new().route(
        "/v1/events",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let ParseOutcome::Valid { accepted, rejected } =
                    parse_body(&headers, body.clone()).await
                else {
                    return error_answer(StatusCode::BAD_REQUEST, "bad");
                };
                match sink.append(&body).await {
                    Ok(()) => accepted_answer(accepted, &rejected),
                    Err(_) => error_answer(StatusCode::INTERNAL_SERVER_ERROR, "io"),
                }
            }
        }),
    );
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_groups_are_aligned_and_zero_padded() {
        let mut buf = AlignedBuf { raw: Vec::new() };
        for len in [1usize, 4095, 4096, 4097, 10_000] {
            let bytes = vec![7u8; len];
            let staged = buf.stage(&bytes);
            assert_eq!(staged.as_ptr() as usize % BLOCK, 0);
            assert_eq!(staged.len() % BLOCK, 0);
            assert!(staged.len() >= len && staged.len() < len + BLOCK);
            assert!(staged[..len].iter().all(|&b| b == 7));
            assert!(staged[len..].iter().all(|&b| b == 0));
        }
    }

    /// Every acknowledged body is in the file, in every commit mode, with 64 concurrent
    /// requests (so groups form and, inline, leadership is handed on).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_body_is_in_the_file() {
        for commit in [Commit::Thread, Commit::Inline, Commit::Direct] {
            let dir = tempfile::tempdir().unwrap();
            let sink = Sink::open(dir.path(), commit).unwrap();
            let tasks: Vec<_> = (0..64)
                .map(|t| {
                    let sink = sink.clone();
                    tokio::spawn(async move {
                        for i in 0..20 {
                            let body = format!("<{t}:{i}>");
                            sink.append(body.as_bytes()).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let data = std::fs::read(dir.path().join("durable.log")).unwrap();
            let text = String::from_utf8_lossy(&data);
            for t in 0..64 {
                for i in 0..20 {
                    assert!(
                        text.contains(&format!("<{t}:{i}>")),
                        "{commit:?}: <{t}:{i}> missing"
                    );
                }
            }
        }
    }
}
