//! Users, roles, apps, API keys, sessions and the audit log of the appliance.
//!
//! Everything here is *state*, changed only by applying [`AuthRequest`]s in Raft log order
//! ([`AuthStore::apply`]), so every node of a cluster holds the same users, keys and audit
//! chain. Anything random or time-dependent (ids, salts, password hashes, key material,
//! timestamps) is decided by the node that proposes a request and travels inside it; applying
//! is deterministic. The crate knows nothing of HTTP or of Raft's network.
//!
//! - [`model`]: users, apps, keys, sessions; [`policy`]: roles, permissions, principals.
//! - [`command`]: the replicated requests and their outcomes.
//! - [`store`]: RocksDB persistence plus an in-memory index for per-request checks.
//! - [`audit`]: the hash-chained audit records and their verification.
//! - [`password`], [`token`], [`apikey`]: argon2id, JWT (HS256, RFC 8725) and API keys.

pub mod alert;
pub mod apikey;
pub mod audit;
pub mod command;
mod error;
pub mod model;
pub mod password;
pub mod policy;
pub mod privacy;
pub mod store;
pub mod token;

pub use alert::{NewAlert, SecurityAlert};
pub use audit::{AuditEvent, AuditRecord, VerifyReport};
pub use command::{AuthOp, AuthOutcome, AuthRequest};
pub use error::{AuthError, ErrorKind};
pub use model::{ApiKey, App, AppSettings, Session, User, UserPatch};
pub use policy::{Permission, Principal, Role};
pub use privacy::{AppPrivacy, Privacy};
pub use store::{AuthStore, LockoutPolicy, RetiredKey, SigningKeys};
