//! Issue 23 with a real browser: Debian chromium, driven by Playwright
//! (`tests/browser/sdk_cors.py`), loads a page from a second loopback origin that posts events
//! the way web SDKs do — `fetch` with the key in `X-Api-Key` (a CORS preflight first) and
//! `navigator.sendBeacon` with `?api_key=`. From an allowed origin both are stored and
//! queryable; from an origin the app does not allow the browser blocks the fetch and the
//! beacon is refused, so nothing is stored.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::{free_port, TestNode};

fn browser(api: &str, key: &str, page_port: u16, tag: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/sdk_cors.py");
    let out = Command::new("python3")
        .args([script, "--api", api, "--key", key, "--tag", tag])
        .args(["--page-port", &page_port.to_string()])
        .output()
        .expect("python3 (scripts/setup.sh installs it and Playwright)");
    assert!(
        out.status.success(),
        "browser script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints one JSON object")
}

fn count_until(n: &TestNode, sql: &str, want: u64, limit: Duration) -> u64 {
    let t0 = Instant::now();
    loop {
        let c = n.count(sql);
        if c >= want || t0.elapsed() > limit {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_web_page_posts_events_with_fetch_and_sendbeacon() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let key = n.app_key("shop");
    let admin = n.admin_token();
    let allowed = free_port();
    let other = free_port();
    let a = n.call(
        "PATCH",
        "/api/apps/shop",
        Some(&admin),
        Some(json!({"allowed_origins": [format!("http://127.0.0.1:{allowed}")]})),
    );
    assert_eq!(a.status, 200, "{}", a.body);

    let seen = browser(&n.base(), &key, allowed, "ok");
    assert_eq!(seen["fetch_status"], 202, "{seen}");
    assert_eq!(seen["fetch_body"]["accepted"], 1, "{seen}");
    assert_eq!(seen["beacon_queued"], true, "{seen}");
    assert_eq!(
        count_until(
            &n,
            "SELECT count(*) FROM events WHERE event_type IN ('fetch_ok', 'beacon_ok') \
             AND event_data['page.path'] = '/cart'",
            2,
            Duration::from_secs(10)
        ),
        2
    );

    let seen = browser(&n.base(), &key, other, "blocked");
    assert!(
        seen["fetch_error"].is_string(),
        "the browser should block the fetch: {seen}"
    );
    assert!(seen.get("fetch_status").is_none(), "{seen}");
    // The beacon was sent (no preflight for a text/plain beacon) and refused by the node.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        n.count(
            "SELECT count(*) FROM events WHERE event_type IN ('fetch_blocked', 'beacon_blocked')"
        ),
        0
    );
    let refused = n.metric("unmogrowp_http_requests_total{route=\"/v1/events\",status=\"403\"}");
    assert!(
        refused.unwrap_or(0.0) >= 1.0,
        "no 403 for the beacon from a foreign origin"
    );
}
