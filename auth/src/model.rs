//! The stored entities. Serialized as JSON in RocksDB so an operator can inspect them.

use serde::{Deserialize, Serialize};

use crate::policy::Role;

/// A person who logs in (dashboard, analysts, admins).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: String,
    /// Lower-cased; unique.
    pub email: String,
    pub name: String,
    /// argon2id PHC string. Never leaves the store in an API answer.
    pub password_hash: String,
    pub roles: Vec<Role>,
    /// Extra permissions granted on top of the roles' defaults.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Apps this user may see (admins see all).
    #[serde(default)]
    pub app_access: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    pub created_at_ms: i64,
    #[serde(default)]
    pub last_login_at_ms: Option<i64>,
    #[serde(default)]
    pub lockout: Lockout,
}

/// Failed-login bookkeeping, replicated so the limit is cluster-wide (TESTPLAN RL-01).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lockout {
    /// Failures in the current window.
    pub failures: u32,
    pub window_start_ms: i64,
    /// Logins are refused until then.
    pub locked_until_ms: i64,
    /// Lockouts so far (each doubles the next one, up to the cap); reset by a good login.
    pub lockouts: u32,
}

/// Fields an admin may change on a user; anything else in a request body is rejected by the
/// HTTP layer before it gets here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserPatch {
    pub name: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub permissions: Option<Vec<String>>,
    pub app_access: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

/// An application that sends events (the tenant unit of data).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct App {
    pub id: String,
    pub name: String,
    /// The user who created it.
    pub owner_id: String,
    pub created_at_ms: i64,
}

/// Per-app ingest settings, kept beside the app (the `App` record itself is part of old log
/// entries and keeps its shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AppSettings {
    /// Browser origins (`https://shop.example`, exact; `*` only when set explicitly) whose
    /// pages may post events with this app's keys (CORS on `/v1/events`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Unknown top-level event fields are errors instead of being kept as `$name`.
    #[serde(default)]
    pub strict_fields: bool,
}

impl AppSettings {
    /// Whether a page from `origin` may post events with this app's keys.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

/// An ingest credential of one app. Only a SHA-256 of the secret is stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub app_id: String,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    /// Hex SHA-256 of the full key.
    pub hash: String,
    /// What the key may do; `ingest` is the only scope so far.
    pub scope: String,
    pub created_at_ms: i64,
    #[serde(default)]
    pub revoked_at_ms: Option<i64>,
}

/// A login session: one refresh-token family. Refresh tokens rotate; presenting a superseded
/// one revokes the family (token theft detection).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    /// `jti` of the only refresh token of the family that is currently valid.
    pub current_jti: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    #[serde(default)]
    pub revoked: bool,
}
