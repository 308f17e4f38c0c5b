//! kill -9 the server while several clients ingest with event ids, 20 times; after each restart
//! every acknowledged event is queryable exactly once, and unacknowledged ones are absent or
//! present once. The last stop is a SIGTERM (graceful shutdown loses nothing either).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use unmogrowp_tests::{event, event_uuid, TestNode};

const CLIENTS: u64 = 4;
const BATCH: u64 = 25;
const KILL_POINTS: usize = 20;

#[derive(Default)]
struct Ledger {
    acked: HashSet<String>,
    /// Sent but the outcome is unknown (connection cut by the kill).
    unknown: HashSet<String>,
}

/// Each client writes to one app (an API key belongs to one app); clients alternate apps.
fn client_app(client: u64) -> &'static str {
    if client % 2 == 0 {
        "shop"
    } else {
        "game"
    }
}

fn client_loop(
    port: Arc<AtomicU64>,
    key: String,
    client: u64,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
    seq: Arc<AtomicU64>,
) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let base_ts = 1_763_000_000_000i64;
    while !stop.load(Ordering::Relaxed) {
        let first = seq.fetch_add(BATCH, Ordering::Relaxed);
        let events: Vec<Value> = (first..first + BATCH)
            .map(|s| event(client_app(client), client, s, base_ts + s as i64 * 1000))
            .collect();
        let ids: Vec<String> = (first..first + BATCH)
            .map(|s| event_uuid(client, s))
            .collect();
        let url = format!(
            "http://127.0.0.1:{}/v1/events",
            port.load(Ordering::Relaxed)
        );
        let res = agent
            .post(&url)
            .set("x-api-key", &key)
            .send_json(Value::Array(events));
        let mut l = ledger.lock().unwrap();
        match res {
            Ok(r) if r.status() == 202 => {
                let body: Value = r.into_json().unwrap();
                assert_eq!(
                    body["accepted"].as_u64().unwrap() + body["duplicates"].as_u64().unwrap(),
                    BATCH,
                    "{body}"
                );
                l.acked.extend(ids);
            }
            Ok(r) => panic!("unexpected status {}", r.status()),
            // 503 is "not acknowledged": the entry may or may not have been committed.
            Err(ureq::Error::Status(503, _)) => l.unknown.extend(ids),
            Err(ureq::Error::Status(code, r)) => panic!("unexpected {code}: {:?}", r.into_string()),
            Err(_) => {
                l.unknown.extend(ids);
                drop(l);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn check(node: &TestNode, ledger: &Ledger) -> (usize, usize) {
    let rows = node.sql("SELECT event_id, count(*) AS n FROM events GROUP BY event_id");
    let mut present = HashSet::new();
    for r in &rows {
        let id = r[0].as_str().expect("event_id").to_string();
        assert_eq!(r[1].as_u64(), Some(1), "event {id} stored {} times", r[1]);
        present.insert(id);
    }
    let lost: Vec<_> = ledger.acked.difference(&present).take(5).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {lost:?}",
        ledger.acked.difference(&present).count()
    );
    let phantoms: Vec<_> = present
        .iter()
        .filter(|id| !ledger.acked.contains(*id) && !ledger.unknown.contains(*id))
        .take(5)
        .collect();
    assert!(phantoms.is_empty(), "phantom events {phantoms:?}");
    let total = node.count("SELECT count(*) FROM events") as usize;
    assert_eq!(total, present.len(), "rows != distinct event ids");
    (present.len(), ledger.unknown.intersection(&present).count())
}

#[test]
fn kill9_under_concurrent_ingest_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[
            // Small memtables so kills land before, during and after Parquet flushes.
            ("UNMOGROWP_ENGINE__FLUSH_ROWS", "3000"),
            ("UNMOGROWP_ENGINE__FLUSH_INTERVAL_SECS", "1"),
            ("UNMOGROWP_QUERY__MAX_RESULT_ROWS", "10000000"),
        ],
    );
    node.start();
    let port = Arc::new(AtomicU64::new(node.port as u64));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::thread_rng();
    let seqs: Vec<Arc<AtomicU64>> = (0..CLIENTS).map(|_| Arc::new(AtomicU64::new(0))).collect();

    for round in 0..KILL_POINTS {
        // --- phase: concurrent ingest
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (p, s, l, q) = (
                    port.clone(),
                    stop.clone(),
                    ledger.clone(),
                    seqs[c as usize].clone(),
                );
                let key = node.app_key(client_app(c));
                std::thread::spawn(move || client_loop(p, key, c, s, l, q))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..1200)));
        // --- phase: crash (the last round stops gracefully instead)
        if round + 1 == KILL_POINTS {
            let st = node.terminate();
            assert!(st.success(), "graceful shutdown failed: {st}");
        } else {
            node.kill9();
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().expect("client thread");
        }
        // --- phase: restart and verify
        node.start();
        let l = ledger.lock().unwrap();
        let (present, unknown_present) = check(&node, &l);
        eprintln!(
            "round {round}: acked {} unknown {} (present {unknown_present}) stored {present}",
            l.acked.len(),
            l.unknown.len()
        );
    }

    // --- phase: retries of acknowledged batches are answered as duplicates and stored once
    let l = ledger.lock().unwrap();
    let retry: Vec<Value> = (0..BATCH)
        .map(|s| event(client_app(0), 0, s, 1_763_000_000_000 + s as i64 * 1000))
        .collect();
    assert!(l.acked.contains(&event_uuid(0, 0)));
    let a = node.post_json("/v1/events", &Value::Array(retry));
    assert_eq!(a.status, 202);
    assert_eq!(a.body["duplicates"].as_u64(), Some(BATCH), "{}", a.body);
    assert_eq!(a.body["accepted"].as_u64(), Some(0));
    check(&node, &l);
    assert!(
        l.acked.len() > 1000,
        "too little was acknowledged to mean anything: {}",
        l.acked.len()
    );
}
