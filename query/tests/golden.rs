//! Golden SQL tests: every `tests/golden/<name>.sql` runs against a small, hand-checkable
//! dataset (below) with `now()` fixed at 2026-03-15T12:00:00Z, and its answer must equal
//! `<name>.out` (Arrow's pretty table). Rows are compared in order when the query has an
//! ORDER BY, as a sorted set otherwise. `UPDATE_GOLDEN=1` rewrites the `.out` files; every
//! rewrite must be reviewed by hand.
//!
//! Part of the data is flushed to Parquet and part stays in the memtable, so both paths are
//! exercised by every query.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use engine::{ApplyBatch, Attribution, Engine, EngineConfig, Event};
use unmogrowp_query::{QueryConfig, QueryService, Scope};

fn at(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .timestamp_millis()
}

#[allow(clippy::too_many_arguments)]
fn ev(
    ts: &str,
    app: &str,
    kind: &str,
    user: Option<&str>,
    device: &str,
    platform: &str,
    campaign: Option<&str>,
    source: Option<&str>,
    revenue: Option<f64>,
    data: &[(&str, &str)],
) -> Event {
    let t = at(ts);
    Event {
        timestamp_ms: t,
        app_id: app.into(),
        event_type: kind.into(),
        user_id: user.map(Into::into),
        session_id: None,
        device_id: device.into(),
        platform: platform.into(),
        app_version: None,
        attribution: Attribution {
            campaign: campaign.map(Into::into),
            source: source.map(Into::into),
            ..Default::default()
        },
        event_data: data
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        revenue,
        currency: revenue.map(|_| "USD".into()),
        ip: None,
        user_agent: None,
        received_at_ms: t + 1000,
        event_id: Some(format!("{app}-{ts}")),
    }
}

/// The dataset. `now` is 2026-03-15T12:00:00Z (a Sunday); `today() - 30` is 2026-02-13.
#[rustfmt::skip]
fn dataset() -> (Vec<Event>, Vec<Event>) {
    let flushed = vec![
        ev("2026-01-10T10:00:00Z", "shop", "purchase", Some("u5"), "d5", "web", None, Some("organic"), Some(7.0), &[("revenue", "7")]),
        ev("2026-02-01T00:00:00Z", "shop", "purchase", Some("u4"), "d4", "ios", Some("winter"), Some("google"), Some(100.0), &[("revenue", "oops")]),
        ev("2026-02-20T09:00:00Z", "shop", "install", Some("u4"), "d4", "ios", Some("winter"), Some("google"), None, &[]),
        ev("2026-03-10T08:00:00Z", "shop", "purchase", Some("u2"), "d2", "android", Some("spring"), Some("facebook"), Some(20.0), &[("revenue", "20"), ("sku", "b")]),
        ev("2026-03-13T15:30:00Z", "game", "install", None, "d7", "android", None, None, None, &[]),
    ];
    let memtable = vec![
        ev("2026-03-14T23:59:00Z", "shop", "install", Some("u3"), "d3", "web", None, Some("organic"), None, &[]),
        ev("2026-03-15T09:00:00Z", "game", "install", Some("u6"), "d6", "android", Some("spring"), Some("tiktok"), None, &[]),
        ev("2026-03-15T10:05:00Z", "shop", "purchase", Some("u2"), "d2", "android", Some("spring"), Some("facebook"), Some(5.5), &[("revenue", "5.5"), ("sku", "a")]),
        ev("2026-03-15T11:10:00Z", "shop", "install", Some("u1"), "d1", "ios", Some("spring"), Some("google"), None, &[]),
        ev("2026-03-15T11:40:00Z", "shop", "purchase", Some("u1"), "d1", "ios", Some("spring"), Some("google"), Some(10.0), &[("revenue", "10.0"), ("sku", "a")]),
        ev("2026-03-15T11:59:00Z", "game", "level_up", Some("u1"), "d1", "ios", Some("spring"), Some("google"), None, &[("level", "3")]),
    ];
    (flushed, memtable)
}

fn engine(dir: &Path) -> Engine {
    let e = Engine::open(dir, EngineConfig::default()).expect("engine");
    let (flushed, memtable) = dataset();
    for (i, batch) in [flushed, memtable].iter().enumerate() {
        let idx = i as u64 + 1;
        e.apply(ApplyBatch::one_entry(
            idx,
            batch.iter().map(Event::as_ref).collect(),
        ))
        .expect("apply");
        if i == 0 {
            e.flush().expect("flush");
        }
    }
    e
}

fn render(batches: &[arrow::array::RecordBatch], ordered: bool) -> String {
    let table = arrow::util::pretty::pretty_format_batches(batches)
        .expect("render")
        .to_string();
    if ordered {
        return table;
    }
    // Header (3 lines), rows, closing border: sort the rows only.
    let lines: Vec<&str> = table.lines().collect();
    if lines.len() <= 4 {
        return table;
    }
    let mut rows = lines[3..lines.len() - 1].to_vec();
    rows.sort();
    let mut out: Vec<&str> = lines[..3].to_vec();
    out.extend(rows);
    out.push(lines[lines.len() - 1]);
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = QueryService::new(engine(dir.path()), QueryConfig::default()).expect("service");
    let now = Utc
        .with_ymd_and_hms(2026, 3, 15, 12, 0, 0)
        .single()
        .expect("now");
    // Read at run time: a binary reused from a build in another checkout (shared target
    // directory) must read this checkout's golden files.
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/golden");
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .expect("golden dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "golden queries missing");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let mut failures = Vec::new();
    for path in &names {
        let sql = std::fs::read_to_string(path).expect("sql");
        let ordered = sql.to_ascii_uppercase().contains("ORDER BY");
        let got = match svc.run_at(&sql, &Scope::default(), Some(now)).await {
            Ok((_, batches)) => render(&batches, ordered),
            Err(e) => format!("ERROR: {e}"),
        };
        let out = path.with_extension("out");
        if update {
            std::fs::write(&out, format!("{got}\n")).expect("write");
            continue;
        }
        let want = std::fs::read_to_string(&out).unwrap_or_default();
        if want.trim_end() != got.trim_end() {
            failures.push(format!(
                "{}:\n--- want\n{}\n--- got\n{got}",
                path.display(),
                want.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
