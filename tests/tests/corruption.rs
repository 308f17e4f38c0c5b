//! Damaged files on a real node: a damaged log makes the process refuse to start with an
//! error naming the file; a damaged Parquet segment is found by the background scrub and
//! refused to every query, reported by `/ready` and `/metrics` (or, with
//! `engine.verify_segments_on_open`, refuses the start) — never silently serving less data
//! (TESTPLAN WAL-05, WAL-06, P5).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use unmogrowp_tests::{event, TestNode};

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn ingest_some(n: &TestNode, rounds: u64) {
    for r in 0..rounds {
        let evs: Vec<Value> = (0..50)
            .map(|s| event("app", r, s, 1_763_000_000_000))
            .collect();
        assert_eq!(n.post_json("/v1/events", &Value::Array(evs)).status, 202);
    }
}

fn refuses(node: &mut TestNode, needle: &str) {
    node.spawn();
    let st = node
        .wait_exit(Duration::from_secs(60))
        .expect("node must refuse to start");
    assert!(!st.success());
    let log = node.log_tail();
    assert!(
        log.contains(needle),
        "log should mention {needle:?}:\n{log}"
    );
}

#[test]
fn missing_newest_log_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut node = TestNode::new(&data, &[("UNMOGROWP_WAL__SEGMENT_BYTES", "65536")]);
    node.start();
    ingest_some(&node, 20);
    // The committed index is persisted at most once a second: after the pause, the next entry's
    // commit persists it, so the newest segment (which holds that entry, wherever the
    // segments happen to roll over) holds a committed entry. Later entries could sit in a
    // newer segment above the persisted index, so nothing more is written.
    std::thread::sleep(Duration::from_millis(1200));
    ingest_some(&node, 1);
    node.kill9();
    let segs = wal_segments(&data);
    assert!(segs.len() > 1, "expected several segments, got {segs:?}");
    std::fs::remove_file(segs.last().unwrap()).unwrap();
    refuses(&mut node, "committed");
}

#[test]
fn bit_flip_in_sealed_log_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut node = TestNode::new(&data, &[("UNMOGROWP_WAL__SEGMENT_BYTES", "65536")]);
    node.start();
    ingest_some(&node, 20);
    node.kill9();
    let segs = wal_segments(&data);
    let victim = &segs[0];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[200] ^= 0x04;
    std::fs::write(victim, &bytes).unwrap();
    refuses(&mut node, "corrupt log segment");
}

#[test]
fn damaged_parquet_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut node = TestNode::new(
        &data,
        &[
            ("UNMOGROWP_ENGINE__FLUSH_ROWS", "100"),
            ("UNMOGROWP_ENGINE__FLUSH_INTERVAL_SECS", "1"),
        ],
    );
    node.start();
    ingest_some(&node, 4);
    // Wait for the background flush to list a segment.
    let t0 = std::time::Instant::now();
    loop {
        let m = node.get("/metrics").body.as_str().unwrap().to_string();
        if m.lines()
            .any(|l| l.starts_with("unmogrowp_engine_segments ") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no flush happened");
        std::thread::sleep(Duration::from_millis(100));
    }
    node.kill9();
    let mut files = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p)
            }
        }
    }
    walk(&data.join("table"), &mut files);
    let victim = &files[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();

    // The open does not read every segment (that took 28 s at 500M events): the node starts,
    // its background scrub finds the damage and reports it; reads of the segment fail.
    node.spawn();
    node.wait_healthy(Duration::from_secs(60));
    let t0 = std::time::Instant::now();
    let detail = loop {
        let r = node.try_get("/ready").expect("/ready answers");
        if r.status == 503 && r.body["detail"].as_str().unwrap_or("").contains("damaged") {
            break r.body["detail"].as_str().unwrap().to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "/ready never reported the damaged segment: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        detail.contains(&name) && detail.contains("checksum"),
        "{detail}"
    );
    let metrics = node.get("/metrics").body.as_str().unwrap().to_string();
    assert!(
        metrics
            .lines()
            .any(|l| l == "unmogrowp_engine_segments_damaged 1"),
        "{metrics}"
    );
    // A query that reads the segment fails, naming it; it is not answered without its rows
    // (a bare `count()` is answered from the rollups and reads no segment).
    let q = node.post_json(
        "/api/analytics/query",
        &serde_json::json!({"sql": "SELECT max(event_id) FROM events"}),
    );
    assert_eq!(q.status, 500, "{}", q.body);
    assert_eq!(q.body["error"]["code"], "storage_error", "{}", q.body);
    let msg = q.body["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains(&name) && msg.contains("checksum"), "{msg}");
    assert!(node.log_text().contains("segment damaged"));
    node.kill9();

    // The strict open (every segment checked before serving) refuses to start.
    let mut strict = TestNode::new(
        &data,
        &[("UNMOGROWP_ENGINE__VERIFY_SEGMENTS_ON_OPEN", "true")],
    );
    refuses(&mut strict, "checksum");
}
