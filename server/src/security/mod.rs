//! Authentication and authorization on the HTTP side: who is calling (bearer token or API
//! key), whether the route allows it ([`routes`]), password hashing under a concurrency bound,
//! token issuing, rate limits, and submitting auth changes and audit records through Raft.

mod alert_table;
pub mod alerts;
mod audit_table;
mod error;
mod key_sources;
mod limiter;
pub mod metrics;
pub mod routes;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth::token::{Claims, TokenKeys, TokenType};
use auth::{AuditEvent, AuthOp, AuthOutcome, AuthRequest, AuthStore, Principal, User};
use hyper::http::HeaderMap;
use parking_lot::RwLock;
use tokio::sync::Semaphore;

use crate::clock::now_ms;
use crate::cluster::Cluster;
pub use crate::config::AuthSettings;
use crate::raft::{Request, Response};
pub use alert_table::AlertTable;
pub use audit_table::AuditTable;
pub use error::SecurityError;
pub use key_sources::{KeySources, Unusual};
pub use limiter::Limiter;

/// Who made a request, as established by the authorization middleware.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(Principal),
    /// An API key (ingest) of `app_id`.
    Key {
        key_id: String,
        app_id: String,
    },
}

impl Caller {
    /// The actor written into audit records.
    pub fn actor(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".into(),
            Caller::User(p) => p.user_id.clone(),
            Caller::Key { key_id, .. } => format!("key:{key_id}"),
        }
    }
}

/// Tokens answered by login and refresh.
#[derive(Debug, serde::Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub token_type: &'static str,
}

pub struct Security {
    pub store: AuthStore,
    pub cfg: AuthSettings,
    node_id: u64,
    /// Token keys built from the store's signing keys, with the epoch they were built at.
    keys: RwLock<Option<(u64, TokenKeys)>>,
    hashing: Arc<Semaphore>,
    pub login_per_ip: Limiter,
    pub ingest_per_key: Limiter,
    denials_per_ip: Limiter,
    /// A hash verified for unknown users, so their timing matches real ones (AUTH-10).
    dummy_hash: String,
    pub audit_suppressed: AtomicU64,
    /// Logins refused by the per-IP limiter (RL-02 alert).
    pub login_rate_limited: AtomicU64,
    /// Wrong passwords and unknown users.
    pub login_failures: AtomicU64,
    /// Logins that opened a session.
    pub login_successes: AtomicU64,
    /// Accounts locked by repeated failures.
    pub lockouts: AtomicU64,
    /// Logins refused because the account was locked.
    pub login_locked: AtomicU64,
    /// The last background verification of the audit chain.
    audit_check: parking_lot::Mutex<Option<AuditCheck>>,
    /// Distinct source addresses per API key (the `key_many_sources` alert).
    pub key_sources: KeySources,
}

/// The outcome of one verification of the audit chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditCheck {
    pub ok: bool,
    pub at_ms: i64,
    pub problem: Option<String>,
}

fn unauthorized(msg: &str) -> SecurityError {
    SecurityError::Unauthorized(msg.to_string())
}

impl Security {
    pub fn new(
        store: AuthStore,
        cfg: AuthSettings,
        alerts: &crate::config::AlertSettings,
        node_id: u64,
    ) -> Result<Self, String> {
        let dummy_hash = auth::password::hash("not a real password, never matches")
            .map_err(|e| e.to_string())?;
        Ok(Self {
            node_id,
            keys: RwLock::new(None),
            hashing: Arc::new(Semaphore::new(cfg.max_concurrent_hashes)),
            login_per_ip: Limiter::per_minute(cfg.login_attempts_per_ip_per_minute),
            ingest_per_key: Limiter::new(
                cfg.ingest_events_per_sec_per_key as f64,
                2.0 * cfg.ingest_events_per_sec_per_key as f64,
            ),
            denials_per_ip: Limiter::per_minute(cfg.audited_denials_per_ip_per_minute),
            dummy_hash,
            audit_suppressed: AtomicU64::new(0),
            login_rate_limited: AtomicU64::new(0),
            login_failures: AtomicU64::new(0),
            login_successes: AtomicU64::new(0),
            lockouts: AtomicU64::new(0),
            login_locked: AtomicU64::new(0),
            audit_check: parking_lot::Mutex::new(None),
            key_sources: KeySources::new(
                alerts.window_secs,
                alerts.key_sources,
                alerts.key_sources_factor,
            ),
            store,
            cfg,
        })
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The last verification of the audit chain, if one ran.
    pub fn audit_verified(&self) -> Option<AuditCheck> {
        self.audit_check.lock().clone()
    }

    /// Verifies the whole audit chain (blocking: walks every record) and keeps the outcome
    /// for `/metrics`. A broken chain is logged as an error.
    pub fn verify_audit_now(&self) -> AuditCheck {
        let check = match self.store.verify_audit(None) {
            Ok(r) => AuditCheck {
                ok: r.ok,
                at_ms: now_ms(),
                problem: r.problem,
            },
            Err(e) => AuditCheck {
                ok: false,
                at_ms: now_ms(),
                problem: Some(e.to_string()),
            },
        };
        if !check.ok {
            tracing::error!(problem = ?check.problem, "the audit chain failed verification: a record was edited, deleted or reordered, or could not be read");
        }
        *self.audit_check.lock() = Some(check.clone());
        check
    }

    fn token_keys(&self) -> Result<TokenKeys, SecurityError> {
        let epoch = self.store.signing_epoch();
        if let Some((e, k)) = self.keys.read().as_ref() {
            if *e == epoch {
                return Ok(k.clone());
            }
        }
        let sk = self.store.signing_keys().ok_or(SecurityError::NotReady)?;
        let mut k =
            TokenKeys::new(&sk.current).map_err(|e| SecurityError::Internal(e.to_string()))?;
        for (secret, until_ms) in &sk.retired {
            k = k.with_retired(secret, (*until_ms).max(0) as u64 / 1000);
        }
        *self.keys.write() = Some((sk.epoch, k.clone()));
        Ok(k)
    }

    /// The client address: the peer, or the last `X-Forwarded-For` hop when the peer is a
    /// configured trusted proxy (TESTPLAN RL-03).
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
        let Some(peer) = peer else {
            return "unknown".into();
        };
        if self.cfg.trusted_proxies.contains(&peer.ip()) {
            if let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
            {
                return ip.to_string();
            }
        }
        peer.ip().to_string()
    }

    /// Runs `f` (argon2 work) on the blocking pool once a hashing slot is free; 503 if none
    /// frees up in time (TESTPLAN AUTH-09).
    async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SecurityError> {
        let wait = Duration::from_millis(self.cfg.hash_queue_timeout_ms);
        let permit = tokio::time::timeout(wait, self.hashing.clone().acquire_owned())
            .await
            .ok()
            .and_then(|p| p.ok())
            .ok_or(SecurityError::HashingBusy)?;
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| SecurityError::Internal(e.to_string()))?;
        Ok(out)
    }

    pub async fn hash_password(&self, password: String) -> Result<String, SecurityError> {
        self.hashing(move || auth::password::hash(&password))
            .await?
            .map_err(|e| SecurityError::Internal(e.to_string()))
    }

    /// Verifies `password` against `user`'s hash, or against a dummy hash when there is no
    /// such user (same cost either way).
    pub async fn verify_password(
        &self,
        user: Option<&User>,
        password: String,
    ) -> Result<bool, SecurityError> {
        let (hash, real) = match user {
            Some(u) => (u.password_hash.clone(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let ok = self
            .hashing(move || auth::password::verify(&hash, &password))
            .await?;
        Ok(ok && real)
    }

    /// Signs an access and a refresh token for `user` in session `sid`.
    pub fn issue_tokens(
        &self,
        user: &User,
        sid: &str,
        refresh_jti: &str,
    ) -> Result<TokenPair, SecurityError> {
        let keys = self.token_keys()?;
        let now = (now_ms() / 1000) as u64;
        let perms = auth::policy::effective_permissions(&user.roles, &user.permissions);
        let claims = |typ, jti: String, ttl: u64| Claims {
            iss: auth::token::ISSUER.into(),
            aud: auth::token::AUDIENCE.into(),
            sub: user.id.clone(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti,
            typ,
            sid: sid.to_string(),
            email: user.email.clone(),
            roles: user.roles.iter().map(|r| r.as_str().to_string()).collect(),
            permissions: perms.iter().map(|p| p.as_str().to_string()).collect(),
            app_access: user.app_access.clone(),
        };
        let sign = |c: Claims| {
            keys.sign(&c)
                .map_err(|e| SecurityError::Internal(e.to_string()))
        };
        Ok(TokenPair {
            access_token: sign(claims(
                TokenType::Access,
                uuid::Uuid::new_v4().to_string(),
                self.cfg.access_token_ttl_secs,
            ))?,
            refresh_token: sign(claims(
                TokenType::Refresh,
                refresh_jti.to_string(),
                self.cfg.refresh_token_ttl_secs,
            ))?,
            expires_in: self.cfg.access_token_ttl_secs,
            token_type: "Bearer",
        })
    }

    /// Verifies a refresh token's signature and claims.
    pub fn verify_refresh(&self, token: &str) -> Result<Claims, SecurityError> {
        self.token_keys()?
            .verify(token, TokenType::Refresh, (now_ms() / 1000) as u64)
            .map_err(|_| unauthorized("invalid refresh token"))
    }

    /// Resolves `Authorization: Bearer …` into the current principal.
    pub fn authenticate_bearer(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Principal>, SecurityError> {
        let Some(v) = headers.get(hyper::http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = v
            .to_str()
            .ok()
            .and_then(|s| {
                s.strip_prefix("Bearer ")
                    .or_else(|| s.strip_prefix("bearer "))
            })
            .ok_or_else(|| unauthorized("expected Authorization: Bearer <access token>"))?;
        let claims = self
            .token_keys()?
            .verify(token.trim(), TokenType::Access, (now_ms() / 1000) as u64)
            .map_err(|_| unauthorized("invalid or expired access token"))?;
        self.store
            .principal(&claims.sub, &claims.sid, now_ms())
            .map(Some)
            .map_err(|e| unauthorized(&e.to_string()))
    }

    /// Resolves `X-Api-Key`, or else the `api_key` query parameter (`navigator.sendBeacon`
    /// cannot set headers), into (key id, app id). The key itself is never logged or audited:
    /// audit records and metrics name the path only.
    pub fn authenticate_key(
        &self,
        headers: &HeaderMap,
        query_key: Option<&str>,
    ) -> Result<Option<(String, String)>, SecurityError> {
        let key = match headers.get("x-api-key") {
            Some(v) => v
                .to_str()
                .map_err(|_| unauthorized("malformed X-Api-Key"))?,
            None => match query_key {
                Some(k) => k,
                None => return Ok(None),
            },
        };
        self.store
            .key_by_hash(&auth::apikey::hash(key.trim()))
            .map(Some)
            .map_err(|e| unauthorized(&e.to_string()))
    }

    /// Whether a denial from `ip` should be audited now (bounded per IP per minute).
    pub fn audit_denial_allowed(&self, ip: &str) -> bool {
        let ok = self.denials_per_ip.take(ip, 1.0).is_ok();
        if !ok {
            self.audit_suppressed.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Builds a request proposed by this node now.
    pub fn request(&self, op: AuthOp, audit: Vec<AuditEvent>) -> AuthRequest {
        AuthRequest {
            at_ms: now_ms(),
            node: self.node_id,
            op,
            audit,
        }
    }
}

tokio::task_local! {
    /// The id of the HTTP request being served (set by the HTTP layer around each request):
    /// audit records written while serving it carry it.
    pub static REQUEST_ID: String;
}

/// Replicates an auth request and returns what applying it decided.
pub async fn submit(cluster: &Cluster, req: AuthRequest) -> Result<AuthOutcome, SecurityError> {
    let entry = match REQUEST_ID.try_with(|id| id.clone()) {
        Ok(request_id) => Request::AuthTraced { request_id, req },
        Err(_) => Request::Auth(req),
    };
    match cluster.write(entry).await {
        Ok(resp) => match resp {
            Response::Auth(o) => Ok(o),
            other => Err(SecurityError::Internal(format!(
                "unexpected state machine answer {other:?}"
            ))),
        },
        Err(e) => Err(SecurityError::Cluster(e)),
    }
}

/// Shorthand for one audit event.
pub fn event(
    actor: String,
    ip: &str,
    action: &str,
    target: impl Into<String>,
    detail: impl Into<String>,
) -> AuditEvent {
    AuditEvent {
        actor,
        source_ip: ip.to_string(),
        action: action.to_string(),
        target: target.into(),
        outcome: None,
        detail: detail.into(),
    }
}
