//! Bad mirror configuration and unreachable sinks (issue 26): the node starts and serves ingest
//! and SQL, each broken mirror says why in the API and metrics, secrets in URLs never appear in
//! the API, the metrics, the log or the audit log, and the admin endpoints refuse bad input
//! with clear errors.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::peers::{Postgres, PG_PASSWORD};
use unmogrowp_tests::{free_port, TestNode};

fn mirrors(node: &TestNode) -> Vec<Value> {
    let a = node.get("/api/admin/mirrors");
    assert_eq!(a.status, 200, "{}", a.body);
    a.body.as_array().expect("list").clone()
}

fn find(all: &[Value], name: &str) -> Value {
    all.iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no mirror {name} in {all:?}"))
}

#[test]
fn broken_mirrors_report_their_error_and_affect_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = Postgres::start(dir.path());
    // A table that exists with other columns.
    pg.psql(
        "analytics",
        "CREATE TABLE wrong (event_id text, app_id integer)",
    );
    let dead = free_port();
    let env = format!(
        r#"[{{name = "badkind", kind = "mysql", url = "x"}},
            {{name = "badurl", kind = "clickhouse", url = "ftp://u:{PG_PASSWORD}@h/"}},
            {{name = "wrongcols", kind = "postgres", url = "{}", table = "wrong"}},
            {{name = "deadpg", kind = "postgres", url = "postgres://u:{PG_PASSWORD}@127.0.0.1:{dead}/db"}},
            {{name = "deadkafka", kind = "kafka", url = "127.0.0.1:{dead}"}},
            {{name = "ok", kind = "postgres", url = "{}"}}]"#,
        pg.url("analytics"),
        pg.url("analytics")
    );
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_MIRROR", env.as_str())],
    );
    node.start();
    node.app_key("shop");
    for i in 0..20 {
        let a = node.post_events("shop", 1, i * 100, 100).expect("ingest");
        assert_eq!(a.status, 202, "{}", a.body);
    }
    assert_eq!(node.count("SELECT count(*) FROM events"), 2000);

    // Every broken mirror says why; the good one catches up.
    let t0 = Instant::now();
    let all = loop {
        let all = mirrors(&node);
        let ok = find(&all, "ok");
        let reported = ["wrongcols", "deadpg", "deadkafka"]
            .iter()
            .all(|n| find(&all, n)["last_error"].is_string());
        if ok["lag_events"] == 0 && ok["sent_events"] == 2000 && reported {
            break all;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{all:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let text = |n: &str| {
        find(&all, n)["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        text("badkind").contains("unknown kind"),
        "{}",
        text("badkind")
    );
    assert!(
        text("badurl").contains("expected http"),
        "{}",
        text("badurl")
    );
    assert!(
        text("wrongcols").contains("app_id is integer, expected text")
            && text("wrongcols").contains("timestamp is missing"),
        "{}",
        text("wrongcols")
    );
    for n in ["badkind", "badurl", "wrongcols", "deadpg", "deadkafka"] {
        assert_eq!(find(&all, n)["state"], "retrying", "{n}: {all:?}");
        assert_eq!(find(&all, n)["lag_events"], 2000, "{n}");
    }
    assert_eq!(find(&all, "ok")["state"], "running");
    assert_eq!(
        pg.psql(
            "analytics",
            "SELECT count(*), count(DISTINCT event_id) FROM events"
        )
        .trim(),
        "2000|2000"
    );

    // Pause and resume go through the log and show at once.
    let a = node.post_json("/api/admin/mirrors/deadpg/pause", &json!({}));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["state"], "paused");
    let a = node.post_json("/api/admin/mirrors/deadpg/resume", &json!({}));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_ne!(find(&mirrors(&node), "deadpg")["state"], "paused");

    // Bad input: clear errors in the API's shape.
    let bad = [
        ("/api/admin/mirrors/nope/pause", json!({}), 404),
        ("/api/admin/mirrors/badkind/pause", json!({}), 409),
        ("/api/admin/mirrors/ok/replay", json!({}), 400),
        (
            "/api/admin/mirrors/ok/replay",
            json!({"from_log_index": 1, "from_time": 0}),
            400,
        ),
        (
            "/api/admin/mirrors/ok/replay",
            json!({"from_log_index": 0}),
            400,
        ),
        (
            "/api/admin/mirrors/ok/replay",
            json!({"from_log_index": 99_999_999}),
            400,
        ),
        (
            "/api/admin/mirrors/ok/replay",
            json!({"from_time": "yesterday"}),
            400,
        ),
        (
            "/api/admin/mirrors/ok/replay",
            json!({"from_log_index": 1, "colour": 1}),
            400,
        ),
    ];
    for (path, body, status) in bad {
        let a = node.post_json(path, &body);
        assert_eq!(a.status, status, "{path} {body}: {}", a.body);
        assert!(
            a.body["error"]["code"].is_string() && a.body["error"]["message"].is_string(),
            "{}",
            a.body
        );
    }
    // A replay by time re-sends and leaves no duplicate.
    let a = node.post_json(
        "/api/admin/mirrors/ok/replay",
        &json!({"from_time": "2000-01-01T00:00:00Z"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let t0 = Instant::now();
    while find(&mirrors(&node), "ok")["sent_events"] != 4000
        || find(&mirrors(&node), "ok")["lag_events"] != 0
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{:?}",
            mirrors(&node)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        pg.psql(
            "analytics",
            "SELECT count(*), count(DISTINCT event_id) FROM events"
        )
        .trim(),
        "2000|2000"
    );

    // No secret anywhere a person reads.
    let metrics = node.get("/metrics").body.as_str().unwrap_or("").to_string();
    assert!(
        metrics.contains("unmogrowp_mirror_lag_events{mirror=\"deadpg\"} 2000"),
        "{metrics}"
    );
    let audit = node.get("/api/admin/audit?limit=1000").body.to_string();
    assert!(
        audit.contains("mirror.pause") && audit.contains("mirror.replay"),
        "{audit}"
    );
    let listed = node.get("/api/admin/mirrors").body.to_string();
    node.terminate();
    let log = std::fs::read_to_string(dir.path().join("node.log")).expect("the node's log");
    for (what, text) in [
        ("API", &listed),
        ("metrics", &metrics),
        ("audit log", &audit),
        ("log", &log),
    ] {
        assert!(
            !text.contains(PG_PASSWORD),
            "the {what} shows a sink's password"
        );
    }
}
