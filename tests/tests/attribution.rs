//! Attribution against a running node: `GET /api/analytics/attribution` and the SQL table
//! function `attribution(…)` over events ingested through `/v1/events`, with the credit
//! computed by hand for each model and window; app access and parameter errors.

use serde_json::{json, Value};
use unmogrowp_tests::TestNode;

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

fn ev(
    seq: u64,
    ty: &str,
    dev: &str,
    user: Option<&str>,
    ts: i64,
    camp: Option<(&str, &str, &str)>,
) -> Value {
    let mut e = json!({
        "event_type": ty, "app_id": "shop", "device_id": dev, "platform": "ios",
        "timestamp": ts, "event_id": format!("00000000-0000-4000-8000-{seq:012}"),
    });
    if let Some(u) = user {
        e["user_id"] = json!(u);
    }
    if let Some((c, s, m)) = camp {
        e["attribution"] = json!({"campaign": c, "source": s, "medium": m});
    }
    e
}

fn purchase(seq: u64, dev: &str, user: Option<&str>, ts: i64, revenue: f64) -> Value {
    let mut e = ev(seq, "purchase", dev, user, ts, None);
    e["event_data"] = json!({"revenue": revenue, "currency": "USD"});
    e
}

/// (campaign → conversions) of a report's attributed rows, and its unattributed count.
fn credit(r: &Value) -> (Vec<(String, f64)>, f64) {
    let mut rows: Vec<(String, f64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["conversions"].as_f64().unwrap() > 0.0)
        .map(|x| {
            (
                x["campaign"].as_str().unwrap_or("-").to_string(),
                x["conversions"].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    (rows, r["unattributed"]["conversions"].as_f64().unwrap())
}

#[test]
fn attribution_endpoint_and_sql_function_credit_what_was_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let now = unmogrowp_tests::now_ms();
    let base = now - 10 * D;
    let summer = Some(("summer", "google", "cpc"));
    let winter = Some(("winter", "meta", "display"));
    let autumn = Some(("autumn", "tiktok", "cpc"));
    let events = vec![
        // a (user u1): click summer, install, purchase 20.
        ev(1, "ad_click", "dev-a", Some("u1"), base, summer),
        ev(2, "install", "dev-a", Some("u1"), base + H, None),
        purchase(3, "dev-a", Some("u1"), base + 2 * H, 20.0),
        // b (same user u1, another device): purchase 5, no touchpoint of its own.
        purchase(4, "dev-b", Some("u1"), base + 3 * D, 5.0),
        // c: a view, then an install two hours later.
        ev(5, "ad_impression", "dev-c", None, base + D, winter),
        ev(6, "install", "dev-c", None, base + D + 2 * H, None),
        // d: a click, then a later view: the click wins.
        ev(7, "ad_click", "dev-d", None, base + D, summer),
        ev(8, "ad_impression", "dev-d", None, base + D + H, winter),
        ev(9, "install", "dev-d", None, base + D + 2 * H, None),
        // e: an organic install.
        ev(10, "install", "dev-e", None, base + 2 * D, None),
        // f: two clicks, then an install.
        ev(11, "ad_click", "dev-f", None, base + 2 * D, summer),
        ev(12, "ad_click", "dev-f", None, base + 2 * D + H, autumn),
        ev(13, "install", "dev-f", None, base + 2 * D + 2 * H, None),
        // Not conversions, not touchpoints.
        ev(14, "app_open", "dev-a", Some("u1"), base + 3 * H, None),
    ];
    let a = n.post_json("/v1/events", &Value::Array(events));
    assert_eq!(a.body["accepted"].as_u64(), Some(14), "{}", a.body);

    let admin = n.admin_token();
    let (from, to) = (base - D, now + H);
    let get = |q: &str, token: &str| {
        n.call(
            "GET",
            &format!("/api/analytics/attribution?app_id=shop&from={from}&to={to}{q}"),
            Some(token),
            None,
        )
    };
    let r = get("", &admin);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["model"], "last_touch");
    assert_eq!(r.body["total_conversions"].as_u64(), Some(7));
    assert_eq!(r.body["total_revenue"].as_f64(), Some(25.0));
    let s = |v: &[(&str, f64)]| {
        v.iter()
            .map(|(c, x)| (c.to_string(), *x))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        credit(&r.body),
        (s(&[("autumn", 1.0), ("summer", 4.0), ("winter", 1.0)]), 1.0)
    );
    let summer_row = r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["campaign"] == "summer")
        .unwrap()
        .clone();
    assert_eq!(summer_row["source"], "google");
    assert_eq!(summer_row["medium"], "cpc");
    assert_eq!(summer_row["revenue"].as_f64(), Some(25.0));
    assert_eq!(summer_row["clicks"].as_u64(), Some(3));
    assert_eq!(summer_row["conversion_rate"].as_f64(), Some(4.0 / 3.0));
    assert_eq!(
        summer_row["by_type"],
        json!({"install": 2.0, "purchase": 2.0})
    );
    assert_eq!(r.body["unattributed"]["revenue"].as_f64(), Some(0.0));

    let r = get("&model=linear", &admin);
    assert_eq!(
        credit(&r.body),
        (s(&[("autumn", 0.5), ("summer", 4.5), ("winter", 1.0)]), 1.0)
    );
    let r = get("&model=first_touch", &admin);
    assert_eq!(
        credit(&r.body),
        (s(&[("summer", 5.0), ("winter", 1.0)]), 1.0)
    );
    let r = get("&model=position_based", &admin);
    assert_eq!(
        credit(&r.body),
        (s(&[("autumn", 0.5), ("summer", 4.5), ("winter", 1.0)]), 1.0)
    );
    // Half-life 1 h: f's clicks are 2 h and 1 h old: 1/3 summer, 2/3 autumn.
    let r = get("&model=time_decay&half_life=1h", &admin);
    let (rows, _) = credit(&r.body);
    assert!(
        (rows[0].1 - 2.0 / 3.0).abs() < 1e-9 && (rows[1].1 - (4.0 + 1.0 / 3.0)).abs() < 1e-9,
        "{rows:?}"
    );
    // A 30 min click window: only the views still count (c, and d's view); the rest is organic.
    let r = get("&click_window=30m", &admin);
    assert_eq!(credit(&r.body), (s(&[("winter", 2.0)]), 5.0));
    // Installs only.
    let r = get("&conversion=install", &admin);
    assert_eq!(r.body["total_conversions"].as_u64(), Some(5));
    // A range with only b's purchase: it inherits summer from a's purchase (same user,
    // 3 days earlier, before the range: history is read for that).
    let r = n.call(
        "GET",
        &format!(
            "/api/analytics/attribution?app_id=shop&from={}&to={}",
            base + 3 * D - H,
            base + 3 * D + H
        ),
        Some(&admin),
        None,
    );
    assert_eq!(credit(&r.body), (s(&[("summer", 1.0)]), 0.0), "{}", r.body);
    let r = n.call(
        "GET",
        &format!(
            "/api/analytics/attribution?app_id=shop&from={}&to={}&reattribution_window=1d",
            base + 3 * D - H,
            base + 3 * D + H
        ),
        Some(&admin),
        None,
    );
    assert_eq!(credit(&r.body), (vec![], 1.0), "{}", r.body);

    // The same through SQL.
    let rows = n.sql(&format!(
        "SELECT campaign, conversions FROM attribution('shop', {from}, {to}, 'linear') WHERE attributed AND conversions > 0 ORDER BY campaign"
    ));
    assert_eq!(
        rows,
        vec![
            vec![json!("autumn"), json!(0.5)],
            vec![json!("summer"), json!(4.5)],
            vec![json!("winter"), json!(1.0)]
        ]
    );
    let rows = n.sql(&format!(
        "SELECT conversions FROM attribution('shop', {from}, now() + INTERVAL 1 HOUR) WHERE NOT attributed"
    ));
    assert_eq!(rows, vec![vec![json!(1.0)]]);

    // Errors: a JSON 400 naming the problem.
    for (q, needle) in [
        ("/api/analytics/attribution", "app_id"),
        (
            "/api/analytics/attribution?app_id=shop&model=u_shaped",
            "model",
        ),
        (
            "/api/analytics/attribution?app_id=shop&from=2026-11-02&to=2026-11-01",
            "before",
        ),
        (
            "/api/analytics/attribution?app_id=shop&click_window=7weeks",
            "unit",
        ),
        (
            "/api/analytics/attribution?app_id=shop&from=yesterday",
            "from",
        ),
        (
            "/api/analytics/attribution?app_id=shop&colour=blue",
            "unknown parameter",
        ),
        (
            "/api/analytics/attribution?app_id=shop&conversion=ad_click",
            "both",
        ),
    ] {
        let a = n.call("GET", q, Some(&admin), None);
        assert_eq!(a.status, 400, "{q}: {}", a.body);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{q}: {}",
            a.body
        );
    }
    let a = n.post_json(
        "/api/analytics/query",
        &json!({"sql": "SELECT * FROM attribution('shop')"}),
    );
    assert_eq!(a.status, 400, "{}", a.body);

    // App access: a user with access to another app only sees 404, and the SQL function
    // finds no events of an app outside the caller's scope.
    n.app_key("other");
    let u = n.call("POST", "/api/admin/users", Some(&admin), Some(json!({
        "email": "m@example.com", "name": "m", "password": "user-password-123", "roles": ["user"], "app_access": ["other"]
    })));
    assert_eq!(u.status, 201, "{}", u.body);
    let tok = n.login("m@example.com", "user-password-123")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get("", &tok).status, 404);
    let a = n.call("POST", "/api/analytics/query", Some(&tok), Some(json!({"sql": format!("SELECT sum(conversions) FROM attribution('shop', {from}, {to})")})));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["rows"], json!([[0.0]]));
    assert_eq!(
        n.call("GET", "/api/analytics/attribution?app_id=shop", None, None)
            .status,
        401
    );
}
