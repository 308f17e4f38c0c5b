//! TESTPLAN PQ-06 `read_gap_during_flush`: while ingest keeps the memtable rotating and
//! flushing to Parquet (and compaction merging), successive reads never see the count go down
//! (no window where rows are neither in memory nor in a listed segment).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use unmogrowp_tests::{event, TestNode};

#[test]
fn counts_never_decrease_while_the_memtable_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::new(
        dir.path().join("n"),
        &[
            ("UNMOGROWP_ENGINE__FLUSH_ROWS", "500"),
            ("UNMOGROWP_ENGINE__COMPACTION_MIN_SEGMENTS", "4"),
            ("UNMOGROWP_ENGINE__COMPACTION_INTERVAL_SECS", "1"),
        ],
    );
    node.start();
    let key = node.app_key("app1");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let base = node.base();
        std::thread::spawn(move || {
            let agent = ureq::agent();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<Value> = (seq..seq + 50)
                    .map(|s| event("app1", 3, s, 1_765_000_000_000 + s as i64 * 997))
                    .collect();
                seq += 50;
                let r = agent
                    .post(&format!("{base}/v1/events"))
                    .set("x-api-key", &key)
                    .send_json(Value::Array(events));
                assert!(r.is_ok_and(|r| r.status() == 202), "ingest failed");
            }
            seq
        })
    };
    let t0 = Instant::now();
    let (mut last, mut reads) = (0u64, 0u64);
    while t0.elapsed() < Duration::from_secs(15) {
        let n = node.count("SELECT count(*) FROM events");
        assert!(
            n >= last,
            "read {reads}: count went down from {last} to {n}"
        );
        last = n;
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().unwrap();
    let flushes = node.metric("unmogrowp_engine_flushes_total").unwrap_or(0.0);
    assert!(
        flushes >= 5.0,
        "only {flushes} flushes happened: the test did not test flushing"
    );
    assert_eq!(node.count("SELECT count(*) FROM events"), sent);
    eprintln!(
        "PQ-06: {reads} reads during {flushes} flushes, counts never decreased; {sent} events"
    );
}
