//! Per-app data protection at ingest (issue 29): with `ip=truncate, user_id=hash,
//! device_id=encrypt` no raw value reaches any byte of the data directory or of a backup
//! archive; uniques and attribution equal the same events sent to an app that keeps them;
//! an admin reveals an encrypted device id (audited); consent is required when asked for;
//! bad settings and non-admins get clear errors.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use unmogrowp_tests::{binary, TestNode, ADMIN_EMAIL, ADMIN_PASSWORD};

const START: i64 = 1_765_000_000_000;
const HOUR: i64 = 3_600_000;

/// The same history for `app`: 40 devices of 30 users click one of 3 campaigns and most
/// install an hour later; `tag` makes the raw identifiers of the two apps different, so a
/// byte found in the data directory tells which app it came from.
fn history(app: &str, tag: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for d in 0..40u32 {
        let user = format!("{tag}-user-{}@example.com", d % 30);
        let device = format!("{tag}-device-{d:04}");
        // Documentation networks: the plain app's 198.51.100.x, the private app's 203.0.113.x.
        let net = if tag == "plain" {
            "198.51.100"
        } else {
            "203.0.113"
        };
        let ip = format!("{net}.{}", 100 + d);
        let campaign = format!("camp-{}", d % 3);
        out.push(
            json!({"event_type": "ad_click", "app_id": app, "device_id": device,
            "user_id": user, "ip": ip, "timestamp": START + i64::from(d) * 60_000,
            "attribution": {"campaign": campaign, "source": "google", "medium": "cpc"}}),
        );
        if d % 4 != 0 {
            out.push(
                json!({"event_type": "install", "app_id": app, "device_id": device,
                "user_id": user, "ip": ip, "timestamp": START + HOUR + i64::from(d) * 60_000}),
            );
        }
    }
    out
}

fn post(node: &TestNode, events: &[Value]) -> Value {
    let a = node
        .try_post(
            "/v1/events",
            &[("content-type", "application/json")],
            &serde_json::to_vec(events).expect("json"),
        )
        .expect("post");
    assert_eq!(a.status, 202, "{}", a.body);
    a.body
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The files under `dir` holding any of `needles`, with the needle.
fn holding(dir: &Path, needles: &[String]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut found = Vec::new();
    for f in all {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push((f.display().to_string(), n.clone()));
            }
        }
    }
    found
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (H. Hinnant's civil_from_days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn patch(node: &TestNode, app: &str, token: &str, body: Value) -> unmogrowp_tests::Answer {
    node.call(
        "PATCH",
        &format!("/api/apps/{app}"),
        Some(token),
        Some(body),
    )
}

#[test]
fn no_raw_identifier_reaches_the_data_dir_or_a_backup_and_counts_stay() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[("UNMOGROWP_ENGINE__FLUSH_INTERVAL_SECS", "1")],
    );
    node.start();
    node.app_key("plain");
    node.app_key("private");
    let admin = node.admin_token();
    let a = patch(
        &node,
        "private",
        &admin,
        json!({"privacy": {"ip": "truncate", "user_id": "hash", "device_id": "encrypt"}}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["privacy"],
        json!({"retention_days": 730, "ip": "truncate", "user_id": "hash",
               "device_id": "encrypt", "require_consent": false})
    );
    let plain = history("plain", "plain");
    let private = history("private", "secret");
    assert_eq!(post(&node, &plain)["accepted"], 70);
    assert_eq!(post(&node, &private)["accepted"], 70);

    // Counting still works on the transformed values: the same numbers as the plain app.
    let counts = |app: &str| {
        node.sql(&format!(
            "SELECT count(), uniqExact(user_id), uniqExact(device_id), uniqExact(ip) FROM events WHERE app_id = '{app}'"
        ))
    };
    assert_eq!(
        counts("private"),
        vec![vec![json!(70), json!(30), json!(40), json!(1)]]
    );
    assert_eq!(counts("plain")[0][..3], counts("private")[0][..3]);
    let report = |app: &str| {
        let a = node.get(&format!(
            "/api/analytics/attribution?app_id={app}&from={}&to={}",
            START - HOUR,
            START + 10 * HOUR
        ));
        assert_eq!(a.status, 200, "{}", a.body);
        let mut rows: Vec<(String, f64)> = a.body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["campaign"].as_str().unwrap_or("-").to_string(),
                    r["conversions"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        (rows, a.body["unattributed"].clone())
    };
    let (rows, unattributed) = report("private");
    assert_eq!(rows.iter().map(|r| r.1).sum::<f64>(), 30.0, "{rows:?}");
    assert_eq!((rows, unattributed), report("plain"));
    let stored = node.sql(
        "SELECT DISTINCT ip, substr(device_id, 1, 5), length(user_id) FROM events WHERE app_id = 'private'",
    );
    assert_eq!(
        stored,
        vec![vec![json!("203.0.113.0"), json!("enc1:"), json!(64)]]
    );

    // An admin reveals a stored device id; the audit says who, not what it revealed.
    let enc = node
        .sql("SELECT device_id FROM events WHERE app_id = 'private' ORDER BY timestamp LIMIT 1")[0]
        [0]
    .as_str()
    .expect("device_id")
    .to_string();
    let a = node.call(
        "POST",
        "/api/admin/apps/private/reveal",
        Some(&admin),
        Some(json!({"device_id": enc})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["device_id"], "secret-device-0000");
    let audit = node.get("/api/admin/audit?order=desc&action=privacy.reveal");
    let rec = &audit.body["records"][0];
    assert_eq!(rec["target"], "app private", "{}", audit.body);
    assert!(!rec.to_string().contains("secret-device"), "{rec}");
    for (body, status) in [
        (json!({"device_id": "secret-device-0000"}), 400),
        (json!({"device_id": enc, "x": 1}), 400),
    ] {
        let a = node.call(
            "POST",
            "/api/admin/apps/private/reveal",
            Some(&admin),
            Some(body.clone()),
        );
        assert_eq!(a.status, status, "{body}: {}", a.body);
        assert!(a.body["error"]["message"].is_string(), "{}", a.body);
    }
    let a = node.call(
        "POST",
        "/api/admin/apps/plain/reveal",
        Some(&admin),
        Some(json!({"device_id": enc})),
    );
    assert_eq!(a.status, 400, "an app without privacy settings: {}", a.body);

    // Wait for the memtable to reach a segment, then take a backup archive.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all = Vec::new();
        files(&dir.path().join("node"), &mut all);
        if all.iter().any(|p| {
            p.to_string_lossy().contains("app=private")
                && p.extension().is_some_and(|e| e == "parquet")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no segment of app private after 60 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let archive = dir.path().join("backup.tar");
    let out = Command::new(binary())
        .args([
            "backup",
            "--url",
            &node.base(),
            "--email",
            ADMIN_EMAIL,
            "--out",
        ])
        .arg(&archive)
        .env("UNMOGROWP_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The raw values: none of the private app's anywhere; the plain app's are found in the
    // same places, so the search can see such values there.
    let secret: Vec<String> = (0..40u32)
        .flat_map(|d| {
            [
                format!("secret-device-{d:04}"),
                format!("secret-user-{}@example.com", d % 30),
                format!("203.0.113.{}", 100 + d),
            ]
        })
        .collect();
    let control = vec![
        "plain-device-0007".to_string(),
        "plain-user-7@example.com".to_string(),
    ];
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).expect("mkdir");
    std::fs::rename(&archive, backups.join("backup.tar")).expect("move");
    for place in [dir.path().join("node"), backups] {
        let found = holding(&place, &secret);
        assert!(
            found.is_empty(),
            "raw values in {}: {found:?}",
            place.display()
        );
        let seen = holding(&place, &control);
        // (Not every one: Parquet pages are compressed; the log, the user dictionary and the
        // footers' statistics are not.)
        assert!(
            !seen.is_empty(),
            "the search must see the plain app's values in {}: {seen:?}",
            place.display()
        );
    }
    // And through SQL over every column of the stored rows (segments are compressed).
    let a = node.post_json(
        "/api/analytics/query",
        &json!({"sql": "SELECT * FROM events WHERE app_id = 'private'", "format": "json"}),
    );
    assert_eq!(a.status, 200);
    let text = a.body.to_string();
    assert!(
        !text.contains("secret-") && !text.contains("203.0.113.1"),
        "{text}"
    );

    // Erasure by the identifiers as the SDK sent them: their hashed and encrypted forms go.
    // User 7 has devices 7 and 37 (2 events each); device 11 is user 11's only one.
    let a = node.post_json(
        "/api/admin/erasure",
        &json!({"app_id": "private", "user_id": "secret-user-7@example.com"}),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let by_user = a.body["request_id"].as_str().expect("id").to_string();
    let a = node.post_json(
        "/api/admin/erasure",
        &json!({"app_id": "private", "device_id": "secret-device-0011"}),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let by_device = a.body["request_id"].as_str().expect("id").to_string();
    for id in [&by_user, &by_device] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = node.get(&format!("/api/admin/erasure/{id}"));
            assert_eq!(s.status, 200, "{}", s.body);
            if s.body["state"] == "done" {
                assert!(s.body["events_erased"].as_u64() > Some(0), "{}", s.body);
                break;
            }
            assert!(Instant::now() < deadline, "erasure not done: {}", s.body);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(
        counts("private")[0][..2],
        [json!(64), json!(28)],
        "6 events and 2 users erased"
    );
    assert_eq!(counts("plain")[0][..2], [json!(70), json!(30)]);
    let audit = node.get("/api/admin/audit?order=desc&action=privacy.erasure");
    let text = audit.body.to_string();
    assert!(
        text.contains(&by_user) && text.contains(&by_device),
        "{text}"
    );
    assert!(
        !text.contains("secret-"),
        "the audit log names the erased: {text}"
    );
    node.terminate();
}

#[test]
fn consent_and_bad_privacy_settings() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = TestNode::new(dir.path().join("node"), &[]);
    node.start();
    node.app_key("shop");
    let admin = node.admin_token();
    for (body, why) in [
        (json!({"privacy": {"ip": "mask"}}), "unknown mode"),
        (json!({"privacy": {"retention": 30}}), "unknown field"),
        (json!({"privacy": {"retention_days": 0}}), "retention 0"),
        (json!({"privacy": "on"}), "not an object"),
    ] {
        let a = patch(&node, "shop", &admin, body.clone());
        assert_eq!(a.status, 400, "{why}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "invalid_request", "{why}");
    }
    let a = patch(
        &node,
        "nope",
        &admin,
        json!({"privacy": {"require_consent": true}}),
    );
    assert_eq!(a.status, 404, "{}", a.body);

    // A non-admin with access to the app may rename it but not touch its privacy.
    let u = node.post_json(
        "/api/admin/users",
        &json!({"email": "ana@example.com", "name": "Ana", "password": "correct horse battery staple 9",
                "roles": ["user"], "app_access": ["shop"]}),
    );
    assert_eq!(u.status, 201, "{}", u.body);
    let ana = node.login("ana@example.com", "correct horse battery staple 9")["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let a = patch(
        &node,
        "shop",
        &ana,
        json!({"name": "Shop", "privacy": {"ip": "drop"}}),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = node.call("GET", "/api/apps/shop", Some(&ana), None);
    assert_eq!(
        a.body["name"], "shop",
        "nothing of a refused PATCH is applied"
    );
    let a = node.call(
        "POST",
        "/api/admin/apps/shop/reveal",
        Some(&ana),
        Some(json!({"device_id": "enc1:AAAA"})),
    );
    assert_eq!(a.status, 403, "{}", a.body);

    let a = patch(
        &node,
        "shop",
        &admin,
        json!({"privacy": {"require_consent": true, "ip": "drop"}}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["privacy"]["require_consent"], true);
    let with = json!({"event_type": "app_open", "app_id": "shop", "device_id": "d1", "ip": "198.51.100.9",
        "consent": {"version": "2026-01", "categories": ["analytics"]}, "timestamp": START});
    let without =
        json!({"event_type": "app_open", "app_id": "shop", "device_id": "d2", "timestamp": START});
    let bad = json!({"event_type": "app_open", "app_id": "shop", "device_id": "d3", "timestamp": START,
        "consent": {"version": "1", "categories": "all"}});
    let a = node
        .try_post(
            "/v1/events",
            &[("content-type", "application/json")],
            &serde_json::to_vec(&json!([with, without, bad])).expect("json"),
        )
        .expect("post");
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    let rejected = a.body["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 2, "{}", a.body);
    assert_eq!(rejected[0]["index"], 1);
    assert!(rejected[0]["error"]
        .as_str()
        .unwrap_or("")
        .starts_with("consent: required"));
    assert_eq!(rejected[1]["index"], 2);
    assert!(rejected[1]["error"]
        .as_str()
        .unwrap_or("")
        .starts_with("consent.categories"));
    let rows = node.sql(
        "SELECT device_id, ip, event_data['$consent_version'], event_data['$consent_categories'] FROM events WHERE app_id = 'shop'",
    );
    assert_eq!(
        rows,
        vec![vec![
            json!("d1"),
            Value::Null,
            json!("2026-01"),
            json!("[\"analytics\"]")
        ]]
    );
    node.terminate();
}

/// `privacy.retention_days` applied by the leader's retention task through the log: exactly
/// the days before the floor go (segments, rollups), today and the kept days stay, other apps
/// keep everything, and an event older than the floor is refused at ingest.
#[test]
fn retention_drops_exactly_the_days_before_the_floor() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = TestNode::new(
        dir.path().join("node"),
        &[
            ("UNMOGROWP_ENGINE__FLUSH_INTERVAL_SECS", "1"),
            ("UNMOGROWP_ENGINE__COMPACTION_MIN_SEGMENTS", "0"),
            ("UNMOGROWP_RETENTION__CHECK_INTERVAL_SECS", "1"),
        ],
    );
    node.start();
    let day = 86_400_000i64;
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64
    };
    let today = now_ms() / day * day;
    let history = |app: &str| -> Vec<Value> {
        (0..4)
            .flat_map(|back| {
                // The first and the last minute of each day: the boundary is the UTC day.
                let start = today - back * day;
                (0..5).flat_map(move |i| {
                    [start + i * 1_000, start + day - 60_000 + i * 1_000]
                        .into_iter()
                        .map(move |ts| (ts, i))
                })
            })
            .filter(|(ts, _)| *ts <= now_ms())
            .map(|(ts, i)| {
                json!({"event_type": "app_open", "app_id": app, "device_id": format!("d{i}"),
                       "user_id": format!("u{i}"), "timestamp": ts})
            })
            .collect()
    };
    node.app_key("kept");
    node.app_key("short");
    let kept = history("kept");
    let short = history("short");
    post(&node, &kept);
    post(&node, &short);
    let per_day = |app: &str| {
        node.sql(&format!(
            "SELECT toDate(timestamp) AS d, count() FROM events WHERE app_id = '{app}' GROUP BY d ORDER BY d"
        ))
    };
    let before = per_day("short");
    assert_eq!(before.len(), 4, "{before:?}");
    // Wait for the memtable to reach the segments, then keep today and yesterday only.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("node").read_dir().is_ok_and(|_| {
        let mut all = Vec::new();
        files(&dir.path().join("node/table"), &mut all);
        all.iter()
            .any(|p| p.to_string_lossy().contains("app=short"))
    }) {
        assert!(Instant::now() < deadline, "no segment after 60 s");
        std::thread::sleep(Duration::from_millis(300));
    }
    let admin = node.admin_token();
    let a = patch(
        &node,
        "short",
        &admin,
        json!({"privacy": {"retention_days": 1}}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = per_day("short");
        if now.len() == 2 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "retention not applied: {now:?}\n{}",
            node.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        after,
        before[2..].to_vec(),
        "exactly yesterday and today stay"
    );
    assert_eq!(per_day("kept").len(), 4, "another app keeps everything");
    // The rollups forgot the days too (dashboard_stats is answered from them).
    let counted = node.count("SELECT sum(event_count) FROM dashboard_stats WHERE app_id = 'short'");
    let kept_rows: u64 = after.iter().map(|r| r[1].as_u64().unwrap_or(0)).sum();
    assert_eq!(counted, kept_rows);
    let metrics = node.get("/metrics").body.as_str().unwrap_or("").to_string();
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("unmogrowp_engine_retention_rows_dropped_total ")?
                .parse()
                .ok()
        })
        .expect("retention metric");
    assert!(dropped >= 20.0, "{dropped} rows dropped by retention");
    // Files of the dropped days are gone.
    assert_eq!(civil_date(20_792), "2026-12-05");
    let floor_day = civil_date((today - day) / day);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = Vec::new();
        files(&dir.path().join("node/table"), &mut all);
        let old: Vec<_> = all
            .iter()
            .map(|p| p.to_string_lossy().to_string())
            .filter(|p| {
                p.contains("app=short/day=")
                    && p.split("day=").nth(1).is_some_and(|d| d[..10] < *floor_day)
            })
            .collect();
        if old.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "files of dropped days left: {old:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // An event older than the floor is refused, saying why; one on the floor day is kept.
    let a = node
        .try_post(
            "/v1/events",
            &[("content-type", "application/json")],
            &serde_json::to_vec(&json!([
                {"event_type": "app_open", "app_id": "short", "device_id": "x", "timestamp": today - day - 1},
                {"event_type": "app_open", "app_id": "short", "device_id": "y", "timestamp": today - day},
            ]))
            .expect("json"),
        )
        .expect("post");
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    let why = a.body["rejected"][0]["error"].as_str().unwrap_or("");
    assert!(why.contains("the oldest day this app keeps"), "{why}");
    node.terminate();
}

/// `audit.retention_days`: records older than it are cut by the retention task through the
/// log; the chain still verifies from the signed base, which the verify answer shows. The old
/// records are written by the node running 400 days in the past (libfaketime).
#[test]
fn the_audit_chain_verifies_after_its_prefix_is_cut() {
    let faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        Path::new(faketime).exists(),
        "{faketime} missing: scripts/setup.sh installs libfaketime"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("node");
    let mut past = TestNode::new(
        &data,
        &[
            ("LD_PRELOAD", faketime),
            ("FAKETIME", "-400d"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    past.start();
    past.app_key("shop");
    let old = past.get("/api/admin/audit?after=0&limit=1000");
    let old_records = old.body["records"].as_array().expect("records").len();
    assert!(old_records >= 3, "{}", old.body);
    past.terminate();

    let mut node = TestNode::new(&data, &[("UNMOGROWP_RETENTION__CHECK_INTERVAL_SECS", "1")]);
    node.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    let verified = loop {
        let v = node.get("/api/admin/audit/verify");
        if v.body["base"].is_object() {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no cut after 60 s: {}\n{}",
            v.body,
            node.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(verified.body["ok"], true, "{}", verified.body);
    let base = &verified.body["base"];
    assert!(
        base["seq"].as_u64().unwrap_or(0) >= old_records as u64,
        "{base}"
    );
    let metrics = node.get("/metrics").body.as_str().unwrap_or("").to_string();
    let removed = format!("unmogrowp_audit_records_removed {}", base["removed"]);
    assert!(metrics.contains(&removed), "{removed} not in /metrics");
    let now = node.get("/api/admin/audit?after=0&limit=1000");
    let records = now.body["records"].as_array().expect("records");
    let first = records[0]["seq"].as_u64().expect("seq");
    assert_eq!(
        first,
        base["seq"].as_u64().expect("seq") + 1,
        "{}",
        now.body
    );
    assert!(
        records.iter().any(|r| r["action"] == "audit.cut"),
        "the cut is audited: {}",
        now.body
    );
    // The records of the last 365 days stay: the logins of this run.
    assert!(records.iter().any(|r| r["action"] == "auth.login"));
    node.terminate();
}
