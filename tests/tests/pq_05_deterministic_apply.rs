//! TESTPLAN PQ-05 `deterministic_apply`: events whose `event_data` fields change type from
//! event to event (int → string → object → array → null), keys with dots and non-ASCII
//! letters, long strings and nulls everywhere optional, sent to a 3-node cluster. Every
//! replica holds identical rows (all columns, event_data included), before and after a node
//! replays its log from scratch after a restart; nothing panics, nothing is skipped.

use std::time::Duration;

use serde_json::{json, Value};
use unmogrowp_tests::cluster::TestCluster;
use unmogrowp_tests::TestNode;

fn awkward_events() -> Vec<Value> {
    let long = "ž".repeat(500); // 1000 bytes: the default max_string_bytes
    let values = [
        json!(1),
        json!("one"),
        json!({"nested": {"deeper": 2.5}}),
        json!([1, "two", null]),
        json!(null),
        json!(true),
        json!(-0.0),
        json!(1e300),
        json!(long),
        json!(""),
    ];
    let keys = [
        "price",
        "a.b",
        "a",
        "Größe",
        "名前",
        "emoji😀",
        "$dollar",
        "sp ace",
        "x.y.z",
        "price",
    ];
    let mut out = Vec::new();
    for i in 0..200u64 {
        let k = keys[i as usize % keys.len()];
        let v = values[(i as usize * 7) % values.len()].clone();
        let mut data = serde_json::Map::new();
        data.insert(k.to_string(), v.clone());
        data.insert(format!("{k}.{i}"), json!(i));
        let mut e = json!({
            "event_id": format!("00000000-0000-4000-8000-{:012}", i),
            "event_type": if i % 3 == 0 { "purchase" } else { "open" },
            "device_id": format!("d{i}"),
            "platform": if i % 2 == 0 { "ios" } else { "web" },
            "timestamp": 1_765_000_000_000i64 + i as i64 * 1000,
            "event_data": data,
        });
        if i % 4 == 0 {
            e["user_id"] = Value::Null;
            e["session_id"] = Value::Null;
        }
        if i % 5 == 0 {
            e["revenue"] = json!(i as f64 / 3.0);
            e["currency"] = json!("EUR");
        }
        if i % 11 == 0 {
            e["unknown_top_level"] = v;
        }
        out.push(e);
    }
    out
}

fn snapshot(node: &TestNode) -> Vec<Vec<Value>> {
    node.sql(
        "SELECT event_id, event_type, user_id, session_id, device_id, platform, revenue, currency, \
         timestamp, event_data FROM events ORDER BY event_id",
    )
}

#[test]
fn awkward_events_apply_identically_on_every_replica_and_after_replay() {
    let mut c = TestCluster::new(3, &[("UNMOGROWP_ENGINE__FLUSH_ROWS", "50")]);
    c.start();
    c.create_app("app1");
    let (leader, _) = c.wait_leader(Duration::from_secs(30));
    let events = awkward_events();
    for chunk in events.chunks(20) {
        let body = serde_json::to_vec(chunk).unwrap();
        let a = c.nodes[leader]
            .try_post("/v1/events", &[("content-type", "application/json")], &body)
            .unwrap();
        assert_eq!(a.status, 202, "{}", a.body);
        assert!(
            a.body["rejected"].as_array().unwrap().is_empty(),
            "{}",
            a.body
        );
    }
    c.wait_converged(Duration::from_secs(60));
    let first = snapshot(&c.nodes[0]);
    assert_eq!(first.len(), events.len());
    let text = serde_json::to_string(&first).unwrap();
    for stored in [
        "Größe",
        "名前",
        "nested.deeper",
        "emoji😀",
        "$unknown_top_level",
        "[1,\\\"two\\\",null]",
    ] {
        assert!(
            text.contains(stored),
            "{stored:?} not stored: {}",
            &text[..2000.min(text.len())]
        );
    }
    for i in 1..3 {
        assert_eq!(snapshot(&c.nodes[i]), first, "node {} differs", i + 1);
    }
    // A follower replays its whole log into an empty table: the same rows again.
    let f = (leader + 1) % 3;
    c.nodes[f].kill9();
    std::fs::remove_dir_all(c.nodes[f].data_dir.join("table")).unwrap();
    c.nodes[f].spawn();
    c.nodes[f].wait_ready(Duration::from_secs(60));
    c.wait_converged(Duration::from_secs(60));
    assert_eq!(
        snapshot(&c.nodes[f]),
        first,
        "node {} differs after replay",
        f + 1
    );
}
