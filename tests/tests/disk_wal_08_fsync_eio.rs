//! TESTPLAN WAL-08 on a running node: EIO on the log's fsync. The node stops accepting writes
//! and says why (503 `unavailable` naming the error, `/ready` 503 with the same reason); the
//! fsync is never retried (the one-shot fault is gone, yet writes keep failing until a
//! restart); nothing acknowledged is lost after the restart, and the failed batch was never
//! acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use unmogrowp_tests::{event_uuid, TestNode};

/// Posts events `seq..seq+n` of client 1; returns the status and the body.
fn post(node: &TestNode, seq: u64, n: u64) -> (u16, Value) {
    match node.post_events("shop", 1, seq, n) {
        Ok(a) => (a.status, a.body),
        Err(e) => (0, Value::String(e)),
    }
}

#[test]
fn eio_on_fsync_stops_writes_with_a_reason_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::new(dir.path().join("n"), &[]);
    node.enable_disk_faults();
    node.start();
    let mut acked = BTreeSet::new();
    let mut seq = 0;
    for _ in 0..20 {
        let (status, body) = post(&node, seq, 25);
        assert_eq!(status, 202, "{body}");
        acked.extend((seq..seq + 25).map(|s| event_uuid(1, s)));
        seq += 25;
    }
    assert!(node.disk_script("fail fsync eio path=/log/"));
    let (status, body) = post(&node, seq, 25);
    let failed: BTreeSet<String> = (seq..seq + 25).map(|s| event_uuid(1, s)).collect();
    seq += 25;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let msg = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("Input/output error"),
        "the answer does not say why: {msg}"
    );
    // Never retried: the fault was for one fsync only, yet the log stays stopped.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(100));
        let (status, body) = post(&node, seq, 5);
        seq += 5;
        assert_eq!(
            status, 503,
            "a write succeeded after a failed fsync: {body}"
        );
    }
    let ready = node.try_get("/ready").unwrap();
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Input/output error"),
        "/ready does not say why: {}",
        ready.body
    );
    assert_eq!(
        node.log_tail().matches("log write failed").count(),
        1,
        "the failed write was reported more than once (retried?)"
    );
    // Restart on a healthy disk: everything acknowledged is there once; the failed batch was
    // never acknowledged and is gone (its fsync failed) or there once.
    node.kill9();
    node.disable_disk_faults();
    node.start();
    let stored = node.stored_event_ids();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    let extra: Vec<_> = stored
        .difference(&acked)
        .filter(|id| !failed.contains(*id))
        .collect();
    assert!(
        extra.is_empty(),
        "events that were never sent or refused: {extra:?}"
    );
    let (status, body) = post(&node, seq, 10);
    assert_eq!(status, 202, "{body}");
}
