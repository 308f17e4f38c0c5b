//! Dashboard rollups agree with a full scan (the same endpoint with `source=scan`) on every
//! node: while rows are still in memory, after a follower caught up from a snapshot (its
//! rollups loaded from the installed segments' summaries), and after a node is killed with -9
//! and restarted (loaded from its summaries, the rest replayed from the log) — with no
//! summary rebuilt from rows either time.

use std::time::{Duration, Instant};

use serde_json::Value;
use unmogrowp_tests::cluster::TestCluster;
use unmogrowp_tests::{event, now_ms, TestNode};

const H: i64 = 3_600_000;

/// Frequent snapshots and purges, so the follower started late must install a snapshot.
const SMALL_LOG: &[(&str, &str)] = &[
    ("UNMOGROWP_RAFT__SNAPSHOT_LOG_BYTES", "262144"),
    ("UNMOGROWP_RAFT__KEEP_AFTER_SNAPSHOT", "10"),
];

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Equal JSON, numbers within a relative 1e-9 (SQL sums floats; rollups sum micro-units).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn dashboard(node: &TestNode, path: &str, query: &str) -> Value {
    let a = node.get(&format!("/api/dashboard/{path}{query}"));
    assert_eq!(a.status, 200, "{path}{query}: {}", a.body);
    a.body
}

/// `path` answers `rollup_query` from the rollups, and the same as `scan_query` with
/// `source=scan`; returns the rollup answer (without "source").
fn rollup_equals_scan(
    node: &TestNode,
    stage: &str,
    path: &str,
    rollup_query: &str,
    scan_query: &str,
) -> Value {
    let mut rollup = dashboard(node, path, rollup_query);
    let mut scan = dashboard(node, path, &format!("{scan_query}&source=scan"));
    assert_eq!(rollup["source"], "rollup", "{stage}: {path}{rollup_query}");
    assert_eq!(scan["source"], "scan");
    rollup.as_object_mut().map(|o| o.remove("source"));
    scan.as_object_mut().map(|o| o.remove("source"));
    assert!(
        same(&rollup, &scan),
        "{stage}: {path}{rollup_query}\nrollup {rollup}\nscan   {scan}"
    );
    rollup
}

/// Every rollup-backed endpoint answers alike from the rollups and from a scan.
fn compare(node: &TestNode, base: i64, stage: &str) -> Vec<Value> {
    let ranges = [
        (base - 2 * H, base + 80 * H),
        (base + 5 * H, base + 29 * H),
        (base + 40 * H, base + 41 * H),
        (base + 70 * H, base + 200 * H),
    ];
    let mut answers = Vec::new();
    for app in ["r1", "r2"] {
        for (from, to) in ranges {
            for (p, extra) in [
                ("stats", ""),
                ("charts/events-over-time", "&interval=hour"),
                ("charts/events-over-time", "&interval=day"),
                ("charts/platforms", ""),
                ("charts/top-campaigns", "&limit=5"),
                ("charts/user-retention", "&days=3"),
                ("charts/user-retention", "&days=1&cohort_event=purchase"),
                // A user's events follow each other 11.7 h apart in the order ad_click,
                // purchase, app_open, install, session_start (see `event` and the timestamps
                // below), so these funnels have users at every step.
                (
                    "charts/funnel",
                    "&steps=ad_click,purchase,app_open&window=1d",
                ),
                ("charts/funnel", "&steps=install,session_start&window=12h"),
            ] {
                let q = format!("?app_id={app}&from={from}&to={to}{extra}");
                answers.push(rollup_equals_scan(
                    node,
                    stage,
                    p,
                    &format!("{q}&source=rollup"),
                    &q,
                ));
            }
        }
    }
    // The comparisons compared something: the whole range of r1 holds most events.
    let whole = &answers[0];
    assert!(
        whole["total_events"].as_u64() > Some(4000) && whole["active_users"].as_u64() > Some(500),
        "{stage}: {whole}"
    );
    assert!(answers[1]["points"]
        .as_array()
        .is_some_and(|p| p.len() > 70));
    assert!(
        answers[4]["rows"].as_array().is_some_and(|r| r.len() == 5),
        "{stage}: {}",
        answers[4]
    );
    assert!(
        answers[5]["cohorts"]
            .as_array()
            .is_some_and(|c| c.len() >= 3 && c.iter().any(|c| c["retained"][1].as_u64() > Some(0))),
        "{stage}: {}",
        answers[5]
    );
    assert!(
        answers[7]["steps"][2]["users"].as_u64() > Some(0),
        "{stage}: a three-step funnel reaches its last step: {}",
        answers[7]
    );
    // Funnels keep exact times: any range, to the millisecond, comes from the rollups.
    let q = format!(
        "?app_id=r1&from={}&to={}&steps=ad_click,purchase&window=705m",
        base + 1234,
        base + 30 * H + 777
    );
    let funnel = rollup_equals_scan(node, stage, "charts/funnel", &q, &q);
    assert!(
        funnel["steps"][1]["users"].as_u64() > Some(0),
        "{stage}: {funnel}"
    );
    // SQL aggregations the rollups hold are answered from them on this node
    // (RollupAnswerExec: whole hours from the rollups, the partial edge hours from the
    // events), and equal the dashboard's scan of the same range.
    let (from, to) = (base + 1234, base + 30 * H + 777);
    let range = format!(
        "app_id = 'r1' AND timestamp >= to_timestamp_millis({from}) \
         AND timestamp < to_timestamp_millis({to})"
    );
    let stats_sql = format!("SELECT count(), uniqExact(user_id) FROM events WHERE {range}");
    let platforms_sql = format!(
        "SELECT platform, count(), uniqExact(user_id) FROM events WHERE {range} \
         GROUP BY platform ORDER BY platform"
    );
    for sql in [&stats_sql, &platforms_sql] {
        let plan = node.sql(&format!("EXPLAIN {sql}"));
        assert!(
            format!("{plan:?}").contains("RollupAnswerExec"),
            "{stage}: not answered from the rollups: {sql}\n{plan:?}"
        );
    }
    let scan = format!("?app_id=r1&from={from}&to={to}&source=scan");
    let stats = dashboard(node, "stats", &scan);
    let row = &node.sql(&stats_sql)[0];
    assert_eq!(
        (row[0].as_u64(), row[1].as_u64()),
        (
            stats["total_events"].as_u64(),
            stats["active_users"].as_u64()
        ),
        "{stage}: SQL from the rollups vs the scan {stats}"
    );
    assert!(row[0].as_u64() > Some(1000), "{stage}: {row:?}");
    let mut platforms: Vec<Value> = dashboard(node, "charts/platforms", &scan)["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| serde_json::json!([r["platform"], r["events"], r["users"]]))
        .collect();
    platforms.sort_by_key(|r| r[0].as_str().unwrap_or("").to_string());
    let sql_rows: Vec<Value> = node
        .sql(&platforms_sql)
        .into_iter()
        .map(Value::Array)
        .collect();
    assert_eq!(sql_rows, platforms, "{stage}: platforms by SQL vs the scan");
    // Ranges that are not whole hours are scanned unless the caller insists.
    let q = format!("?app_id=r1&from={}&to={}", base + 1, base + 3 * H);
    assert_eq!(dashboard(node, "stats", &q)["source"], "scan");
    let a = node.get(&format!("/api/dashboard/stats{q}&source=rollup"));
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(
        dashboard(node, "stats", "?app_id=r1")["source"],
        "rollup",
        "the default range is whole hours"
    );
    answers
}

fn table_generation(node: &TestNode) -> u64 {
    let current = std::fs::read_to_string(node.data_dir.join("table").join("CURRENT"))
        .expect("table CURRENT");
    current
        .trim()
        .trim_start_matches("gen-")
        .parse()
        .expect("generation number")
}

#[test]
fn rollups_agree_with_a_scan_across_snapshots_and_kill_9() {
    let mut c = TestCluster::new(3, SMALL_LOG);
    c.start();
    c.create_app("r1");
    c.create_app("r2");
    c.nodes[2].kill9();

    let base = (now_ms() / H - 80) * H;
    let mut seq = 0u64;
    for round in 0..40u64 {
        let batch: Vec<Value> = (0..200)
            .map(|i| {
                seq += 1;
                let app = if (seq * 31 + i) % 3 == 0 { "r2" } else { "r1" };
                let ts = base + ((seq * 7919) % (80 * H as u64 / 1000)) as i64 * 1000;
                let mut e = event(app, round % 4, seq, ts);
                if seq % 11 == 0 {
                    e.as_object_mut().map(|o| o.remove("user_id"));
                }
                e
            })
            .collect();
        for app in ["r1", "r2"] {
            let mine: Vec<Value> = batch
                .iter()
                .filter(|e| e["app_id"] == app)
                .cloned()
                .collect();
            let a = c.nodes[0].post_json("/v1/events", &Value::Array(mine.clone()));
            assert_eq!(a.status, 202, "{}", a.body);
            if round % 5 == 0 {
                // A retry of the same batch: all duplicates, counted nowhere.
                let a = c.nodes[0].post_json("/v1/events", &Value::Array(mine));
                assert_eq!(a.body["accepted"], 0, "{}", a.body);
            }
        }
    }
    wait_until(Duration::from_secs(60), "a purge below a snapshot", || {
        c.nodes[0]
            .metric("unmogrowp_raft_purged_index")
            .is_some_and(|v| v > 0.0)
    });
    let on_leader = compare(&c.nodes[0], base, "live");

    // The follower started late catches up from a snapshot: new table generation.
    c.nodes[2].start();
    c.wait_converged(Duration::from_secs(120));
    c.nodes[2].wait_applied_all(Duration::from_secs(30));
    assert!(
        table_generation(&c.nodes[2]) >= 2,
        "node 3 did not install a snapshot"
    );
    let on_follower = compare(&c.nodes[2], base, "after snapshot install");
    // The snapshot carried the segments' summaries and the user dictionary: the follower
    // loaded its rollups from them, rebuilding none from rows.
    assert_eq!(
        c.nodes[2].metric("unmogrowp_engine_summaries_rebuilt_total"),
        Some(0.0),
        "node 3 rebuilt summaries after the snapshot install"
    );
    assert!(
        on_leader.iter().zip(&on_follower).all(|(a, b)| same(a, b)),
        "node 3 answers differ from node 1"
    );

    // kill -9 and restart: loaded from the segments' summaries plus the replayed log.
    c.nodes[0].kill9();
    c.nodes[0].start();
    c.wait_converged(Duration::from_secs(60));
    c.nodes[0].wait_applied_all(Duration::from_secs(30));
    let restarted = compare(&c.nodes[0], base, "after kill -9");
    assert_eq!(
        c.nodes[0].metric("unmogrowp_engine_summaries_rebuilt_total"),
        Some(0.0),
        "node 1 rebuilt summaries after kill -9 (they are written before the manifest names a segment)"
    );
    assert!(
        on_leader.iter().zip(&restarted).all(|(a, b)| same(a, b)),
        "answers changed across a restart"
    );
}
