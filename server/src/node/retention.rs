//! The retention task (issue 29; docs/privacy.md): on the leader, every
//! `retention.check_interval_secs`, each app whose floor moved — a new UTC day, or a shorter
//! `privacy.retention_days` — gets a `Retention` log entry, so every node drops the same data
//! at the same log position.

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
