//! Delivers alerts to one webhook from the leader: each alert POSTed as JSON (with
//! `x-unmogrowp-alert-id` and, with a secret, `x-unmogrowp-signature: sha256=<HMAC>`), in order,
//! and the position recorded through the log after each success, so a new leader continues
//! where the old one stopped. Failures are retried with backoff (1 s doubling to 5 min) in this
//! task: requests never wait for a webhook. At least once: an alert whose delivery succeeded
//! just before the leader died is sent again by the next one, with the same id.

use std::sync::Arc;
use std::time::Duration;

use auth::{AuthOp, SecurityAlert};
use hmac::{Hmac, Mac};
use serde_json::json;

use super::{is_leader, AlertStats};
use crate::cluster::Cluster;
use crate::config::WebhookSettings;
use crate::raft::Raft;
use crate::security::{submit, Security};

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

pub struct Delivery {
    pub security: Arc<Security>,
    pub cluster: Cluster,
    pub raft: Raft,
    pub node_id: u64,
    pub hook: WebhookSettings,
    pub stats: Arc<AlertStats>,
}

/// The JSON body of one alert (`text` makes it readable in Slack-compatible receivers).
pub fn body(a: &SecurityAlert) -> serde_json::Value {
    json!({
        "id": a.id,
        "seq": a.seq,
        "rule": a.alert.rule,
        "severity": a.alert.severity,
        "subject": a.alert.subject,
        "summary": a.alert.summary,
        "detail": a.alert.detail,
        "observed_at": compat::rfc3339_ms(a.alert.observed_at_ms),
        "recorded_at": compat::rfc3339_ms(a.at_ms),
        "node": a.node,
        "first_audit_seq": a.alert.first_audit_seq,
        "last_audit_seq": a.alert.last_audit_seq,
        "text": format!("[UnMoGrowP] {}: {}", a.alert.severity, a.alert.summary),
    })
}

impl Delivery {
    pub async fn run(self) {
        let key = self.hook.key();
        let mut backoff = BACKOFF_MIN;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.raft.metrics().borrow().running_state.is_err() {
                return;
            }
            if !is_leader(&self.raft, self.node_id) {
                continue;
            }
            let book = self.security.store.alert_book();
            let Some(done) = book.delivered.get(&key).copied() else {
                // A webhook new to the cluster starts with the alerts raised from now on.
                let op = AuthOp::AlertsDelivered {
                    webhook: key.clone(),
                    through_alert_seq: book.head,
                };
                let _ = submit(&self.cluster, self.security.request(op, Vec::new())).await;
                if book.head == 0 {
                    // Nothing to skip; the position appears with the first delivery.
                    self.deliver_from(0, &key, &mut backoff).await;
                }
                continue;
            };
            self.deliver_from(done, &key, &mut backoff).await;
        }
    }

    async fn deliver_from(&self, done: u64, key: &str, backoff: &mut Duration) {
        let Ok(pending) = self.security.store.alerts_after(done, 50) else {
            return;
        };
        for a in pending {
            if !is_leader(&self.raft, self.node_id) {
                return;
            }
            if let Err(e) = self.post(&a).await {
                AlertStats::count(&self.stats.webhook_failures, key);
                tracing::warn!(webhook = %self.hook.display(), alert = %a.id, error = %e, retry_in_s = backoff.as_secs(), "alert webhook failed; retrying");
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(BACKOFF_MAX);
                return;
            }
            *backoff = BACKOFF_MIN;
            AlertStats::count(&self.stats.webhook_sent, key);
            let op = AuthOp::AlertsDelivered {
                webhook: key.to_string(),
                through_alert_seq: a.seq,
            };
            if submit(&self.cluster, self.security.request(op, Vec::new()))
                .await
                .is_err()
            {
                return;
            }
        }
    }

    async fn post(&self, a: &SecurityAlert) -> Result<(), String> {
        let body = body(a).to_string();
        let signature = self.hook.secret.as_ref().map(|s| {
            let mut mac =
                Hmac::<sha2::Sha256>::new_from_slice(s.as_bytes()).expect("HMAC takes any key");
            mac.update(body.as_bytes());
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        });
        let url = self.hook.url.clone();
        let shown = self.hook.display();
        let timeout = Duration::from_secs(self.hook.timeout_secs.max(1));
        let id = a.id.clone();
        tokio::task::spawn_blocking(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout_connect(timeout)
                .timeout(timeout)
                .redirects(0)
                .build();
            let mut req = agent
                .post(&url)
                .set("content-type", "application/json")
                .set("user-agent", "unmogrowp-alerts")
                .set("x-unmogrowp-alert-id", &id);
            if let Some(sig) = &signature {
                req = req.set("x-unmogrowp-signature", sig);
            }
            match req.send_string(&body) {
                Ok(_) => Ok(()),
                Err(ureq::Error::Status(code, _)) => Err(format!("answered {code}")),
                // The URL may carry a token or credentials: errors name it without them.
                Err(ureq::Error::Transport(t)) => Err(format!(
                    "{shown}: {}{}",
                    t.kind(),
                    t.message().map(|m| format!(": {m}")).unwrap_or_default()
                )),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
