//! The HTTP contract of the spine against a running server: ingest shapes and errors, dedupe,
//! read-your-writes, query answers and errors, ops endpoints.

use std::io::Write;

use serde_json::{json, Value};
use unmogrowp_tests::{event, event_uuid, TestNode};

fn node() -> (tempfile::TempDir, TestNode) {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_INGEST__MAX_BODY_BYTES", "200000")],
    );
    n.start();
    (dir, n)
}

fn post(n: &TestNode, headers: &[(&str, &str)], body: &[u8]) -> unmogrowp_tests::Answer {
    n.try_post("/v1/events", headers, body).unwrap()
}

#[test]
fn ingest_shapes_errors_dedupe_and_visibility() {
    let (_d, n) = node();
    let ts = 1_763_000_000_000i64;

    // --- phase: one object, an array, NDJSON, gzip
    let a = n.post_json("/v1/events", &event("app1", 1, 1, ts));
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (202, Some(1)),
        "{}",
        a.body
    );
    assert_eq!(a.body["rejected"], json!([]));
    // Visible as soon as the 202 is sent.
    assert_eq!(n.count("SELECT count(*) FROM events"), 1);

    let arr: Vec<Value> = (2..12).map(|s| event("app1", 1, s, ts)).collect();
    let a = n.post_json("/v1/events", &Value::Array(arr));
    assert_eq!(a.body["accepted"].as_u64(), Some(10));

    let nd: String = (12..15)
        .map(|s| event("app1", 1, s, ts).to_string() + "\n")
        .collect();
    let a = post(
        &n,
        &[("content-type", "application/x-ndjson")],
        nd.as_bytes(),
    );
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (202, Some(3)),
        "{}",
        a.body
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(
        Value::Array((15..20).map(|s| event("app1", 1, s, ts)).collect())
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let a = post(
        &n,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &gz.finish().unwrap(),
    );
    assert_eq!(
        (a.status, a.body["accepted"].as_u64()),
        (202, Some(5)),
        "{}",
        a.body
    );
    assert_eq!(n.count("SELECT count(*) FROM events"), 19);

    // --- phase: partial rejection names index and field
    let mut bad = event("app1", 1, 100, ts);
    bad["platform"] = json!("toaster oven!");
    let a = n.post_json(
        "/v1/events",
        &json!([event("app1", 1, 101, ts), bad, {"event_type": "x"}]),
    );
    assert_eq!(a.status, 202);
    assert_eq!(a.body["accepted"].as_u64(), Some(1));
    let rej = a.body["rejected"].as_array().unwrap();
    assert_eq!(rej.len(), 2);
    assert_eq!(rej[0]["index"], 1);
    assert!(
        rej[0]["error"].as_str().unwrap().starts_with("platform"),
        "{}",
        rej[0]
    );
    assert_eq!(rej[1]["index"], 2);

    // --- phase: nothing valid → 400 in the same shape
    let a = n.post_json("/v1/events", &json!([{"event_type": "x"}]));
    assert_eq!(a.status, 400);
    assert_eq!(a.body["accepted"].as_u64(), Some(0));
    assert_eq!(a.body["rejected"][0]["index"], 0);

    // --- phase: malformed JSON, oversize body, bad gzip, wrong shape → JSON errors
    let a = post(
        &n,
        &[("content-type", "application/json")],
        b"{\"event_type\": ",
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["code"], "malformed_json", "{}", a.body);
    let huge = vec![b' '; 300_000];
    let a = post(&n, &[("content-type", "application/json")], &huge);
    assert_eq!(a.status, 413);
    assert_eq!(a.body["error"]["code"], "body_too_large");
    let a = post(&n, &[("content-encoding", "gzip")], b"not gzip");
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["code"], "malformed_gzip");
    let a = post(&n, &[], b"42");
    assert_eq!(a.status, 400);
    assert!(a.body["error"]["message"].as_str().is_some());

    // --- phase: retry with the same event ids → duplicates, stored once
    let a = n.post_json(
        "/v1/events",
        &Value::Array((2..12).map(|s| event("app1", 1, s, ts)).collect()),
    );
    assert_eq!(
        (a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()),
        (Some(0), Some(10))
    );
    // Same event id under another app is a different event.
    let a = n.post_json("/v1/events", &event("app2", 1, 2, ts));
    assert_eq!(a.body["accepted"].as_u64(), Some(1));
    // Duplicates inside one batch count once.
    let e = event("app1", 9, 1, ts);
    let a = n.post_json("/v1/events", &json!([e.clone(), e]));
    assert_eq!(
        (a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        n.count(&format!(
            "SELECT count(*) FROM events WHERE event_id = '{}'",
            event_uuid(9, 1)
        )),
        1
    );
}

#[test]
fn query_answers_and_errors() {
    let (_d, n) = node();
    let ts = 1_763_000_000_000i64;
    // One request per app: an API key belongs to one app.
    let a: Vec<Value> = (0..30).map(|s| event("a", 1, s, ts + s as i64)).collect();
    let b: Vec<Value> = (30..50).map(|s| event("b", 1, s, ts + s as i64)).collect();
    assert_eq!(n.post_json("/v1/events", &Value::Array(a)).status, 202);
    assert_eq!(n.post_json("/v1/events", &Value::Array(b)).status, 202);

    let a = n.post_json("/api/analytics/query", &json!({"sql": "SELECT app_id, count(*) AS n, sum(revenue) AS r FROM events GROUP BY app_id ORDER BY app_id"}));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["columns"][0],
        json!({"name": "app_id", "type": "Utf8"})
    );
    assert_eq!(a.body["columns"][1]["name"], "n");
    assert_eq!(a.body["row_count"], 2);
    assert_eq!(a.body["rows"][0][0], "a");
    assert_eq!(a.body["rows"][0][1], 30);
    assert!(a.body["elapsed_ms"].as_f64().is_some());

    // Map access and timestamps render.
    let rows = n.sql("SELECT event_data['currency'], timestamp FROM events WHERE event_type = 'purchase' LIMIT 1");
    assert_eq!(rows[0][0], "USD");
    assert!(rows[0][1].as_str().unwrap().starts_with("2025-11-"));

    // ClickHouse functions work over HTTP (docs/sql.md; golden tests in query/tests/golden).
    let rows = n.sql(
        "SELECT count() AS n, uniq(app_id) AS apps, countIf(app_id = 'b') AS b, \
         toYYYYMM(timestamp) AS m FROM events WHERE created_at >= today() - 3650 GROUP BY m",
    );
    assert_eq!(
        rows,
        vec![vec![json!(50), json!(2), json!(20), json!(202511)]]
    );

    for bad in [
        "SELEC 1",
        "SELECT histogram(5)(revenue) FROM events",
        "SELECT nope FROM events",
        "SELECT * FROM nowhere",
        "",
    ] {
        let a = n.post_json("/api/analytics/query", &json!({"sql": bad}));
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
        assert!(
            a.body["error"]["code"].is_string() && a.body["error"]["message"].is_string(),
            "{}",
            a.body
        );
    }
    // Statements that would change state or touch files are refused at planning time.
    for bad in [
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SET datafusion.execution.batch_size = 1",
        "INSERT INTO events SELECT * FROM events",
        "SELECT * FROM '/etc/passwd'",
    ] {
        let a = n.post_json("/api/analytics/query", &json!({"sql": bad}));
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }
    let a = n
        .try_post("/api/analytics/query", &[], b"not json")
        .unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["code"], "invalid_request");
}

#[test]
fn ops_endpoints() {
    let (_d, n) = node();
    assert_eq!(n.get("/health").body["status"], "ok");
    assert_eq!(n.get("/").body["endpoints"]["ingest"], "POST /v1/events");
    assert_eq!(n.get("/ready").status, 200);
    let a = n.get("/no/such/route");
    assert_eq!(a.status, 404);
    assert_eq!(a.body["error"]["code"], "not_found");
    n.post_json("/v1/events", &event("app1", 1, 1, 1_763_000_000_000));
    let m = n.get("/metrics");
    let text = m.body.as_str().unwrap();
    for name in [
        "unmogrowp_ingest_events_total{outcome=\"accepted\"} 1",
        "unmogrowp_wal_fsyncs_total",
        "unmogrowp_wal_fsync_duration_seconds{quantile=\"0.99\"}",
        "unmogrowp_http_request_duration_seconds{route=\"/v1/events\",quantile=\"0.5\"}",
        "unmogrowp_raft_last_log_index",
        "unmogrowp_raft_applied_index",
        "unmogrowp_engine_segments",
        "unmogrowp_http_requests_total{route=\"/v1/events\",status=\"202\"} 1",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
    // Free and total space of the data directory's file system, for a disk-full alert.
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metrics lack {name}:\n{text}"))
    };
    let (free, size) = (
        gauge("unmogrowp_data_dir_available_bytes"),
        gauge("unmogrowp_data_dir_size_bytes"),
    );
    assert!(free > 0.0 && free <= size, "free {free} of {size}");
    // The engine's state against engine.memory_budget_mb (default: a quarter of RAM), by part.
    let budget = gauge("unmogrowp_engine_memory_budget_bytes");
    assert!(budget > 0.0, "{budget}");
    for part in [
        "rollups",
        "user_dictionary",
        "dedupe_keys",
        "dedupe_filters",
        "funnel_steps",
    ] {
        gauge(&format!("unmogrowp_engine_memory_bytes{{part=\"{part}\"}}"));
    }
    gauge("unmogrowp_engine_memory_bytes{part=\"other\"}");
    assert_eq!(gauge("unmogrowp_engine_memory_over_budget_bytes"), 0.0);
    // The budget bounds the process: from the second housekeeping tick on, the rest of it
    // (memtable, caches, allocator) is counted too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let other = loop {
        let m = n.get("/metrics");
        let v: f64 = m
            .body
            .as_str()
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("unmogrowp_engine_memory_bytes{part=\"other\"} ")?
                    .parse()
                    .ok()
            })
            .expect("part=other");
        if v > 0.0 || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(other > 1e6 && other < budget, "other {other} of {budget}");
}

#[test]
fn second_process_on_same_data_dir_is_refused() {
    let (d, _n) = node();
    let mut other = TestNode::new(d.path().join("node"), &[]);
    other.spawn();
    let st = other
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("second process must exit");
    assert!(!st.success());
}

/// A client still uploading an oversize body gets the 413 JSON answer, not a reset connection.
#[test]
fn oversize_body_sent_slowly_still_gets_a_413_answer() {
    use std::io::{Read, Write};
    let (_d, n) = node();
    let key = n.app_key("app1");
    // With a key: 413. Without one: 401. Either way the answer arrives after the upload.
    for (key_header, status, code) in [
        (format!("x-api-key: {key}\r\n"), "413", "body_too_large"),
        (String::new(), "401", "unauthorized"),
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port)).unwrap();
        let total = 1_000_000usize; // limit in this test is 200,000 bytes
        write!(
            s,
            "POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{key_header}content-length: {total}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let chunk = vec![b' '; 50_000];
        for _ in 0..total / chunk.len() {
            s.write_all(&chunk)
                .expect("the server must keep reading while the client uploads");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with(&format!("HTTP/1.1 {status}")), "{resp}");
        assert!(resp.contains(&format!("\"{code}\"")), "{resp}");
    }
}
