//! The erasure task (issue 29; docs/privacy.md): on the leader, once an erasure is done on
//! this node and on every mirror, its completion is audited and a `EraseComplete` entry goes
//! through the log, after which every node forgets the erased identifiers as soon as its own
//! rewrite is done. (Each node rewrites its own segments on its own; `GET
//! /api/admin/erasure/{id}` on a node shows that node's progress.)

use std::time::Duration;

use super::AppState;
use crate::raft::Request;

const EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(state: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let m = state.raft.metrics().borrow().clone();
        if m.running_state.is_err() {
            return;
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
