//! The security rules over the audit stream: fed audit records in order, returns the alerts
//! they raise. Pure (times are the records' own), so a new leader that feeds it the recent
//! records again ("warming") reaches the same state as the old one had.

use std::collections::{BTreeSet, HashMap, VecDeque};

use auth::{AuditRecord, NewAlert};

use crate::config::AlertSettings;

/// Every rule, as named in alerts, metrics and the docs.
pub const RULES: &[&str] = &[
    "password_spraying",
    "credential_stuffing",
    "denied_burst",
    "key_many_sources",
    "large_read",
    "admin_off_hours",
];

/// Most subjects a counting rule tracks at once; the quietest are forgotten first.
const MAX_SUBJECTS: usize = 50_000;

/// Admin actions, for the off-hours rule (successful ones only).
const ADMIN_ACTIONS: &[&str] = &[
    "users.",
    "roles.",
    "apps.grant",
    "apps.revoke",
    "auth.signing_key.rotate",
    "cluster.node.",
    "cluster.backup",
    "mirror.",
];

/// Distinct values seen per subject within the window.
#[derive(Default)]
struct Distinct {
    /// subject → (time, value) in arrival order.
    seen: HashMap<String, VecDeque<(i64, String)>>,
}

impl Distinct {
    /// Adds `value` for `subject` at `at`, forgets what is older than `window_ms`, and returns
    /// the distinct values left.
    fn add(&mut self, subject: &str, value: &str, at: i64, window_ms: i64) -> BTreeSet<String> {
        if self.seen.len() >= MAX_SUBJECTS && !self.seen.contains_key(subject) {
            self.prune(at, window_ms);
        }
        let q = self.seen.entry(subject.to_string()).or_default();
        q.push_back((at, value.to_string()));
        while q.front().is_some_and(|(t, _)| *t <= at - window_ms) {
            q.pop_front();
        }
        q.iter().map(|(_, v)| v.clone()).collect()
    }

    fn prune(&mut self, now: i64, window_ms: i64) {
        self.seen
            .retain(|_, q| q.back().is_some_and(|(t, _)| *t > now - window_ms));
        if self.seen.len() >= MAX_SUBJECTS {
            // Still full: drop the ones seen least recently.
            let mut last: Vec<(i64, String)> = self
                .seen
                .iter()
                .map(|(k, q)| (q.back().map_or(0, |x| x.0), k.clone()))
                .collect();
            last.sort();
            for (_, k) in last.into_iter().take(MAX_SUBJECTS / 10) {
                self.seen.remove(&k);
            }
        }
    }
}

pub struct Detector {
    cfg: AlertSettings,
    admin_window: Option<(u32, u32)>,
    /// source address → failed accounts.
    spraying: Distinct,
    /// account → failing source addresses.
    stuffing: Distinct,
    /// actor → denied requests (the value is the record's sequence number).
    denied: Distinct,
    /// actor → what their successful queries usually return (moving average of rows).
    usual_rows: HashMap<String, f64>,
    /// (rule, subject) → when it was last raised.
    raised: HashMap<(String, String), i64>,
    /// First record of the current burst per (rule, subject), for the alert's range.
    first_seq: HashMap<(String, String), u64>,
}

impl Detector {
    pub fn new(cfg: AlertSettings) -> Self {
        let admin_window = cfg.admin_window().ok().flatten();
        Self {
            cfg,
            admin_window,
            spraying: Distinct::default(),
            stuffing: Distinct::default(),
            denied: Distinct::default(),
            usual_rows: HashMap::new(),
            raised: HashMap::new(),
            first_seq: HashMap::new(),
        }
    }

    /// An alert raised earlier (kept by the store): not raised again within the cooldown.
    pub fn remember(&mut self, rule: &str, subject: &str, at_ms: i64) {
        let e = self
            .raised
            .entry((rule.to_string(), subject.to_string()))
            .or_insert(at_ms);
        *e = (*e).max(at_ms);
    }

    fn window_ms(&self) -> i64 {
        (self.cfg.window_secs as i64).saturating_mul(1000)
    }

    /// Feeds one record; returns the alert it completes, if any.
    pub fn feed(&mut self, r: &AuditRecord) -> Option<NewAlert> {
        let w = self.window_ms();
        if r.action == "auth.login" && login_failed(r) && !r.source_ip.is_empty() {
            let accounts = self.spraying.add(&r.source_ip, &r.target, r.at_ms, w);
            self.track("password_spraying", &r.source_ip, r.seq);
            if accounts.len() as u64 >= self.cfg.spraying_accounts {
                let summary = format!(
                    "password spraying: {} accounts failed to log in from {} within {} s",
                    accounts.len(),
                    r.source_ip,
                    self.cfg.window_secs
                );
                let detail = sample("accounts", &accounts);
                if let Some(a) = self.raise(
                    "password_spraying",
                    "critical",
                    &r.source_ip,
                    summary,
                    detail,
                    r,
                ) {
                    return Some(a);
                }
            }
            let sources = self.stuffing.add(&r.target, &r.source_ip, r.at_ms, w);
            self.track("credential_stuffing", &r.target, r.seq);
            if sources.len() as u64 >= self.cfg.stuffing_sources {
                let summary = format!(
                    "credential stuffing: account {} failed to log in from {} addresses within {} s",
                    r.target,
                    sources.len(),
                    self.cfg.window_secs
                );
                let detail = sample("addresses", &sources);
                return self.raise(
                    "credential_stuffing",
                    "critical",
                    &r.target,
                    summary,
                    detail,
                    r,
                );
            }
            return None;
        }
        if r.action == "request.denied" && r.actor != "anonymous" && !r.actor.is_empty() {
            let n = self
                .denied
                .add(&r.actor, &r.seq.to_string(), r.at_ms, w)
                .len() as u64;
            self.track("denied_burst", &r.actor, r.seq);
            if n >= self.cfg.denied_burst {
                let summary = format!(
                    "{n} requests by {} denied within {} s",
                    r.actor, self.cfg.window_secs
                );
                let detail = format!("last: {} from {}: {}", r.target, r.source_ip, r.outcome);
                return self.raise("denied_burst", "warning", &r.actor, summary, detail, r);
            }
            return None;
        }
        if r.action == "apikey.many_sources" {
            let summary = format!(
                "API key {} used from an unusual number of addresses",
                r.target
            );
            return self.raise(
                "key_many_sources",
                "warning",
                &r.target,
                summary,
                r.detail.clone(),
                r,
            );
        }
        if r.action == "query.execute" {
            let rows = returned_rows(&r.outcome)?;
            let usual = self.usual_rows.get(&r.actor).copied();
            self.usual_rows.insert(
                r.actor.clone(),
                usual.map_or(rows, |u| 0.8 * u + 0.2 * rows),
            );
            let large = rows >= self.cfg.large_read_rows as f64
                && usual.is_none_or(|u| rows > self.cfg.large_read_factor * u.max(1.0));
            if large {
                let summary = format!(
                    "{} read {} rows in one query (usually {})",
                    r.actor,
                    rows as u64,
                    usual.map_or("nothing yet".into(), |u| format!("{}", u.round() as u64))
                );
                self.track("large_read", &r.actor, r.seq);
                // Each such query is worth its own alert: the subject includes its record.
                let subject = format!("{} #{}", r.actor, r.seq);
                let detail = r.detail.chars().take(500).collect();
                return self.raise("large_read", "warning", &subject, summary, detail, r);
            }
            return None;
        }
        if let Some((from, to)) = self.admin_window {
            let admin = ADMIN_ACTIONS.iter().any(|p| r.action.starts_with(p));
            if admin && r.outcome.starts_with("success") && r.actor != "system" {
                let offset = i64::from(self.cfg.admin_hours_utc_offset_minutes) * 60_000;
                let minute = ((r.at_ms + offset).rem_euclid(86_400_000) / 60_000) as u32;
                let inside = if from <= to {
                    (from..to).contains(&minute)
                } else {
                    minute >= from || minute < to
                };
                if !inside {
                    let summary = format!(
                        "admin action {} by {} at {:02}:{:02}, outside {}",
                        r.action,
                        r.actor,
                        minute / 60,
                        minute % 60,
                        self.cfg.admin_hours
                    );
                    let subject = format!("{} #{}", r.actor, r.seq);
                    let detail = format!("{} {}", r.target, r.detail);
                    self.track("admin_off_hours", &subject, r.seq);
                    return self.raise("admin_off_hours", "info", &subject, summary, detail, r);
                }
            }
        }
        None
    }

    fn track(&mut self, rule: &str, subject: &str, seq: u64) {
        self.first_seq
            .entry((rule.to_string(), subject.to_string()))
            .or_insert(seq);
        if self.first_seq.len() > MAX_SUBJECTS {
            self.first_seq.clear();
        }
    }

    fn raise(
        &mut self,
        rule: &str,
        severity: &str,
        subject: &str,
        summary: String,
        detail: String,
        r: &AuditRecord,
    ) -> Option<NewAlert> {
        let key = (rule.to_string(), subject.to_string());
        let cooldown = (self.cfg.cooldown_secs as i64).saturating_mul(1000);
        if self
            .raised
            .get(&key)
            .is_some_and(|t| r.at_ms - *t < cooldown)
        {
            return None;
        }
        self.raised.insert(key.clone(), r.at_ms);
        if self.raised.len() > MAX_SUBJECTS {
            let cutoff = r.at_ms - cooldown;
            self.raised.retain(|_, t| *t > cutoff);
        }
        let first = self.first_seq.remove(&key).unwrap_or(r.seq);
        Some(NewAlert {
            rule: rule.to_string(),
            severity: severity.to_string(),
            subject: subject.to_string(),
            summary,
            detail,
            first_audit_seq: first.min(r.seq),
            last_audit_seq: r.seq,
            observed_at_ms: r.at_ms,
        })
    }
}

/// A login attempt that did not open a session (wrong password, unknown account, refused).
fn login_failed(r: &AuditRecord) -> bool {
    r.detail == "wrong password"
        || r.detail == "unknown account"
        || r.outcome.starts_with("failure")
        || r.outcome.starts_with("denied")
}

/// Rows an answered query returned, from its audit outcome (`success: N rows in … ms`).
fn returned_rows(outcome: &str) -> Option<f64> {
    let rest = outcome.strip_prefix("success: ")?;
    let (n, tail) = rest.split_once(' ')?;
    tail.starts_with("rows").then_some(())?;
    n.parse::<u64>().ok().map(|n| n as f64)
}

fn sample(what: &str, values: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = values.iter().take(20).map(String::as_str).collect();
    let more = values.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{what}: {} and {more} more", shown.join(", "))
    } else {
        format!("{what}: {}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, at_s: i64, actor: &str, ip: &str, action: &str, target: &str) -> AuditRecord {
        AuditRecord {
            seq,
            at_ms: 1_800_000_000_000 + at_s * 1000,
            node: 1,
            actor: actor.into(),
            source_ip: ip.into(),
            action: action.into(),
            target: target.into(),
            outcome: "success".into(),
            detail: String::new(),
            log_index: seq,
            request_id: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn failed(seq: u64, at_s: i64, ip: &str, account: &str) -> AuditRecord {
        let mut r = rec(seq, at_s, "anonymous", ip, "auth.login", account);
        r.detail = "unknown account".into();
        r
    }

    #[test]
    fn spraying_fires_once_per_source_and_not_for_scattered_failures() {
        let mut d = Detector::new(AlertSettings::default());
        let mut alerts = Vec::new();
        for i in 0..30u64 {
            alerts.extend(d.feed(&failed(i + 1, i as i64, "10.0.0.9", &format!("u{i}@x"))));
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].rule, "password_spraying");
        assert_eq!(alerts[0].subject, "10.0.0.9");
        assert_eq!(alerts[0].first_audit_seq, 1);
        assert_eq!(alerts[0].last_audit_seq, 10);
        // The same number of failures spread over hours: nothing.
        let mut d = Detector::new(AlertSettings::default());
        for i in 0..30u64 {
            let r = failed(i + 1, i as i64 * 3600, "10.0.0.9", &format!("u{i}@x"));
            assert!(d.feed(&r).is_none());
        }
    }

    #[test]
    fn stuffing_fires_for_one_account_from_many_sources() {
        let mut d = Detector::new(AlertSettings::default());
        let got: Vec<NewAlert> = (0..8u64)
            .filter_map(|i| d.feed(&failed(i + 1, i as i64, &format!("10.1.0.{i}"), "ceo@x")))
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rule, "credential_stuffing");
        assert_eq!(got[0].subject, "ceo@x");
    }

    #[test]
    fn denied_bursts_large_reads_and_off_hours_admin_actions() {
        let cfg = AlertSettings {
            admin_hours: "08:00-18:00".into(),
            ..AlertSettings::default()
        };
        let mut d = Detector::new(cfg);
        let mut n = 0;
        for i in 0..25u64 {
            let mut r = rec(
                i + 1,
                i as i64,
                "user-1",
                "10.0.0.1",
                "request.denied",
                "GET /x",
            );
            r.outcome = "denied: 403".into();
            n += usize::from(d.feed(&r).is_some());
        }
        assert_eq!(n, 1);
        let q = |seq, rows: u64| {
            let mut r = rec(seq, 100, "user-2", "10.0.0.2", "query.execute", "events");
            r.outcome = format!("success: {rows} rows in 3.0 ms");
            r
        };
        for s in 100..110 {
            assert!(d.feed(&q(s, 20)).is_none());
        }
        let big = d.feed(&q(111, 500_000)).expect("a large read");
        assert_eq!(big.rule, "large_read");
        // 1_800_000_000 s is 08:00 UTC; 11 hours later is 19:00: outside.
        let inside = rec(200, 3600, "admin-1", "10.0.0.3", "users.create", "u");
        assert!(d.feed(&inside).is_none());
        let late = rec(201, 11 * 3600, "admin-1", "10.0.0.3", "users.create", "u");
        assert_eq!(d.feed(&late).expect("off hours").rule, "admin_off_hours");
    }

    #[test]
    fn an_alert_remembered_from_the_store_is_not_raised_again() {
        let mut d = Detector::new(AlertSettings::default());
        d.remember("password_spraying", "10.0.0.9", 1_800_000_000_000);
        for i in 0..30u64 {
            assert!(d
                .feed(&failed(i + 1, i as i64, "10.0.0.9", &format!("u{i}@x")))
                .is_none());
        }
    }
}
