//! `[auth]` settings.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Lifetime of access tokens.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a login session (refresh tokens rotate within it).
    pub refresh_token_ttl_secs: u64,
    /// Whether anyone may `POST /api/auth/register` (otherwise only admins).
    pub open_registration: bool,
    /// Password hashes computed at once (each takes ~19 MiB and tens of ms of a core); further
    /// logins wait up to `hash_queue_timeout_ms`, then get 503.
    pub max_concurrent_hashes: usize,
    pub hash_queue_timeout_ms: u64,
    /// Login attempts per source IP per minute (then 429).
    pub login_attempts_per_ip_per_minute: u32,
    /// Events per second one API key may ingest (token bucket; burst is twice this).
    pub ingest_events_per_sec_per_key: u64,
    /// Denied requests audited per source IP per minute (further ones are counted in
    /// `unmogrowp_audit_suppressed_total`, so a flood cannot fill the audit log).
    pub audited_denials_per_ip_per_minute: u32,
    /// How often the leader deletes expired and revoked login sessions.
    pub session_purge_interval_secs: u64,
    /// How often each node verifies the audit hash chain in the background
    /// (`unmogrowp_audit_chain_ok`); 0 turns it off.
    pub audit_verify_interval_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed; from anyone else the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Cluster-wide failed-login lockout.
    pub lockout: auth::LockoutPolicy,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            open_registration: false,
            max_concurrent_hashes: 2,
            hash_queue_timeout_ms: 2000,
            login_attempts_per_ip_per_minute: 30,
            ingest_events_per_sec_per_key: 250_000,
            audited_denials_per_ip_per_minute: 60,
            session_purge_interval_secs: 600,
            audit_verify_interval_secs: 600,
            trusted_proxies: Vec::new(),
            lockout: auth::LockoutPolicy::default(),
        }
    }
}

impl AuthSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.access_token_ttl_secs < 60
            || self.refresh_token_ttl_secs < self.access_token_ttl_secs
        {
            return Err("auth: access_token_ttl_secs ≥ 60 and refresh_token_ttl_secs ≥ access_token_ttl_secs".into());
        }
        if self.max_concurrent_hashes == 0 || self.login_attempts_per_ip_per_minute == 0 {
            return Err(
                "auth: max_concurrent_hashes and login_attempts_per_ip_per_minute must be positive"
                    .into(),
            );
        }
        if self.session_purge_interval_secs == 0 {
            return Err("auth: session_purge_interval_secs must be positive".into());
        }
        if self.ingest_events_per_sec_per_key == 0 {
            return Err("auth: ingest_events_per_sec_per_key must be positive".into());
        }
        if self.lockout.max_failures == 0 || self.lockout.lock_secs == 0 {
            return Err("auth.lockout: max_failures and lock_secs must be positive".into());
        }
        Ok(())
    }
}
