//! The thin openraft adapter: [`RaftLogStore`] implements `RaftLogStorage` over [`Wal`].
//!
//! Entries are encoded with bincode into one WAL record each. The vote, the purge point and
//! (lazily) the committed log id live in the `raft-meta` [`MetaFile`] next to the segments.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Result as WalResult, WalError};
use crate::log::{Wal, WalOptions};
use crate::meta::MetaFile;
use crate::recent::Recent;

/// How often the committed log id is persisted (it is only a hint for faster restart and for
/// detecting a log that lost its newest segment).
const COMMITTED_PERSIST_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
struct RaftMeta<C: RaftTypeConfig> {
    vote: Option<Vote<C::NodeId>>,
    last_purged: Option<LogId<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
}

impl<C: RaftTypeConfig> Default for RaftMeta<C> {
    fn default() -> Self {
        Self {
            vote: None,
            last_purged: None,
            committed: None,
        }
    }
}

struct MetaState<C: RaftTypeConfig> {
    durable: RaftMeta<C>,
    committed: Option<LogId<C::NodeId>>,
    committed_written_at: Option<Instant>,
}

/// openraft log storage backed by a [`Wal`]. Clones share the same log.
pub struct RaftLogStore<C: RaftTypeConfig> {
    wal: Wal,
    meta_file: MetaFile,
    meta: Arc<Mutex<MetaState<C>>>,
    /// The newest entries as values, so reading them back copies no payload.
    recent: Arc<Mutex<Recent<C::Entry>>>,
}

impl<C: RaftTypeConfig> Clone for RaftLogStore<C> {
    fn clone(&self) -> Self {
        Self {
            wal: self.wal.clone(),
            meta_file: self.meta_file.clone(),
            meta: self.meta.clone(),
            recent: self.recent.clone(),
        }
    }
}

impl<C> RaftLogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::Entry: Clone,
{
    /// Opens the log in `dir`. Fails if a segment is corrupt, or if the log ends before an
    /// index that was recorded as committed (a lost segment must never go unnoticed).
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> WalResult<Self> {
        Self::open_with(dir, opts, std::sync::Arc::new(crate::RealFs))
    }

    /// [`RaftLogStore::open`] with the log's and the vote file's writes going through `fs`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: WalOptions,
        fs: std::sync::Arc<dyn crate::FileSystem>,
    ) -> WalResult<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let meta_file = MetaFile::with_fs(dir.join("raft-meta"), fs.clone());
        let durable: RaftMeta<C> = meta_file.load()?.unwrap_or_default();
        let wal = Wal::open_with(dir, opts, durable.last_purged.as_ref().map(|l| l.index), fs)?;
        if let Some(c) = &durable.committed {
            let end = wal.range().end;
            if end <= c.index {
                return Err(WalError::Gap(format!(
                    "the log in {} ends before index {} but index {} was committed; \
                     a segment is missing or was truncated. Restore this node from a replica \
                     (see docs/operations.md) instead of starting it with a shorter log",
                    dir.display(),
                    end,
                    c.index
                )));
            }
        }
        Ok(Self {
            wal,
            meta_file,
            meta: Arc::new(Mutex::new(MetaState {
                committed: durable.committed.clone(),
                durable,
                committed_written_at: None,
            })),
            recent: Arc::new(Mutex::new(Recent::new())),
        })
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    fn store_meta(&self, f: impl FnOnce(&mut RaftMeta<C>)) -> WalResult<()> {
        let mut m = self.meta.lock();
        let mut next = m.durable.clone();
        f(&mut next);
        self.meta_file.store(&next)?;
        m.durable = next;
        Ok(())
    }

    async fn wait(&self, op: impl FnOnce(crate::log::Done) -> WalResult<()>) -> WalResult<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        op(Box::new(move |r| {
            let _ = tx.send(r);
        }))?;
        rx.await
            .map_err(|_| WalError::WriterStopped("writer dropped a request".into()))?
    }

    fn decode(index: u64, bytes: &[u8]) -> Result<Entry<C>, StorageError<C::NodeId>> {
        bincode::deserialize(bytes)
            .map_err(|e| StorageIOError::read_log_at_index(index, AnyError::new(&e)).into())
    }
}

fn to_range(range: &impl RangeBounds<u64>) -> std::ops::Range<u64> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    start..end
}

impl<C> RaftLogReader<C> for RaftLogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let range = to_range(&range);
        let (cached_from, cached) = self.recent.lock().get(&range);
        if cached_from == range.start {
            return Ok(cached);
        }
        let records = self
            .wal
            .read(range.start..cached_from)
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        let mut out = records
            .iter()
            .map(|(i, b)| Self::decode(*i, b))
            .collect::<Result<Vec<_>, _>>()?;
        out.extend(cached);
        Ok(out)
    }
}

impl<C> RaftLogStorage<C> for RaftLogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::Entry: Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged = self.meta.lock().durable.last_purged.clone();
        let last = if let Some(idx) = self.wal.last_index() {
            let recs = self
                .wal
                .read(idx..idx + 1)
                .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            match recs.first() {
                Some((i, b)) => Some(Self::decode(*i, b)?.log_id),
                None => last_purged.clone(),
            }
        } else {
            last_purged.clone()
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // Serialize with earlier appends: the vote is written after they are durable.
        let vote = vote.clone();
        self.wait(|d| self.wal.barrier(d))
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.store_meta(|m| m.vote = Some(vote))
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.meta.lock().durable.vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let due = {
            let mut m = self.meta.lock();
            m.committed = committed.clone();
            m.committed_written_at
                .is_none_or(|t| t.elapsed() >= COMMITTED_PERSIST_INTERVAL)
        };
        if due {
            self.store_meta(|m| m.committed = committed)
                .map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
            self.meta.lock().committed_written_at = Some(Instant::now());
        }
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.meta.lock().committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Entries at or below the purge point are already covered by the state machine's
        // snapshot; storing them would only create records nobody may read.
        let purged = self
            .meta
            .lock()
            .durable
            .last_purged
            .as_ref()
            .map(|l| l.index);
        let mut first = None;
        let mut payloads = Vec::new();
        let mut values = Vec::new();
        for entry in entries {
            if purged.is_some_and(|p| entry.log_id.index <= p) {
                continue;
            }
            first.get_or_insert(entry.log_id.index);
            let bytes = bincode::serialize(&entry).map_err(|e| {
                StorageIOError::write_log_entry(entry.log_id.clone(), AnyError::new(&e))
            })?;
            values.push((entry, bytes.len()));
            payloads.push(Bytes::from(bytes));
        }
        let Some(first) = first else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        // openraft truncates a conflicting suffix before appending; a caller that appends over
        // existing entries directly gets the same: the old suffix is durably removed first.
        if self.wal.next_index().is_some_and(|next| first < next) {
            self.wait(|d| self.wal.truncate(first, d))
                .await
                .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        }
        // Cached before the log's in-memory tail takes the records, so the cache stays a
        // suffix of the log; undone if the log refuses the append.
        self.recent.lock().extend(first, values);
        self.wal
            .append(
                first,
                payloads,
                Box::new(move |r| {
                    callback.log_io_completed(r.map_err(std::io::Error::other));
                }),
            )
            .map_err(|e| {
                self.recent.lock().truncate(first);
                StorageIOError::write_logs(AnyError::new(&e)).into()
            })
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.recent.lock().truncate(log_id.index);
        self.wait(|d| self.wal.truncate(log_id.index, d))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // Record the purge point first: after a crash the log must not claim entries it dropped.
        let upto = log_id.index;
        self.store_meta(|m| m.last_purged = Some(log_id))
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.recent.lock().purge(upto);
        self.wait(|d| self.wal.purge(upto, d))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}
