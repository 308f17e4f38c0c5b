use super::*;
use crate::audit::AuditEvent;
use crate::model::Lockout;

fn user(id: &str, email: &str, roles: Vec<Role>) -> User {
    User {
        id: id.into(),
        email: email.into(),
        name: id.into(),
        password_hash: "$argon2id$x".into(),
        roles,
        permissions: vec![],
        app_access: vec![],
        disabled: false,
        created_at_ms: 0,
        last_login_at_ms: None,
        lockout: Lockout::default(),
    }
}

fn req(at_ms: i64, op: AuthOp) -> AuthRequest {
    AuthRequest {
        at_ms,
        node: 1,
        op,
        audit: vec![AuditEvent {
            actor: "system".into(),
            action: "test".into(),
            ..Default::default()
        }],
    }
}

#[test]
fn apply_is_idempotent_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    let boot = req(
        1,
        AuthOp::Bootstrap {
            jwt_secret: "ab".repeat(32),
            admin: user("u1", "admin@localhost", vec![Role::Admin]),
        },
    );
    assert_eq!(s.apply(1, &boot).expect("apply"), AuthOutcome::Ok);
    assert_eq!(s.apply(1, &boot).expect("apply"), AuthOutcome::Replayed);
    assert_eq!(
        s.apply(2, &boot).expect("apply"),
        AuthOutcome::AlreadyBootstrapped
    );
    let dup = req(
        3,
        AuthOp::CreateUser {
            user: user("u2", "admin@localhost", vec![]),
        },
    );
    assert!(matches!(
        s.apply(3, &dup).expect("apply"),
        AuthOutcome::Conflict(_)
    ));
    drop(s);
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    assert_eq!(s.applied_index(), 3);
    assert!(s.is_bootstrapped());
    assert_eq!(
        s.user_by_email("ADMIN@localhost").map(|u| u.id),
        Some("u1".into())
    );
    let report = s.verify_audit(None).expect("verify");
    assert!(report.ok && report.records == 3, "{report:?}");
}

#[test]
fn failures_lock_the_account_progressively_and_a_good_login_resets() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    s.apply(
        1,
        &req(
            0,
            AuthOp::CreateUser {
                user: user("u", "a@b", vec![Role::User]),
            },
        ),
    )
    .expect("apply");
    let mut idx = 1;
    let mut fail = |at: i64| {
        idx += 1;
        s.apply(
            idx,
            &req(
                at,
                AuthOp::LoginFailed {
                    email: "a@b".into(),
                },
            ),
        )
        .expect("apply")
    };
    for i in 0..4 {
        assert!(matches!(fail(1000 + i), AuthOutcome::Conflict(_)));
    }
    assert_eq!(fail(2000), AuthOutcome::Locked { until_ms: 62_000 });
    for i in 0..4 {
        fail(70_000 + i);
    }
    // Second lockout is twice as long.
    assert_eq!(fail(71_000), AuthOutcome::Locked { until_ms: 191_000 });
    let sess = Session {
        id: "s".into(),
        user_id: "u".into(),
        current_jti: "j".into(),
        created_at_ms: 0,
        expires_at_ms: i64::MAX,
        revoked: false,
    };
    let early = req(
        100_000,
        AuthOp::LoginSucceeded {
            user_id: "u".into(),
            session: sess.clone(),
        },
    );
    assert!(matches!(
        s.apply(100, &early).expect("apply"),
        AuthOutcome::Locked { .. }
    ));
    let later = req(
        200_000,
        AuthOp::LoginSucceeded {
            user_id: "u".into(),
            session: sess,
        },
    );
    assert_eq!(s.apply(101, &later).expect("apply"), AuthOutcome::Ok);
    assert_eq!(s.user("u").map(|u| u.lockout), Some(Lockout::default()));
    assert!(s.principal("u", "s", 200_001).is_ok());
}

#[test]
fn reused_refresh_token_revokes_the_session_and_disabling_ends_sessions() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    s.apply(
        1,
        &req(
            0,
            AuthOp::CreateUser {
                user: user("u", "a@b", vec![Role::User]),
            },
        ),
    )
    .expect("apply");
    let sess = |id: &str| Session {
        id: id.into(),
        user_id: "u".into(),
        current_jti: "j1".into(),
        created_at_ms: 0,
        expires_at_ms: 1_000_000,
        revoked: false,
    };
    s.apply(
        2,
        &req(
            1,
            AuthOp::LoginSucceeded {
                user_id: "u".into(),
                session: sess("s1"),
            },
        ),
    )
    .expect("apply");
    let rotate = |jti: &str, new: &str| AuthOp::RotateRefresh {
        session_id: "s1".into(),
        presented_jti: jti.into(),
        new_jti: new.into(),
        expires_at_ms: 1_000_000,
    };
    assert_eq!(
        s.apply(3, &req(2, rotate("j1", "j2"))).expect("apply"),
        AuthOutcome::Ok
    );
    assert_eq!(
        s.apply(4, &req(3, rotate("j1", "j3"))).expect("apply"),
        AuthOutcome::RefreshReused
    );
    assert_eq!(s.principal("u", "s1", 4), Err(Denied::SessionInvalid));
    s.apply(
        6,
        &req(
            5,
            AuthOp::LoginSucceeded {
                user_id: "u".into(),
                session: sess("s2"),
            },
        ),
    )
    .expect("apply");
    assert!(s.principal("u", "s2", 6).is_ok());
    let disable = AuthOp::UpdateUser {
        id: "u".into(),
        patch: crate::model::UserPatch {
            disabled: Some(true),
            ..Default::default()
        },
    };
    s.apply(7, &req(6, disable)).expect("apply");
    assert_eq!(s.principal("u", "s2", 7), Err(Denied::Disabled));
    // Purging drops revoked sessions (s1 reused, s2 ended by disabling) and expired ones;
    // they stay refused, after a reopen too.
    let enable = AuthOp::UpdateUser {
        id: "u".into(),
        patch: crate::model::UserPatch {
            disabled: Some(false),
            ..Default::default()
        },
    };
    s.apply(8, &req(7, enable)).expect("apply");
    let login = AuthOp::LoginSucceeded {
        user_id: "u".into(),
        session: sess("s3"),
    };
    s.apply(9, &req(8, login)).expect("apply");
    assert_eq!(s.dead_sessions(9), 2);
    s.apply(10, &req(9, AuthOp::PurgeSessions { before_ms: 9 }))
        .expect("apply");
    assert_eq!(s.sessions(), 1);
    assert_eq!(s.principal("u", "s1", 10), Err(Denied::SessionInvalid));
    assert_eq!(s.principal("u", "s2", 10), Err(Denied::SessionInvalid));
    assert!(s.principal("u", "s3", 10).is_ok());
    s.apply(
        11,
        &req(
            2_000_000,
            AuthOp::PurgeSessions {
                before_ms: 2_000_000,
            },
        ),
    )
    .expect("apply");
    assert_eq!(s.sessions(), 0);
    drop(s);
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    assert_eq!(s.sessions(), 0);
    assert_eq!(s.principal("u", "s3", 10), Err(Denied::SessionInvalid));
}

#[test]
fn keys_rotate_and_revoke() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    let key = |id: &str, hash: &str| ApiKey {
        id: id.into(),
        app_id: "app".into(),
        prefix: "umgp_x".into(),
        hash: hash.into(),
        scope: "ingest".into(),
        created_at_ms: 0,
        revoked_at_ms: None,
    };
    let app = App {
        id: "app".into(),
        name: "Game".into(),
        owner_id: "u".into(),
        created_at_ms: 0,
    };
    s.apply(
        1,
        &req(
            0,
            AuthOp::CreateApp {
                app,
                key: key("k1", "h1"),
            },
        ),
    )
    .expect("apply");
    assert_eq!(s.key_by_hash("h1"), Ok(("k1".into(), "app".into())));
    s.apply(
        2,
        &req(
            1,
            AuthOp::CreateKey {
                key: key("k2", "h2"),
                revoke_others: true,
            },
        ),
    )
    .expect("apply");
    assert_eq!(s.key_by_hash("h1"), Err(Denied::BadKey));
    assert!(s.key_by_hash("h2").is_ok());
    s.apply(
        3,
        &req(
            2,
            AuthOp::RevokeKey {
                app_id: "app".into(),
                key_id: "k2".into(),
            },
        ),
    )
    .expect("apply");
    assert_eq!(s.key_by_hash("h2"), Err(Denied::BadKey));
    assert_eq!(s.app_keys("app").len(), 2);
    s.apply(4, &req(3, AuthOp::DeleteApp { id: "app".into() }))
        .expect("apply");
    assert!(s.app_keys("app").is_empty());
}

#[test]
fn signing_key_rotation_keeps_the_old_key_for_the_overlap_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    let rotate = |secret: &str, overlap_ms| AuthOp::RotateSigningKey {
        jwt_secret: secret.into(),
        overlap_ms,
    };
    assert!(matches!(
        s.apply(1, &req(1_000, rotate(&"cd".repeat(32), 0)))
            .expect("apply"),
        AuthOutcome::Conflict(_)
    ));
    let boot = AuthOp::Bootstrap {
        jwt_secret: "ab".repeat(32),
        admin: user("u1", "admin@localhost", vec![Role::Admin]),
    };
    s.apply(2, &req(1_000, boot)).expect("apply");
    assert!(matches!(
        s.apply(3, &req(2_000, rotate("abcd", 0))).expect("apply"),
        AuthOutcome::Conflict(_)
    ));
    let epoch = s.signing_epoch();
    assert_eq!(
        s.apply(4, &req(2_000, rotate(&"cd".repeat(32), 5_000)))
            .expect("apply"),
        AuthOutcome::Ok
    );
    assert_eq!(
        s.apply(5, &req(10_000, rotate(&"ef".repeat(32), 1_000)))
            .expect("apply"),
        AuthOutcome::Ok
    );
    let keys = s.signing_keys().expect("keys");
    assert_eq!(keys.current, vec![0xef; 32]);
    // The first secret's window (until 7 000) ended before the second rotation dropped it.
    assert_eq!(keys.retired, vec![(vec![0xcd; 32], 11_000)]);
    assert_eq!(keys.epoch, epoch + 2);
    drop(s);
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    assert_eq!(s.signing_keys(), Some(keys));
}

#[test]
fn a_browser_session_forgives_a_just_superseded_refresh_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    let u = AuthOp::CreateUser {
        user: user("u", "a@b", vec![Role::User]),
    };
    s.apply(1, &req(0, u)).expect("apply");
    let session = Session {
        id: "s1".into(),
        user_id: "u".into(),
        current_jti: "j1".into(),
        created_at_ms: 0,
        expires_at_ms: 1_000_000,
        revoked: false,
    };
    let login = AuthOp::LoginSucceeded {
        user_id: "u".into(),
        session,
    };
    s.apply(2, &req(1, login)).expect("apply");
    let rotate = |jti: &str, new: &str| AuthOp::RotateRefreshWithGrace {
        session_id: "s1".into(),
        presented_jti: jti.into(),
        new_jti: new.into(),
        expires_at_ms: 1_000_000,
    };
    assert_eq!(
        s.apply(3, &req(100, rotate("j1", "j2"))).expect("apply"),
        AuthOutcome::Ok
    );
    // The answer to that rotation was lost (page reloaded): j1 again, 50 ms later.
    assert_eq!(
        s.apply(4, &req(150, rotate("j1", "j3"))).expect("apply"),
        AuthOutcome::RefreshGrace {
            current_jti: "j2".into()
        }
    );
    assert!(s.principal("u", "s1", 150).is_ok());
    // The grace survives a reopen (it is stored, so every node decides alike).
    drop(s);
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    assert_eq!(
        s.apply(5, &req(200, rotate("j1", "j3"))).expect("apply"),
        AuthOutcome::RefreshGrace {
            current_jti: "j2".into()
        }
    );
    // A token older than the previous one, or the previous one after the grace, is a reuse.
    let late = 100 + crate::store::REFRESH_REUSE_GRACE_MS + 1;
    assert_eq!(
        s.apply(6, &req(late, rotate("j1", "j3"))).expect("apply"),
        AuthOutcome::RefreshReused
    );
    assert_eq!(s.principal("u", "s1", late), Err(Denied::SessionInvalid));
}

#[test]
fn an_apps_privacy_secrets_are_set_once_and_survive_reopen() {
    use crate::privacy::{DeviceIdMode, Privacy, UserIdMode};
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    let set = |p: Privacy| AuthOp::SetAppPrivacy {
        id: "app".into(),
        privacy: AppPrivacy::generate(p),
    };
    let hashing = Privacy {
        user_id: UserIdMode::Hash,
        device_id: DeviceIdMode::Encrypt,
        ..Privacy::default()
    };
    assert!(matches!(
        s.apply(1, &req(0, set(hashing))).expect("apply"),
        AuthOutcome::NotFound(_)
    ));
    assert_eq!(s.app_privacy("app"), None);
    let app = App {
        id: "app".into(),
        name: "Game".into(),
        owner_id: "u".into(),
        created_at_ms: 0,
    };
    let key = ApiKey {
        id: "k1".into(),
        app_id: "app".into(),
        prefix: "umgp_x".into(),
        hash: "h1".into(),
        scope: "ingest".into(),
        created_at_ms: 0,
        revoked_at_ms: None,
    };
    s.apply(2, &req(0, AuthOp::CreateApp { app, key }))
        .expect("apply");
    assert_eq!(
        s.apply(3, &req(0, set(hashing))).expect("apply"),
        AuthOutcome::Ok
    );
    let first = s.app_privacy("app").expect("set");
    assert_eq!(first.settings, hashing);
    let hashed = first.keyed().user_id("alice");
    // New settings, but the first secrets stay: the same user keeps the same hash.
    let later = Privacy {
        retention_days: 30,
        ..hashing
    };
    s.apply(4, &req(0, set(later))).expect("apply");
    let now = s.app_privacy("app").expect("set");
    assert_eq!(now.settings, later);
    assert_eq!(now.hash_key, first.hash_key);
    assert_eq!(now.encrypt_key, first.encrypt_key);
    drop(s);
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    let reopened = s.app_privacy("app").expect("kept");
    assert_eq!(reopened, now);
    assert_eq!(reopened.keyed().user_id("alice"), hashed);
}

#[test]
fn audit_retention_cuts_the_prefix_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("open");
    // Ten records, one per request, at times 1..=10.
    for i in 1..=10u64 {
        s.apply(i, &req(i as i64, AuthOp::AuditOnly))
            .expect("apply");
    }
    assert!(s.verify_audit(None).expect("verify").ok);
    let head = s.verify_audit(None).expect("verify");
    let key = "cd".repeat(32);
    // Everything before time 5 goes; the cut itself is audited (record 11, time 100).
    let cut = AuthRequest {
        at_ms: 100,
        node: 1,
        op: AuthOp::CutAudit {
            before_ms: 5,
            key: key.clone(),
        },
        audit: vec![AuditEvent {
            actor: "system".into(),
            action: "audit.cut".into(),
            ..Default::default()
        }],
    };
    s.apply(11, &cut).expect("cut");
    let base = s.audit_base().expect("base");
    assert_eq!((base.seq, base.at_ms, base.removed), (4, 4, 4));
    let report = s.verify_audit(None).expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 7, "records 5..=11");
    assert_eq!(report.head_seq, 11);
    assert_eq!(s.oldest_audit_at_ms().expect("oldest"), Some(5));
    // A checkpoint taken before the cut still checks where it can.
    assert!(
        s.verify_audit(Some((head.head_seq, head.head_hash.clone())))
            .expect("verify")
            .ok
    );
    // A replay of the cut changes nothing; a second cut moves the base on, same key.
    assert_eq!(s.apply(11, &cut).expect("replay"), AuthOutcome::Replayed);
    let again = AuthRequest {
        op: AuthOp::CutAudit {
            before_ms: 8,
            key: "ef".repeat(32),
        },
        ..cut.clone()
    };
    s.apply(12, &again).expect("cut");
    let base2 = s.audit_base().expect("base");
    assert_eq!((base2.seq, base2.removed), (7, 7));
    drop(s);
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    assert!(s.verify_audit(None).expect("verify").ok, "after a reopen");
    assert_eq!(s.audit_base(), Some(base2.clone()));

    // Tampering: a record removed outside retention, or the base moved by hand.
    drop(s);
    {
        let raw = rocksdb::DB::open_default(dir.path()).expect("raw open");
        let mut moved = base2.clone();
        moved.seq = 8;
        raw.put(b"m/auditbase", serde_json::to_vec(&moved).expect("json"))
            .expect("put");
    }
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    let r = s.verify_audit(None).expect("verify");
    assert!(!r.ok);
    assert!(r.problem.unwrap_or_default().contains("signature"));
    drop(s);
    {
        let raw = rocksdb::DB::open_default(dir.path()).expect("raw open");
        raw.put(b"m/auditbase", serde_json::to_vec(&base2).expect("json"))
            .expect("put");
        raw.delete(b"l/00000000000000000008").expect("delete");
    }
    let s = AuthStore::open(dir.path(), LockoutPolicy::default()).expect("reopen");
    let r = s.verify_audit(None).expect("verify");
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.first_bad_seq, Some(8));
}
