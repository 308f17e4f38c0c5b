//! What an operator monitors with (issue 27): the shipped Grafana dashboards and Prometheus
//! alert rules, checked against a real Prometheus (Debian's) scraping a 3-node cluster under
//! load — every query must be valid PromQL and return series — plus `promtool` checks and
//! unit tests of the rules; and JSON logs whose request ids match the answer header and the
//! audit record.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::cluster::{Load, TestCluster};
use unmogrowp_tests::peers::Prometheus;
use unmogrowp_tests::TestNode;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_and_unit_tests_the_alert_rules_and_the_dashboards_are_current() {
    let dir = repo().join("deploy/prometheus");
    let checked = run_ok(
        Command::new("promtool")
            .args(["check", "rules", "alerts.yml"])
            .current_dir(&dir),
    );
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run_ok(
        Command::new("promtool")
            .args(["test", "rules", "alerts.test.yml"])
            .current_dir(&dir),
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a unit test and a runbook line.
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).expect("alerts.yml");
    let tests = std::fs::read_to_string(dir.join("alerts.test.yml")).expect("tests");
    let ops = std::fs::read_to_string(repo().join("docs/operations.md")).expect("operations");
    let names = alert_names(&rules);
    let runbooks: Vec<&str> = rules
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("runbook: \"docs/operations.md#alert-")
        })
        .map(|a| a.trim_end_matches('"'))
        .collect();
    assert_eq!(
        names.len(),
        runbooks.len(),
        "an alert without a runbook link"
    );
    // Each link leads to a "#### Alert: <Name>" section of docs/operations.md.
    let sections: Vec<String> = ops
        .lines()
        .filter_map(|l| l.strip_prefix("#### Alert: "))
        .map(|n| n.trim().to_lowercase())
        .collect();
    for (name, anchor) in names.iter().zip(&runbooks) {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "alert {name} has no promtool test"
        );
        assert!(
            sections.iter().any(|s| s == anchor),
            "alert {name}'s runbook #alert-{anchor} is not a section of docs/operations.md"
        );
    }
    run_ok(
        Command::new("python3")
            .arg(repo().join("deploy/grafana/dashboards.py"))
            .arg("--check"),
    );
}

fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect()
}

/// Every alert expression (each on one `expr:` line: the test fails if the counts differ).
fn alert_exprs(rules: &str) -> Vec<(String, String)> {
    let names = alert_names(rules);
    let exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_string)
        .collect();
    assert_eq!(
        names.len(),
        exprs.len(),
        "every alert needs its expression on one `expr:` line"
    );
    names.into_iter().zip(exprs).collect()
}

/// An alert expression `<series> <op> <number>` as `<series> <op> bool <number>`: returns its
/// series whether or not the alert fires.
fn as_bool(expr: &str) -> String {
    for op in [" == ", " != ", " >= ", " <= ", " > ", " < "] {
        if let Some(i) = expr.rfind(op) {
            return format!("{}{}bool {}", &expr[..i], op, &expr[i + op.len()..]);
        }
    }
    panic!("alert expression without a comparison: {expr}");
}

/// Every panel query of the shipped dashboards, with Grafana's variables filled in.
fn dashboard_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = repo().join("deploy/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "dashboards missing: {files:?}");
    for f in files {
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("json");
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().expect("expr");
                out.push((
                    format!("{name} / {}", p["title"].as_str().unwrap_or("?")),
                    expr.replace("$instance", ".+")
                        .replace("$__rate_interval", "30s"),
                ));
            }
        }
        // The node picker's `label_values(<metric>, instance)`.
        let var = d["templating"]["list"][1]["definition"]
            .as_str()
            .expect("instance variable");
        let metric = var
            .trim_start_matches("label_values(")
            .split(',')
            .next()
            .expect("metric");
        out.push((format!("{name} / $instance"), metric.to_string()));
    }
    out
}

#[test]
fn every_dashboard_query_and_alert_expression_returns_series_from_a_real_cluster() {
    let rules_path = repo().join("deploy/prometheus/alerts.yml");
    let rules = std::fs::read_to_string(&rules_path).expect("alerts.yml");
    let mut exprs: Vec<(String, String)> = alert_exprs(&rules)
        .into_iter()
        .map(|(n, e)| (format!("alert {n}"), as_bool(&e)))
        .collect();
    exprs.extend(dashboard_exprs());

    // A mirror whose sink is unreachable: its series exist (state retrying).
    let mirror = r#"[{name = "pg", kind = "postgres", url = "postgres://u:secret@127.0.0.1:1/x"}]"#;
    let mut c = TestCluster::new(
        3,
        &[
            ("UNMOGROWP_MIRROR", mirror),
            ("UNMOGROWP_AUTH__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "4"),
        ],
    );
    c.start();
    let key = c.create_app("shop");
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    let load = Load::start(&ports, &key, "shop", 2, 50);
    let targets: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = Prometheus::start(dir.path(), &targets, &rules_path);

    // What a working day has besides ingest: SQL, refused and rate-limited logins, a refused
    // event, an unauthenticated call, on every node.
    for n in &c.nodes {
        assert!(n.count("SELECT count(*) FROM events") > 0);
        let anon = n.request_raw("GET", "/api/apps", &[], None).expect("call");
        assert_eq!(anon.status, 401);
        for _ in 0..6 {
            let _ = n.request_raw(
                "POST",
                "/api/auth/login",
                &[("content-type", "application/json")],
                Some(br#"{"email":"nobody@example.com","password":"wrong-password"}"#),
            );
        }
        let bad = n
            .request_raw(
                "POST",
                "/v1/events",
                &[("content-type", "application/json"), ("x-api-key", &key)],
                Some(json!([{"event_type": "open"}]).to_string().as_bytes()),
            )
            .expect("call");
        assert_eq!(bad.status, 400, "{}", bad.body);
    }

    // Prometheus has scraped every node a few times.
    let t0 = Instant::now();
    loop {
        let up = prom.query("sum(up{job=\"unmogrowp\"})").unwrap_or_default();
        let n = up
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if n == 3.0 && t0.elapsed() > Duration::from_secs(12) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "Prometheus does not scrape all three nodes: {}",
            prom.targets()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let mut failures = Vec::new();
    for (what, expr) in &exprs {
        match prom.query(expr) {
            Ok(series) if series.is_empty() => {
                failures.push(format!("{what}: no series for {expr}"))
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{what}: {e} in {expr}")),
        }
    }
    let ledger = load.stop();
    assert!(ledger.acked() > 0, "the load got nothing acknowledged");
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n")
    );
    // The per-node series carry the cluster's instance label, one per node.
    let leaders = prom
        .query("count(unmogrowp_raft_current_leader) by (instance)")
        .expect("query");
    assert_eq!(leaders.len(), 3, "{leaders:?}");
    eprintln!("{} dashboard and alert queries return series", exprs.len());
}

#[test]
fn json_logs_carry_the_request_id_of_the_answer_and_the_audit_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[
            ("UNMOGROWP_LOG__FORMAT", "\"json\""),
            ("UNMOGROWP_LOG__REQUESTS", "\"errors\""),
        ],
    );
    node.start();
    // A failed request with the client's own id: the answer, the log and the audit record
    // carry it.
    let id = "client-trace-4f2a.7";
    let denied = node
        .request_raw(
            "GET",
            "/api/admin/users",
            &[
                ("authorization", "Bearer not-a-token"),
                ("x-request-id", id),
            ],
            None,
        )
        .expect("call");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("x-request-id"), Some(id));
    // An id the client did not send, or an unusable one, is made up.
    let ok = node.request_raw("GET", "/health", &[], None).expect("call");
    let made = ok.header("x-request-id").expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let long = "x".repeat(200);
    for odd in ["a b/c", "<script>", long.as_str()] {
        let a = node
            .request_raw("GET", "/health", &[("x-request-id", odd)], None)
            .expect("call");
        let given = a.header("x-request-id").expect("id");
        assert!(
            uuid::Uuid::parse_str(given).is_ok(),
            "{odd:?} became {given}"
        );
    }

    let audit = node.get("/api/admin/audit?limit=50");
    assert_eq!(audit.status, 200, "{}", audit.body);
    let record = audit.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["request_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no audit record with request id {id}: {}", audit.body));
    assert_eq!(record["action"], "request.denied", "{record}");

    // Every line of the log is one JSON object; the failed request's line has the id, the
    // route, the status and the latency.
    let t0 = Instant::now();
    let line = loop {
        let log = node.log_text();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect();
        assert!(lines.iter().all(|l| l["time"].is_string()
            && l["level"].is_string()
            && l["target"].is_string()
            && l["message"].is_string()
            && l["node_id"] == 1));
        if let Some(l) = lines
            .iter()
            .find(|l| l["request_id"] == id && l["status"] == 401)
        {
            break l.clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no log line with request id {id}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(line["route"], "/api/admin/users", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert!(line["latency_ms"].is_u64(), "{line}");
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
    // Successful requests are not logged with log.requests = "errors".
    assert!(!node.log_text().contains(&made), "a 200 was logged");
}
