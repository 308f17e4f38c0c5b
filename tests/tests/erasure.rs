//! Erasure on a 3-node cluster under ingest (issue 29; docs/privacy.md): one user's events
//! are erased while clients keep sending, the leader is killed with `kill -9` in the middle
//! of its segment rewrites and comes back. Afterwards, on every node and in every mirror
//! (real Postgres, ClickHouse 18.16 and a Kafka broker): no row of that user from before the
//! request, every other acknowledged event exactly once (the ledger), the replicas equal;
//! Kafka holds a tombstone for every erased event it had; the audit log names the request but
//! never the user; bad requests get clear errors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::cluster::{audit, Ledger, Load, TestCluster};
use unmogrowp_tests::peers::{ClickHouse, Kafka, Postgres};

const ERASED_USER: u64 = 5;

/// The load's user of an event id ([`unmogrowp_tests::event`]: `user-{seq % 1013}`, the
/// sequence number in the id's low 64 bits).
fn user_of(id: &str) -> u64 {
    let u = uuid::Uuid::parse_str(id).expect("uuid").as_u128();
    (u as u64) % 1013
}

/// The ledger with the erased user's events moved to "may or may not exist" (those sent
/// before the request are gone, later ones stay).
fn without_user(l: &Ledger, user: u64) -> Ledger {
    let out = Ledger::default();
    out.merge(l);
    let acked = out.acked.lock().expect("ledger").clone();
    let theirs: BTreeSet<String> = acked.into_iter().filter(|id| user_of(id) == user).collect();
    out.acked
        .lock()
        .expect("ledger")
        .retain(|id| !theirs.contains(id));
    out.unknown.lock().expect("ledger").extend(theirs);
    out
}

/// Whether any file under `dir` holds `needle`'s bytes.
fn holds(dir: &std::path::Path, needle: &str) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            holds(&p, needle)
        } else {
            std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        }
    })
}

fn status(c: &TestCluster, i: usize, id: &str) -> Option<Value> {
    let a = c.nodes[i]
        .try_get(&format!("/api/admin/erasure/{id}"))
        .ok()?;
    (a.status == 200).then_some(a.body)
}

#[test]
fn erasing_a_user_under_load_through_a_leader_kill_reaches_every_node_and_mirror() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = Postgres::start(dir.path());
    let ch = ClickHouse::start(dir.path());
    let kafka = Kafka::start(dir.path());
    let mirrors = format!(
        r#"[{{name = "pg", kind = "postgres", url = "{}"}},
            {{name = "ch", kind = "clickhouse", url = "{}", schema = "legacy"}},
            {{name = "kafka", kind = "kafka", url = "{}", topic = "events-raw"}}]"#,
        pg.url("analytics"),
        ch.url("analytics"),
        kafka.brokers()
    );
    // Small flushes and no compaction: the user's events end up in many segments, so the
    // rewrite takes long enough to be interrupted.
    let mut c = TestCluster::new(
        3,
        &[
            ("UNMOGROWP_MIRROR", mirrors.as_str()),
            ("UNMOGROWP_ENGINE__FLUSH_ROWS", "200"),
            ("UNMOGROWP_ENGINE__COMPACTION_MIN_SEGMENTS", "0"),
        ],
    );
    c.start();
    let key = c.create_app("shop");
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();
    let load = Load::start(&ports, &key, "shop", 2, 50);
    std::thread::sleep(Duration::from_secs(8));

    // Bad requests: clear errors, nothing applied.
    let n0 = &c.nodes[0];
    for (body, status) in [
        (json!({"app_id": "shop"}), 400),
        (json!({"app_id": "shop", "user_id": ""}), 400),
        (
            json!({"app_id": "shop", "user_id": "user-5", "email": "x"}),
            400,
        ),
        (json!({"app_id": "nope", "user_id": "user-5"}), 404),
    ] {
        let a = n0.post_json("/api/admin/erasure", &body);
        assert_eq!(a.status, status, "{body}: {}", a.body);
        assert!(a.body["error"]["code"].is_string(), "{}", a.body);
    }
    let a = n0.get("/api/admin/erasure/00000000-0000-4000-8000-000000000000");
    assert_eq!(a.status, 404, "{}", a.body);

    // The search used at the end sees event ids in the log files: one of the user's is in
    // every node's log now.
    let early = load
        .ledger
        .acked
        .lock()
        .expect("ledger")
        .iter()
        .find(|id| user_of(id) == ERASED_USER)
        .cloned()
        .expect("an acknowledged event of the user");
    for node in &c.nodes {
        assert!(
            holds(&node.data_dir.join("log"), &early),
            "node {} has no log file holding {early}",
            node.port
        );
    }
    let (l, _) = c.wait_leader(Duration::from_secs(30));
    let a = c.nodes[(l + 1) % 3].post_json(
        "/api/admin/erasure",
        &json!({"app_id": "shop", "user_id": format!("user-{ERASED_USER}")}),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let id = a.body["request_id"]
        .as_str()
        .expect("request_id")
        .to_string();

    // kill -9 the leader while it rewrites: some segments done, some not.
    let t0 = Instant::now();
    let seen = loop {
        if let Some(s) = status(&c, l, &id) {
            if s["segments_rewritten"].as_u64() > Some(0) || s["segments_pending"] == 0 {
                break s;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the leader never started the erasure"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    c.nodes[l].kill9();
    assert!(
        seen["segments_pending"].as_u64() > Some(0),
        "the rewrite finished before the kill (make it longer): {seen}"
    );
    println!("ERASURE: killed the leader at {seen}");
    std::thread::sleep(Duration::from_secs(3));
    c.nodes[l].start();
    std::thread::sleep(Duration::from_secs(3));
    let ledger = load.stop();
    assert!(ledger.acked() > 2000, "too little load: {}", ledger.acked());

    // No node stopped applying the log (an apply error shuts a node's state machine down).
    for (i, node) in c.nodes.iter().enumerate() {
        let st = c.status(i);
        if st.as_ref().is_some_and(|s| s["state"] == "shutdown") {
            let errors: Vec<String> = node
                .log_text()
                .lines()
                .filter(|l| l.contains("ERROR") || l.contains("panicked"))
                .take(10)
                .map(str::to_string)
                .collect();
            panic!(
                "node {} stopped applying the log: {st:?}\n{}",
                i + 1,
                errors.join("\n")
            );
        }
    }
    // Done everywhere: every node's segments, every mirror.
    c.wait_converged(Duration::from_secs(120));
    let t0 = Instant::now();
    let last: Vec<Option<Value>> = loop {
        let last: Vec<Option<Value>> = (0..3).map(|i| status(&c, i, &id)).collect();
        if last
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s["state"] == "done"))
        {
            break last;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "not done: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let s = last[0].clone().expect("status");
    let index = s["log_index"].as_u64().expect("log_index");
    let erased = s["events_erased"].as_u64().expect("events_erased");
    assert!(erased > 0, "{s}");
    for st in last.iter().flatten() {
        assert_eq!(
            st["events_erased"], erased,
            "every node erased the same: {last:?}"
        );
        assert_eq!(st["mirrors"].as_array().map(Vec::len), Some(3), "{st}");
    }
    println!("ERASURE: {s}");

    // Every node: none of the user's rows before the request; the rest exactly the ledger.
    let user = format!("user-{ERASED_USER}");
    for node in &c.nodes {
        assert_eq!(
            node.count(&format!(
                "SELECT count(*) FROM events WHERE user_id = '{user}' AND log_index < {index}"
            )),
            0
        );
    }
    let rest = without_user(&ledger, ERASED_USER);
    let a = audit(&mut c, &rest);
    assert!(a.is_clean(), "{a:?}");

    // Mirrors: the same, in each sink.
    let pg_old = pg.psql(
        "analytics",
        &format!("SELECT count(*) FROM events WHERE user_id = '{user}' AND log_index < {index}"),
    );
    assert_eq!(pg_old.trim(), "0", "postgres still holds the user's rows");
    let ch_old = ch.query(&format!(
        "SELECT count() FROM events WHERE user_id = '{user}' AND log_index < {index}"
    ));
    assert_eq!(ch_old.trim(), "0", "clickhouse still holds the user's rows");
    let acked = rest.acked.lock().expect("ledger").clone();
    let pg_ids: BTreeSet<String> = pg
        .psql("analytics", "SELECT event_id FROM events")
        .lines()
        .map(str::to_string)
        .collect();
    let ch_ids: BTreeSet<String> = ch
        .query("SELECT event_id FROM events")
        .lines()
        .map(str::to_string)
        .collect();
    for (what, ids) in [("postgres", &pg_ids), ("clickhouse", &ch_ids)] {
        let missing = acked.difference(ids).count();
        assert_eq!(missing, 0, "{what}: acknowledged events missing");
    }
    let records = kafka.records("events-raw");
    let tombstones: BTreeSet<&str> = records
        .iter()
        .filter(|r| r.tombstone)
        .map(|r| r.key.as_str())
        .collect();
    let owed: Vec<&str> = records
        .iter()
        .filter(|r| !r.tombstone && r.log_index < index)
        .map(|r| r.key.as_str())
        .filter(|k| {
            k.rsplit('/')
                .next()
                .is_some_and(|id| user_of(id) == ERASED_USER)
        })
        .collect();
    assert!(!owed.is_empty(), "the user had events in kafka");
    let untombed: Vec<&&str> = owed
        .iter()
        .filter(|k| !tombstones.contains(**k))
        .take(3)
        .collect();
    assert!(
        untombed.is_empty(),
        "kafka: erased events without a tombstone: {untombed:?}"
    );
    println!(
        "ERASURE: acked {}, {erased} erased per node, kafka {} records ({} tombstones)",
        ledger.acked(),
        records.len(),
        tombstones.len()
    );

    // The audit log: the request and its completion, never the user id.
    let (l2, _) = c.wait_leader(Duration::from_secs(30));
    let a = c.nodes[l2].get("/api/admin/audit?order=desc&action=privacy.erasure&limit=100");
    assert_eq!(a.status, 200, "{}", a.body);
    let text = a.body.to_string();
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("privacy.erasure.done"), "{text}");
    assert!(
        !text.contains(&user),
        "the audit log names the erased user: {text}"
    );
    let m = c.nodes[l2].metric("unmogrowp_engine_erasure_rows_removed_total");
    assert!(m.is_some_and(|v| v > 0.0), "{m:?}");
    // Sealed: the identifiers are forgotten on every node, and each node's log is purged
    // past the request (a snapshot right after), so the raw events leave the log too.
    let t0 = Instant::now();
    while !(0..3).all(|i| status(&c, i, &id).is_some_and(|s| s["sealed"] == true)) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not sealed everywhere: {:?}",
            (0..3).map(|i| status(&c, i, &id)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for node in &c.nodes {
        let t0 = Instant::now();
        loop {
            let gone = owed
                .iter()
                .filter_map(|k| k.rsplit('/').next())
                .all(|id| !holds(&node.data_dir.join("log"), id));
            let purged = node.metric("unmogrowp_raft_purged_index").unwrap_or(0.0);
            if purged >= index as f64 && gone {
                break;
            }
            if purged >= index as f64 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the log of node {} is not purged past the erasure ({purged} < {index}, erased ids gone from its files: {gone})",
                node.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
