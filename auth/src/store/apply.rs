//! How each [`AuthOp`] changes the state: the pure part of [`AuthStore::apply`], the same on
//! every node (decisions use only the state and the request, `now` is the request's `at_ms`).

use super::*;

pub(super) fn put_user(wb: &mut WriteBatch, u: &User) {
    wb.put(format!("u/{}", u.id), enc(u));
}

pub(super) fn put_session(wb: &mut WriteBatch, s: &Session) {
    wb.put(format!("s/{}", s.id), enc(s));
}

pub(super) fn put_key(wb: &mut WriteBatch, k: &ApiKey) {
    wb.put(format!("k/{}", k.hash), enc(k));
}

/// Rotates a session's refresh token: `presented_jti` must be the current one; a superseded
/// one revokes the session, except (with `grace`) one rotated away moments ago.
#[allow(clippy::too_many_arguments)]
pub(super) fn rotate_refresh(
    st: &mut State,
    wb: &mut WriteBatch,
    now: i64,
    session_id: &String,
    presented_jti: &String,
    new_jti: &String,
    expires_at_ms: i64,
    grace: bool,
) -> AuthOutcome {
    let last = st.rotations.get(session_id).cloned();
    let Some(s) = st.sessions.get_mut(session_id) else {
        return AuthOutcome::SessionRevoked;
    };
    if s.revoked || s.expires_at_ms <= now {
        return AuthOutcome::SessionRevoked;
    }
    if &s.current_jti != presented_jti {
        let lost_answer = grace
            && last.is_some_and(|r| {
                r.previous_jti == *presented_jti && now - r.at_ms <= REFRESH_REUSE_GRACE_MS
            });
        if lost_answer {
            return AuthOutcome::RefreshGrace {
                current_jti: s.current_jti.clone(),
            };
        }
        s.revoked = true;
        let s = s.clone();
        put_session(wb, &s);
        return AuthOutcome::RefreshReused;
    }
    let rotation = Rotation {
        previous_jti: std::mem::replace(&mut s.current_jti, new_jti.clone()),
        at_ms: now,
    };
    s.expires_at_ms = expires_at_ms;
    let s = s.clone();
    put_session(wb, &s);
    wb.put(format!("r/{session_id}"), enc(&rotation));
    st.rotations.insert(session_id.clone(), rotation);
    AuthOutcome::Ok
}

pub(super) fn apply_op(
    st: &mut State,
    wb: &mut WriteBatch,
    policy: &LockoutPolicy,
    req: &AuthRequest,
) -> AuthOutcome {
    let now = req.at_ms;
    match &req.op {
        // Records are read from the store: `AuthStore::apply_traced` does the cut.
        AuthOp::AuditOnly | AuthOp::CutAudit { .. } => AuthOutcome::Ok,
        AuthOp::RecordAlerts {
            through_audit_seq,
            alerts,
        } => {
            if *through_audit_seq <= st.alerts.detector_through {
                return AuthOutcome::Conflict("the detector already read this far".into());
            }
            for a in alerts {
                st.alerts.head += 1;
                let seq = st.alerts.head;
                let rec = crate::alert::SecurityAlert {
                    seq,
                    id: format!("alert-{seq}"),
                    at_ms: now,
                    node: req.node,
                    alert: a.clone(),
                };
                wb.put(crate::alert::alert_key(seq), enc(&rec));
                *st.alerts.by_rule.entry(a.rule.clone()).or_insert(0) += 1;
            }
            st.alerts.detector_through = *through_audit_seq;
            wb.put(b"m/alerts", enc(&st.alerts));
            AuthOutcome::Ok
        }
        AuthOp::AlertsDelivered {
            webhook,
            through_alert_seq,
        } => {
            let cur = st.alerts.delivered.entry(webhook.clone()).or_insert(0);
            if *through_alert_seq > *cur {
                *cur = (*through_alert_seq).min(st.alerts.head);
                wb.put(b"m/alerts", enc(&st.alerts));
            }
            AuthOutcome::Ok
        }
        AuthOp::Bootstrap { jwt_secret, admin } => {
            if st.secret.is_some() {
                return AuthOutcome::AlreadyBootstrapped;
            }
            let Ok(secret) = hex::decode(jwt_secret) else {
                return AuthOutcome::Conflict("malformed secret".into());
            };
            wb.put(b"m/secret", enc(jwt_secret));
            wb.put(b"m/keysince", enc(&now));
            st.secret = Some(secret);
            st.key_since_ms = Some(now);
            if !st.by_email.contains_key(&admin.email) {
                put_user(wb, admin);
                st.by_email.insert(admin.email.clone(), admin.id.clone());
                st.users.insert(admin.id.clone(), admin.clone());
            }
            AuthOutcome::Ok
        }
        AuthOp::RotateSigningKey {
            jwt_secret,
            overlap_ms,
        } => {
            let Some(old) = st.secret.clone() else {
                return AuthOutcome::Conflict("the cluster is not bootstrapped".into());
            };
            let secret = match hex::decode(jwt_secret) {
                Ok(s) if s.len() >= 32 => s,
                _ => {
                    return AuthOutcome::Conflict("the new secret must be ≥ 256 bits of hex".into())
                }
            };
            st.retired.retain(|r| r.until_ms > now);
            st.retired.push(RetiredKey {
                secret_hex: hex::encode(old),
                until_ms: now.saturating_add((*overlap_ms).max(0)),
            });
            st.secret = Some(secret);
            st.key_epoch += 1;
            wb.put(b"m/secret", enc(jwt_secret));
            wb.put(b"m/retired", enc(&st.retired));
            wb.put(b"m/keyepoch", enc(&st.key_epoch));
            wb.put(b"m/keysince", enc(&now));
            st.key_since_ms = Some(now);
            AuthOutcome::Ok
        }
        AuthOp::CreateUser { user } => {
            if st.by_email.contains_key(&user.email) {
                return AuthOutcome::Conflict(format!("a user with email {} exists", user.email));
            }
            if st.users.contains_key(&user.id) {
                return AuthOutcome::Conflict("user id exists".into());
            }
            put_user(wb, user);
            st.by_email.insert(user.email.clone(), user.id.clone());
            st.users.insert(user.id.clone(), user.clone());
            AuthOutcome::Ok
        }
        AuthOp::UpdateUser { id, patch } => {
            let Some(u) = st.users.get_mut(id) else {
                return AuthOutcome::NotFound(format!("user {id}"));
            };
            if let Some(v) = &patch.name {
                u.name = v.clone();
            }
            if let Some(v) = &patch.roles {
                u.roles = v.clone();
            }
            if let Some(v) = &patch.permissions {
                u.permissions = v.clone();
            }
            if let Some(v) = &patch.app_access {
                u.app_access = v.clone();
            }
            if let Some(v) = patch.disabled {
                u.disabled = v;
            }
            if let Some(v) = &patch.password_hash {
                u.password_hash = v.clone();
            }
            let u = u.clone();
            put_user(wb, &u);
            // A disabled user or a new password ends every session.
            if patch.disabled == Some(true) || patch.password_hash.is_some() {
                revoke_user_sessions(st, wb, &u.id);
            }
            AuthOutcome::Ok
        }
        AuthOp::DeleteUser { id } => {
            let Some(u) = st.users.remove(id) else {
                return AuthOutcome::NotFound(format!("user {id}"));
            };
            st.by_email.remove(&u.email);
            wb.delete(format!("u/{id}"));
            revoke_user_sessions(st, wb, id);
            AuthOutcome::Ok
        }
        AuthOp::UnlockUser { id } => {
            let Some(u) = st.users.get_mut(id) else {
                return AuthOutcome::NotFound(format!("user {id}"));
            };
            u.lockout = Default::default();
            let u = u.clone();
            put_user(wb, &u);
            AuthOutcome::Ok
        }
        AuthOp::LoginSucceeded { user_id, session } => {
            let Some(u) = st.users.get_mut(user_id) else {
                return AuthOutcome::NotFound(format!("user {user_id}"));
            };
            if u.lockout.locked_until_ms > now {
                return AuthOutcome::Locked {
                    until_ms: u.lockout.locked_until_ms,
                };
            }
            u.lockout = Default::default();
            u.last_login_at_ms = Some(now);
            let u = u.clone();
            put_user(wb, &u);
            put_session(wb, session);
            st.sessions.insert(session.id.clone(), session.clone());
            AuthOutcome::Ok
        }
        AuthOp::LoginFailed { email } => {
            let Some(id) = st.by_email.get(email).cloned() else {
                return AuthOutcome::NotFound("unknown account".into());
            };
            let Some(u) = st.users.get_mut(&id) else {
                return AuthOutcome::NotFound("unknown account".into());
            };
            let l = &mut u.lockout;
            if now - l.window_start_ms > (policy.window_secs * 1000) as i64 {
                l.failures = 0;
                l.window_start_ms = now;
            }
            l.failures += 1;
            let mut outcome = AuthOutcome::Conflict("wrong password".into());
            if l.failures >= policy.max_failures {
                let secs = policy
                    .lock_secs
                    .saturating_mul(1u64 << l.lockouts.min(20))
                    .min(policy.max_lock_secs);
                l.locked_until_ms = now + (secs * 1000) as i64;
                l.lockouts += 1;
                l.failures = 0;
                l.window_start_ms = now;
                outcome = AuthOutcome::Locked {
                    until_ms: l.locked_until_ms,
                };
            }
            let u = u.clone();
            put_user(wb, &u);
            outcome
        }
        op @ (AuthOp::RotateRefresh {
            session_id,
            presented_jti,
            new_jti,
            expires_at_ms,
        }
        | AuthOp::RotateRefreshWithGrace {
            session_id,
            presented_jti,
            new_jti,
            expires_at_ms,
        }) => {
            let grace = matches!(op, AuthOp::RotateRefreshWithGrace { .. });
            rotate_refresh(
                st,
                wb,
                now,
                session_id,
                presented_jti,
                new_jti,
                *expires_at_ms,
                grace,
            )
        }
        AuthOp::RevokeSession { session_id } => {
            let Some(s) = st.sessions.get_mut(session_id) else {
                return AuthOutcome::NotFound("session".into());
            };
            s.revoked = true;
            let s = s.clone();
            put_session(wb, &s);
            AuthOutcome::Ok
        }
        AuthOp::PurgeSessions { before_ms } => {
            let dead: Vec<String> = st
                .sessions
                .values()
                .filter(|s| s.revoked || s.expires_at_ms < *before_ms)
                .map(|s| s.id.clone())
                .collect();
            for id in &dead {
                st.sessions.remove(id);
                wb.delete(format!("s/{id}"));
                st.rotations.remove(id);
                wb.delete(format!("r/{id}"));
            }
            AuthOutcome::Ok
        }
        AuthOp::CreateApp { app, key } => {
            if st.apps.contains_key(&app.id) {
                return AuthOutcome::Conflict(format!("app {} exists", app.id));
            }
            if st.apps.values().any(|a| a.name == app.name) {
                return AuthOutcome::Conflict(format!("an app named {:?} exists", app.name));
            }
            wb.put(format!("a/{}", app.id), enc(app));
            st.apps.insert(app.id.clone(), app.clone());
            put_key(wb, key);
            st.keys.insert(key.hash.clone(), key.clone());
            AuthOutcome::Ok
        }
        AuthOp::UpdateApp { id, name } => {
            if st.apps.values().any(|a| &a.name == name && &a.id != id) {
                return AuthOutcome::Conflict(format!("an app named {name:?} exists"));
            }
            let Some(a) = st.apps.get_mut(id) else {
                return AuthOutcome::NotFound(format!("app {id}"));
            };
            a.name = name.clone();
            let a = a.clone();
            wb.put(format!("a/{id}"), enc(&a));
            AuthOutcome::Ok
        }
        AuthOp::SetAppSettings { id, settings } => {
            if !st.apps.contains_key(id) {
                return AuthOutcome::NotFound(format!("app {id}"));
            }
            wb.put(format!("p/{id}"), enc(settings));
            st.app_settings.insert(id.clone(), settings.clone());
            AuthOutcome::Ok
        }
        AuthOp::SetAppPrivacy { id, privacy } => {
            if !st.apps.contains_key(id) {
                return AuthOutcome::NotFound(format!("app {id}"));
            }
            let stored = match st.privacy.get(id) {
                // The first secrets stay: a new key would split every user in two.
                Some(old) => AppPrivacy {
                    settings: privacy.settings,
                    ..old.clone()
                },
                None => privacy.clone(),
            };
            wb.put(format!("v/{id}"), enc(&stored));
            st.privacy.insert(id.clone(), stored);
            AuthOutcome::Ok
        }
        AuthOp::DeleteApp { id } => {
            if st.apps.remove(id).is_none() {
                return AuthOutcome::NotFound(format!("app {id}"));
            }
            wb.delete(format!("a/{id}"));
            if st.app_settings.remove(id).is_some() {
                wb.delete(format!("p/{id}"));
            }
            let gone: Vec<String> = st
                .keys
                .values()
                .filter(|k| &k.app_id == id)
                .map(|k| k.hash.clone())
                .collect();
            for h in gone {
                st.keys.remove(&h);
                wb.delete(format!("k/{h}"));
            }
            AuthOutcome::Ok
        }
        AuthOp::CreateKey { key, revoke_others } => {
            if !st.apps.contains_key(&key.app_id) {
                return AuthOutcome::NotFound(format!("app {}", key.app_id));
            }
            if *revoke_others {
                for k in st.keys.values_mut() {
                    if k.app_id == key.app_id && k.revoked_at_ms.is_none() {
                        k.revoked_at_ms = Some(now);
                        put_key(wb, k);
                    }
                }
            }
            put_key(wb, key);
            st.keys.insert(key.hash.clone(), key.clone());
            AuthOutcome::Ok
        }
        AuthOp::RevokeKey { app_id, key_id } => {
            let Some(k) = st
                .keys
                .values_mut()
                .find(|k| &k.app_id == app_id && &k.id == key_id)
            else {
                return AuthOutcome::NotFound(format!("key {key_id}"));
            };
            if k.revoked_at_ms.is_none() {
                k.revoked_at_ms = Some(now);
            }
            put_key(wb, k);
            AuthOutcome::Ok
        }
    }
}

pub(super) fn revoke_user_sessions(st: &mut State, wb: &mut WriteBatch, user_id: &str) {
    for s in st.sessions.values_mut() {
        if s.user_id == user_id && !s.revoked {
            s.revoked = true;
            put_session(wb, s);
        }
    }
}
