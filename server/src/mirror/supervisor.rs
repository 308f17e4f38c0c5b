//! Runs every valid mirror on the Raft leader and on no other node: starts a runner per mirror
//! when this node becomes leader, stops them all when it is not leader any more.
//!
//! Two nodes can briefly both believe they lead (an old leader cut off from the others); the
//! old one cannot commit a cursor move, and each sink deduplicates what both may write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::runner::Runner;
use super::{Configured, Mirrors};
use crate::cluster::Cluster;
use crate::raft::state_machine::Replicated;
use crate::raft::Raft;

pub struct Supervisor {
    pub mirrors: Arc<Mirrors>,
    pub raft: Raft,
    pub cluster: Cluster,
    pub engine: engine::Engine,
    pub book: Replicated,
    pub node_id: u64,
}

impl Supervisor {
    fn is_leader(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        m.current_leader == Some(self.node_id) && m.state.is_leader()
    }

    /// Until the Raft core stops.
    pub async fn run(self) {
        let mut running: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            if self.raft.metrics().borrow().running_state.is_err() {
                running.values().for_each(JoinHandle::abort);
                return;
            }
            if !self.is_leader() {
                if !running.is_empty() {
                    tracing::info!("not the leader any more: stopping the mirrors here");
                }
                for (_, h) in std::mem::take(&mut running) {
                    h.abort();
                }
                continue;
            }
            running.retain(|_, h| !h.is_finished());
            for c in &self.mirrors.configured {
                let Configured::Valid(spec) = c else { continue };
                if running.contains_key(&spec.name) {
                    continue;
                }
                let runner = Runner {
                    spec: spec.clone(),
                    raft: self.raft.clone(),
                    cluster: self.cluster.clone(),
                    engine: self.engine.clone(),
                    book: self.book.clone(),
                    live: self.mirrors.live(&spec.name),
                    node_id: self.node_id,
                };
                tracing::info!(mirror = %spec.name, "running the mirror on this node (the leader)");
                running.insert(spec.name.clone(), tokio::spawn(runner.run()));
            }
        }
    }
}
