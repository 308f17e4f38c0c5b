//! One mirror's loop on the leader: read the stored events after the cursor (from memory or
//! the segments, by log index), write them to the sink, then move the cursor through the log.
//!
//! At most one batch is in flight, so after a crash, a failover or a failed write the sink
//! holds at most that batch beyond the cursor. Its bounds are not known to the next attempt
//! (windows are cut anew), so everything up to a conservative bound is sent as `maybe_sent`
//! and the sink keeps it once: after a start, every entry applied by then; after a failed
//! write, up to the end of that batch; during a replay, up to the highest cursor ever.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use compat::{MirrorError, MirrorRow, MirrorSpec, Sink, SinkBatch, SinkErasure};
use engine::LogRange;

use super::Live;
use crate::cluster::{Cluster, ClusterError};
use crate::raft::mirror_book::{MirrorOp, MirrorOutcome, MirrorProgress};
use crate::raft::state_machine::Replicated;
use crate::raft::{Raft, Request, Response};

/// How often a caught-up mirror looks for new events.
const POLL: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run of entries without stored events is acknowledged when it is this long, or when the
/// cursor has not moved for [`SKIP_EMPTY_EVERY_MS`].
const SKIP_EMPTY_ENTRIES: u64 = 10_000;
const SKIP_EMPTY_EVERY_MS: i64 = 10_000;
/// A failure is re-reported through the log at most this often while its text stays the same.
const REPORT_EVERY_MS: i64 = 30_000;

pub(super) struct Runner {
    pub spec: MirrorSpec,
    pub raft: Raft,
    pub cluster: Cluster,
    pub engine: engine::Engine,
    pub book: Replicated,
    pub live: Arc<Live>,
    pub node_id: u64,
}

/// Why a runner stops: this node is not the leader any more (the supervisor starts it again
/// when it is).
struct NotLeader;

/// Rows of whole log entries `from..=to`.
struct Window {
    from: u64,
    to: u64,
    rows: Vec<MirrorRow>,
    /// The last entry applied when the window was read (stored events may follow `to`).
    applied: u64,
}

impl Runner {
    pub(super) async fn run(self) {
        let mut sink: Option<Sink> = None;
        // The previous runner (another node, or this one before a restart) may have written a
        // batch beyond the cursor before it stopped: at most up to what it had applied, which
        // is committed, so in this node's log.
        let mut maybe_sent = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let mut backoff = BACKOFF_MIN;
        let mut reported: Option<(i64, String)> = None;
        // Entries per read, adapted so a read holds about one batch.
        let mut span: u64 = 256;
        // The window after the one being sent, read meanwhile.
        let mut ahead: Option<Window> = None;
        loop {
            match self
                .step(&mut sink, &mut maybe_sent, &mut span, &mut ahead)
                .await
            {
                Ok(Some(wait)) => {
                    backoff = BACKOFF_MIN;
                    tokio::time::sleep(wait).await;
                }
                Ok(None) => backoff = BACKOFF_MIN,
                Err(Step::NotLeader(NotLeader)) => return,
                Err(Step::Failed(e)) => {
                    ahead = None;
                    let msg = self.spec.url.scrub(&e.to_string());
                    self.live.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(mirror = %self.spec.name, error = %msg, retry_in_ms = backoff.as_millis() as u64, "mirror write failed; retrying");
                    if let Err(NotLeader) = self.report(&msg, &mut reported).await {
                        return;
                    }
                    // The connection may be broken; the batch may have landed.
                    if matches!(
                        e,
                        MirrorError::Sink(_) | MirrorError::Schema(_) | MirrorError::Config(_)
                    ) {
                        sink = None;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// One read-and-send round. `Ok(Some(d))`: nothing to do, look again after `d`. While a
    /// window is sent, the next one is read (`ahead`), so reading the engine and waiting for
    /// the sink overlap.
    async fn step(
        &self,
        sink: &mut Option<Sink>,
        maybe_sent: &mut u64,
        span: &mut u64,
        ahead: &mut Option<Window>,
    ) -> Result<Option<Duration>, Step> {
        let Some(p) = self.book.mirror(&self.spec.name) else {
            self.propose(MirrorOp::Start {
                name: self.spec.name.clone(),
                from_now: self.spec.start_now,
            })
            .await?;
            return Ok(None);
        };
        if p.paused {
            return Ok(Some(Duration::from_millis(500)));
        }
        if sink.is_none() {
            *sink = Some(Sink::connect(&self.spec).await?);
            tracing::info!(mirror = %self.spec.name, url = %self.spec.url, "mirror connected to its sink");
        }
        if self.erase(sink, &p).await? {
            return Ok(None);
        }
        // A window read ahead is used only if it starts right after the cursor (a replay or
        // a failure moves the cursor elsewhere). Stored rows of applied entries never change.
        let window = match ahead.take() {
            Some(w) if w.from == p.cursor + 1 => Some(w),
            _ => self.read(p.cursor + 1, span).await?,
        };
        let Some(window) = window else {
            return Ok(Some(POLL));
        };
        // Entries without stored events (the mirrors' own progress entries among them): the
        // cursor passes over them only now and then, or every step would log another one.
        if window.rows.is_empty() {
            let now = crate::clock::now_ms();
            let quiet = p.acked_at_ms.is_none_or(|t| now - t >= SKIP_EMPTY_EVERY_MS);
            if !quiet && window.to - window.from < SKIP_EMPTY_ENTRIES {
                return Ok(Some(POLL));
            }
        }
        let Some(sink) = sink.as_mut() else {
            return Ok(None);
        };
        let next = window.to + 1;
        let (sent, read) = tokio::join!(
            self.send(sink, &p, window, maybe_sent),
            self.read(next, span)
        );
        sent?;
        *ahead = read.ok().flatten();
        Ok(None)
    }

    /// Removes from the sink the rows of the first erasure it has not done yet whose rows
    /// were all sent (the cursor passed the entries before it), then records that in the
    /// log. Returns whether it did one.
    async fn erase(&self, sink: &mut Option<Sink>, p: &MirrorProgress) -> Result<bool, Step> {
        let Some(e) = self
            .engine
            .erasures()
            .into_iter()
            .find(|e| !p.erased.contains(&e.id) && p.cursor + 1 >= e.index)
        else {
            return Ok(false);
        };
        if !e.sealed && self.spec.takes(&e.app_id) {
            let Some(sink) = sink.as_mut() else {
                return Ok(false);
            };
            let engine = self.engine.clone();
            let id = e.id.clone();
            let event_ids = tokio::task::spawn_blocking(move || engine.erased_event_ids(&id))
                .await
                .map_err(|err| Step::Failed(MirrorError::Read(err.to_string())))?
                .map_err(|err| Step::Failed(MirrorError::Read(err.to_string())))?;
            sink.erase(&SinkErasure {
                app_id: &e.app_id,
                user_ids: &e.user_ids,
                device_ids: &e.device_ids,
                before_index: e.index,
                event_ids: &event_ids,
            })
            .await?;
            tracing::info!(mirror = %self.spec.name, erasure = %e.id, tombstones = event_ids.len(),
                "erasure done on the mirror's sink");
        }
        self.propose(MirrorOp::Erased {
            name: self.spec.name.clone(),
            request_id: e.id,
        })
        .await?;
        Ok(true)
    }

    /// The stored rows from entry `from` on, about one batch of them, ending at an entry boundary.
    async fn read(&self, from: u64, span: &mut u64) -> Result<Option<Window>, Step> {
        let want = self.spec.batch_events as u64;
        // Nothing new: no view (taking one freezes the memtable's open batch).
        if self.engine.applied_index().is_none_or(|a| a < from) {
            return Ok(None);
        }
        let engine = self.engine.clone();
        let mut s = *span;
        let res =
            tokio::task::spawn_blocking(move || -> Result<Option<(Window, u64)>, MirrorError> {
                let view = engine.read_view()?;
                let applied = view.applied_index.unwrap_or(0);
                if applied < from {
                    return Ok(None);
                }
                // Shrink the span until the estimate fits a few batches; grow it when it is small.
                let mut range = LogRange {
                    from,
                    to: applied.min(from.saturating_add(s - 1)),
                };
                while s > 1 && range.estimate(&view)? > want * 4 {
                    s /= 2;
                    range.to = from + s - 1;
                }
                let batches = range.read(&view)?;
                let mut rows = Vec::new();
                for b in batches {
                    // Rows of an erasure this node has not rewritten away yet never leave.
                    let b = engine::without_erased(&view.erasures, b)
                        .map_err(|e| MirrorError::Read(e.to_string()))?;
                    rows.extend(compat::rows_of(&b)?);
                }
                if (rows.len() as u64) < want / 2 && range.to < applied {
                    s = s.saturating_mul(2).min(1 << 20);
                }
                Ok(Some((
                    Window {
                        from,
                        to: range.to,
                        rows,
                        applied,
                    },
                    s,
                )))
            })
            .await
            .map_err(|e| Step::Failed(MirrorError::Read(e.to_string())))??;
        Ok(res.map(|(w, s)| {
            *span = s;
            w
        }))
    }

    /// Sends the window in batches of whole entries, moving the cursor after each.
    async fn send(
        &self,
        sink: &mut Sink,
        p: &MirrorProgress,
        w: Window,
        maybe_sent: &mut u64,
    ) -> Result<(), Step> {
        let max = self.spec.batch_events.max(1);
        let mut start = 0usize;
        let mut from = w.from;
        while from <= w.to {
            // Up to `max` rows, then to the end of the entry the last one belongs to.
            let mut end = (start + max).min(w.rows.len());
            if end < w.rows.len() {
                let idx = w.rows[end - 1].log_index;
                while end < w.rows.len() && w.rows[end].log_index == idx {
                    end += 1;
                }
            }
            let to = if end == w.rows.len() {
                w.to
            } else {
                w.rows[end - 1].log_index
            };
            let part = &w.rows[start..end];
            let taken: Vec<MirrorRow> = if self.spec.apps.is_some() {
                part.iter()
                    .filter(|r| self.spec.takes(&r.app_id))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let rows = if self.spec.apps.is_some() {
                &taken[..]
            } else {
                part
            };
            let batch = SinkBatch {
                mirror: &self.spec.name,
                generation: p.generation,
                from,
                to,
                rows,
                maybe_sent: from <= *maybe_sent || from <= p.high_water,
            };
            // Until acknowledged, this batch may be in the sink (a failed write may have landed).
            *maybe_sent = (*maybe_sent).max(to);
            sink.write(&batch).await?;
            let now = crate::clock::now_ms();
            // Age of the oldest event still unsent: the next row of the window; past the window's
            // end, at most that of the last row sent (the next one arrived after it).
            let age = |r: &MirrorRow| (now - r.received_at_ms).max(0);
            let lag_ms = match w.rows.get(end) {
                Some(r) => age(r),
                None if to < w.applied => part.last().map_or(0, age),
                None => 0,
            };
            let outcome = self
                .propose(MirrorOp::Acked {
                    name: self.spec.name.clone(),
                    generation: p.generation,
                    through: to,
                    seen: part.len() as u64,
                    sent: rows.len() as u64,
                    at_ms: now,
                    lag_ms,
                })
                .await?;
            if outcome != MirrorOutcome::Applied {
                // A replay or pause moved the mirror meanwhile: read again from the book.
                return Ok(());
            }
            start = end;
            from = to + 1;
        }
        Ok(())
    }

    /// Records a failure in the book (so every node's API shows it), when it is new or was
    /// last recorded a while ago.
    async fn report(
        &self,
        msg: &str,
        reported: &mut Option<(i64, String)>,
    ) -> Result<(), NotLeader> {
        let now = crate::clock::now_ms();
        let fresh = match reported {
            Some((at, m)) => m != msg || now - *at >= REPORT_EVERY_MS,
            None => true,
        };
        if !fresh {
            return Ok(());
        }
        let generation = self
            .book
            .mirror(&self.spec.name)
            .map_or(0, |p| p.generation);
        let op = MirrorOp::Failed {
            name: self.spec.name.clone(),
            generation,
            error: msg.chars().take(1000).collect(),
            at_ms: now,
        };
        match self.propose(op).await {
            Ok(_) => {
                *reported = Some((now, msg.to_string()));
                Ok(())
            }
            Err(Step::NotLeader(n)) => Err(n),
            Err(Step::Failed(e)) => {
                tracing::debug!(error = %e, "could not record the mirror's failure");
                Ok(())
            }
        }
    }

    /// Commits `op` on this node; never forwarded (a runner only runs on the leader).
    async fn propose(&self, op: MirrorOp) -> Result<MirrorOutcome, Step> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.node_id) {
            return Err(Step::NotLeader(NotLeader));
        }
        match self.cluster.write_local(Request::Mirror(op)).await {
            Ok(c) => match c.data {
                Response::Mirror(o) => Ok(o),
                other => Err(Step::Failed(MirrorError::Read(format!(
                    "unexpected answer to a mirror entry: {other:?}"
                )))),
            },
            Err(ClusterError::NoLeader(_)) => Err(Step::NotLeader(NotLeader)),
            Err(e) => Err(Step::Failed(MirrorError::Sink(format!(
                "recording progress in the log: {e}"
            )))),
        }
    }
}

/// Why a step ended early.
enum Step {
    NotLeader(NotLeader),
    Failed(MirrorError),
}

impl From<MirrorError> for Step {
    fn from(e: MirrorError) -> Self {
        Step::Failed(e)
    }
}

impl From<NotLeader> for Step {
    fn from(n: NotLeader) -> Self {
        Step::NotLeader(n)
    }
}
