//! Node identity and membership: a wiped node is refused until re-added (TESTPLAN RAFT-08),
//! remove / add / promote under load with catch-up from a snapshot (RAFT-07), and the
//! `local-cluster` command.

use std::time::{Duration, Instant};

use serde_json::json;
use unmogrowp_tests::cluster::{check_ledger, Load, TestCluster};
use unmogrowp_tests::{binary, event, event_uuid};

/// Small log → frequent snapshots and purges, so a node added later must catch up from a
/// snapshot (segments, manifest and the auth store's RocksDB checkpoint).
const SMALL_LOG: &[(&str, &str)] = &[
    ("UNMOGROWP_RAFT__SNAPSHOT_LOG_BYTES", "1048576"),
    ("UNMOGROWP_RAFT__KEEP_AFTER_SNAPSHOT", "10"),
];

fn ports(c: &TestCluster) -> Vec<u16> {
    c.nodes.iter().map(|n| n.port).collect()
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn wiped_node_is_refused_until_removed_and_added_again() {
    let mut c = TestCluster::new(3, SMALL_LOG);
    c.start();
    let key = c.create_app("app1");
    let load = Load::start(&ports(&c)[..2], &key, "app1", 3, 20);
    std::thread::sleep(Duration::from_secs(4));

    // RAFT-08: wipe node 3's data directory and restart it without a membership change.
    c.nodes[2].kill9();
    std::fs::remove_dir_all(&c.nodes[2].data_dir).expect("wipe");
    c.nodes[2].spawn();
    wait_until(
        Duration::from_secs(30),
        "node 3 to refuse the leader",
        || {
            c.nodes[2]
                .try_get("/metrics")
                .ok()
                .and_then(|_| c.nodes[2].metric("unmogrowp_raft_rpc_refused_total"))
                .is_some_and(|v| v > 0.0)
        },
    );
    let ready = c.nodes[2].try_get_raw("/ready", &[]).expect("ready");
    assert_eq!(
        ready.status, 503,
        "a wiped node must not be ready: {}",
        ready.body
    );
    assert_eq!(
        c.status(2).expect("status")["members"],
        json!([]),
        "the wiped node joined without being re-added"
    );

    // With node 3 refusing, nodes 1 and 2 still commit.
    let acked_at_wipe = load.ledger.acked();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        load.ledger.acked() > acked_at_wipe,
        "writes stopped after the wipe"
    );

    // The follow-up: kill the leader. The wiped node must not help elect anyone (it would
    // vote with an empty log), so nothing commits until the old leader is back.
    let (leader, _) = c.wait_leader(Duration::from_secs(10));
    if leader != 2 {
        c.nodes[leader].kill9();
        std::thread::sleep(Duration::from_secs(5));
        let survivor = 1 - leader.min(1);
        let s = c.status(survivor).expect("survivor status");
        assert_ne!(
            s["state"], "leader",
            "a leader was elected with the wiped node's vote: {s}"
        );
        c.nodes[leader].start();
    }
    c.wait_leader(Duration::from_secs(30));

    // RAFT-07: remove node 3, add it back with its new identity, promote it — under load.
    let a = c.nodes[0].call(
        "DELETE",
        "/api/admin/cluster/nodes/3",
        Some(&c.nodes[0].admin_token()),
        None,
    );
    assert_eq!(a.status, 200, "remove: {}", a.body);
    // Catch-up from a snapshot needs the leader's log purged below what node 3 lacks (all of
    // it): wait, under load, until the leader has purged its first entries. A snapshot alone
    // is not enough: the log keeps `keep_after_snapshot` entries and purges in batches.
    let (leader, _) = c.wait_leader(Duration::from_secs(30));
    wait_until(
        Duration::from_secs(90),
        "a snapshot on the leader that purged its log",
        || {
            c.status(leader)
                .and_then(|s| s["purged_index"].as_u64())
                .is_some_and(|i| i > 0)
        },
    );
    let before_add = format!(
        "leader node {} before the add: {:?}",
        leader + 1,
        c.status(leader)
    );
    let raft_addr = format!("127.0.0.1:{}", c.raft_ports[2]);
    let http_addr = format!("127.0.0.1:{}", c.nodes[2].port);
    let a = c.nodes[0].call(
        "POST",
        "/api/admin/cluster/nodes",
        Some(&c.nodes[0].admin_token()),
        Some(json!({"id": 3, "http_addr": http_addr, "raft_addr": raft_addr})),
    );
    assert_eq!(a.status, 200, "add learner: {}", a.body);
    wait_until(
        Duration::from_secs(120),
        "node 3 to catch up as a learner",
        || {
            let a = c.nodes[0].call(
                "POST",
                "/api/admin/cluster/nodes/3/promote",
                Some(&c.nodes[0].admin_token()),
                None,
            );
            a.status == 200
        },
    );
    let view = c.nodes[0].get("/api/admin/cluster").body;
    let voters = view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["voter"] == true)
        .count();
    assert_eq!(voters, 3, "node 3 is not a voter again: {view}");
    c.nodes[2].wait_ready(Duration::from_secs(60));
    // It came back from a snapshot (the log below it was purged), with users and keys. Raft
    // reports the installed snapshot a moment after the install itself; /ready waits for the
    // install (the log starts after the snapshot, so nothing older than it is served).
    let snap = c.status(2).expect("status");
    let installed = snap["snapshot_index"].as_u64().unwrap_or(0);
    let applied = snap["applied_index"].as_u64().unwrap_or(0);
    let purged = snap["purged_index"].as_u64().unwrap_or(0);
    assert!(
        purged > 0 && applied >= purged,
        "node 3 was ready before applying the snapshot its log starts after: {snap}"
    );
    let t0 = std::time::Instant::now();
    let mut installed = installed;
    while installed == 0 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
        installed = c.status(2).expect("status")["snapshot_index"]
            .as_u64()
            .unwrap_or(0);
    }
    assert!(
        installed > 0,
        "node 3 caught up without a snapshot; the test needs a purged log\n{before_add}\n{}",
        c.diagnosis()
    );
    let one = event("app1", 9, 1, 1_760_000_000_000);
    let a = c.nodes[2].post_json("/v1/events", &json!([one]));
    assert_eq!(a.status, 202, "ingest on the re-added node: {}", a.body);
    c.nodes[2].forget_admin_token();
    c.nodes[2].admin_token();

    let ledger = load.stop();
    ledger.acked.lock().unwrap().insert(event_uuid(9, 1));
    check_ledger(&mut c, &ledger);
    // Every change is in the audit log.
    let audit = c.nodes[0]
        .sql("SELECT action, outcome FROM audit_log WHERE action LIKE 'cluster.%' ORDER BY seq");
    let actions: Vec<String> = audit
        .iter()
        .map(|r| r[0].as_str().unwrap_or("").to_string())
        .collect();
    for a in [
        "cluster.node.remove",
        "cluster.node.add",
        "cluster.node.promote",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited: {audit:?}");
    }
}

/// Membership routes are admin only, and a bad add is refused with a JSON error.
#[test]
fn membership_changes_need_an_admin_and_a_real_node() {
    let mut c = TestCluster::new(3, &[]);
    c.start();
    let n = &c.nodes[1];
    let admin = n.admin_token();
    let a = n.call("POST", "/api/admin/users", Some(&admin), Some(json!({
        "email": "u@example.com", "name": "u", "password": "user-password-123", "roles": ["user"]
    })));
    assert_eq!(a.status, 201, "{}", a.body);
    // Read-your-writes through any node: a user created through a node (leader or not) can
    // log in on that node at once; the node answered only after applying the write itself.
    for round in 0..5 {
        for (i, node) in c.nodes.iter().enumerate() {
            let email = format!("ryw{round}-{i}@example.com");
            let a = node.call("POST", "/api/admin/users", Some(&node.admin_token()), Some(json!({
                "email": email, "name": "ryw", "password": "user-password-123", "roles": ["user"]
            })));
            assert_eq!(a.status, 201, "{}", a.body);
            assert!(node.login(&email, "user-password-123")["access_token"].is_string());
        }
    }
    let user = n.login("u@example.com", "user-password-123")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for (m, p) in [
        ("GET", "/api/admin/cluster"),
        ("DELETE", "/api/admin/cluster/nodes/3"),
        ("POST", "/api/admin/cluster/nodes/3/promote"),
    ] {
        assert_eq!(
            n.call(m, p, Some(&user), None).status,
            403,
            "{m} {p} as a user"
        );
        assert_eq!(n.call(m, p, None, None).status, 401, "{m} {p} anonymous");
    }
    // Not a node at that address: 400 with a reason, and nothing changes.
    let a = n.call(
        "POST",
        "/api/admin/cluster/nodes",
        Some(&admin),
        Some(json!({"id": 4, "http_addr": "127.0.0.1:1", "raft_addr": "127.0.0.1:1"})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("cannot reach"));
    // Removing an unknown node: 400; the last voter cannot be removed (checked via 3 → 1).
    let a = n.call("DELETE", "/api/admin/cluster/nodes/9", Some(&admin), None);
    assert_eq!(a.status, 400, "{}", a.body);
    let view = n.get("/api/admin/cluster").body;
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(3), "{view}");
    let leader = view["leader"].as_u64().expect("leader");
    for node in view["nodes"].as_array().unwrap() {
        assert_eq!(node["reachable"], true, "{node}");
        let role = node["role"].as_str().unwrap();
        assert_eq!(
            role == "leader",
            node["id"].as_u64() == Some(leader),
            "{view}"
        );
        assert!(node["applied_index"].as_u64().unwrap() > 0, "{node}");
        assert!(node["last_log_index"].as_u64().unwrap() > 0, "{node}");
    }
}

fn free_block() -> u16 {
    loop {
        // HTTP ports base.., Raft ports base+1000..: all below the ephemeral range (see
        // `free_port`), since node 2 is killed and started again on its ports.
        let base = 20_000 + (rand::random::<u16>() % 11_000);
        // Claimed for the run, so no other test takes node 2's ports while it is down.
        let ok = (0..3).all(|i| {
            unmogrowp_tests::claim_port(base + i)
                && unmogrowp_tests::claim_port(base + 1000 + i)
                && std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", base + 1000 + i)).is_ok()
        });
        if ok {
            return base;
        }
    }
}

fn local_cluster(args: &[&str]) -> String {
    let out = std::process::Command::new(binary())
        .arg("local-cluster")
        .args(args)
        .env("UNMOGROWP_ADMIN_PASSWORD", unmogrowp_tests::ADMIN_PASSWORD)
        .output()
        .expect("run local-cluster");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "local-cluster {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn pid_of(dir: &std::path::Path, n: u32) -> u32 {
    std::fs::read_to_string(dir.join(format!("node{n}/pid")))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// Stops the nodes `local-cluster` started in a directory when the test ends, passed or
/// failed (a failed assertion must not leave three nodes running).
struct StopOnDrop(String);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new(binary())
            .args(["local-cluster", "stop", "--dir", &self.0])
            .output();
    }
}

#[test]
fn local_cluster_starts_only_what_is_not_running_and_stops_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_string_lossy().into_owned();
    let _stop = StopOnDrop(d.clone());
    let port = free_block();
    let p = port.to_string();
    let out = local_cluster(&["start", "--nodes", "3", "--dir", &d, "--http-port", &p]);
    assert!(out.contains("cluster ready"), "{out}");
    let pids: Vec<u32> = (1..=3).map(|n| pid_of(dir.path(), n)).collect();
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");

    // Data written through node 1 is read through node 3.
    let mut node1 = unmogrowp_tests::TestNode::new(dir.path().join("client1"), &[]);
    node1.port = port;
    let mut node3 = unmogrowp_tests::TestNode::new(dir.path().join("client3"), &[]);
    node3.port = port + 2;
    let key = node1.app_key("app1");
    node3.preset_key("app1", &key);
    let a = node1.post_json(
        "/v1/events",
        &json!([event("app1", 1, 1, 1_760_000_000_000)]),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(node3.count("SELECT count(*) FROM events"), 1);

    // kill -9 node 2; `start` again restarts only node 2.
    std::process::Command::new("kill")
        .arg("-9")
        .arg(pids[1].to_string())
        .status()
        .unwrap();
    wait_until(Duration::from_secs(10), "node 2 to die", || !alive(pids[1]));
    let out = local_cluster(&["start", "--nodes", "3", "--dir", &d, "--http-port", &p]);
    assert!(
        out.contains("node 1: already running") && out.contains("node 3: already running"),
        "{out}"
    );
    assert_eq!(pid_of(dir.path(), 1), pids[0]);
    assert_eq!(pid_of(dir.path(), 3), pids[2]);
    let new2 = pid_of(dir.path(), 2);
    assert_ne!(new2, pids[1]);
    assert!(alive(new2));

    let out = local_cluster(&["stop", "--dir", &d]);
    assert!(out.contains("stopped"), "{out}");
    for pid in [pids[0], new2, pids[2]] {
        wait_until(Duration::from_secs(30), "nodes to stop", || !alive(pid));
    }
    assert!(!dir.path().join("node1/pid").exists());
}
