//! Security alerts (issue 27): the leader reads the audit log after the detector's position,
//! feeds the records to the rules ([`detector`]) and records what they raise through the log
//! (`AuthOp::RecordAlerts`), so every node holds the same alerts; webhooks get each alert from
//! the leader, which records delivery positions through the log too ([`webhook`]).
//!
//! After a leader change the new leader warms its rules with the records of the last window
//! before the position, and remembers the recent alerts, so it neither misses a burst that
//! straddles the change nor raises one twice.

pub mod detector;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth::AuthOp;
use parking_lot::Mutex;

use crate::cluster::Cluster;
use crate::config::AlertSettings;
use crate::raft::Raft;
use crate::security::{submit, Security};
use detector::Detector;

/// Records read per round.
const PAGE: usize = 2_000;
/// Records before the position fed again to a new leader's rules (at most).
const WARM_RECORDS: u64 = 50_000;

/// Node-local counters of the alert machinery, for `/metrics`.
#[derive(Default)]
pub struct AlertStats {
    pub webhook_sent: Mutex<BTreeMap<String, u64>>,
    pub webhook_failures: Mutex<BTreeMap<String, u64>>,
    pub detector_failures: AtomicU64,
}

impl AlertStats {
    fn count(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
        *map.lock().entry(key.to_string()).or_insert(0) += 1;
    }
}

pub struct AlertService {
    pub security: Arc<Security>,
    pub cluster: Cluster,
    pub raft: Raft,
    pub node_id: u64,
    pub cfg: AlertSettings,
    pub stats: Arc<AlertStats>,
}

fn is_leader(raft: &Raft, node_id: u64) -> bool {
    let m = raft.metrics().borrow().clone();
    m.current_leader == Some(node_id) && m.state.is_leader()
}

impl AlertService {
    /// The detector and one delivery task per webhook, until the Raft core stops.
    pub async fn run(self) {
        for w in self.cfg.webhook.clone() {
            let d = webhook::Delivery {
                security: self.security.clone(),
                cluster: self.cluster.clone(),
                raft: self.raft.clone(),
                node_id: self.node_id,
                hook: w,
                stats: self.stats.clone(),
            };
            tokio::spawn(d.run());
        }
        if !self.cfg.enabled {
            return;
        }
        let mut detector: Option<Detector> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if self.raft.metrics().borrow().running_state.is_err() {
                return;
            }
            if !is_leader(&self.raft, self.node_id) || !self.security.store.is_bootstrapped() {
                detector = None;
                continue;
            }
            if detector.is_none() {
                let sec = self.security.clone();
                let cfg = self.cfg.clone();
                detector = tokio::task::spawn_blocking(move || warm(&sec, cfg))
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let Some(d) = detector.as_mut() else {
                continue;
            };
            if let Err(e) = self.round(d).await {
                self.stats.detector_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "security alert rules: round failed; reading again");
                // What was fed may not have been recorded: start over from the store.
                detector = None;
            }
        }
    }

    /// Reads the records after the detector's position, feeds them, records the alerts.
    async fn round(&self, d: &mut Detector) -> Result<(), String> {
        let through = self.security.store.alert_book().detector_through;
        let records = self
            .security
            .store
            .audit_page(through, PAGE)
            .map_err(|e| e.to_string())?;
        let Some(last) = records.last().map(|r| r.seq) else {
            return Ok(());
        };
        let alerts: Vec<auth::NewAlert> = records.iter().filter_map(|r| d.feed(r)).collect();
        for a in &alerts {
            tracing::warn!(rule = %a.rule, severity = %a.severity, subject = %a.subject, "security alert: {}", a.summary);
        }
        let req = self.security.request(
            AuthOp::RecordAlerts {
                through_audit_seq: last,
                alerts,
            },
            Vec::new(),
        );
        match submit(&self.cluster, req)
            .await
            .map_err(|e| e.to_string())?
        {
            auth::AuthOutcome::Ok => Ok(()),
            other => Err(format!("recording alerts: {other:?}")),
        }
    }
}

/// A detector in the state the rules had at the store's position: the recent alerts
/// remembered, the records of the last window before the position fed (their alerts were
/// raised, or not, already).
fn warm(security: &Security, cfg: AlertSettings) -> Result<Detector, String> {
    let store = &security.store;
    let mut d = Detector::new(cfg.clone());
    for a in store
        .alerts_before(None, 1_000)
        .map_err(|e| e.to_string())?
    {
        d.remember(&a.alert.rule, &a.alert.subject, a.alert.observed_at_ms);
    }
    let through = store.alert_book().detector_through;
    let mut after = through.saturating_sub(WARM_RECORDS);
    let newest = store
        .audit_page(through.saturating_sub(1), 1)
        .map_err(|e| e.to_string())?
        .first()
        .map(|r| r.at_ms);
    let cutoff = newest.map_or(i64::MIN, |t| {
        t - (cfg.window_secs as i64).saturating_mul(1000)
    });
    while after < through {
        let page = store
            .audit_page(after, PAGE.min((through - after) as usize))
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last().map(|r| r.seq) else {
            break;
        };
        for r in page.iter().filter(|r| r.at_ms > cutoff && r.seq <= through) {
            let _ = d.feed(r);
        }
        after = last;
    }
    Ok(d)
}

/// `unmogrowp_security_alerts_total{rule}` (the same on every node: from the replicated
/// state), and the webhooks' delivery on this node.
pub fn collect(out: &mut String, security: &Security, cfg: &AlertSettings, stats: &AlertStats) {
    use std::fmt::Write;
    let book = security.store.alert_book();
    let _ = writeln!(out, "# HELP unmogrowp_security_alerts_total Security alerts recorded, by rule (GET /api/admin/alerts).\n# TYPE unmogrowp_security_alerts_total counter");
    for rule in detector::RULES {
        let n = book.by_rule.get(*rule).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "unmogrowp_security_alerts_total{{rule=\"{rule}\"}} {n}"
        );
    }
    if cfg.webhook.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP unmogrowp_alert_webhook_pending Alerts not yet delivered to the webhook.\n# TYPE unmogrowp_alert_webhook_pending gauge");
    for w in &cfg.webhook {
        let key = w.key();
        let done = book.delivered.get(&key).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "unmogrowp_alert_webhook_pending{{webhook=\"{key}\"}} {}",
            book.head.saturating_sub(done)
        );
    }
    for (name, help, map) in [
        (
            "unmogrowp_alert_webhook_sent_total",
            "Alerts this node delivered to the webhook.",
            &stats.webhook_sent,
        ),
        (
            "unmogrowp_alert_webhook_failures_total",
            "Failed deliveries to the webhook (retried with backoff).",
            &stats.webhook_failures,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let m = map.lock();
        for w in &cfg.webhook {
            let key = w.key();
            let _ = writeln!(
                out,
                "{name}{{webhook=\"{key}\"}} {}",
                m.get(&key).copied().unwrap_or(0)
            );
        }
    }
}
