//! Fraud signals against a running node: `GET /api/analytics/fraud` counts click injection,
//! abnormal clicks per device and per IP, and deny-listed IPs per source, for a history built
//! by hand; `exclude_fraud=true` moves the credit of an injected install to the honest click
//! before it and drops installs from deny-listed IPs; app access and parameter errors.

use serde_json::{json, Value};
use unmogrowp_tests::TestNode;

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

fn ev(seq: u64, ty: &str, dev: &str, ip: &str, ts: i64, source: Option<&str>) -> Value {
    let mut e = json!({
        "event_type": ty, "app_id": "shop", "device_id": dev, "platform": "android",
        "ip": ip, "timestamp": ts, "event_id": format!("00000000-0000-4000-8000-{seq:012}"),
    });
    if let Some(s) = source {
        e["attribution"] = json!({"campaign": format!("{s}-camp"), "source": s, "medium": "cpc"});
    }
    e
}

fn row<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == source)
        .unwrap_or_else(|| panic!("no row for {source}: {report}"))
}

#[test]
fn fraud_signals_per_source_and_exclusion_from_attribution() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_FRAUD__DENY_IPS", "[\"203.0.113.0/24\"]")],
    );
    n.start();
    let day = (unmogrowp_tests::now_ms() / D - 3) * D;
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    let mut events = vec![
        // dev-1: an honest "good" click, then an "inject" click 4 s before the install.
        ev(
            next(),
            "ad_click",
            "dev-1",
            "198.51.100.1",
            day + H,
            Some("good"),
        ),
        ev(
            next(),
            "ad_click",
            "dev-1",
            "198.51.100.1",
            day + 2 * H - 4_000,
            Some("inject"),
        ),
        ev(
            next(),
            "install",
            "dev-1",
            "198.51.100.1",
            day + 2 * H,
            None,
        ),
        // dev-2: a normal click-to-install time (1 h).
        ev(
            next(),
            "ad_click",
            "dev-2",
            "198.51.100.2",
            day + H,
            Some("inject"),
        ),
        ev(
            next(),
            "install",
            "dev-2",
            "198.51.100.2",
            day + 2 * H,
            None,
        ),
        // dev-3: install from a deny-listed IP after a "good" click from another address.
        ev(
            next(),
            "ad_click",
            "dev-3",
            "198.51.100.3",
            day + 3 * H,
            Some("good"),
        ),
        ev(next(), "install", "dev-3", "203.0.113.9", day + 4 * H, None),
    ];
    // dev-4: 60 clicks of "farm" in one day (over 50 per device), then an install.
    for i in 0..60 {
        let ip = format!("192.0.2.{}", i % 3 + 1);
        events.push(ev(
            next(),
            "ad_click",
            "dev-4",
            &ip,
            day + 5 * H + i * 1000,
            Some("farm"),
        ));
    }
    events.push(ev(
        next(),
        "install",
        "dev-4",
        "192.0.2.1",
        day + 6 * H,
        None,
    ));
    // 210 clicks from one IP spread over 70 devices (3 each): abnormal per IP, not per device.
    for i in 0..210 {
        let dev = format!("dev-bot-{}", i % 70);
        events.push(ev(
            next(),
            "ad_click",
            &dev,
            "192.0.2.200",
            day + 7 * H + i,
            Some("botnet"),
        ));
    }
    let a = n.post_json("/v1/events", &Value::Array(events));
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 278, "{}", a.body);

    let range = format!("app_id=shop&from={}&to={}", day, day + D);
    let r = n.get(&format!("/api/analytics/fraud?{range}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let f = &r.body;
    assert_eq!(f["rules"]["deny_ips"], json!(["203.0.113.0/24"]), "{f}");
    // inject: 2 clicks; the install of dev-1 followed its click by 4 s.
    let inject = row(f, "inject");
    assert_eq!(
        (inject["clicks"].as_u64(), inject["installs"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(inject["click_injection"], 1, "{f}");
    // good: the install of dev-3 came from a deny-listed IP.
    let good = row(f, "good");
    assert_eq!(good["installs"], 1, "{f}");
    assert_eq!(good["deny_listed_installs"], 1, "{f}");
    assert_eq!(good["click_injection"], 0, "{f}");
    // farm: 60 clicks of one device in a day.
    let farm = row(f, "farm");
    assert_eq!(farm["abnormal_device_clicks"], 60, "{f}");
    assert_eq!(farm["abnormal_ip_clicks"], 0, "{f}");
    assert_eq!(farm["flagged_click_rate"], 1.0, "{f}");
    // botnet: 210 clicks from one IP (over 200), 3 per device.
    let bot = row(f, "botnet");
    assert_eq!(bot["abnormal_ip_clicks"], 210, "{f}");
    assert_eq!(bot["abnormal_device_clicks"], 0, "{f}");
    assert_eq!(
        (f["flagged_devices"].as_u64(), f["flagged_ips"].as_u64()),
        (Some(1), Some(1))
    );

    // Thresholds per request: with 61 clicks per device allowed, farm is clean.
    let r = n.get(&format!(
        "/api/analytics/fraud?{range}&max_clicks_per_device=61&min_click_to_install=2s"
    ));
    assert_eq!(
        row(&r.body, "farm")["abnormal_device_clicks"],
        0,
        "{}",
        r.body
    );
    assert_eq!(row(&r.body, "inject")["click_injection"], 0, "{}", r.body);

    // Attribution: without exclusion "inject" wins dev-1's install and "good" dev-3's.
    let credit = |extra: &str| -> Value {
        let r = n.get(&format!(
            "/api/analytics/attribution?{range}&conversion=install{extra}"
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    };
    let by_source = |r: &Value, s: &str| -> f64 {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["source"] == s)
            .map(|x| x["conversions"].as_f64().unwrap())
            .sum()
    };
    let plain = credit("");
    assert_eq!(by_source(&plain, "inject"), 2.0, "{plain}");
    assert_eq!(by_source(&plain, "good"), 1.0, "{plain}");
    assert_eq!(by_source(&plain, "farm"), 1.0, "{plain}");
    assert!(plain.get("excluded_fraud").is_none());
    // With exclusion: dev-1's install goes to the honest click, dev-3's install is dropped,
    // dev-4's farm clicks are not eligible (organic).
    let clean = credit("&exclude_fraud=true");
    assert_eq!(by_source(&clean, "inject"), 1.0, "{clean}");
    assert_eq!(by_source(&clean, "good"), 1.0, "{clean}");
    assert_eq!(by_source(&clean, "farm"), 0.0, "{clean}");
    assert_eq!(clean["unattributed"]["conversions"], 1.0, "{clean}");
    assert_eq!(clean["excluded_fraud"]["conversions"], 1, "{clean}");
    assert_eq!(clean["total_conversions"], 3, "{clean}");

    // Errors and access.
    for bad in [
        "&deny_ips=not-an-ip",
        "&max_clicks_per_ip=0",
        "&max_clicks_per_device=many",
        "&min_click_to_install=soon",
        "&exclude_fraud=maybe",
    ] {
        let r = n.get(&format!("/api/analytics/fraud?{range}{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body["error"]["message"].is_string(), "{}", r.body);
    }
    n.app_key("other");
    let r = n.get("/api/analytics/fraud?app_id=nope");
    assert_eq!(r.status, 404, "{}", r.body);
}
