//! Issue 24: the web dashboard end to end in a real browser (Debian chromium driven by
//! Playwright, `tests/browser/dashboard_e2e.py`) against a running node that serves the UI
//! built into `ui/dist` (`scripts/setup.sh` builds it). The script seeds apps, users and
//! events through the API and checks, as people would see it: wrong password, login, the
//! dashboard's numbers equal to the API's, the attribution model switch, the SQL console's
//! errors and results, an app created with its key shown once and its events arriving, a
//! one-app user and a readonly user, XSS payloads shown as text, axe-core on every page,
//! silent refresh and session end. Screenshots land in `$CARGO_TARGET_TMPDIR/ui-e2e`.
//!
//! Also over plain HTTP: how `/`, SPA routes and assets are served (CSP, caching,
//! compression, ETag) and the refresh cookie's contract.

use std::process::Command;

use serde_json::{json, Value};
use unmogrowp_tests::{TestNode, ADMIN_EMAIL, ADMIN_PASSWORD};

const ACCESS_TTL_SECS: &str = "60";

fn ui_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui")
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_AUTH__ACCESS_TOKEN_TTL_SECS", ACCESS_TTL_SECS)],
    );
    n.start();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-e2e");
    let _ = std::fs::remove_dir_all(&out);
    let axe = ui_dir().join("node_modules/axe-core/axe.min.js");
    assert!(axe.exists(), "{axe:?} missing: run scripts/setup.sh");
    let run = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/browser/dashboard_e2e.py"
        ))
        .args(["--base", &n.base(), "--password", ADMIN_PASSWORD])
        .arg("--out")
        .arg(&out)
        .arg("--axe")
        .arg(&axe)
        .args(["--token-ttl", ACCESS_TTL_SECS])
        .output()
        .expect("python3 (scripts/setup.sh installs it and Playwright)");
    assert!(
        run.status.success(),
        "the browser run failed:\n{}\n{}\nnode log:\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        n.log_tail()
    );
    let summary: Value = serde_json::from_slice(&run.stdout).expect("one JSON object");
    eprintln!("dashboard e2e: {summary}");
    for page in [
        "login-error",
        "dashboard",
        "attribution",
        "sql",
        "apps-new-key",
        "admin-users",
        "admin-audit",
        "admin-cluster",
        "user-one-app-sql",
        "readonly",
    ] {
        assert!(
            out.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
    assert_eq!(summary["silent_refresh"], true);
}

#[test]
fn the_ui_is_served_with_its_security_and_cache_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let html = [("accept", "text/html,application/xhtml+xml")];

    // --- phase: `/` is the dashboard for browsers, the API's index for everything else
    let page = n.try_get_raw("/", &html).unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(n.get("/").body["name"], "unmogrowp");

    // --- phase: SPA routes answer index.html; API paths keep their JSON 404
    let spa = n.try_get_raw("/admin/audit?actor=x", &html).unwrap();
    assert_eq!(spa.status, 200);
    assert_eq!(spa.header("etag"), page.header("etag"));
    let api404 = n.try_get_raw("/api/nope", &html).unwrap();
    assert_eq!(api404.status, 404);
    assert_eq!(api404.body["error"]["code"], "not_found");
    assert_eq!(n.try_get_raw("/nope", &[]).unwrap().status, 404);

    // --- phase: hashed assets: cached for a year, brotli or gzip when asked, 304 on ETag
    let index = String::from_utf8(
        std::fs::read(ui_dir().join("dist/index.html")).expect("ui/dist: run scripts/setup.sh"),
    )
    .unwrap();
    let js = index
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("an entry script");
    // Headers only: the bodies are compressed bytes.
    let head = |path: &str, headers: &[(&str, &str)]| {
        let mut req = ureq::get(&format!("{}{path}", n.base()));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{path}: {e}"),
        }
    };
    let plain = head(js, &[("accept-encoding", "identity")]);
    assert_eq!(plain.status(), 200, "{js}: {:?}", plain.status_text());
    assert_eq!(
        plain.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(plain
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(plain.header("content-encoding"), None);
    let br = head(js, &[("accept-encoding", "gzip, br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("accept-encoding"));
    let gz = head(js, &[("accept-encoding", "gzip;q=1.0, br;q=0")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let etag = plain.header("etag").unwrap().to_string();
    assert_eq!(head(js, &[("if-none-match", &etag)]).status(), 304);
    assert_eq!(n.try_get_raw("/assets/nope.js", &[]).unwrap().status, 404);

    // --- phase: the refresh cookie (X-Session-Cookie: 1): HttpOnly, not in the body, rotates
    let login = n
        .request_raw(
            "POST",
            "/api/auth/login",
            &[
                ("content-type", "application/json"),
                ("x-session-cookie", "1"),
            ],
            Some(
                json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .unwrap();
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.get("refresh_token").is_none(), "{}", login.body);
    let cookie = login
        .header("set-cookie")
        .expect("a Set-Cookie")
        .to_string();
    for part in [
        "unmogrowp_refresh=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/auth",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    let refresh = |c: &str| {
        n.request_raw(
            "POST",
            "/api/auth/refresh",
            &[("cookie", c), ("x-session-cookie", "1")],
            Some(b""),
        )
        .unwrap()
    };
    let r1 = refresh(&pair);
    assert_eq!(r1.status, 200, "{}", r1.body);
    assert!(r1.body["access_token"].is_string() && r1.body.get("refresh_token").is_none());
    let pair2 = r1
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(pair, pair2);
    // The cookie alone (without the opt-in header a cross-site form cannot send) is not used.
    let no_header = n
        .request_raw(
            "POST",
            "/api/auth/refresh",
            &[("cookie", &pair2)],
            Some(b""),
        )
        .unwrap();
    assert_eq!(no_header.status, 400, "{}", no_header.body);
    // The rotated-away cookie presented again at once (a page reloaded while its refresh was
    // in flight lost the new cookie): forgiven within the grace, the session's current token
    // comes back and the session lives on (auth::store::REFRESH_REUSE_GRACE_MS; after it, a
    // reuse revokes the session: auth's store tests).
    let lost = refresh(&pair);
    assert_eq!(lost.status, 200, "{}", lost.body);
    let current = lost
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(refresh(&current).status, 200);
    // Logout clears the cookie.
    let access = r1.body["access_token"].as_str().unwrap().to_string();
    let out = n
        .request_raw(
            "POST",
            "/api/auth/logout",
            &[
                ("authorization", &format!("Bearer {access}")),
                ("content-type", "application/json"),
            ],
            Some(b"{}"),
        )
        .unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    // Without the header, login still answers both tokens in JSON (API clients).
    assert!(n.login(ADMIN_EMAIL, ADMIN_PASSWORD)["refresh_token"].is_string());

    // --- phase: /api/auth/me says which routes this user may call
    let me = n.call("GET", "/api/auth/me", Some(&n.admin_token()), None);
    let allowed: Vec<&str> = me.body["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(allowed.contains(&"GET /api/admin/users"), "{allowed:?}");
    assert!(!allowed.contains(&"POST /v1/events"), "{allowed:?}");
}
