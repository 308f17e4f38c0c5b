//! Issue 23 (first part): events as real SDKs post them. Nested `event_data` is stored
//! flattened (`event_data['cart.total']`), arrays as JSON text; a field the server does not
//! know is kept as `event_data['$name']`; any platform token is accepted (lower-cased) and
//! the dashboard groups it as itself; `POST /v1/events?api_key=KEY` works without the header
//! (what `navigator.sendBeacon` needs) and the key never shows in the audit log or metrics.

use serde_json::{json, Value};
use unmogrowp_tests::TestNode;

#[test]
fn sdk_shaped_events_are_kept_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let key = n.app_key("shop");
    let ts = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    let events = json!([
        {"event_type": "purchase", "device_id": "d1", "user_id": "u1", "platform": "tvOS",
         "timestamp": ts, "event_id": "00000000-0000-4000-8000-000000000001",
         "event_data": {"items": [{"sku": "a", "qty": 2}], "cart": {"total": 9.5, "coupon": null},
                        "revenue": 9.5, "currency": "EUR"},
         "sdk_version": "2.1", "context": {"locale": "de"}},
        {"event_type": "install", "device_id": "d2", "platform": "smart-tv_2", "timestamp": ts + 1000},
        {"event_type": "x", "device_id": "d3", "timestamp": ts,
         "event_data": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        {"event_type": "x", "device_id": "d4", "platform": "tv os!", "timestamp": ts}
    ]);
    let a = n
        .request_raw(
            "POST",
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("x-api-key", key.as_str()),
            ],
            Some(events.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 2, "{}", a.body);
    let rejected = a.body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 2);
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("ingest.max_event_data_depth = 5"),
        "{}",
        rejected[0]
    );
    assert!(rejected[1]["error"]
        .as_str()
        .unwrap()
        .starts_with("platform"));

    let rows = n.sql(
        "SELECT event_data['cart.total'], event_data['items'], event_data['$sdk_version'], \
         event_data['$context'], platform, revenue, event_data['cart.coupon'] \
         FROM events WHERE device_id = 'd1'",
    );
    assert_eq!(
        rows,
        vec![vec![
            json!("9.5"),
            json!(r#"[{"qty":2,"sku":"a"}]"#),
            json!("2.1"),
            json!(r#"{"locale":"de"}"#),
            json!("tvos"),
            json!(9.5),
            Value::Null
        ]]
    );

    // A beacon: the key in the query string, a text/plain body.
    let beacon = json!({"event_type": "page_hide", "device_id": "d9", "platform": "web", "timestamp": ts + 2000});
    let a = n
        .request_raw(
            "POST",
            &format!("/v1/events?api_key={key}"),
            &[("content-type", "text/plain;charset=UTF-8")],
            Some(beacon.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    let a = n
        .request_raw(
            "POST",
            "/v1/events?api_key=not-a-key",
            &[("content-type", "text/plain;charset=UTF-8")],
            Some(beacon.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(
        n.count("SELECT count(*) FROM events WHERE event_type = 'page_hide'"),
        1
    );

    // Click and ad ids: stored, queryable in the attribution map, and attribution, the
    // dashboard and the rollups keep working with them.
    let clicks = json!([
        {"event_type": "ad_click", "device_id": "c1", "platform": "tvos", "timestamp": ts + 3000,
         "attribution": {"campaign": "winter", "source": "google", "medium": "cpc", "gclid": "Cj0KCQ",
                         "gbraid": "g1", "wbraid": "w1", "fbclid": "fb1", "ttclid": "tt1", "msclkid": "ms1",
                         "click_id": "k1", "ad_id": 42, "adset": "s1", "creative": "cr1", "sub_param": "x"}},
        {"event_type": "install", "device_id": "c1", "platform": "tvos", "timestamp": ts + 4000},
        {"event_type": "x", "device_id": "c2", "timestamp": ts, "attribution": {"bad key!": "v"}}
    ]);
    let a = n
        .request_raw(
            "POST",
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("x-api-key", key.as_str()),
            ],
            Some(clicks.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(a.body["accepted"], 2, "{}", a.body);
    assert!(a.body["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("attribution"));
    let rows = n.sql(
        "SELECT attribution['gclid'], attribution['fbclid'], attribution['ad_id'], attribution['campaign'], \
         attribution['sub_param'], attribution['creative'], attribution_campaign \
         FROM events WHERE device_id = 'c1' AND event_type = 'ad_click'",
    );
    assert_eq!(
        rows,
        vec![vec![
            json!("Cj0KCQ"),
            json!("fb1"),
            json!("42"),
            json!("winter"),
            json!("x"),
            json!("cr1"),
            json!("winter")
        ]]
    );
    let token = n.admin_token();
    let attr = n.call(
        "GET",
        "/api/analytics/attribution?app_id=shop&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        Some(&token),
        None,
    );
    assert_eq!(attr.status, 200, "{}", attr.body);
    assert!(
        attr.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["campaign"] == "winter" && r["conversions"].as_f64() == Some(1.0)),
        "{}",
        attr.body
    );
    let top = n.call(
        "GET",
        "/api/dashboard/charts/top-campaigns?app_id=shop&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        Some(&token),
        None,
    );
    assert_eq!(top.status, 200, "{}", top.body);
    assert!(top.body.to_string().contains("winter"), "{}", top.body);

    // The dashboard groups the new platforms as themselves.
    let p = n.call(
        "GET",
        "/api/dashboard/charts/platforms?app_id=shop&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        Some(&token),
        None,
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let names: Vec<&str> = p.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["platform"].as_str())
        .collect();
    assert!(
        names.contains(&"tvos") && names.contains(&"smart-tv_2"),
        "{}",
        p.body
    );

    // The key is in no audit record and no metric.
    let audit = n.call("GET", "/api/admin/audit?limit=1000", Some(&token), None);
    assert_eq!(audit.status, 200);
    assert!(
        !audit.body.to_string().contains(&key),
        "the API key is in the audit log"
    );
    let metrics = n
        .get("/metrics")
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(metrics.contains("unmogrowp_ingest_events_total"));
    assert!(!metrics.contains(&key), "the API key is in the metrics");
    assert!(
        !n.log_tail().contains(&key),
        "the API key is in the node's log"
    );
}

fn header<'a>(a: &'a unmogrowp_tests::Answer, name: &str) -> Option<&'a str> {
    a.header(name)
}

#[test]
fn cors_for_allowed_origins_and_strict_fields_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(dir.path().join("node"), &[]);
    n.start();
    let key = n.app_key("shop");
    let other_key = n.app_key("blog");
    let admin = n.admin_token();
    let shop = "https://shop.example";

    // Before any app allows an origin, a preflight is refused without CORS headers.
    let pre = |origin: &str| {
        n.request_raw(
            "OPTIONS",
            "/v1/events",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type,x-api-key"),
            ],
            None,
        )
        .unwrap()
    };
    let a = pre(shop);
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(header(&a, "access-control-allow-origin").is_none());

    // Settings: validated, audited, shown.
    for bad in [
        json!(["shop.example"]),
        json!(["https://shop.example/path"]),
        json!(["ftp://x"]),
    ] {
        let a = n.call(
            "PATCH",
            "/api/apps/shop",
            Some(&admin),
            Some(json!({"allowed_origins": bad})),
        );
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }
    let a = n.call(
        "PATCH",
        "/api/apps/shop",
        Some(&admin),
        Some(json!({"allowed_origins": ["https://Shop.Example", "http://127.0.0.1:8089"]})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["allowed_origins"],
        json!(["https://shop.example", "http://127.0.0.1:8089"])
    );
    assert_eq!(a.body["strict_fields"], false);
    assert_eq!(a.body["name"], "shop");

    let a = pre(shop);
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(header(&a, "access-control-allow-origin"), Some(shop));
    assert_eq!(header(&a, "access-control-allow-methods"), Some("POST"));
    assert_eq!(
        header(&a, "access-control-allow-headers"),
        Some("content-type, x-api-key, content-encoding")
    );
    assert!(header(&a, "access-control-max-age").is_some());
    let a = pre("https://evil.example");
    assert_eq!(a.status, 403);
    assert!(header(&a, "access-control-allow-origin").is_none());

    let ev = json!({"event_type": "cors", "device_id": "c1", "timestamp": 1_767_225_600_000i64});
    let post = |k: &str, origin: Option<&str>| {
        let mut h = vec![("content-type", "application/json"), ("x-api-key", k)];
        if let Some(o) = origin {
            h.push(("origin", o));
        }
        n.request_raw("POST", "/v1/events", &h, Some(ev.to_string().as_bytes()))
            .unwrap()
    };
    // The allowed origin with the app's key: stored, and the answer is readable by the page.
    let a = post(&key, Some(shop));
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(header(&a, "access-control-allow-origin"), Some(shop));
    // Another origin, or the allowed origin with another app's key: refused, nothing stored.
    let a = post(&key, Some("https://evil.example"));
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "origin_not_allowed");
    assert!(header(&a, "access-control-allow-origin").is_none());
    let a = post(&other_key, Some(shop));
    assert_eq!(a.status, 403, "{}", a.body);
    // No Origin (mobile and server SDKs): as before.
    assert_eq!(post(&key, None).status, 202);
    assert_eq!(
        n.count("SELECT count(*) FROM events WHERE event_type = 'cors'"),
        2
    );
    // Errors carry the header too, so the page can read them.
    let a = n
        .request_raw(
            "POST",
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("x-api-key", key.as_str()),
                ("origin", shop),
            ],
            Some(b"{not json"),
        )
        .unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(header(&a, "access-control-allow-origin"), Some(shop));
    // No other route gets CORS.
    let a = n
        .request_raw(
            "GET",
            "/api/apps",
            &[
                ("origin", shop),
                ("authorization", &format!("Bearer {admin}")),
            ],
            None,
        )
        .unwrap();
    assert!(header(&a, "access-control-allow-origin").is_none());

    // strict_fields: today's behaviour, per app.
    let a = n.call(
        "PATCH",
        "/api/apps/shop",
        Some(&admin),
        Some(json!({"strict_fields": true})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["allowed_origins"].as_array().unwrap().len(),
        2,
        "{}",
        a.body
    );
    let odd = json!({"event_type": "x", "device_id": "s1", "sdk_version": "3"});
    let a = n
        .request_raw(
            "POST",
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("x-api-key", key.as_str()),
            ],
            Some(odd.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .contains("unknown field"));
    let a = n
        .request_raw(
            "POST",
            "/v1/events",
            &[
                ("content-type", "application/json"),
                ("x-api-key", other_key.as_str()),
            ],
            Some(odd.to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(
        a.status, 202,
        "the other app keeps unknown fields: {}",
        a.body
    );
    // The changes are audited.
    let audit = n.call("GET", "/api/admin/audit?limit=1000", Some(&admin), None);
    assert!(
        audit.body.to_string().contains("apps.settings"),
        "{}",
        audit.body
    );
}
