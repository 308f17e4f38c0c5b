//! What the rest of the server asks of the cluster: commit a write (here if this node leads,
//! else forwarded to the leader), wait until a read may be served (read-index), and change
//! the membership.
//!
//! A write is retried only while it certainly has not been acted on: no leader known yet, or
//! the peer refused it before doing anything (not the leader any more, cannot connect). Once
//! a write was handed to a leader and the answer is lost, the outcome is unknown and the
//! client gets 503: a retry with the same `event_id`s is safe, it is deduplicated.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use super::client::{PeerClient, PeerError};
use super::network::decode;
use super::ClusterError;
use crate::raft::{ClusterNode, NodeId, Raft, Request, Response};

/// A membership change, executed by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MembershipChange {
    AddLearner { id: NodeId, node: ClusterNode },
    Promote { id: NodeId },
    Remove { id: NodeId },
}

/// What the leader answers a forwarded write: the entry's log index and what applying it
/// answered. The forwarding node waits until it has applied that index itself before it
/// answers its client, so a client that wrote through a node reads its write on that node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Committed {
    pub index: u64,
    pub data: Response,
}

/// A learner this many entries behind the leader may not be promoted yet.
pub const PROMOTE_MAX_LAG: u64 = 1_000;

#[derive(Clone)]
pub struct Cluster {
    raft: Raft,
    client: PeerClient,
    id: NodeId,
    write_timeout: Duration,
    read_timeout: Duration,
}

impl Cluster {
    pub fn new(
        raft: Raft,
        client: PeerClient,
        write_timeout: Duration,
        read_timeout: Duration,
    ) -> Self {
        let id = client.me().id;
        Self {
            raft,
            client,
            id,
            write_timeout,
            read_timeout,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn client(&self) -> &PeerClient {
        &self.client
    }

    /// The current leader and where to reach it, as this node knows it.
    pub fn leader(&self) -> Option<(NodeId, Option<ClusterNode>)> {
        let m = self.raft.metrics().borrow().clone();
        let l = m.current_leader?;
        let node = m.membership_config.membership().get_node(&l).cloned();
        Some((l, node))
    }

    /// Where the next attempt of a request to the leader goes: `None` if this node leads,
    /// else the leader and its address. From the second attempt on it first gives up once
    /// `deadline` has passed (answering that no leader `what` within `limit`) and otherwise
    /// pauses briefly; it also waits like that while no leader is known (an election).
    async fn next_leader(
        &self,
        attempt: &mut u32,
        deadline: Instant,
        what: &str,
        limit: Duration,
    ) -> Result<Option<(NodeId, ClusterNode)>, ClusterError> {
        loop {
            if *attempt > 0 {
                if Instant::now() >= deadline {
                    return Err(ClusterError::NoLeader(format!(
                        "no leader {what} within {limit:?}"
                    )));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
            *attempt += 1;
            match self.leader() {
                Some((l, _)) if l == self.id => return Ok(None),
                Some((l, Some(node))) => return Ok(Some((l, node))),
                _ => {}
            }
        }
    }

    /// Commits `req` through the leader and returns what applying it answered. When the
    /// leader is another node, the answer waits until this node has applied the entry too
    /// (read-your-writes through one node: a user created here can log in here at once).
    pub async fn write(&self, req: Request) -> Result<Response, ClusterError> {
        let deadline = Instant::now() + self.write_timeout;
        let mut encoded: Option<bytes::Bytes> = None;
        let mut attempt = 0;
        loop {
            let what = "accepted the write";
            let Some((l, node)) = self
                .next_leader(&mut attempt, deadline, what, self.write_timeout)
                .await?
            else {
                return self.write_local(req).await.map(|c| c.data);
            };
            let body = match &encoded {
                Some(b) => b.clone(),
                None => {
                    let b = bincode::serialize(&req)
                        .map(bytes::Bytes::from)
                        .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
                    encoded = Some(b.clone());
                    b
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .client
                .post(&node.raft_addr, "/raft/write", Some((l, &node)), body, left)
                .await
            {
                Ok(answer) => {
                    let committed = decode::<Committed>(&answer)
                        .map_err(|e| ClusterError::Unknown(e.to_string()))?;
                    self.await_applied(committed.index, deadline).await;
                    return Ok(committed.data);
                }
                Err(e) if e.not_delivered() => {
                    tracing::debug!(leader = l, error = %e, "forward refused; retrying");
                }
                Err(e) => return Err(ClusterError::Unknown(e.to_string())),
            }
        }
    }

    /// Commits `req` on this node, which believes it is the leader. A leader cut off from
    /// its followers cannot commit: after `write_timeout` the client gets 503 (outcome
    /// unknown: the entry may still commit if this node keeps its leadership).
    pub async fn write_local(&self, req: Request) -> Result<Committed, ClusterError> {
        match tokio::time::timeout(self.write_timeout, self.raft.client_write(req)).await {
            Ok(Ok(resp)) => Ok(Committed {
                index: resp.log_id.index,
                data: resp.data,
            }),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(ClusterError::Unknown(format!(
                "not committed within {:?}: no quorum reachable",
                self.write_timeout
            ))),
        }
    }

    /// Waits (until `deadline`, at least briefly) for this node to apply the log up to
    /// `index`. The write is committed whatever happens here: a node that lags past the
    /// deadline still answers success, logs it, and its reads catch up through the read
    /// barrier.
    async fn await_applied(&self, index: u64, deadline: Instant) {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        if self
            .raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "forwarded write")
            .await
            .is_err()
        {
            tracing::warn!(index, "forwarded write committed but not yet applied here");
        }
    }

    /// The index a read must see: the leader's commit index, confirmed by a quorum.
    pub async fn read_index_local(&self) -> Result<u64, ClusterError> {
        match self.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(read.map_or(0, |l| l.index)),
            Err(RaftError::APIError(e)) => Err(ClusterError::NoLeader(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(ClusterError::Unavailable(f.to_string())),
        }
    }

    /// Waits until this node has applied everything committed before the call (read-index,
    /// asked of the leader), so a query sees every write acknowledged before it started.
    /// Returns that read index.
    pub async fn read_barrier(&self) -> Result<u64, ClusterError> {
        let deadline = Instant::now() + self.read_timeout;
        let mut attempt = 0;
        let index = loop {
            let what = "confirmed a read index";
            let Some((l, node)) = self
                .next_leader(&mut attempt, deadline, what, self.read_timeout)
                .await?
            else {
                break self.read_index_local().await?;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .client
                .post(
                    &node.raft_addr,
                    "/raft/read-index",
                    Some((l, &node)),
                    bytes::Bytes::new(),
                    left,
                )
                .await
            {
                Ok(answer) => {
                    break decode::<u64>(&answer)
                        .map_err(|e| ClusterError::Unavailable(e.to_string()))?
                }
                Err(e) if e.not_delivered() => {}
                Err(e) => return Err(ClusterError::Unavailable(e.to_string())),
            }
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        self.raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| index)
            .map_err(|_| {
                let applied = self
                    .raft
                    .metrics()
                    .borrow()
                    .last_applied
                    .map_or(0, |l| l.index);
                ClusterError::Behind(format!(
                    "this node has applied the log up to {applied}, the read needs {index}; try again or ask another node"
                ))
            })
    }

    /// Applies a membership change: here if this node leads, else on the leader.
    pub async fn change(&self, change: MembershipChange) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.write_timeout;
        let mut attempt = 0;
        loop {
            let what = "took the membership change";
            let Some((l, node)) = self
                .next_leader(&mut attempt, deadline, what, self.write_timeout)
                .await?
            else {
                return self.change_local(change).await;
            };
            let body = bincode::serialize(&change)
                .map(bytes::Bytes::from)
                .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .client
                .post(
                    &node.raft_addr,
                    "/raft/membership",
                    Some((l, &node)),
                    body,
                    left,
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(PeerError::Status {
                    status: 400,
                    message,
                    ..
                }) => return Err(ClusterError::Invalid(message)),
                Err(PeerError::Status {
                    status: 409,
                    message,
                    ..
                }) if !message.starts_with("identity") => {
                    return Err(ClusterError::Conflict(message))
                }
                Err(e) if e.not_delivered() => {}
                Err(e) => return Err(ClusterError::Unknown(e.to_string())),
            }
        }
    }

    /// Executes a membership change on this node, the leader.
    pub async fn change_local(&self, change: MembershipChange) -> Result<(), ClusterError> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let known = |id: &NodeId| membership.get_node(id).is_some();
        let res = match change {
            MembershipChange::AddLearner { id, node } => {
                if voters.contains(&id) {
                    return Err(ClusterError::Conflict(format!(
                        "node {id} is already a voter; remove it first to replace it"
                    )));
                }
                self.raft.add_learner(id, node, false).await
            }
            MembershipChange::Promote { id } => {
                if voters.contains(&id) {
                    return Ok(());
                }
                if !known(&id) {
                    return Err(ClusterError::Invalid(format!(
                        "node {id} is not a learner of this cluster; add it first"
                    )));
                }
                let last = m.last_log_index.unwrap_or(0);
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten())
                    .map_or(0, |l| l.index);
                if last.saturating_sub(matched) > PROMOTE_MAX_LAG {
                    return Err(ClusterError::Conflict(format!(
                        "learner {id} has {matched} of {last} log entries; promote it once it has caught up"
                    )));
                }
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds([id].into()), false)
                    .await
            }
            MembershipChange::Remove { id } => {
                if voters.contains(&id) {
                    if voters.len() == 1 {
                        return Err(ClusterError::Conflict(
                            "cannot remove the last voter".into(),
                        ));
                    }
                    self.raft
                        .change_membership(ChangeMembers::RemoveVoters([id].into()), false)
                        .await
                } else if known(&id) {
                    self.raft
                        .change_membership(ChangeMembers::RemoveNodes([id].into()), false)
                        .await
                } else {
                    return Err(ClusterError::Invalid(format!(
                        "node {id} is not a member of this cluster"
                    )));
                }
            }
        };
        match res {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ClusterError::Conflict(e.to_string()))
            }
            Err(e) => Err(classify(e)),
        }
    }
}

/// Maps a failed local `client_write`. A leader that lost its leadership may already have
/// appended the entry, so nothing here is retried: the client gets 503 and retries.
pub(crate) fn classify(
    e: RaftError<NodeId, ClientWriteError<NodeId, ClusterNode>>,
) -> ClusterError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            ClusterError::NoLeader(match f.leader_id {
                Some(l) => format!("leadership moved to node {l} during the write"),
                None => "election in progress".into(),
            })
        }
        RaftError::APIError(other) => ClusterError::Unavailable(other.to_string()),
        RaftError::Fatal(f) => ClusterError::Unavailable(f.to_string()),
    }
}
