//! Security alerts (issue 27): each attack replayed over HTTP against a 3-node cluster raises
//! its alert — password spraying, credential stuffing, a burst of denied requests, an API key
//! used from many addresses (X-Forwarded-For from a trusted proxy), a large read — while a
//! normal day's traffic (ingest load, an admin setting up an analyst, logins, a typo'd
//! password, small queries) raises none; and an admin action outside the configured hours. Alerts are recorded through the log (every
//! node lists the same), readable as the admins-only SQL table `security_alerts`, counted in
//! `/metrics`, and POSTed (signed) to a webhook receiver that gets each alert once, also when
//! the leader is killed with -9 in between.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use unmogrowp_tests::cluster::{Load, TestCluster};
use unmogrowp_tests::TestNode;

const HOOK_SECRET: &str = "hook-signing-secret";

/// A loopback webhook receiver: every POST's alert id, body and signature check.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, Value, bool)>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &sink);
                });
            }
        });
        Self { port, got }
    }

    fn ids(&self) -> Vec<String> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .map(|g| g.0.clone())
            .collect()
    }
}

fn handle(
    mut stream: std::net::TcpStream,
    sink: &Mutex<Vec<(String, Value, bool)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut headers = BTreeMap::new();
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).expect("key");
    mac.update(&body);
    let expected = format!("sha256={}", hex(&mac.finalize().into_bytes()));
    let signed = headers.get("x-unmogrowp-signature") == Some(&expected);
    let id = headers
        .get("x-unmogrowp-alert-id")
        .cloned()
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    sink.lock().expect("lock").push((id, json, signed));
    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn alerts(node: &TestNode) -> Vec<Value> {
    let a = node.get("/api/admin/alerts?limit=1000");
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["alerts"].as_array().expect("alerts").clone()
}

/// Waits until `node` lists an alert of `rule`; returns all alerts then.
fn wait_alert(node: &TestNode, rule: &str, limit: Duration) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let all = alerts(node);
        if all.iter().any(|a| a["rule"] == rule) {
            return all;
        }
        assert!(
            t0.elapsed() < limit,
            "no {rule} alert within {limit:?}: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn login_from(node: &TestNode, ip: &str, email: &str, password: &str) -> u16 {
    node.request_raw(
        "POST",
        "/api/auth/login",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", ip),
        ],
        Some(
            json!({"email": email, "password": password})
                .to_string()
                .as_bytes(),
        ),
    )
    .expect("login")
    .status
}

/// Admin actions are expected only in an hour that is not now (UTC).
fn hours_excluding_now() -> String {
    let now_h = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 3600)
        % 24;
    let from = (now_h + 3) % 24;
    format!("{from:02}:00-{:02}:00", (from + 2) % 24)
}

#[test]
fn attacks_raise_their_alerts_once_and_a_normal_day_raises_none() {
    let hook = Receiver::start();
    let webhook = format!(
        r#"[{{url = "http://127.0.0.1:{}/hook", secret = "{HOOK_SECRET}"}}]"#,
        hook.port
    );
    let mut c = TestCluster::new(
        3,
        &[
            ("UNMOGROWP_ALERTS__WEBHOOK", webhook.as_str()),
            ("UNMOGROWP_ALERTS__KEY_SOURCES", "20"),
            ("UNMOGROWP_ALERTS__LARGE_READ_ROWS", "2000"),
            ("UNMOGROWP_AUTH__TRUSTED_PROXIES", r#"["127.0.0.1"]"#),
            ("UNMOGROWP_AUTH__AUDITED_DENIALS_PER_IP_PER_MINUTE", "1000"),
        ],
    );
    c.start();
    let key = c.create_app("shop");
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();

    // A normal day: ingest from the SDKs and the benchmark's generator, an admin setting up an
    // analyst, who mistypes her password once, logs in and runs small queries; the admin
    // reads the audit log.
    let load = Load::start(&ports, &key, "shop", 2, 50);
    let n0 = &c.nodes[0];
    let made = n0.call(
        "POST",
        "/api/admin/users",
        Some(&n0.admin_token()),
        Some(
            json!({"email": "ana@example.com", "password": "analyst-password-1", "name": "Ana",
                     "app_access": ["shop"]}),
        ),
    );
    assert!(made.status == 200 || made.status == 201, "{}", made.body);
    assert_eq!(
        login_from(n0, "198.51.100.4", "ana@example.com", "analyst-pasword-1"),
        401
    );
    let ana = n0.login("ana@example.com", "analyst-password-1");
    let ana_token = ana["access_token"].as_str().expect("token").to_string();
    for _ in 0..5 {
        let q = n0.call(
            "POST",
            "/api/analytics/query",
            Some(&ana_token),
            Some(json!({"sql": "SELECT event_type, count(*) FROM events GROUP BY 1"})),
        );
        assert_eq!(q.status, 200, "{}", q.body);
    }
    assert_eq!(n0.get("/api/admin/audit?limit=10").status, 200);
    // The benchmark's own load generator against each node for a few seconds.
    let bench_key = c.create_app("bench_app");
    let bench = unmogrowp_tests::binary().with_file_name("unmogrowp-bench");
    for n in &c.nodes {
        let out = std::process::Command::new(&bench)
            .args(["load", "--addr", &format!("127.0.0.1:{}", n.port)])
            .args(["--batch", "50", "--duration", "3", "--connections", "4"])
            .args(["--api-key", &bench_key])
            .output()
            .unwrap_or_else(|e| {
                panic!("{}: {e} (cargo build -p unmogrowp-bench)", bench.display())
            });
        assert!(
            out.status.success(),
            "bench load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let quiet = alerts(n0);
    assert!(quiet.is_empty(), "a normal day raised alerts: {quiet:#?}");

    // Password spraying: one address, many accounts.
    for i in 0..12 {
        login_from(
            n0,
            "203.0.113.7",
            &format!("user{i}@example.com"),
            "Summer2026!",
        );
    }
    wait_alert(n0, "password_spraying", Duration::from_secs(20));
    // Credential stuffing: one account, many addresses.
    for i in 0..7 {
        login_from(
            &c.nodes[1],
            &format!("192.0.2.{}", 10 + i),
            "ceo@example.com",
            "leaked-1",
        );
    }
    wait_alert(n0, "credential_stuffing", Duration::from_secs(20));
    // A burst of denied requests by one user: the analyst probing admin routes.
    for _ in 0..25 {
        let a = c.nodes[2].call("GET", "/api/admin/users", Some(&ana_token), None);
        assert_eq!(a.status, 403, "{}", a.body);
    }
    wait_alert(n0, "denied_burst", Duration::from_secs(20));
    // One API key from many addresses (a trusted proxy's X-Forwarded-For).
    for i in 0..30 {
        let a = c.nodes[0]
            .request_raw(
                "POST",
                "/v1/events",
                &[
                    ("content-type", "application/json"),
                    ("x-api-key", &key),
                    ("x-forwarded-for", &format!("100.64.{}.{}", i / 200, i % 200 + 1)),
                ],
                Some(
                    json!([{"event_type": "open", "device_id": format!("d{i}"), "platform": "ios"}])
                        .to_string()
                        .as_bytes(),
                ),
            )
            .expect("ingest");
        assert_eq!(a.status, 202, "{}", a.body);
    }
    wait_alert(n0, "key_many_sources", Duration::from_secs(20));
    // A large read by the analyst, whose queries return a handful of rows.
    let big = n0.call(
        "POST",
        "/api/analytics/query",
        Some(&ana_token),
        Some(json!({"sql": "SELECT * FROM events LIMIT 5000"})),
    );
    assert_eq!(big.status, 200, "{}", big.body);
    assert!(
        big.body["row_count"].as_u64() > Some(2000),
        "{}",
        big.body["row_count"]
    );
    wait_alert(n0, "large_read", Duration::from_secs(20));
    let all = alerts(n0);
    let ledger = load.stop();
    assert!(ledger.acked() > 0);

    // One alert per attack (a burst is raised once, not once per request).
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for a in &all {
        *by_rule
            .entry(a["rule"].as_str().expect("rule").to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(
        by_rule,
        [
            "credential_stuffing",
            "denied_burst",
            "key_many_sources",
            "large_read",
            "password_spraying"
        ]
        .iter()
        .map(|r| (r.to_string(), 1))
        .collect(),
        "{all:#?}"
    );
    let spray = all
        .iter()
        .find(|a| a["rule"] == "password_spraying")
        .expect("spray");
    assert_eq!(spray["subject"], "203.0.113.7");
    assert_eq!(spray["severity"], "critical");

    // The webhook got each, signed, once.
    let t0 = Instant::now();
    while hook.ids().len() < all.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "webhook got {:?} of {}",
            hook.ids(),
            all.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    {
        let got = hook.got.lock().expect("lock");
        assert!(
            got.iter().all(|g| g.2),
            "an unsigned or badly signed delivery"
        );
        assert!(got
            .iter()
            .all(|g| g.1["id"] == g.0.as_str() && g.1["text"].is_string()));
    }

    // Every node lists the same alerts (recorded through the log), the SQL table has them
    // for admins only, and /metrics counts them.
    c.wait_converged(Duration::from_secs(30));
    let n0 = &c.nodes[0];
    for n in &c.nodes {
        assert_eq!(alerts(n).len(), all.len());
    }
    let rows = n0.sql("SELECT rule, count(*) FROM security_alerts GROUP BY rule ORDER BY rule");
    assert_eq!(rows.len(), 5, "{rows:?}");
    let denied = n0.call(
        "POST",
        "/api/analytics/query",
        Some(&ana_token),
        Some(json!({"sql": "SELECT * FROM security_alerts"})),
    );
    assert_ne!(
        denied.status, 200,
        "a non-admin read the alerts: {}",
        denied.body
    );
    let metrics = ureq::get(&format!("{}/metrics", n0.base()))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("unmogrowp_security_alerts_total{rule=\"password_spraying\"} 1"),
        "{metrics}"
    );

    // Kill the leader with -9; the next leader raises and delivers the next alert, and
    // delivers nothing twice.
    let (leader, _) = c.wait_leader(Duration::from_secs(20));
    c.nodes[leader].kill9();
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let t0 = Instant::now();
    let new_leader = loop {
        if let Some(l) = c.leader_seen_by(others[0]).filter(|l| *l != leader) {
            break l;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no new leader");
        std::thread::sleep(Duration::from_millis(200));
    };
    let n = &c.nodes[new_leader];
    for i in 0..7 {
        login_from(
            n,
            &format!("192.0.2.{}", 100 + i),
            "cfo@example.com",
            "leaked-2",
        );
    }
    let t0 = Instant::now();
    let after = loop {
        let a = alerts(n);
        if a.iter().any(|x| x["subject"] == "cfo@example.com") {
            break a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no alert after the kill: {a:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(after.len(), all.len() + 1, "{after:#?}");
    let t0 = Instant::now();
    while hook.ids().len() < after.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "webhook got {:?} of {}",
            hook.ids(),
            after.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut ids = hook.ids();
    ids.sort();
    let mut want: Vec<String> = after
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect();
    want.sort();
    assert_eq!(ids, want, "each alert delivered exactly once");
}

#[test]
fn an_admin_action_outside_the_configured_hours_raises_an_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hours = format!("\"{}\"", hours_excluding_now());
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_ALERTS__ADMIN_HOURS", hours.as_str())],
    );
    node.start();
    // Reading is not an admin action; creating a user is.
    assert_eq!(node.get("/api/admin/users").status, 200);
    std::thread::sleep(Duration::from_secs(2));
    assert!(alerts(&node).is_empty());
    let user = node.call(
        "POST",
        "/api/admin/users",
        Some(&node.admin_token()),
        Some(json!({"email": "night@example.com", "password": "night-shift-password"})),
    );
    assert!(user.status == 200 || user.status == 201, "{}", user.body);
    let all = wait_alert(&node, "admin_off_hours", Duration::from_secs(20));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(all[0]["summary"]
        .as_str()
        .is_some_and(|s| s.contains("users.create")));
}
