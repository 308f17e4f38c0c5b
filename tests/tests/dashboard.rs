//! The dashboard API against a running node: every endpoint's numbers for a small known
//! history, app access (404 for other apps, 403 for readonly), and parameter errors.

use serde_json::{json, Value};
use unmogrowp_tests::TestNode;

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

#[allow(clippy::too_many_arguments)]
fn ev(
    seq: u64,
    ty: &str,
    user: &str,
    platform: &str,
    ts: i64,
    camp: Option<&str>,
    revenue: Option<f64>,
) -> Value {
    let mut e = json!({
        "event_type": ty, "app_id": "shop", "device_id": format!("d-{user}"), "user_id": user,
        "platform": platform, "timestamp": ts, "event_id": format!("00000000-0000-4000-8000-{seq:012}"),
    });
    if let Some(c) = camp {
        e["attribution"] = json!({"campaign": c, "source": "google", "medium": "cpc"});
    }
    if let Some(r) = revenue {
        e["event_data"] = json!({"revenue": r, "currency": "USD"});
    }
    e
}

#[test]
fn dashboard_endpoints_answer_the_numbers_of_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let now = unmogrowp_tests::now_ms();
    // Day boundaries so the cohorts are whole days.
    let day0 = (now / D - 5) * D;
    let events = vec![
        // u1: click, install (day 0), active day 1 and day 2, purchase 10 on day 2.
        ev(1, "ad_click", "u1", "ios", day0 + H, Some("summer"), None),
        ev(
            2,
            "install",
            "u1",
            "ios",
            day0 + 2 * H,
            Some("summer"),
            None,
        ),
        ev(3, "app_open", "u1", "ios", day0 + D + H, None, None),
        ev(
            4,
            "purchase",
            "u1",
            "ios",
            day0 + 2 * D + H,
            Some("summer"),
            Some(10.0),
        ),
        // u2: click, install (day 0), active day 2 only, no purchase.
        ev(
            5,
            "ad_click",
            "u2",
            "android",
            day0 + 3 * H,
            Some("winter"),
            None,
        ),
        ev(
            6,
            "install",
            "u2",
            "android",
            day0 + 4 * H,
            Some("winter"),
            None,
        ),
        ev(
            7,
            "app_open",
            "u2",
            "android",
            day0 + 2 * D + 2 * H,
            None,
            None,
        ),
        // u3: install on day 1 without a click; purchase 5 more than 7 days later? no: 2 h later.
        ev(8, "install", "u3", "web", day0 + D + 3 * H, None, None),
        ev(
            9,
            "purchase",
            "u3",
            "web",
            day0 + D + 5 * H,
            None,
            Some(5.0),
        ),
        // u4: a click only.
        ev(
            10,
            "ad_click",
            "u4",
            "ios",
            day0 + 3 * D,
            Some("summer"),
            None,
        ),
    ];
    let a = n.post_json("/v1/events", &Value::Array(events));
    assert_eq!(a.body["accepted"].as_u64(), Some(10), "{}", a.body);
    let admin = n.admin_token();
    let (from, to) = (day0, now + H);
    let get = |path: &str, q: &str, token: &str| {
        n.call(
            "GET",
            &format!("/api/dashboard/{path}?app_id=shop&from={from}&to={to}{q}"),
            Some(token),
            None,
        )
    };

    let s = get("stats", "", &admin);
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["total_events"], 10);
    assert_eq!(s.body["active_users"], 4);
    assert_eq!(s.body["revenue"].as_f64(), Some(15.0));
    // 2 purchases / 3 installs.
    assert!(
        (s.body["conversion_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12,
        "{}",
        s.body
    );
    // A range with no install: conversion rate null, not a division by zero.
    let s = n.call(
        "GET",
        &format!(
            "/api/dashboard/stats?app_id=shop&from={}&to={}",
            day0 + 3 * D,
            to
        ),
        Some(&admin),
        None,
    );
    assert_eq!(
        (
            s.body["total_events"].as_u64(),
            s.body["conversion_rate"].clone()
        ),
        (Some(1), Value::Null)
    );

    let p = get("charts/platforms", "", &admin);
    assert_eq!(
        p.body["rows"],
        json!([
            {"platform": "ios", "events": 5, "users": 2},
            {"platform": "android", "events": 3, "users": 1},
            {"platform": "web", "events": 2, "users": 1},
        ]),
        "{}",
        p.body
    );

    let t = get("charts/top-campaigns", "&limit=1", &admin);
    assert_eq!(
        t.body["rows"],
        json!([{"campaign": "summer", "source": "google", "medium": "cpc", "events": 4,
        "installs": 1, "purchases": 1, "revenue": 10.0, "users": 2}]),
        "{}",
        t.body
    );

    let e = get("charts/events-over-time", "&interval=day", &admin);
    let points = e.body["points"].as_array().unwrap();
    let per_day: Vec<u64> = points
        .iter()
        .map(|p| p["events"].as_u64().unwrap())
        .collect();
    assert_eq!(per_day, vec![4, 3, 2, 1], "{}", e.body);
    assert_eq!(
        get("charts/events-over-time", "", &admin).body["points"]
            .as_array()
            .unwrap()
            .len(),
        10
    );

    // Cohorts by install day: day 0 = {u1, u2}: day 1 u1, day 2 u1 and u2; day 1 = {u3}.
    let r = get("charts/user-retention", "&days=2", &admin);
    let cohorts = r.body["cohorts"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body));
    assert_eq!(cohorts.len(), 2, "{}", r.body);
    assert_eq!(
        (cohorts[0]["size"].as_u64(), cohorts[0]["retained"].clone()),
        (Some(2), json!([2, 1, 2]))
    );
    assert_eq!(cohorts[1]["retained"], json!([1, 0, 0]));

    // click → install → purchase within 7 days: 3 clickers, 2 installed after clicking, 1 bought.
    let f = get("charts/funnel", "&steps=ad_click,install,purchase", &admin);
    let users: Vec<u64> = f.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, vec![3, 2, 1], "{}", f.body);
    // Within 1 day of the click, nobody bought.
    let f = get(
        "charts/funnel",
        "&steps=ad_click,install,purchase&window=1d",
        &admin,
    );
    assert_eq!(f.body["steps"][2]["users"], 0, "{}", f.body);

    for (path, q) in [
        ("stats", "&from=2026-13-01"),
        ("charts/events-over-time", "&interval=week"),
        ("charts/funnel", "&steps=install"),
        ("charts/funnel", "&steps=install,buy'--"),
        ("charts/user-retention", "&days=0"),
        ("charts/top-campaigns", "&limit=x"),
        ("stats", "&colour=blue"),
    ] {
        let a = get(path, q, &admin);
        assert_eq!(a.status, 400, "{path}{q}: {}", a.body);
        assert!(a.body["error"]["message"].is_string());
    }
    assert_eq!(
        n.call("GET", "/api/dashboard/stats", Some(&admin), None)
            .status,
        400
    );

    // Access: another app's user sees 404; readonly has no dashboard route; anonymous 401.
    n.app_key("other");
    for (email, roles) in [("m@example.com", "user"), ("ro@example.com", "readonly")] {
        let u = n.call("POST", "/api/admin/users", Some(&admin), Some(json!({
            "email": email, "name": "x", "password": "user-password-123", "roles": [roles], "app_access": ["other"]
        })));
        assert_eq!(u.status, 201, "{}", u.body);
    }
    let m = n.login("m@example.com", "user-password-123")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ro = n.login("ro@example.com", "user-password-123")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get("stats", "", &m).status, 404);
    assert_eq!(get("charts/platforms", "", &ro).status, 403);
    let other = n.call("GET", "/api/dashboard/stats?app_id=other", Some(&m), None);
    assert_eq!(
        (other.status, other.body["total_events"].as_u64()),
        (200, Some(0))
    );
    assert_eq!(
        n.call("GET", "/api/dashboard/stats?app_id=shop", None, None)
            .status,
        401
    );
}
