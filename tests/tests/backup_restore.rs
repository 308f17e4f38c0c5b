//! `unmogrowp backup` from a live follower under load, and `unmogrowp restore` into a new
//! cluster: every event acknowledged before the backup started is there exactly once, users
//! and keys work, dedupe remembers the old event ids, and a second node joins the restored
//! cluster from its snapshot. Damaged archives are refused.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::cluster::{replica, Load, TestCluster, SECRET};
use unmogrowp_tests::{
    binary, event, event_uuid, free_port, TestNode, ADMIN_EMAIL, ADMIN_PASSWORD,
};

fn run(args: &[&str], env: &[(String, String)]) -> (bool, Value, String) {
    let mut cmd = Command::new(binary());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run unmogrowp");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// `unmogrowp backup --url URL --email admin --out OUT` with `password` in the environment.
fn backup(url: &str, out: &str, password: &str) -> (bool, Value, String) {
    run(
        &["backup", "--url", url, "--email", ADMIN_EMAIL, "--out", out],
        &[("UNMOGROWP_PASSWORD".to_string(), password.to_string())],
    )
}

/// Env of node `id` of a new cluster: its own Raft listener, the shared secret and the
/// members (so an empty node waits to be added instead of starting a cluster of its own).
fn member_env(id: u64, raft_port: u16, members: &str) -> Vec<(String, String)> {
    vec![
        ("UNMOGROWP_CLUSTER__MEMBERS".into(), members.to_string()),
        ("UNMOGROWP_NODE_ID".into(), id.to_string()),
        (
            "UNMOGROWP_CLUSTER__RAFT_ADDR".into(),
            format!("\"127.0.0.1:{raft_port}\""),
        ),
        ("UNMOGROWP_CLUSTER__SECRET".into(), SECRET.into()),
    ]
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn restore(archive: &Path, node: &TestNode) -> (bool, Value, String) {
    let mut args = vec![
        "restore".to_string(),
        "--from".into(),
        archive.display().to_string(),
        "--data-dir".into(),
        node.data_dir.display().to_string(),
        "--http-addr".into(),
        format!("127.0.0.1:{}", node.port),
    ];
    let refs: Vec<&str> = args.iter_mut().map(|s| s.as_str()).collect();
    run(&refs, &node.env)
}

#[test]
fn backup_of_a_live_follower_restores_into_a_new_cluster() {
    let mut old = TestCluster::new(3, &[]);
    old.start();
    let key = old.create_app("app1");
    let admin = old.nodes[0].admin_token();
    let a = old.nodes[0].call("POST", "/api/admin/users", Some(&admin), Some(json!({
        "email": "analyst@example.com", "name": "analyst", "password": "analyst-password-1", "roles": ["user"]
    })));
    assert_eq!(a.status, 201, "{}", a.body);
    let ports: Vec<u16> = old.nodes.iter().map(|n| n.port).collect();
    let load = Load::start(&ports, &key, "app1", 3, 25);
    std::thread::sleep(Duration::from_secs(4));

    // The backup, from a follower, while clients keep writing to every node.
    let (leader, _) = old.wait_leader(Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    let acked_before: BTreeSet<String> = load.ledger.acked.lock().unwrap().clone();
    let keep = tempfile::tempdir().unwrap();
    let archive = keep.path().join("backup.tar");
    let (ok, summary, out) = backup(
        &old.nodes[follower].base(),
        &archive.display().to_string(),
        ADMIN_PASSWORD,
    );
    assert!(ok, "backup failed: {out}");
    assert!(archive.exists() && !keep.path().join("backup.tar.partial").exists());
    std::thread::sleep(Duration::from_secs(1));
    let a = old.nodes[0].call("POST", "/api/admin/users", Some(&admin), Some(json!({
        "email": "late@example.com", "name": "late", "password": "late-password-12", "roles": ["user"]
    })));
    assert_eq!(a.status, 201, "{}", a.body);
    let ledger = load.stop();
    let audit = old.nodes[0]
        .sql("SELECT actor, outcome FROM audit_log WHERE action = 'cluster.backup' ORDER BY seq");
    assert_eq!(audit.len(), 1, "the backup is audited once: {audit:?}");
    assert_eq!(audit[0][1], "success");
    // Not for a non-admin.
    let user = old.nodes[0].login("analyst@example.com", "analyst-password-1")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let a = old.nodes[1].call("POST", "/api/admin/backup", Some(&user), None);
    assert_eq!(a.status, 403, "{}", a.body);
    drop(old);
    assert!(
        summary["rows"].as_u64().unwrap() >= acked_before.len() as u64,
        "{summary}"
    );

    // A new cluster: node 1 restored from the archive, node 2 empty.
    let dir = tempfile::tempdir().unwrap();
    let (r1, r2) = (free_port(), free_port());
    let mut n1 = TestNode::new(dir.path().join("n1"), &[]);
    let mut n2 = TestNode::new(dir.path().join("n2"), &[]);
    let members = format!(
        "[{{id = 1, http_addr = \"127.0.0.1:{}\", raft_addr = \"127.0.0.1:{r1}\"}}, {{id = 2, http_addr = \"127.0.0.1:{}\", raft_addr = \"127.0.0.1:{r2}\"}}]",
        n1.port, n2.port
    );
    n1.env.extend(member_env(1, r1, &members));
    n2.env.extend(member_env(2, r2, &members));
    let (ok, report, out) = restore(&archive, &n1);
    assert!(ok, "restore failed: {out}");
    assert_eq!(report["rows"], summary["rows"], "{report}");
    // A second restore into the same (now used) directory is refused.
    let (ok, _, out) = restore(&archive, &n1);
    assert!(!ok && out.contains("not empty"), "{out}");

    n1.start();
    n1.preset_key("app1", &key);
    let r = replica(&n1);
    let lost: Vec<&String> = acked_before.difference(&r.ids).collect();
    assert!(
        lost.is_empty(),
        "{} events acknowledged before the backup are missing",
        lost.len()
    );
    assert_eq!(r.rows, r.ids.len() as u64, "duplicate rows after restore");
    let acked = ledger.acked.lock().unwrap().clone();
    let unknown = ledger.unknown.lock().unwrap().clone();
    let phantoms = r
        .ids
        .iter()
        .filter(|id| !acked.contains(*id) && !unknown.contains(*id))
        .count();
    assert_eq!(phantoms, 0, "events nobody sent");
    assert_eq!(r.rows, report["rows"].as_u64().unwrap());

    // Users, passwords and app keys came along; what was created after the backup did not.
    n1.login("analyst@example.com", "analyst-password-1");
    let a = n1
        .try_post_raw(
            "/api/auth/login",
            &[("content-type", "application/json")],
            json!({"email": "late@example.com", "password": "late-password-12"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(
        a.status, 401,
        "a user created after the backup exists: {}",
        a.body
    );
    // Dedupe remembers the old ids; new events are taken.
    // The exact event a load client sent (client c posts event_uuid(c, seq) for seq = 0, 1, …).
    let (c, s) = (1000..1003u64)
        .flat_map(|c| (0..10_000u64).map(move |s| (c, s)))
        .find(|(c, s)| acked_before.contains(&event_uuid(*c, *s)))
        .expect("an acknowledged event");
    let resent = event("app1", c, s, 1_760_000_000_000 + s as i64);
    let a = n1.post_json(
        "/v1/events",
        &json!([resent, event("app1", 7, 1, 1_760_000_000_000)]),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(
        (a.body["accepted"].as_u64(), a.body["duplicates"].as_u64()),
        (Some(1), Some(1)),
        "{}",
        a.body
    );

    // Node 2 joins the restored cluster and catches up from its snapshot.
    // Not ready until it is added: it waits for a leader.
    n2.spawn();
    n2.wait_healthy(Duration::from_secs(60));
    let admin = n1.admin_token();
    let a = n1.call(
        "POST",
        "/api/admin/cluster/nodes",
        Some(&admin),
        Some(json!({"id": 2, "http_addr": format!("127.0.0.1:{}", n2.port), "raft_addr": format!("127.0.0.1:{r2}")})),
    );
    assert_eq!(a.status, 200, "add node 2: {}", a.body);
    wait_until(Duration::from_secs(120), "node 2 to be promoted", || {
        n1.call(
            "POST",
            "/api/admin/cluster/nodes/2/promote",
            Some(&admin),
            None,
        )
        .status
            == 200
    });
    n2.wait_ready(Duration::from_secs(60));
    n2.preset_key("app1", &key);
    let on_n1 = replica(&n1);
    wait_until(
        Duration::from_secs(60),
        "node 2 to hold the same events",
        || replica(&n2) == on_n1,
    );
    n2.login("analyst@example.com", "analyst-password-1");
}

/// Archives that were cut short or damaged are refused by `restore`, which leaves nothing
/// half-restored behind; and the default quick start (`./data`, relative) serves queries
/// over flushed segments.
#[test]
fn damaged_archives_are_refused_and_relative_data_dirs_work() {
    let dir = tempfile::tempdir().unwrap();
    // The quick start: `unmogrowp serve` with the default ./data (relative), run from `dir`.
    let mut node = TestNode::new(
        dir.path().join("data"),
        &[("UNMOGROWP_ENGINE__FLUSH_INTERVAL_SECS", "1")],
    );
    node.start();
    let events: Vec<Value> = (0..50)
        .map(|i| event("app1", 1, i, 1_760_000_000_000 + i as i64))
        .collect();
    assert_eq!(node.post_json("/v1/events", &json!(events)).status, 202);
    wait_until(Duration::from_secs(30), "a flushed segment", || {
        node.metric("unmogrowp_engine_segments")
            .is_some_and(|s| s >= 1.0)
    });
    assert_eq!(node.count("SELECT count(*) FROM events"), 50);

    let archive = dir.path().join("b.tar");
    let (ok, _, out) = backup(&node.base(), &archive.display().to_string(), ADMIN_PASSWORD);
    assert!(ok, "{out}");
    let (ok, _, out) = backup(&node.base(), "/nonexistent/dir/b.tar", ADMIN_PASSWORD);
    assert!(!ok && out.contains("nonexistent"), "{out}");
    let (ok, _, out) = backup(&node.base(), "x.tar", "wrong-password-123");
    assert!(!ok && out.contains("401"), "{out}");
    node.kill9();

    let bytes = std::fs::read(&archive).unwrap();
    let half = dir.path().join("half.tar");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let flipped = dir.path().join("flipped.tar");
    let mut f = bytes.clone();
    // Inside the Parquet segment's data (the largest member).
    let at = f.windows(4).position(|w| w == b"PAR1").unwrap() + 64;
    f[at] ^= 0x01;
    std::fs::write(&flipped, &f).unwrap();
    for (bad, why) in [(&half, "truncated"), (&flipped, "damaged")] {
        let target = dir.path().join(format!("restored-{why}"));
        let (ok, _, out) = run(
            &[
                "restore",
                "--from",
                &bad.display().to_string(),
                "--data-dir",
                &target.display().to_string(),
            ],
            &[],
        );
        assert!(!ok, "a {why} archive was restored: {out}");
        assert!(out.contains(why), "{why}: {out}");
        assert!(
            !target.join("table").exists() && !target.join("log").exists(),
            "a {why} archive left a half-restored node"
        );
    }
}
