//! The erasure task (issue 29; docs/privacy.md): on the leader, once an erasure is done on
//! this node and on every mirror, its completion is audited and a `EraseComplete` entry goes
//! through the log, after which every node forgets the erased identifiers as soon as its own
//! rewrite is done. On every node, once an erasure is sealed there, the log's current file
//! is closed, a snapshot taken and the log purged up to it, so the files holding the erased
//! events are deleted (the log keeps entries until a snapshot covers them, and deletes whole
//! files only). (Each node rewrites its own segments on its own; `GET /api/admin/erasure/{id}` on a
//! node shows that node's progress.)

use std::collections::BTreeSet;
use std::time::Duration;

use super::AppState;
use crate::raft::Request;

const EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(state: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Sealed erasures this process has purged the log for (after a restart, once more).
    let mut snapshotted: BTreeSet<String> = BTreeSet::new();
    // The log is to be purged past this index (its file closed then) once a snapshot covers it.
    let mut purge_past: Option<u64> = None;
    let mut ticks_waiting = 0u32;
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
        if !sealed.is_empty() && close_log_file(&state).await {
            let last = m.last_log_index.unwrap_or(0);
            purge_past = Some(purge_past.unwrap_or(0).max(last));
            snapshotted.extend(sealed);
            ticks_waiting = 0;
        }
        if let Some(upto) = purge_past {
            let snap = m.snapshot.map_or(0, |s| s.index);
            if snap >= upto {
                match state.raft.trigger().purge_log(snap).await {
                    Ok(()) => {
                        tracing::info!(upto = snap, "log purged past erased events");
                        purge_past = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not purge the log after an erasure; retrying")
                    }
                }
            } else if ticks_waiting % 10 == 0 {
                // (Again every 10 s until one covers `upto`: entries not applied when the first
                // was taken.)
                if let Err(e) = state.raft.trigger().snapshot().await {
                    tracing::warn!(error = %e, "could not take the snapshot after an erasure; retrying");
                }
            }
            ticks_waiting += 1;
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

/// Closes the log's current file: what was written so far can be deleted by a purge past it.
async fn close_log_file(state: &AppState) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = state.log.wal().seal_segment(Box::new(move |r| {
        let _ = tx.send(r.map_err(|e| e.to_string()));
    }));
    let res = match sent {
        Ok(()) => rx
            .await
            .unwrap_or_else(|_| Err("the log writer stopped".into())),
        Err(e) => Err(e.to_string()),
    };
    match res {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not close the log file after an erasure; retrying");
            false
        }
    }
}
