//! [`AuthStore`]: the auth state in RocksDB, mirrored in memory for per-request checks.
//!
//! Keys (one column family, prefixed so `ldb scan` reads naturally): `m/applied` (last applied
//! Raft index, u64 big-endian), `m/secret` (JWT signing secret, hex), `m/retired` (replaced
//! secrets still verifying until their time), `m/keyepoch` (rotation count), `m/head` (audit head
//! `[seq, hash]`), `u/<user id>`, `a/<app id>`, `k/<sha256 of key>`, `s/<session id>`,
//! `l/<seq, 20 digits>` (audit records), `m/keysince` (when the signing key was made),
//! `m/alerts` (alert positions), `x/<seq, 20 digits>` (security alerts). Values are JSON.
//!
//! Durability: each applied request is one `WriteBatch` written with `sync = true` and carries
//! the applied index, so replaying the Raft log after a crash skips what is already stored and
//! nothing applied is lost even if the engine's flushed position is further ahead.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::audit::{self, AuditBase, AuditRecord, VerifyReport};
use crate::command::{AuthOp, AuthOutcome, AuthRequest};
use crate::model::{ApiKey, App, AppSettings, Session, User};
use crate::policy::{effective_permissions, Principal, Role};
use crate::privacy::AppPrivacy;
use crate::AuthError;

mod apply;
use apply::apply_op;

/// Where the security alerts stand: the last alert, how far the detector read the audit log,
/// how far each webhook was delivered, and how many alerts each rule raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBook {
    pub head: u64,
    pub detector_through: u64,
    pub delivered: BTreeMap<String, u64>,
    pub by_rule: BTreeMap<String, u64>,
}

/// Failed-login limits; part of the replicated semantics, so identical on every node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Failures within `window_secs` that lock the account.
    pub max_failures: u32,
    pub window_secs: u64,
    /// First lockout; each further one doubles, up to `max_lock_secs`.
    pub lock_secs: u64,
    pub max_lock_secs: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 900,
            lock_secs: 60,
            max_lock_secs: 3600,
        }
    }
}

#[derive(Default)]
struct State {
    applied: u64,
    secret: Option<Vec<u8>>,
    /// Replaced secrets that still verify tokens until their time (ms).
    retired: Vec<RetiredKey>,
    /// Bumped whenever the signing keys change, so caches know to reload.
    key_epoch: u64,
    /// When the current signing key was created (`m/keysince`; absent in stores written
    /// before it was recorded).
    key_since_ms: Option<i64>,
    /// Security alerts' positions (`m/alerts`).
    alerts: AlertBook,
    users: HashMap<String, User>,
    by_email: HashMap<String, String>,
    apps: BTreeMap<String, App>,
    /// Per-app ingest settings (`p/{app id}`); absent means the defaults.
    app_settings: HashMap<String, AppSettings>,
    /// Per-app data protection and its secrets (`v/{app id}`); absent means keep everything.
    /// Kept when the app is deleted: its stored events are kept too.
    privacy: HashMap<String, AppPrivacy>,
    /// By key hash.
    keys: HashMap<String, ApiKey>,
    sessions: HashMap<String, Session>,
    /// The last rotation of each session (`r/{session id}`), for the reuse grace.
    rotations: HashMap<String, Rotation>,
    head: (u64, String),
    /// Where the chain starts once retention removed records (`m/auditbase`).
    audit_base: Option<AuditBase>,
    /// Signs audit bases (`m/auditkey`): drawn by the proposer of the first cut, never changed.
    audit_key: Option<Vec<u8>>,
}

/// Most audit records one `CutAudit` removes (the next check removes more).
pub const MAX_AUDIT_CUT: usize = 100_000;

/// A superseded refresh token presented this soon after it was rotated away is answered
/// with the session's current token instead of revoking the session: the rotation's answer
/// was lost, not stolen (a page reloaded or closed while its refresh was in flight, two tabs
/// refreshing from one cookie at once). Older superseded tokens still revoke the session.
pub const REFRESH_REUSE_GRACE_MS: i64 = 10_000;

/// What a session's last refresh replaced, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rotation {
    previous_jti: String,
    at_ms: i64,
}

/// A replaced JWT secret, accepted for verification until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub secret_hex: String,
    pub until_ms: i64,
}

/// The cluster's JWT secrets: `current` signs; `retired` ones only verify, until their time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys {
    pub current: Vec<u8>,
    pub retired: Vec<(Vec<u8>, i64)>,
    pub epoch: u64,
}

/// Why a credential was refused (all map to 401).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denied {
    #[error("unknown user")]
    UnknownUser,
    #[error("the user is disabled")]
    Disabled,
    #[error("the session was revoked or has expired")]
    SessionInvalid,
    #[error("unknown or revoked API key")]
    BadKey,
}

/// Shared handle; clones share the database and the in-memory index.
#[derive(Clone)]
pub struct AuthStore {
    db: Arc<DB>,
    state: Arc<RwLock<State>>,
    policy: LockoutPolicy,
}

fn dec<T: DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(v).map_err(|source| AuthError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn audit_key(seq: u64) -> String {
    format!("l/{seq:020}")
}

impl AuthStore {
    /// Opens (creating if needed) the store at `path` and loads the index.
    pub fn open(path: &Path, policy: LockoutPolicy) -> Result<Self, AuthError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_paranoid_checks(true);
        opts.set_keep_log_file_num(4);
        let db = DB::open(&opts, path)?;
        Self::from_db(db, policy)
    }

    /// Opens read-only (for `unmogrowp audit verify` next to a running node).
    pub fn open_read_only(path: &Path) -> Result<Self, AuthError> {
        let mut opts = Options::default();
        opts.set_paranoid_checks(true);
        let db = DB::open_for_read_only(&opts, path, false)?;
        Self::from_db(db, LockoutPolicy::default())
    }

    fn from_db(db: DB, policy: LockoutPolicy) -> Result<Self, AuthError> {
        let st = load_state(&db)?;
        Ok(Self {
            db: Arc::new(db),
            state: Arc::new(RwLock::new(st)),
            policy,
        })
    }

    /// Writes a consistent copy of the store to `dir` (a RocksDB checkpoint: hard links to the
    /// immutable table files plus a fresh copy of the rest). `dir` must not exist yet.
    pub fn checkpoint_to(&self, dir: &Path) -> Result<(), AuthError> {
        // Hold the index lock so no apply runs between the flush and the checkpoint.
        let _st = self.state.read();
        self.db.flush_wal(true)?;
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Replaces the whole content of the store with the checkpoint in `dir` (from a snapshot)
    /// in one synced write, then reloads the in-memory index from it.
    pub fn install_checkpoint(&self, dir: &Path) -> Result<(), AuthError> {
        let mut opts = Options::default();
        opts.set_paranoid_checks(true);
        let src = DB::open_for_read_only(&opts, dir, false)?;
        let fresh = load_state(&src)?;
        let mut st = self.state.write();
        let mut wb = WriteBatch::default();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item?;
            wb.delete(k);
        }
        for item in src.iterator(IteratorMode::Start) {
            let (k, v) = item?;
            wb.put(k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo)?;
        *st = fresh;
        Ok(())
    }
}

/// Reads the whole store into the in-memory index.
fn load_state(db: &DB) -> Result<State, AuthError> {
    {
        let mut st = State {
            head: (0, audit::GENESIS_HASH.to_string()),
            ..State::default()
        };
        for item in db.iterator(IteratorMode::Start) {
            let (k, v) = item?;
            match k.get(..2) {
                Some(b"u/") => {
                    let u: User = dec(&k, &v)?;
                    st.by_email.insert(u.email.clone(), u.id.clone());
                    st.users.insert(u.id.clone(), u);
                }
                Some(b"a/") => {
                    let a: App = dec(&k, &v)?;
                    st.apps.insert(a.id.clone(), a);
                }
                Some(b"p/") => {
                    let settings: AppSettings = dec(&k, &v)?;
                    let id = String::from_utf8_lossy(&k[2..]).into_owned();
                    st.app_settings.insert(id, settings);
                }
                Some(b"v/") => {
                    let p: AppPrivacy = dec(&k, &v)?;
                    let id = String::from_utf8_lossy(&k[2..]).into_owned();
                    st.privacy.insert(id, p);
                }
                Some(b"k/") => {
                    let key: ApiKey = dec(&k, &v)?;
                    st.keys.insert(key.hash.clone(), key);
                }
                Some(b"s/") => {
                    let s: Session = dec(&k, &v)?;
                    st.sessions.insert(s.id.clone(), s);
                }
                Some(b"r/") => {
                    let r: Rotation = dec(&k, &v)?;
                    let id = String::from_utf8_lossy(&k[2..]).into_owned();
                    st.rotations.insert(id, r);
                }
                Some(b"m/") => match &k[..] {
                    b"m/applied" => {
                        let b: [u8; 8] = v[..]
                            .try_into()
                            .map_err(|_| AuthError::Corrupt("m/applied is not 8 bytes".into()))?;
                        st.applied = u64::from_be_bytes(b);
                    }
                    b"m/secret" => {
                        let s: String = dec(&k, &v)?;
                        st.secret = Some(
                            hex::decode(s)
                                .map_err(|e| AuthError::Corrupt(format!("m/secret: {e}")))?,
                        );
                    }
                    b"m/head" => st.head = dec(&k, &v)?,
                    b"m/retired" => st.retired = dec(&k, &v)?,
                    b"m/keyepoch" => st.key_epoch = dec(&k, &v)?,
                    b"m/keysince" => st.key_since_ms = Some(dec(&k, &v)?),
                    b"m/alerts" => st.alerts = dec(&k, &v)?,
                    b"m/auditbase" => st.audit_base = Some(dec(&k, &v)?),
                    b"m/auditkey" => {
                        let s: String = dec(&k, &v)?;
                        st.audit_key = Some(
                            hex::decode(s)
                                .map_err(|e| AuthError::Corrupt(format!("m/auditkey: {e}")))?,
                        );
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(st)
    }
}

impl AuthStore {
    pub fn applied_index(&self) -> u64 {
        self.state.read().applied
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.state.read().secret.is_some()
    }

    /// The cluster's JWT signing secret (after bootstrap).
    pub fn jwt_secret(&self) -> Option<Vec<u8>> {
        self.state.read().secret.clone()
    }

    /// Changes whenever the signing keys do.
    /// When the current signing key was created: recorded since key creation times were; for
    /// an older store, the time of the first audit record (the bootstrap that created it) if
    /// the key was never rotated since.
    pub fn signing_key_since_ms(&self) -> Option<i64> {
        let (since, epoch) = {
            let st = self.state.read();
            (st.key_since_ms, st.key_epoch)
        };
        since.or_else(|| {
            (epoch == 0)
                .then(|| self.audit_page(0, 1).ok()?.first().map(|r| r.at_ms))
                .flatten()
        })
    }

    pub fn signing_epoch(&self) -> u64 {
        self.state.read().key_epoch
    }

    /// The signing secret and the retired ones still inside their overlap window at `now_ms`.
    pub fn signing_keys(&self) -> Option<SigningKeys> {
        let st = self.state.read();
        let current = st.secret.clone()?;
        let retired = st
            .retired
            .iter()
            .filter_map(|r| Some((hex::decode(&r.secret_hex).ok()?, r.until_ms)))
            .collect();
        Some(SigningKeys {
            current,
            retired,
            epoch: st.key_epoch,
        })
    }

    /// Sessions that a `PurgeSessions { before_ms: now_ms }` would delete.
    pub fn dead_sessions(&self, now_ms: i64) -> usize {
        self.state
            .read()
            .sessions
            .values()
            .filter(|s| s.revoked || s.expires_at_ms < now_ms)
            .count()
    }

    pub fn sessions(&self) -> usize {
        self.state.read().sessions.len()
    }

    pub fn lockout_policy(&self) -> LockoutPolicy {
        self.policy
    }

    pub fn user(&self, id: &str) -> Option<User> {
        self.state.read().users.get(id).cloned()
    }

    pub fn user_by_email(&self, email: &str) -> Option<User> {
        let st = self.state.read();
        st.by_email
            .get(&email.to_lowercase())
            .and_then(|id| st.users.get(id))
            .cloned()
    }

    pub fn users(&self) -> Vec<User> {
        let mut v: Vec<User> = self.state.read().users.values().cloned().collect();
        v.sort_by(|a, b| a.email.cmp(&b.email));
        v
    }

    pub fn app(&self, id: &str) -> Option<App> {
        self.state.read().apps.get(id).cloned()
    }

    /// An app's ingest settings (the defaults if none were set).
    pub fn app_settings(&self, id: &str) -> AppSettings {
        self.state
            .read()
            .app_settings
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// An app's data protection with its secrets (`None`: never set, everything kept).
    pub fn app_privacy(&self, id: &str) -> Option<AppPrivacy> {
        self.state.read().privacy.get(id).cloned()
    }

    /// Whether any app lets pages from `origin` post events (answers CORS preflights, which
    /// carry no key).
    pub fn any_app_allows_origin(&self, origin: &str) -> bool {
        self.state
            .read()
            .app_settings
            .values()
            .any(|s| s.allows_origin(origin))
    }

    pub fn apps(&self) -> Vec<App> {
        self.state.read().apps.values().cloned().collect()
    }

    pub fn app_keys(&self, app_id: &str) -> Vec<ApiKey> {
        let mut v: Vec<ApiKey> = self
            .state
            .read()
            .keys
            .values()
            .filter(|k| k.app_id == app_id)
            .cloned()
            .collect();
        v.sort_by_key(|k| k.created_at_ms);
        v
    }

    pub fn session(&self, id: &str) -> Option<Session> {
        self.state.read().sessions.get(id).cloned()
    }

    /// Resolves an access token's subject and session against the current state.
    pub fn principal(
        &self,
        user_id: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<Principal, Denied> {
        let st = self.state.read();
        let u = st.users.get(user_id).ok_or(Denied::UnknownUser)?;
        if u.disabled {
            return Err(Denied::Disabled);
        }
        let s = st.sessions.get(session_id).ok_or(Denied::SessionInvalid)?;
        if s.revoked || s.user_id != u.id || s.expires_at_ms <= now_ms {
            return Err(Denied::SessionInvalid);
        }
        let admin = u.roles.contains(&Role::Admin);
        Ok(Principal {
            user_id: u.id.clone(),
            email: u.email.clone(),
            roles: u.roles.iter().copied().collect(),
            permissions: effective_permissions(&u.roles, &u.permissions),
            app_access: (!admin).then(|| u.app_access.iter().cloned().collect()),
            session_id: s.id.clone(),
        })
    }

    /// The (key id, app id) of an active API key, given the presented secret's hash.
    pub fn key_by_hash(&self, hash: &str) -> Result<(String, String), Denied> {
        let st = self.state.read();
        match st.keys.get(hash) {
            Some(k) if k.revoked_at_ms.is_none() && st.apps.contains_key(&k.app_id) => {
                Ok((k.id.clone(), k.app_id.clone()))
            }
            _ => Err(Denied::BadKey),
        }
    }

    /// Audit records with `seq > after`, oldest first, at most `limit`.
    pub fn audit_page(&self, after: u64, limit: usize) -> Result<Vec<AuditRecord>, AuthError> {
        let start = audit_key(after + 1);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(start.as_bytes(), Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(b"l/") || out.len() >= limit {
                break;
            }
            out.push(dec(&k, &v)?);
        }
        Ok(out)
    }

    /// Where the security alerts stand.
    pub fn alert_book(&self) -> AlertBook {
        self.state.read().alerts.clone()
    }

    /// Alerts with `seq > after`, oldest first, at most `limit`.
    pub fn alerts_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::alert::SecurityAlert>, AuthError> {
        let start = crate::alert::alert_key(after + 1);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(start.as_bytes(), Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(b"x/") || out.len() >= limit {
                break;
            }
            out.push(dec(&k, &v)?);
        }
        Ok(out)
    }

    /// Alerts with `seq < before` (from the newest when `None`), newest first, at most `limit`.
    pub fn alerts_before(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<crate::alert::SecurityAlert>, AuthError> {
        let head = self.state.read().alerts.head;
        let end = before.unwrap_or(head + 1).min(head + 1);
        let from = end.saturating_sub(limit as u64).max(1);
        let mut page = if end > 1 {
            self.alerts_after(from - 1, (end - from) as usize)?
        } else {
            Vec::new()
        };
        page.reverse();
        Ok(page)
    }

    /// Audit records with `seq < before` (all when `None`), newest first, that `keep`
    /// accepts: at most `limit` of them, looking at no more than `max_scanned` records.
    /// Returns the records and the cursor to continue from (`None` at the start of the log).
    pub fn audit_page_desc(
        &self,
        before: Option<u64>,
        limit: usize,
        max_scanned: usize,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> Result<(Vec<AuditRecord>, Option<u64>), AuthError> {
        let mode_key;
        let mode = match before {
            Some(b) => {
                mode_key = audit_key(b.saturating_sub(1));
                if b == 0 {
                    return Ok((Vec::new(), None));
                }
                IteratorMode::From(mode_key.as_bytes(), Direction::Reverse)
            }
            None => {
                mode_key = "l0".to_string();
                IteratorMode::From(mode_key.as_bytes(), Direction::Reverse)
            }
        };
        let mut out = Vec::new();
        let mut last_seq = None;
        for (scanned, item) in self.db.iterator(mode).enumerate() {
            let (k, v) = item?;
            if !k.starts_with(b"l/") {
                if k.as_ref() < b"l/".as_slice() {
                    break;
                }
                continue;
            }
            if out.len() >= limit || scanned >= max_scanned {
                return Ok((out, last_seq));
            }
            let r: AuditRecord = dec(&k, &v)?;
            last_seq = Some(r.seq);
            if keep(&r) {
                out.push(r);
            }
        }
        Ok((out, None))
    }

    pub fn audit_head(&self) -> (u64, String) {
        self.state.read().head.clone()
    }

    /// Walks the whole audit chain (see [`audit::verify`]).
    pub fn verify_audit(
        &self,
        checkpoint: Option<(u64, String)>,
    ) -> Result<VerifyReport, AuthError> {
        let mut raw = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(b"l/", Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(b"l/") {
                break;
            }
            let seq = std::str::from_utf8(&k[2..])
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    AuthError::Corrupt(format!("bad audit key {:?}", String::from_utf8_lossy(&k)))
                })?;
            raw.push((seq, v.to_vec()));
        }
        let (head, base, key) = {
            let st = self.state.read();
            (st.head.clone(), st.audit_base.clone(), st.audit_key.clone())
        };
        let Some(base) = base else {
            return Ok(audit::verify(raw, Some(head), checkpoint));
        };
        if !key.is_some_and(|k| base.signature_ok(&k)) {
            return Ok(VerifyReport {
                records: 0,
                ok: false,
                first_bad_seq: Some(base.seq),
                problem: Some(format!(
                    "the retention base (record {}) does not carry the store's signature",
                    base.seq
                )),
                head_seq: base.seq,
                head_hash: base.hash,
            });
        }
        Ok(audit::verify_after(
            raw,
            (base.seq, base.hash),
            Some(head),
            checkpoint,
        ))
    }

    /// Where the stored audit chain starts, if retention removed records.
    pub fn audit_base(&self) -> Option<AuditBase> {
        self.state.read().audit_base.clone()
    }

    /// The time of the oldest stored audit record.
    pub fn oldest_audit_at_ms(&self) -> Result<Option<i64>, AuthError> {
        let first = self
            .db
            .iterator(IteratorMode::From(b"l/", Direction::Forward))
            .next();
        match first {
            Some(item) => {
                let (k, v) = item?;
                if !k.starts_with(b"l/") {
                    return Ok(None);
                }
                let rec: AuditRecord = dec(&k, &v)?;
                Ok(Some(rec.at_ms))
            }
            None => Ok(None),
        }
    }

    /// Removes the oldest records before `before_ms` into `wb` and moves the base
    /// (`AuthOp::CutAudit`, deterministic: the same records on every node).
    fn cut_audit(
        &self,
        st: &mut State,
        wb: &mut WriteBatch,
        before_ms: i64,
        key_hex: &str,
    ) -> Result<(), AuthError> {
        // A proposer's bad key leaves the chain whole (the next check proposes again); an
        // error here would stop the node's state machine.
        let key = match &st.audit_key {
            Some(k) => k.clone(),
            None => match hex::decode(key_hex).ok().filter(|k| k.len() == 32) {
                Some(k) => k,
                None => return Ok(()),
            },
        };
        let mut last: Option<AuditRecord> = None;
        let mut removed = 0u64;
        for item in self
            .db
            .iterator(IteratorMode::From(b"l/", Direction::Forward))
            .take(MAX_AUDIT_CUT)
        {
            let (k, v) = item?;
            if !k.starts_with(b"l/") {
                break;
            }
            let rec: AuditRecord = dec(&k, &v)?;
            if rec.at_ms >= before_ms {
                break;
            }
            wb.delete(&k);
            removed += 1;
            last = Some(rec);
        }
        let Some(last) = last else {
            return Ok(());
        };
        if st.audit_key.is_none() {
            wb.put(b"m/auditkey", enc(&hex::encode(&key)));
            st.audit_key = Some(key.clone());
        }
        let before = st.audit_base.as_ref().map_or(0, |b| b.removed);
        let base = AuditBase::signed(&key, last.seq, last.hash, last.at_ms, before + removed);
        wb.put(b"m/auditbase", enc(&base));
        st.audit_base = Some(base);
        Ok(())
    }

    /// Applies the request at Raft log index `index`. Deterministic; idempotent across replay.
    pub fn apply(&self, index: u64, req: &AuthRequest) -> Result<AuthOutcome, AuthError> {
        self.apply_traced(index, req, "")
    }

    /// Like [`apply`](Self::apply), for a request proposed while serving the HTTP request
    /// `request_id`, which its audit records carry.
    pub fn apply_traced(
        &self,
        index: u64,
        req: &AuthRequest,
        request_id: &str,
    ) -> Result<AuthOutcome, AuthError> {
        let mut st = self.state.write();
        if index <= st.applied {
            return Ok(AuthOutcome::Replayed);
        }
        let mut wb = WriteBatch::default();
        let outcome = apply_op(&mut st, &mut wb, &self.policy, req);
        if let AuthOp::CutAudit { before_ms, key } = &req.op {
            self.cut_audit(&mut st, &mut wb, *before_ms, key)?;
        }
        // Audit records, chained onto the head, with the outcome decided above.
        let (mut seq, mut prev) = st.head.clone();
        for ev in &req.audit {
            seq += 1;
            let mut rec = AuditRecord {
                seq,
                at_ms: req.at_ms,
                node: req.node,
                actor: audit::sanitize(&ev.actor, audit::MAX_FIELD_CHARS),
                source_ip: audit::sanitize(&ev.source_ip, audit::MAX_FIELD_CHARS),
                action: audit::sanitize(&ev.action, audit::MAX_FIELD_CHARS),
                target: audit::sanitize(&ev.target, audit::MAX_FIELD_CHARS),
                outcome: audit::sanitize(
                    &ev.outcome.clone().unwrap_or_else(|| outcome.audit_text()),
                    audit::MAX_FIELD_CHARS,
                ),
                detail: audit::sanitize(&ev.detail, audit::MAX_DETAIL_CHARS),
                log_index: index,
                request_id: audit::sanitize(request_id, audit::MAX_FIELD_CHARS),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            rec.hash = rec.compute_hash();
            prev = rec.hash.clone();
            wb.put(audit_key(seq), enc(&rec));
        }
        st.head = (seq, prev);
        wb.put(b"m/head", enc(&st.head));
        st.applied = index;
        wb.put(b"m/applied", index.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo)?;
        Ok(outcome)
    }

    /// Makes everything written so far durable (used before a snapshot).
    pub fn sync(&self) -> Result<(), AuthError> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

/// Serializable shape of the audit head for clients (checkpoints).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditCheckpoint {
    pub seq: u64,
    pub hash: String,
}

#[cfg(test)]
mod tests;
