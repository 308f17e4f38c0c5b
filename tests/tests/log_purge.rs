//! The log is purged below snapshots while ingesting, stays bounded, and nothing is lost when
//! the node is killed after purging (replay starts from the flushed state).

use std::time::{Duration, Instant};

use serde_json::Value;
use unmogrowp_tests::{event, TestNode};

fn scrape(node: &TestNode) -> String {
    node.get("/metrics")
        .body
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn metric_in(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

fn metric(node: &TestNode, name: &str) -> f64 {
    metric_in(&scrape(node), name)
}

#[test]
fn log_is_purged_below_snapshots_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[
            ("UNMOGROWP_WAL__SEGMENT_BYTES", "65536"),
            ("UNMOGROWP_RAFT__SNAPSHOT_LOG_BYTES", "400000"),
            ("UNMOGROWP_RAFT__KEEP_AFTER_SNAPSHOT", "5"),
            ("UNMOGROWP_QUERY__MAX_RESULT_ROWS", "1000000"),
        ],
    );
    node.start();
    // --- phase: ingest well past the snapshot threshold, in several rounds
    let mut sent = 0u64;
    let t0 = Instant::now();
    loop {
        for _ in 0..20 {
            let evs: Vec<Value> = (sent..sent + 50)
                .map(|s| event("app", 3, s, 1_763_000_000_000 + s as i64))
                .collect();
            assert_eq!(node.post_json("/v1/events", &Value::Array(evs)).status, 202);
            sent += 50;
        }
        if metric(&node, "unmogrowp_raft_purged_index") > 0.0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the log was never purged"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // --- phase: the log stays bounded while ingest continues
    for _ in 0..30 {
        let evs: Vec<Value> = (sent..sent + 50)
            .map(|s| event("app", 3, s, 1_763_000_000_000 + s as i64))
            .collect();
        assert_eq!(node.post_json("/v1/events", &Value::Array(evs)).status, 202);
        sent += 50;
    }
    std::thread::sleep(Duration::from_millis(2500));
    // One scrape: /metrics reads the purge point before the flushed index, which only grows.
    let text = scrape(&node);
    let log_bytes = metric_in(&text, "unmogrowp_wal_disk_bytes");
    let flushed = metric_in(&text, "unmogrowp_engine_flushed_index");
    let purged = metric_in(&text, "unmogrowp_raft_purged_index");
    assert!(
        purged <= flushed,
        "purged {purged} beyond the flushed index {flushed}"
    );
    assert!(
        log_bytes < 3.0 * 400_000.0,
        "log not bounded: {log_bytes} bytes"
    );
    // --- phase: kill -9 after purging; everything is still there
    node.kill9();
    node.start();
    assert_eq!(
        node.count("SELECT count(DISTINCT event_id) FROM events"),
        sent
    );
    assert_eq!(node.count("SELECT count(*) FROM events"), sent);
}
