//! The error codes clients see, pinned (issue 25): SDKs, scripts and the dashboard branch on
//! `{"error":{"code"}}` and the status, so a refactor of how errors are mapped to HTTP may
//! not change any of them. Each row is a real request against a running node; a change here
//! is a change of the API contract.

use serde_json::{json, Value};
use unmogrowp_tests::{TestNode, ADMIN_EMAIL};

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn case(what: &'static str, method: &'static str, path: impl Into<String>) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        status: 0,
        code: "",
    }
}

impl Case {
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    fn json(self, v: Value) -> Self {
        self.header("content-type", "application/json")
            .raw(v.to_string().into_bytes())
    }
    fn raw(mut self, b: Vec<u8>) -> Self {
        self.body = Some(b);
        self
    }
    fn bearer(self, t: &str) -> Self {
        self.header("authorization", format!("Bearer {t}"))
    }
    fn key(self, k: &str) -> Self {
        self.header("x-api-key", k)
    }
    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

#[test]
fn client_visible_error_codes_do_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let admin = n.admin_token();
    let key = n.app_key("shop");
    let ro = n.call(
        "POST",
        "/api/admin/users",
        Some(&admin),
        Some(json!({"email": "ro@example.com", "password": "readonly-password-1", "roles": ["readonly"]})),
    );
    assert_eq!(ro.status, 201, "{}", ro.body);
    let ro = n.login("ro@example.com", "readonly-password-1")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let pair = n.login(ADMIN_EMAIL, unmogrowp_tests::ADMIN_PASSWORD);
    let old_refresh = pair["refresh_token"].as_str().unwrap().to_string();
    let rotated = n.call(
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": old_refresh})),
    );
    assert_eq!(rotated.status, 200);
    let big_sql = format!("SELECT '{}'", "x".repeat(300 << 10));
    let big_body = vec![b' '; 64 << 20];

    let cases = vec![
        case("unknown API path", "GET", "/api/nope").expect(404, "not_found"),
        case("no token", "GET", "/api/auth/me").expect(401, "unauthorized"),
        case("bad token", "GET", "/api/auth/me")
            .bearer("not.a.jwt")
            .expect(401, "unauthorized"),
        case("wrong password", "POST", "/api/auth/login")
            .json(json!({"email": ADMIN_EMAIL, "password": "wrong-password"}))
            .expect(401, "invalid_credentials"),
        case("login body not JSON", "POST", "/api/auth/login")
            .header("content-type", "application/json")
            .raw(b"{".to_vec())
            .expect(400, "invalid_request"),
        case("refresh token reused", "POST", "/api/auth/refresh")
            .json(json!({"refresh_token": pair["refresh_token"]}))
            .expect(401, "refresh_reused"),
        case("registration closed", "POST", "/api/auth/register")
            .json(json!({"email": "x@example.com", "password": "some-password-1"}))
            .expect(401, "forbidden"),
        case("ingest without a key", "POST", "/v1/events")
            .json(json!({"event_type": "a", "device_id": "d"}))
            .expect(401, "unauthorized"),
        case("ingest, malformed JSON", "POST", "/v1/events")
            .key(&key)
            .header("content-type", "application/json")
            .raw(b"{\"event_type\":".to_vec())
            .expect(400, "malformed_json"),
        case("ingest, unknown encoding", "POST", "/v1/events")
            .key(&key)
            .header("content-type", "application/json")
            .header("content-encoding", "br")
            .raw(b"{}".to_vec())
            .expect(415, "unsupported_encoding"),
        case("ingest, body too large", "POST", "/v1/events")
            .key(&key)
            .header("content-type", "application/json")
            .raw(big_body)
            .expect(413, "body_too_large"),
        case("ingest from a foreign origin", "POST", "/v1/events")
            .key(&key)
            .header("origin", "https://evil.example")
            .json(json!({"event_type": "a", "device_id": "d"}))
            .expect(403, "origin_not_allowed"),
        case("SQL that does not parse", "POST", "/api/analytics/query")
            .bearer(&admin)
            .json(json!({"sql": "SELEC 1"}))
            .expect(400, "invalid_query"),
        case(
            "SQL over a complexity limit",
            "POST",
            "/api/analytics/query",
        )
        .bearer(&admin)
        .json(json!({"sql": big_sql}))
        .expect(400, "query_too_complex"),
        case("SQL by a readonly user", "POST", "/api/analytics/query")
            .bearer(&ro)
            .json(json!({"sql": "SELECT 1"}))
            .expect(403, "forbidden"),
        case(
            "dashboard of an unknown app",
            "GET",
            "/api/dashboard/stats?app_id=nope",
        )
        .bearer(&admin)
        .expect(404, "not_found"),
        case(
            "dashboard, unknown parameter",
            "GET",
            "/api/dashboard/stats?app_id=shop&bogus=1",
        )
        .bearer(&admin)
        .expect(400, "invalid_request"),
        case(
            "attribution, unknown model",
            "GET",
            "/api/analytics/attribution?app_id=shop&model=bogus",
        )
        .bearer(&admin)
        .expect(400, "invalid_query"),
        case("app exists", "POST", "/api/apps")
            .bearer(&admin)
            .json(json!({"name": "Shop again", "id": "shop"}))
            .expect(409, "conflict"),
        case("bad allowed origin", "PATCH", "/api/apps/shop")
            .bearer(&admin)
            .json(json!({"allowed_origins": ["shop.example/path"]}))
            .expect(400, "invalid_request"),
        case("admin route as readonly", "GET", "/api/admin/users")
            .bearer(&ro)
            .expect(403, "forbidden"),
        case("bad new user", "POST", "/api/admin/users")
            .bearer(&admin)
            .json(json!({"email": "not-an-email", "password": "some-password-1"}))
            .expect(400, "invalid_request"),
        case("unknown user", "GET", "/api/admin/users/no-such-user")
            .bearer(&admin)
            .expect(404, "not_found"),
        case("audit, bad order", "GET", "/api/admin/audit?order=sideways")
            .bearer(&admin)
            .expect(400, "invalid_request"),
    ];
    let mut wrong = Vec::new();
    for c in &cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = n
            .request_raw(c.method, &c.path, &headers, c.body.as_deref())
            .unwrap_or_else(|e| panic!("{}: {e}", c.what));
        let code = a.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>");
        if a.status != c.status || code != c.code {
            wrong.push(format!(
                "{}: {} {} → {} {code} (pinned: {} {})",
                c.what, c.method, c.path, a.status, c.status, c.code
            ));
        }
        assert!(
            a.body["error"]["message"].is_string(),
            "{}: no message in {}",
            c.what,
            a.body
        );
    }
    assert!(
        wrong.is_empty(),
        "changed error answers:\n{}",
        wrong.join("\n")
    );
}
