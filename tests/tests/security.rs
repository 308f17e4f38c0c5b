//! Security against a running server over HTTP (TESTPLAN AUTH, AZ, SQL, AUD, RL).

use base64::Engine as _;
use serde_json::{json, Value};
use unmogrowp_tests::{event, TestNode, ADMIN_EMAIL, ADMIN_PASSWORD};

fn node(extra: &[(&str, &str)]) -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("UNMOGROWP_AUTH__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "100000")];
    env.extend_from_slice(extra);
    let mut n = TestNode::new(dir.path().join("node"), &env);
    n.start();
    (dir, n)
}

/// Creates a user (as admin) and returns (id, access token).
fn user(n: &TestNode, email: &str, roles: &[&str], apps: &[&str]) -> (String, String) {
    let a = n.call("POST",
        "/api/admin/users",
        Some(&n.admin_token()),
        Some(
            json!({"email": email, "password": "password-123456", "roles": roles, "app_access": apps}),
        ),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let t = n.login(email, "password-123456");
    (
        a.body["id"].as_str().unwrap().to_string(),
        t["access_token"].as_str().unwrap().to_string(),
    )
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn parts(token: &str) -> (Value, Value, String) {
    let p: Vec<&str> = token.split('.').collect();
    let d = |s: &str| {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    (d(p[0]), d(p[1]), p[2].to_string())
}

#[test]
fn first_admin_tokens_and_forged_jwts() {
    let (_d, n) = node(&[]);
    // AUTH-08: argon2id hash in the store is never exposed; login works with the env password.
    let t = n.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(t["expires_in"], 900);
    let me = n.call("GET", "/api/auth/me", Some(&access), None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["roles"], json!(["admin"]));
    assert!(
        !me.body.to_string().contains("argon2"),
        "hash leaked: {}",
        me.body
    );
    let (header, claims, sig) = parts(&access);
    assert_eq!(header["alg"], "HS256");
    for c in [
        "sub",
        "email",
        "roles",
        "permissions",
        "app_access",
        "iss",
        "aud",
        "exp",
    ] {
        assert!(claims.get(c).is_some(), "claim {c} missing: {claims}");
    }
    let ok = |tok: &str| n.call("GET", "/api/auth/me", Some(tok), None).status;
    assert_eq!(ok(&access), 200);
    // AUTH-01: alg none in every spelling, empty or missing signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "at+jwt"});
        assert_eq!(
            ok(&format!("{}.{}.", b64(&h), b64(&claims))),
            401,
            "alg {alg}"
        );
        assert_eq!(ok(&format!("{}.{}", b64(&h), b64(&claims))), 401);
    }
    assert_eq!(ok(&format!("{}.{}.", b64(&header), b64(&claims))), 401);
    // AUTH-02: other algorithms with the same signature bytes.
    for alg in ["RS256", "ES256", "EdDSA", "HS512"] {
        let h = json!({"alg": alg, "typ": "at+jwt"});
        assert_eq!(
            ok(&format!("{}.{}.{sig}", b64(&h), b64(&claims))),
            401,
            "alg {alg}"
        );
    }
    // AUTH-03: tampered payload, key-reference headers.
    let mut evil = claims.clone();
    evil["sub"] = json!("someone-else");
    assert_eq!(ok(&format!("{}.{}.{sig}", b64(&header), b64(&evil))), 401);
    let mut evil = claims.clone();
    evil["app_access"] = json!(["x"]);
    evil["roles"] = json!(["admin"]);
    assert_eq!(ok(&format!("{}.{}.{sig}", b64(&header), b64(&evil))), 401);
    for (k, v) in [
        ("kid", json!("../../dev/null")),
        ("kid", json!("' OR 1=1 --")),
        ("jku", json!("http://127.0.0.1:1/jwks")),
        ("x5u", json!("http://127.0.0.1:1/x")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
    ] {
        let mut h = header.clone();
        h[k] = v;
        assert_eq!(
            ok(&format!("{}.{}.{sig}", b64(&h), b64(&claims))),
            401,
            "header {k}"
        );
    }
    // AUTH-05: a refresh token is not an access token and vice versa; garbage is 401.
    assert_eq!(ok(&refresh), 401);
    assert_eq!(
        n.call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": access}))
        )
        .status,
        401
    );
    assert_eq!(ok("not.a.jwt"), 401);
    assert_eq!(
        n.request_raw(
            "GET",
            "/api/auth/me",
            &[("authorization", "Basic YWRtaW46eA==")],
            None
        )
        .unwrap()
        .status,
        401
    );
    // Refresh rotates; reusing the old refresh token revokes the whole session.
    let r1 = n.call(
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!(r1.status, 200, "{}", r1.body);
    let new_refresh = r1.body["refresh_token"].as_str().unwrap().to_string();
    let new_access = r1.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(ok(&new_access), 200);
    let reuse = n.call(
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!(
        (reuse.status, reuse.body["error"]["code"].as_str()),
        (401, Some("refresh_reused"))
    );
    assert_eq!(ok(&new_access), 401, "session must be revoked after reuse");
    assert_eq!(
        n.call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": new_refresh}))
        )
        .status,
        401
    );
    // Logout ends a session at once.
    let t2 = n.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let a2 = t2["access_token"].as_str().unwrap();
    assert_eq!(
        n.call("POST", "/api/auth/logout", Some(a2), None).status,
        200
    );
    assert_eq!(ok(a2), 401);
    // AUTH-07: the signing secret is random per cluster: another node's token is refused.
    let (_d2, other) = node(&[]);
    let foreign = other.login(ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ok(&foreign), 401);
}

#[test]
fn disabling_users_revoking_keys_and_no_enumeration() {
    let (_d, n) = node(&[]);
    let admin = n.admin_token();
    let (uid, tok) = user(&n, "ana@example.com", &["user"], &[]);
    assert_eq!(n.call("GET", "/api/auth/me", Some(&tok), None).status, 200);
    // AUTH-06 (single node): disabling takes effect on the next request.
    assert_eq!(
        n.call(
            "PATCH",
            &format!("/api/admin/users/{uid}"),
            Some(&admin),
            Some(json!({"disabled": true}))
        )
        .status,
        200
    );
    assert_eq!(n.call("GET", "/api/auth/me", Some(&tok), None).status, 401);
    let l = n.call(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "ana@example.com", "password": "password-123456"})),
    );
    assert_eq!(l.status, 401);
    // AUTH-10: unknown user and wrong password look the same.
    let unknown = n.call(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "nobody@example.com", "password": "whatever-123"})),
    );
    let wrong = n.call(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": "whatever-123"})),
    );
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));
    assert_eq!(unknown.status, 401);
    // AUTH-11: a key is shown once, listed by prefix only, revocable.
    let app = n.call(
        "POST",
        "/api/apps",
        Some(&admin),
        Some(json!({"name": "Game"})),
    );
    assert_eq!(app.status, 201, "{}", app.body);
    let app_id = app.body["id"].as_str().unwrap().to_string();
    let key = app.body["api_key"].as_str().unwrap().to_string();
    let keys = n.call(
        "GET",
        &format!("/api/apps/{app_id}/keys"),
        Some(&admin),
        None,
    );
    assert!(
        !keys.body.to_string().contains(&key),
        "secret listed: {}",
        keys.body
    );
    let post = |k: &str, body: Value| {
        n.request_raw(
            "POST",
            "/v1/events",
            &[("x-api-key", k), ("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
        .unwrap()
    };
    let mut ev = event("x", 1, 1, 1_763_000_000_000);
    ev.as_object_mut().unwrap().remove("app_id");
    let a = post(&key, ev.clone());
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (202, Some(1)),
        "{}",
        a.body
    );
    // A body app_id that differs from the key's app is rejected.
    let a = post(&key, event("other-app", 1, 2, 1_763_000_000_000));
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .contains("API key"));
    assert_eq!(post("umgp_wrong", ev.clone()).status, 401);
    assert_eq!(
        n.request_raw(
            "POST",
            "/v1/events",
            &[("content-type", "application/json")],
            Some(ev.to_string().as_bytes())
        )
        .unwrap()
        .status,
        401
    );
    // Rotation: the old key stops, the new one works; revocation stops it too.
    let rot = n.call(
        "POST",
        &format!("/api/apps/{app_id}/keys/rotate"),
        Some(&admin),
        None,
    );
    assert_eq!(rot.status, 201, "{}", rot.body);
    let key2 = rot.body["api_key"].as_str().unwrap().to_string();
    assert_eq!(post(&key, ev.clone()).status, 401);
    let mut ev3 = ev.clone();
    ev3["event_id"] = json!(unmogrowp_tests::event_uuid(5, 5));
    assert_eq!(post(&key2, ev3.clone()).status, 202);
    let kid = rot.body["id"].as_str().unwrap();
    assert_eq!(
        n.call(
            "DELETE",
            &format!("/api/apps/{app_id}/keys/{kid}"),
            Some(&admin),
            None
        )
        .status,
        204
    );
    assert_eq!(post(&key2, ev3).status, 401);
    // RocksDB holds no key secret and no plain password.
    let store = std::fs::read_dir(n.data_dir.join("auth")).unwrap();
    for f in store {
        let bytes = std::fs::read(f.unwrap().path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&key) && !text.contains(&key2),
            "a key secret is stored"
        );
        assert!(
            !text.contains("password-123456") && !text.contains(ADMIN_PASSWORD),
            "a password is stored"
        );
    }
}

/// AZ-01: every route × caller kind, derived from the OpenAPI document (which is generated
/// from the server's route table), against the policy.
#[test]
fn rbac_matrix_over_every_route() {
    let (_d, n) = node(&[]);
    let admin = n.admin_token();
    let own = n.call(
        "POST",
        "/api/apps",
        Some(&admin),
        Some(json!({"name": "A", "id": "app-a"})),
    );
    let key_a = own.body["api_key"].as_str().unwrap().to_string();
    n.call(
        "POST",
        "/api/apps",
        Some(&admin),
        Some(json!({"name": "B", "id": "app-b"})),
    );
    let (_, analyst) = user(&n, "analyst@example.com", &["user"], &["app-a"]);
    let (_, readonly) = user(&n, "ro@example.com", &["readonly"], &["app-a"]);
    let (rid, revoked) = user(&n, "gone@example.com", &["user"], &["app-a"]);
    n.call(
        "PATCH",
        &format!("/api/admin/users/{rid}"),
        Some(&admin),
        Some(json!({"disabled": true})),
    );
    let doc = n.get("/api/openapi.json").body;
    let paths = doc["paths"].as_object().unwrap();
    let mut cells = 0;
    for (path, ops) in paths {
        if path == "/api/auth/logout" {
            continue; // ends the callers' sessions; checked below
        }
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let needs = op["description"].as_str().unwrap().to_string();
            for app in ["app-a", "app-b"] {
                let concrete = path
                    .replace(
                        "{id}",
                        if path.starts_with("/api/admin/users") {
                            "no-such-user"
                        } else {
                            app
                        },
                    )
                    .replace("{key_id}", "k")
                    .replace("{role}", "user")
                    .replace("{app_id}", "app-a")
                    .replace("{*file}", "no-such-file.js");
                for (who, token) in [
                    ("anonymous", None),
                    ("revoked", Some(revoked.as_str())),
                    ("readonly", Some(readonly.as_str())),
                    ("analyst", Some(analyst.as_str())),
                    ("ingest-key", None),
                ] {
                    let mut h = vec![("content-type", "application/json")];
                    let auth = token.map(|t| format!("Bearer {t}"));
                    if let Some(a) = &auth {
                        h.push(("authorization", a));
                    }
                    if who == "ingest-key" {
                        h.push(("x-api-key", &key_a));
                    }
                    let body = b"{}".to_vec();
                    let a = n
                        .request_raw(
                            &method,
                            &concrete,
                            &h,
                            (method != "GET" && method != "DELETE").then_some(&body[..]),
                        )
                        .unwrap();
                    cells += 1;
                    let allowed_statuses =
                        a.status < 400 || a.status == 400 || a.status == 422 || a.status == 409;
                    let denied = matches!(a.status, 401 | 403 | 404 | 405);
                    // The policy, restated: none of these callers is an admin, and
                    // registration is admin-only by default.
                    let expect_denied = match (who, needs.as_str()) {
                        (_, "Requires: none.") => false,
                        ("ingest-key", n) => !n.contains("X-Api-Key"),
                        (_, n) if n.contains("X-Api-Key") || n.contains("optional") => true,
                        ("anonymous" | "revoked", _) => true,
                        ("readonly", n) => !n.starts_with("Requires: bearer token with apps:read"),
                        ("analyst", n) => {
                            n.contains("role admin")
                                || n.contains("apps:write")
                                || (n.contains("access to app") && app == "app-b")
                        }
                        _ => true,
                    };
                    if expect_denied {
                        assert!(
                            denied,
                            "{who} {method} {concrete} ({needs}) was allowed: {} {}",
                            a.status, a.body
                        );
                    } else {
                        assert!(
                            allowed_statuses || a.status == 404 && concrete.contains("no-such"),
                            "{who} {method} {concrete} ({needs}) was denied: {} {}",
                            a.status,
                            a.body
                        );
                    }
                }
            }
        }
    }
    // Logout: any logged-in user, nobody else.
    assert_eq!(n.call("POST", "/api/auth/logout", None, None).status, 401);
    assert_eq!(
        n.request_raw("POST", "/api/auth/logout", &[("x-api-key", &key_a)], None)
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        n.call("POST", "/api/auth/logout", Some(&readonly), None)
            .status,
        200
    );
    assert_eq!(
        n.call("POST", "/api/auth/logout", Some(&revoked), None)
            .status,
        401
    );
    // Unknown routes deny.
    assert_eq!(
        n.call("GET", "/api/secret-admin-thing", Some(&admin), None)
            .status,
        404
    );
    assert!(cells >= 300, "only {cells} cells");
    println!("AZ-01: {cells} cells checked");
}

#[test]
fn bola_and_mass_assignment() {
    let (_d, n) = node(&[]);
    let admin = n.admin_token();
    n.call(
        "POST",
        "/api/apps",
        Some(&admin),
        Some(json!({"name": "A", "id": "app-a"})),
    );
    n.call(
        "POST",
        "/api/apps",
        Some(&admin),
        Some(json!({"name": "B", "id": "app-b"})),
    );
    let (uid, analyst) = user(&n, "analyst@example.com", &["user"], &["app-a"]);
    // AZ-02: another tenant's app looks exactly like a missing one.
    let b = n.call("GET", "/api/apps/app-b", Some(&analyst), None);
    let missing = n.call("GET", "/api/apps/no-such-app", Some(&analyst), None);
    assert_eq!((b.status, &b.body), (missing.status, &missing.body));
    assert_eq!(b.status, 404);
    assert_eq!(
        n.call("GET", "/api/apps/app-a", Some(&analyst), None)
            .status,
        200
    );
    let list = n.call("GET", "/api/apps", Some(&analyst), None);
    assert_eq!(
        list.body["apps"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
    // AZ-03: unknown fields are rejected, hashes never answered.
    for body in [
        json!({"role": "admin"}),
        json!({"is_admin": true}),
        json!({"password_hash": "x"}),
        json!({"apps": ["app-b"]}),
    ] {
        let a = n.call(
            "PATCH",
            &format!("/api/admin/users/{uid}"),
            Some(&admin),
            Some(body.clone()),
        );
        assert_eq!(a.status, 400, "{body}: {}", a.body);
    }
    let reg = n.call(
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"email": "x@y.z", "password": "password-123456"})),
    );
    assert_eq!(reg.status, 401, "registration is admin-only by default");
    let reg = n.call(
        "POST",
        "/api/auth/register",
        Some(&analyst),
        Some(json!({"email": "x@y.z", "password": "password-123456", "roles": ["admin"]})),
    );
    assert_eq!(reg.status, 403);
    let users = n.call("GET", "/api/admin/users", Some(&admin), None);
    assert!(!users.body.to_string().contains("argon2"));
}

#[test]
fn sql_is_sandboxed_and_scoped_to_permitted_apps() {
    let (_d, n) = node(&[]);
    let admin = n.admin_token();
    let ts = 1_763_000_000_000i64;
    for (app, k) in [("app-a", 3), ("app-b", 5)] {
        let evs: Vec<Value> = (0..k).map(|s| event(app, 1, s, ts)).collect();
        assert_eq!(n.post_json("/v1/events", &Value::Array(evs)).status, 202);
    }
    let (_, analyst) = user(&n, "analyst@example.com", &["user"], &["app-a"]);
    let q = |tok: &str, sql: &str| {
        n.call(
            "POST",
            "/api/analytics/query",
            Some(tok),
            Some(json!({"sql": sql})),
        )
    };
    assert_eq!(
        q(&admin, "SELECT count(*) FROM events").body["rows"][0][0],
        8
    );
    // SQL-04: every way of naming events sees app-a only.
    for sql in [
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM EVENTS",
        "SELECT count(*) FROM \"events\"",
        "SELECT count(*) FROM datafusion.public.events",
        "SELECT count(*) FROM public.events",
        "WITH x AS (SELECT * FROM events) SELECT count(*) FROM x",
        "SELECT count(*) FROM (SELECT app_id FROM events UNION ALL SELECT app_id FROM events WHERE app_id = 'app-b') t WHERE app_id = 'app-a'",
        "SELECT count(*) FROM events a JOIN events b ON a.event_id = b.event_id",
        "SELECT count(*) FROM events WHERE app_id IN ('app-a', 'app-b')",
    ] {
        let a = q(&analyst, sql);
        assert_eq!(a.status, 200, "{sql}: {}", a.body);
        assert_eq!(a.body["rows"][0][0], 3, "{sql}: {}", a.body);
    }
    let a = q(
        &analyst,
        "SELECT count(*) FROM events WHERE app_id = 'app-b'",
    );
    assert_eq!(a.body["rows"][0][0], 0);
    for sql in [
        "SELECT * FROM information_schema.tables",
        "SHOW TABLES",
        "SELECT * FROM audit_log",
        "SELECT * FROM datafusion.public.audit_log",
    ] {
        let a = q(&analyst, sql);
        assert_eq!(a.status, 400, "{sql} must not run: {}", a.body);
    }
    // DESCRIBE shows the schema of the caller's own `events` only.
    let a = q(&analyst, "DESCRIBE events");
    assert!(!a.body.to_string().contains("app-b"), "{}", a.body);
    // SQL-01/02/03/05: files, writes, session changes, URLs — rejected at planning time, for admins too.
    let marker = n.data_dir.join("sql-02-must-not-exist.csv");
    let forbidden = [
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://169.254.169.254/latest/'"
            .to_string(),
        "SELECT * FROM '/etc/passwd'".to_string(),
        "SELECT * FROM 'file:///etc/passwd'".to_string(),
        "SELECT * FROM 'http://127.0.0.1:1/x.parquet'".to_string(),
        "SELECT * FROM read_parquet('/etc/passwd')".to_string(),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM parquet_metadata('/etc/passwd')".to_string(),
        format!("COPY (SELECT 1) TO '{}'", marker.display()),
        format!("COPY events TO '{}'", marker.display()),
        "INSERT INTO events SELECT * FROM events".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        format!("EXPLAIN ANALYZE COPY (SELECT 1) TO '{}'", marker.display()),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "SET datafusion.execution.target_partitions = 1000".to_string(),
        "CREATE VIEW v AS SELECT * FROM events".to_string(),
        "CREATE FUNCTION f() RETURNS INT RETURN 1".to_string(),
        "DROP TABLE events".to_string(),
        "BEGIN".to_string(),
        "PREPARE p AS SELECT 1".to_string(),
    ];
    for sql in &forbidden {
        for tok in [&admin, &analyst] {
            let a = q(tok, sql);
            assert!(
                a.status == 400 || a.status == 422,
                "{sql}: {} {}",
                a.status,
                a.body
            );
        }
    }
    assert!(!marker.exists(), "COPY wrote a file");
    // Still working afterwards.
    assert_eq!(
        q(&analyst, "SELECT count(*) FROM events").body["rows"][0][0],
        3
    );
}

#[test]
fn audit_log_records_everything_durably_and_detects_tampering() {
    let (_d, mut n) = node(&[]);
    let admin = n.admin_token();
    let ip = "127.0.0.1";
    n.call(
        "POST",
        "/api/apps",
        Some(&admin),
        Some(json!({"name": "A", "id": "app-a"})),
    );
    let (uid, analyst) = user(&n, "analyst@example.com", &["user"], &["app-a"]);
    n.call(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": "wrong-password"})),
    );
    // A hostile login name: CR/LF, ANSI escapes, a JSON fragment, 60 kB (bodies of auth
    // routes are capped at 64 kB).
    let hostile = format!(
        "evil\r\n{{\"forged\":1}}\u{1b}[31m{}@example.com",
        "x".repeat(60_000)
    );
    n.call(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": hostile, "password": "wrong-password"})),
    );
    n.call(
        "POST",
        "/api/analytics/query",
        Some(&analyst),
        Some(json!({"sql": "SELECT count(*) FROM events"})),
    );
    n.call(
        "POST",
        "/api/analytics/query",
        Some(&analyst),
        Some(json!({"sql": "COPY (SELECT 1) TO '/tmp/x'"})),
    );
    n.call(
        "POST",
        &format!("/api/admin/users/{uid}/roles"),
        Some(&admin),
        Some(json!({"role": "readonly"})),
    );
    n.call("POST", "/api/apps/app-a/keys/rotate", Some(&admin), None);
    // AUD-05: analysts cannot read the audit log, and trying is itself audited.
    assert_eq!(
        n.call("GET", "/api/admin/audit", Some(&analyst), None)
            .status,
        403
    );
    // AUD-02: kill -9 right after the acknowledged actions; every record survives.
    n.kill9();
    n.start();
    let a = n.call("GET", "/api/admin/audit?limit=1000", Some(&admin), None);
    assert_eq!(a.status, 200, "{}", a.body);
    let recs = a.body["records"].as_array().unwrap().clone();
    let has = |action: &str, outcome: &str| {
        recs.iter()
            .any(|r| r["action"] == action && r["outcome"].as_str().unwrap().starts_with(outcome))
    };
    // AUD-01: each kind of event with actor, time, node, source IP, action, target, outcome.
    for (action, outcome) in [
        ("cluster.bootstrap", "success"),
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("users.create", "success"),
        ("query.execute", "success"),
        ("query.execute", "failure"),
        ("roles.grant", "success"),
        ("keys.rotate", "success"),
        ("apps.create", "success"),
        ("request.denied", "denied: 403"),
    ] {
        assert!(
            has(action, outcome),
            "no {action}/{outcome} record in {recs:?}"
        );
    }
    for r in &recs {
        for f in [
            "actor",
            "at_ms",
            "node",
            "source_ip",
            "action",
            "target",
            "outcome",
            "hash",
            "prev_hash",
        ] {
            assert!(r.get(f).is_some(), "{f} missing in {r}");
        }
    }
    assert!(recs
        .iter()
        .filter(|r| r["action"] != "cluster.bootstrap")
        .all(|r| r["source_ip"] == ip));
    // AUD-04: control characters are stored escaped, and the field is capped.
    let hostile = recs
        .iter()
        .find(|r| r["target"].as_str().unwrap().starts_with("evil"))
        .expect("hostile login audited");
    let t = hostile["target"].as_str().unwrap();
    assert!(
        !t.contains('\r') && !t.contains('\n') && !t.contains('\u{1b}') && t.contains("\\u{d}"),
        "{t}"
    );
    assert!(t.len() < 1024, "not capped: {} bytes", t.len());
    // The SQL table, for admins.
    let q = n.call(
        "POST",
        "/api/analytics/query",
        Some(&admin),
        Some(json!({"sql": "SELECT count(*) FROM audit_log WHERE action = 'query.execute'"})),
    );
    assert_eq!(q.status, 200, "{}", q.body);
    assert!(q.body["rows"][0][0].as_u64().unwrap() >= 2);
    let v = n.call("GET", "/api/admin/audit/verify", Some(&admin), None);
    assert_eq!(v.body["ok"], true, "{}", v.body);
    // AUD-03: offline tampering is found by `unmogrowp audit verify`, naming the record.
    let head = a.body["head"].clone();
    n.terminate();
    let verify = |extra: &[String]| {
        let out = std::process::Command::new(unmogrowp_tests::binary())
            .args(["audit", "verify", "--data-dir"])
            .arg(&n.data_dir)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null),
        )
    };
    let (ok, report) = verify(&[]);
    assert!(ok, "{report}");
    let cp = vec![
        "--checkpoint-seq".to_string(),
        head["seq"].to_string(),
        "--checkpoint-hash".to_string(),
        head["hash"].as_str().unwrap().to_string(),
    ];
    assert!(verify(&cp).0);
    unmogrowp_tests::tamper_audit(&n.data_dir.join("auth"), 3);
    let (ok, report) = verify(&[]);
    assert!(!ok);
    assert_eq!(report["first_bad_seq"], 3, "{report}");
}

#[test]
fn brute_force_lockout_spray_and_forwarded_headers() {
    let (_d, n) = node(&[("UNMOGROWP_AUTH__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "20")]);
    let admin = n.admin_token();
    let (uid, _) = user(&n, "victim@example.com", &["user"], &[]);
    let login = |email: &str, pw: &str, xff: &str| {
        n.request_raw(
            "POST",
            "/api/auth/login",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", xff),
            ],
            Some(
                json!({"email": email, "password": pw})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .unwrap()
    };
    // RL-01: five failures lock the account, even for the right password.
    for i in 0..5 {
        assert_eq!(
            login(
                "victim@example.com",
                "wrong-password",
                &format!("10.0.0.{i}")
            )
            .status,
            401
        );
    }
    assert_eq!(
        login("victim@example.com", "password-123456", "10.0.0.9").status,
        401,
        "locked account let a login in"
    );
    let u = n.call(
        "GET",
        &format!("/api/admin/users/{uid}"),
        Some(&admin),
        None,
    );
    assert!(u.body["locked_until_ms"].as_i64().is_some(), "{}", u.body);
    // The documented unlock path.
    assert_eq!(
        n.call(
            "POST",
            &format!("/api/admin/users/{uid}/unlock"),
            Some(&admin),
            None
        )
        .status,
        200
    );
    assert_eq!(
        login("victim@example.com", "password-123456", "10.0.0.9").status,
        200
    );
    // RL-02/RL-03: a spray from one address is cut off by the per-IP limit, whatever
    // X-Forwarded-For says (127.0.0.1 is not a trusted proxy).
    let mut limited = 0;
    for i in 0..40 {
        let a = login(
            &format!("user{i}@example.com"),
            "Spring2026!!",
            &format!("203.0.113.{i}"),
        );
        if a.status == 429 {
            assert!(a.header("retry-after").is_some());
            limited += 1;
        }
    }
    assert!(limited >= 10, "per-IP limiter did not fire ({limited})");
    // AUTH-09: hashing is bounded; the metrics show it.
    let m = n.get("/metrics").body;
    let m = m.as_str().unwrap();
    assert!(m.contains("unmogrowp_audit_records"));
    // RL-02's alert: the limiter's refusals are counted for alerting.
    let limited_metric = n.metric("unmogrowp_login_rate_limited_total").unwrap();
    assert!(
        limited_metric >= limited as f64,
        "{limited_metric} < {limited}"
    );
    assert!(m.contains("unmogrowp_login_failures_total"));
}
