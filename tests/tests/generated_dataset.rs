//! `unmogrowp-bench generate` (issue 28): a dataset written straight into the engine's segment
//! format becomes a node that starts, creates its admin, and answers SQL and the dashboard
//! over exactly the generated events.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use unmogrowp_tests::TestNode;

#[test]
fn a_generated_dataset_is_a_node_that_serves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = TestNode::new(dir.path().join("node"), &[]);
    let bench = unmogrowp_tests::binary().with_file_name("unmogrowp-bench");
    let out = Command::new(&bench)
        .args(["generate", "--data-dir"])
        .arg(dir.path().join("node"))
        .args(["--http-addr", &format!("127.0.0.1:{}", node.port)])
        .args([
            "--events", "60000", "--apps", "4", "--days", "3", "--seed", "7",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bench.display()));
    assert!(
        out.status.success(),
        "generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.start();
    node.wait_ready(Duration::from_secs(60));
    let rows =
        node.sql("SELECT count(*), count(DISTINCT event_id), min(log_index) > 0 FROM events");
    assert_eq!(rows[0][0], 60000, "{rows:?}");
    assert_eq!(rows[0][1], 60000, "{rows:?}");
    assert_eq!(rows[0][2], true, "{rows:?}");
    // Zipf-skewed apps, three days, purchases with revenue.
    let apps = node.sql("SELECT app_id, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC");
    assert_eq!(apps.len(), 4);
    assert_eq!(apps[0][0], "app_00");
    let days = node.sql("SELECT count(DISTINCT toStartOfDay(timestamp)) FROM events");
    assert_eq!(days[0][0], 3);
    let paid = node.sql("SELECT count(*) FROM events WHERE event_type = 'purchase' AND revenue > 0 AND event_data['currency'] = 'USD'");
    assert!(paid[0][0].as_u64() > Some(0), "{paid:?}");
    // The dashboard reads the rollups rebuilt from the segments once the app exists.
    let app = node.post_json("/api/apps", &json!({"name": "app_00", "id": "app_00"}));
    assert_eq!(app.status, 201, "{}", app.body);
    let stats = node.get("/api/dashboard/stats?app_id=app_00&from=2000-01-01");
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.body["total_events"], apps[0][1], "{}", stats.body);
    // And it takes new events like any node.
    let key = app.body["api_key"].as_str().expect("key").to_string();
    let a = node
        .request_raw(
            "POST",
            "/v1/events",
            &[("content-type", "application/json"), ("x-api-key", &key)],
            Some(
                json!([{"event_type": "open", "device_id": "d1", "platform": "ios"}])
                    .to_string()
                    .as_bytes(),
            ),
        )
        .expect("ingest");
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(node.count("SELECT count(*) FROM events"), 60001);
}
