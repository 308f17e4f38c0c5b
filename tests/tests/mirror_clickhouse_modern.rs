//! The ClickHouse mirror's modern schema (the seed's `events`: `DateTime64(3)`, `Map`, MergeTree
//! by month) on the current ClickHouse engine (PyPI `chdb` behind a loopback HTTP receiver that
//! hands each statement over unchanged): events of two months and events without an
//! `event_id` arrive once; the deduplication settings the mirror relies on really drop a
//! re-sent insert (with a negative control: without the token the same insert doubles); a
//! replay from the beginning and a kill -9 of the node leave no duplicate visible to `count()`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::peers::ChdbHttp;
use unmogrowp_tests::{event, TestNode};

fn mirror(node: &TestNode) -> Value {
    node.get("/api/admin/mirrors").body[0].clone()
}

fn wait_caught_up(node: &TestNode, sent: u64) {
    let t0 = Instant::now();
    loop {
        let m = mirror(node);
        if m["lag_events"] == 0
            && m["sent_events"].as_u64() >= Some(sent)
            && m["state"] == "running"
        {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "{m}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn modern_schema_on_current_clickhouse_keeps_every_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ch = ChdbHttp::start(dir.path());
    let env = format!(
        r#"[{{name = "ch", kind = "clickhouse", url = "{}", batch_events = 300}}]"#,
        ch.url("analytics")
    );
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_MIRROR", env.as_str())],
    );
    node.start();
    node.app_key("shop");
    // 1,000 events over two months, plus two identical events without an event_id.
    for chunk in 0..10u64 {
        let events: Vec<Value> = (0..100u64)
            .map(|i| {
                let s = chunk * 100 + i;
                let month = if s % 2 == 0 { 0 } else { 31 * 86_400_000 };
                event("shop", 7, s, 1_764_547_200_000 + month + s as i64)
            })
            .collect();
        let a = node
            .try_post(
                "/v1/events",
                &[("content-type", "application/json")],
                &serde_json::to_vec(&events).expect("json"),
            )
            .expect("ingest");
        assert_eq!(a.status, 202, "{}", a.body);
    }
    let anon = json!({"app_id": "shop", "event_type": "open", "device_id": "d", "platform": "web",
        "timestamp": "2025-12-01T10:00:00Z", "event_data": {"revenue": "2.5"}});
    let a = node
        .try_post(
            "/v1/events",
            &[("content-type", "application/json")],
            json!([anon, anon]).to_string().as_bytes(),
        )
        .expect("ingest");
    assert_eq!(a.status, 202, "{}", a.body);
    wait_caught_up(&node, 1002);

    let types = ch.query("SELECT name, type FROM system.columns WHERE database = 'analytics' AND table = 'events' AND name IN ('timestamp', 'event_data') ORDER BY name FORMAT TabSeparated");
    assert_eq!(
        types,
        "event_data\tMap(String, String)\ntimestamp\tDateTime64(3, \\'UTC\\')\n"
    );
    let counts = || {
        ch.query("SELECT count(), uniqExact(app_id, event_id), uniqExact(toYYYYMM(timestamp)) FROM events WHERE app_id = 'shop'")
    };
    assert_eq!(counts(), "1002\t1002\t2\n");
    assert_eq!(ch.query("SELECT sum(toFloat64OrZero(event_data['revenue'])) FROM events WHERE device_id = 'd' AND app_id = 'shop'").trim(), "5");

    // What the mirror relies on, on this engine: an insert re-sent with the same token is kept
    // once, and so is an identical block without a token (the table's deduplication window).
    let rows = r#"{"timestamp":"2025-12-02 00:00:00.000","app_id":"control","event_type":"x","user_id":"","session_id":"","device_id":"d","platform":"web","attribution":{},"event_data":{},"ip":"","user_agent":"","event_id":"c1","log_index":1}
{"timestamp":"2025-12-02 00:00:00.000","app_id":"control","event_type":"x","user_id":"","session_id":"","device_id":"d","platform":"web","attribution":{},"event_data":{},"ip":"","user_agent":"","event_id":"c2","log_index":1}
"#;
    let control = || ch.query("SELECT count() FROM events WHERE app_id = 'control'");
    ch.insert("events", rows, "insert_deduplication_token=control-token");
    ch.insert("events", rows, "insert_deduplication_token=control-token");
    assert_eq!(control().trim(), "2");
    ch.insert("events", rows, "");
    ch.insert("events", rows, "");
    assert_eq!(
        control().trim(),
        "4",
        "an identical block without a token is kept once"
    );
    // Negative control: the same rows under another token are a new insert, so duplicates do
    // get in and count() shows them (which is why a batch that may have been sent is first
    // checked against the table).
    ch.insert("events", rows, "insert_deduplication_token=another-token");
    assert_eq!(
        ch.query("SELECT count(), uniqExact(event_id) FROM events WHERE app_id = 'control'"),
        "6\t2\n",
        "negative control"
    );

    // A replay from the beginning re-sends everything; nothing doubles.
    let a = node.post_json(
        "/api/admin/mirrors/ch/replay",
        &json!({"from_log_index": 1}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    wait_caught_up(&node, 2004);
    assert_eq!(counts(), "1002\t1002\t2\n");

    // kill -9 while batches are in flight, more events after the restart.
    for s in 0..5u64 {
        let _ = node.post_events("shop", 8, s * 100, 100);
    }
    node.kill9();
    node.start();
    for s in 5..10u64 {
        let a = node.post_events("shop", 8, s * 100, 100).expect("ingest");
        assert_eq!(a.status, 202, "{}", a.body);
    }
    let stored = node.count("SELECT count(*) FROM events");
    let t0 = Instant::now();
    while mirror(&node)["lag_events"] != 0 {
        assert!(t0.elapsed() < Duration::from_secs(90), "{}", mirror(&node));
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        ch.query("SELECT count(), uniqExact(app_id, event_id) FROM events WHERE app_id = 'shop'"),
        format!("{stored}\t{stored}\n")
    );
}
