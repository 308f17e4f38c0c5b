//! The ingest proposer: concurrent ingest requests are coalesced into one Raft log entry
//! (bounded by request and event counts), several entries are kept in flight, and each request
//! is answered with its own outcome once its entry is committed and applied.

use std::sync::Arc;

use engine::{ApplyOutcome, EventBatch};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::cluster::{Cluster, ClusterError};
use crate::ingest::disk_space::DiskSpace;
use crate::raft::{Request, Response};

/// Why a batch was not committed.
pub type ProposeError = ClusterError;

struct Proposal {
    events: EventBatch,
    reply: oneshot::Sender<Result<ApplyOutcome, ProposeError>>,
}

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Proposal>,
    space: Arc<DiskSpace>,
}

impl Proposer {
    pub fn start(
        cluster: Cluster,
        space: DiskSpace,
        max_requests: usize,
        max_events: usize,
        max_inflight: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(max_requests * max_inflight * 4);
        tokio::spawn(run(cluster, rx, max_requests, max_events, max_inflight));
        Self {
            tx,
            space: Arc::new(space),
        }
    }

    /// Replicates `events` and returns how many were stored and how many were duplicates.
    pub async fn propose(&self, events: EventBatch) -> Result<ApplyOutcome, ProposeError> {
        self.space.check()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Proposal { events, reply })
            .await
            .map_err(|_| ProposeError::Unavailable("proposer stopped".into()))?;
        rx.await
            .map_err(|_| ProposeError::Unavailable("the write was abandoned".into()))?
    }
}

async fn run(
    cluster: Cluster,
    mut rx: mpsc::Receiver<Proposal>,
    max_requests: usize,
    max_events: usize,
    max_inflight: usize,
) {
    let slots = Arc::new(Semaphore::new(max_inflight));
    while let Some(first) = rx.recv().await {
        let mut events = first.events.len();
        let mut group = vec![first];
        while group.len() < max_requests && events < max_events {
            match rx.try_recv() {
                Ok(p) => {
                    events += p.events.len();
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // More requests may have queued while we waited for a slot.
        while group.len() < max_requests && events < max_events {
            match rx.try_recv() {
                Ok(p) => {
                    events += p.events.len();
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut batches = Vec::with_capacity(group.len());
            let mut replies = Vec::with_capacity(group.len());
            for p in group {
                batches.push(p.events);
                replies.push(p.reply);
            }
            let res = cluster.write(Request::Events { batches }).await;
            drop(permit);
            match res {
                Ok(resp) => match resp {
                    Response::Ingest { outcomes } if outcomes.len() == replies.len() => {
                        for (r, o) in replies.into_iter().zip(outcomes) {
                            let _ = r.send(Ok(o));
                        }
                    }
                    other => {
                        tracing::error!(
                            ?other,
                            "state machine answered an ingest entry with the wrong shape"
                        );
                        for r in replies {
                            let _ = r.send(Err(ProposeError::Unavailable(
                                "internal response mismatch".into(),
                            )));
                        }
                    }
                },
                Err(err) => {
                    for r in replies {
                        let _ = r.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}
