//! The retention task (issue 29; docs/privacy.md): on the leader, every
//! `retention.check_interval_secs`, each app whose floor moved — a new UTC day, or a shorter
//! `privacy.retention_days` — gets a `Retention` log entry, so every node drops the same data
//! at the same log position; and audit records older than `audit.retention_days` are cut
//! (`AuthOp::CutAudit`), leaving a signed base the chain verifies from.

use std::collections::BTreeSet;
use std::time::Duration;

use super::AppState;
use crate::raft::Request;

pub(super) async fn run(state: AppState) {
    let every = Duration::from_secs(state.cfg.retention.check_interval_secs);
    let mut tick = tokio::time::interval(every);
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
        let now = crate::clock::now_ms();
        // Apps with settings, and apps whose events outlived their app's deletion.
        let apps: BTreeSet<String> = state
            .security
            .store
            .apps()
            .into_iter()
            .map(|a| a.id)
            .chain(state.engine.rollups().apps())
            .collect();
        cut_audit(&state, now).await;
        for app in apps {
            let settings = state
                .security
                .store
                .app_privacy(&app)
                .map(|p| p.settings)
                .unwrap_or_default();
            let floor = settings.retention_floor(now);
            if state
                .engine
                .retention_floor(&app)
                .is_some_and(|f| f >= floor)
            {
                continue;
            }
            let req = Request::Retention {
                app_id: app.clone(),
                before_ms: floor,
            };
            match state.cluster.write(req).await {
                Ok(_) => tracing::info!(app, before_ms = floor, "retention floor applied"),
                Err(e) => {
                    tracing::warn!(app, error = %e, "could not apply the retention floor; retrying at the next check");
                    break;
                }
            }
        }
    }
}

/// Proposes cutting the audit records older than `audit.retention_days`, if there are any.
async fn cut_audit(state: &AppState, now: i64) {
    let before_ms = auth::privacy::day_floor(now, state.cfg.audit.retention_days);
    match state.security.store.oldest_audit_at_ms() {
        Ok(Some(oldest)) if oldest < before_ms => {}
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the oldest audit record");
            return;
        }
    }
    let ev = crate::security::event(
        "system".to_string(),
        "",
        "audit.cut",
        "audit log",
        format!(
            "records before {before_ms} removed (audit.retention_days = {})",
            state.cfg.audit.retention_days
        ),
    );
    let op = auth::AuthOp::CutAudit {
        before_ms,
        key: super::new_jwt_secret(),
    };
    let req = state.security.request(op, vec![ev]);
    if let Err(e) = crate::security::submit(&state.cluster, req).await {
        tracing::warn!(error = %e, "could not cut the audit log; retrying at the next check");
    }
}
