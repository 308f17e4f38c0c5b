//! The erasure task (issue 29; docs/privacy.md): on the leader, once an erasure is done on
//! this node and on every mirror, its completion is audited and a `EraseComplete` entry goes
//! through the log, after which every node forgets the erased identifiers as soon as its own
//! rewrite is done. On every node, once an erasure is sealed there, a snapshot is taken so
//! the log is purged past the erased events (the log keeps entries until a snapshot covers
//! them). (Each node rewrites its own segments on its own; `GET /api/admin/erasure/{id}` on a
//! node shows that node's progress.)

use std::collections::BTreeSet;
use std::time::Duration;

use super::AppState;
use crate::raft::Request;

const EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(state: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Sealed erasures this process has taken its snapshot after (after a restart, one more).
    let mut snapshotted: BTreeSet<String> = BTreeSet::new();
    loop {
        tick.tick().await;
        let m = state.raft.metrics().borrow().clone();
        if m.running_state.is_err() {
            return;
        }
        let sealed: Vec<String> = state
            .engine
            .erasures()
            .into_iter()
            .filter(|e| e.sealed && !snapshotted.contains(&e.id))
            .map(|e| e.id)
            .collect();
        if !sealed.is_empty() {
            match state.raft.trigger().snapshot().await {
                Ok(()) => {
                    tracing::info!(erasures = ?sealed, "snapshot after erasure: the log is purged past the erased events");
                    snapshotted.extend(sealed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not take the snapshot after an erasure; retrying")
                }
            }
        }
        if m.current_leader != Some(state.cfg.node_id) {
            continue;
        }
        for e in state.engine.erasures() {
            if e.complete || !e.done() {
                continue;
            }
            let book = state.book.mirrors();
            let states = state.mirrors.erasure_states(&book, &e.id);
            if !states.iter().all(|(_, done)| *done) {
                continue;
            }
            // Audited first: after a crash between the two, the next leader audits again
            // (a second record) rather than never.
            let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
            let ev = crate::security::event(
                "system".to_string(),
                "",
                "privacy.erasure.done",
                format!("app {}", e.app_id),
                format!(
                    "request {}: {} events erased, {} segments rewritten on the leader; mirrors done: {}",
                    e.id,
                    e.events_erased,
                    e.segments_rewritten,
                    if names.is_empty() { "none configured".to_string() } else { names.join(", ") }
                ),
            );
            let req = state.security.request(auth::AuthOp::AuditOnly, vec![ev]);
            if let Err(err) = crate::security::submit(&state.cluster, req).await {
                tracing::warn!(erasure = %e.id, error = %err, "could not audit the erasure's completion; retrying");
                break;
            }
            let done = Request::EraseComplete {
                request_id: e.id.clone(),
            };
            match state.cluster.write(done).await {
                Ok(_) => {
                    tracing::info!(erasure = %e.id, "erasure complete on the leader and every mirror")
                }
                Err(err) => {
                    tracing::warn!(erasure = %e.id, error = %err, "could not record the erasure's completion; retrying");
                    break;
                }
            }
        }
    }
}
