//! Mirrors to real Postgres, ClickHouse (18.16, legacy schema) and Kafka (tansu) from a 3-node
//! cluster under load (issue 26): kill -9 of the node running the mirrors, each sink down for
//! a while, the log purged while a sink is down, a replay from an old position. Afterwards each
//! sink holds exactly the acknowledged events of its apps (plus, possibly, events whose outcome
//! was unknown to the client), none twice (Kafka: none missing, duplicates only of the kind
//! compat/README.md documents), and every mirror's lag returns to 0.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::cluster::{Ledger, Load, TestCluster};
use unmogrowp_tests::peers::{ClickHouse, Kafka, Postgres, CH_PASSWORD, PG_PASSWORD};
use unmogrowp_tests::TestNode;

fn mirrors_env(pg: &Postgres, ch: &ClickHouse, kafka: &Kafka) -> String {
    format!(
        r#"[{{name = "pg", kind = "postgres", url = "{}", apps = ["shop"], batch_events = 5000}},
            {{name = "ch", kind = "clickhouse", url = "{}", schema = "legacy"}},
            {{name = "kafka", kind = "kafka", url = "{}", topic = "events-raw"}}]"#,
        pg.url("analytics"),
        ch.url("analytics"),
        kafka.brokers()
    )
}

fn mirrors(node: &TestNode) -> Vec<Value> {
    let a = node.get("/api/admin/mirrors");
    assert_eq!(a.status, 200, "{}", a.body);
    a.body.as_array().expect("list").clone()
}

fn mirror(node: &TestNode, name: &str) -> Value {
    mirrors(node)
        .into_iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no mirror {name}"))
}

/// Waits until every mirror has caught up (lag 0, running) as `node` sees it.
fn wait_caught_up(node: &TestNode, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let all = mirrors(node);
        if all
            .iter()
            .all(|m| m["lag_events"] == 0 && m["state"] == "running")
        {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "mirrors did not catch up within {limit:?}: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The sink's ids against the ledger: every acknowledged id present, nothing refused or
/// invented, none twice (`counts` has one entry per stored row).
fn check_sink(what: &str, ids: &[String], ledger: &Ledger, extra: &BTreeSet<String>) {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        set.len(),
        ids.len(),
        "{what}: {} ids stored twice",
        ids.len() - set.len()
    );
    let acked = ledger.acked.lock().expect("ledger").clone();
    let unknown = ledger.unknown.lock().expect("ledger").clone();
    let missing: Vec<&String> = acked.difference(&set).take(5).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} acknowledged events missing, e.g. {missing:?}",
        acked.difference(&set).count()
    );
    let invented: Vec<&String> = set
        .iter()
        .filter(|id| !acked.contains(*id) && !unknown.contains(*id) && !extra.contains(*id))
        .take(5)
        .collect();
    assert!(
        invented.is_empty(),
        "{what}: events nobody sent: {invented:?}"
    );
}

#[test]
fn mirrors_hold_every_acknowledged_event_once_through_kills_outages_and_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = Postgres::start(dir.path());
    let mut ch = ClickHouse::start(dir.path());
    let kafka = Kafka::start(dir.path());
    let env = mirrors_env(&pg, &ch, &kafka);
    // A small log threshold: the log is purged while a sink is down, so the mirror catches up
    // from segments.
    let mut c = TestCluster::new(
        3,
        &[
            ("UNMOGROWP_MIRROR", env.as_str()),
            ("UNMOGROWP_RAFT__SNAPSHOT_LOG_BYTES", "2000000"),
            ("UNMOGROWP_RAFT__KEEP_AFTER_SNAPSHOT", "10"),
            ("UNMOGROWP_ENGINE__FLUSH_ROWS", "5000"),
        ],
    );
    c.start();
    let key = c.create_app("shop");
    let blog_key = c.create_app("blog");
    // App blog anonymizes at ingest (issue 29): its sinks must never see a raw id.
    let admin = c.nodes[0].admin_token();
    let a = c.nodes[0].call(
        "PATCH",
        "/api/apps/blog",
        Some(&admin),
        Some(json!({"privacy": {"ip": "truncate", "user_id": "hash", "device_id": "encrypt"}})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let ports: Vec<u16> = c.nodes.iter().map(|n| n.port).collect();

    // The secret of a sink never shows in the API.
    let listed = c.nodes[0].get("/api/admin/mirrors").body.to_string();
    assert!(
        !listed.contains(PG_PASSWORD) && !listed.contains(CH_PASSWORD),
        "{listed}"
    );

    let load = Load::start(&ports, &key, "shop", 2, 50);
    let blog = Load::start(&ports[..1], &blog_key, "blog", 1, 20);
    std::thread::sleep(Duration::from_secs(4));

    // kill -9 the node running the mirrors (the leader), mid-batch; bring it back later.
    let (l, _) = c.wait_leader(Duration::from_secs(30));
    c.nodes[l].kill9();
    std::thread::sleep(Duration::from_secs(3));
    let (l2, _) = c.wait_leader(Duration::from_secs(30));
    assert_ne!(l, l2);
    c.nodes[l].start();

    // Postgres down long enough for the log to be purged past its mirror's cursor.
    pg.stop_server();
    let t0 = Instant::now();
    let stuck_at = mirror(&c.nodes[l2], "pg")["cursor"].as_u64().unwrap_or(0);
    loop {
        let purged = c.nodes[l2]
            .metric("unmogrowp_raft_purged_index")
            .unwrap_or(-1.0);
        if purged > stuck_at as f64 && t0.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the log was not purged past the stopped mirror's cursor {stuck_at} (purged {purged})"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let pg_state = mirror(&c.nodes[(l2 + 1) % 3], "pg");
    assert_eq!(pg_state["state"], "retrying", "{pg_state}");
    assert!(pg_state["last_error"].is_string(), "{pg_state}");
    assert!(!pg_state.to_string().contains(PG_PASSWORD));
    pg.start_server();

    // ClickHouse killed and restarted; the broker frozen for a while.
    ch.kill();
    kafka.freeze(true);
    std::thread::sleep(Duration::from_secs(5));
    ch.start_server();
    kafka.freeze(false);
    std::thread::sleep(Duration::from_secs(3));

    let ledger = load.stop();
    let blog_ledger = blog.stop();
    assert!(ledger.acked() > 1000, "too little load: {}", ledger.acked());
    c.wait_converged(Duration::from_secs(120));
    let (l3, _) = c.wait_leader(Duration::from_secs(30));
    wait_caught_up(&c.nodes[l3], Duration::from_secs(180));

    // A replay from the beginning: the sinks that deduplicate stay free of duplicates.
    for name in ["pg", "ch"] {
        let a = c.nodes[(l3 + 1) % 3].post_json(
            &format!("/api/admin/mirrors/{name}/replay"),
            &json!({"from_log_index": 1}),
        );
        assert_eq!(a.status, 200, "replay {name}: {}", a.body);
    }
    std::thread::sleep(Duration::from_secs(1));
    wait_caught_up(&c.nodes[l3], Duration::from_secs(180));

    let none = BTreeSet::new();
    let pg_ids: Vec<String> = pg
        .psql("analytics", "SELECT event_id FROM events")
        .lines()
        .map(str::to_string)
        .collect();
    check_sink("postgres", &pg_ids, &ledger, &none);
    assert_eq!(
        pg.psql(
            "analytics",
            "SELECT count(*) FROM events WHERE app_id <> 'shop'"
        )
        .trim(),
        "0",
        "the pg mirror takes only app shop"
    );
    // Both apps' clients number their events alike: ids are compared per app.
    let mut ch_rows = 0;
    for (app, l) in [("shop", &ledger), ("blog", &blog_ledger)] {
        let ids: Vec<String> = ch
            .query(&format!(
                "SELECT event_id FROM events WHERE app_id = '{app}'"
            ))
            .lines()
            .map(str::to_string)
            .collect();
        check_sink(&format!("clickhouse {app}"), &ids, l, &none);
        ch_rows += ids.len();
    }
    // The anonymizing app's rows reached ClickHouse transformed only.
    let raw = ch.query(
        "SELECT count() FROM events WHERE app_id = 'blog' AND (user_id LIKE 'user-%' OR device_id LIKE 'dev-%' OR device_id NOT LIKE 'enc1:%' OR (ip != '' AND ip NOT LIKE '%.0'))",
    );
    assert_eq!(raw.trim(), "0", "raw identifiers of app blog in clickhouse");
    let records = kafka.keys("events-raw");
    let mut dups = 0;
    for (app, l) in [("shop", &ledger), ("blog", &blog_ledger)] {
        let ids: Vec<String> = records
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{app}/")).map(str::to_string))
            .collect();
        check_sink(&format!("kafka {app}"), &ids, l, &none);
    }
    for n in records.values() {
        dups += n - 1;
    }
    println!(
        "MIRRORS: acked {} (+{} blog), postgres {} rows, clickhouse {ch_rows} rows, kafka {} records ({} distinct, {dups} re-sent after failover/outage)",
        ledger.acked(),
        blog_ledger.acked(),
        pg_ids.len(),
        records.values().sum::<u64>(),
        records.len()
    );

    // The appliance itself holds the same as the sinks (nothing lost on the way).
    let stored = c.nodes[l3].count("SELECT count(*) FROM events");
    assert_eq!(
        stored as usize, ch_rows,
        "clickhouse holds every stored event"
    );

    let m = c.nodes[l3]
        .get("/metrics")
        .body
        .as_str()
        .unwrap_or("")
        .to_string();
    for family in [
        "unmogrowp_mirror_lag_events{mirror=\"pg\"} 0",
        "unmogrowp_mirror_lag_seconds{mirror=\"ch\"} 0",
        "unmogrowp_mirror_sent_events_total{mirror=\"kafka\"}",
        "unmogrowp_mirror_errors_total{mirror=\"pg\"}",
    ] {
        assert!(m.contains(family), "/metrics lacks {family}");
    }
}
