//! A runtime of its own for the commit path: Raft's core, its state-machine worker and the
//! ingest proposer run on one dedicated thread. On the shared workers these tasks queued behind
//! every request handler woken by the previous commit, which stretched each commit round (and
//! with it the latency and rate of small writes); a thread of their own is scheduled by the
//! kernel as soon as a log flush or a proposal wakes it.

use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub(crate) struct RaftRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RaftRuntime {
    pub(crate) fn start(node_id: u64) -> std::io::Result<Self> {
        let rt = Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("raft-{node_id}"))
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("raft-{node_id}"))
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                // Dropping the runtime cancels what is still running on it (Raft was shut
                // down first by `Node::shutdown`, or the node is being dropped).
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for RaftRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // Joining from inside a runtime is allowed here: the raft thread only drops its
            // own tasks, which never wait on the caller.
            let _ = t.join();
        }
    }
}
