//! Metrics in Prometheus text format (`GET /metrics`): the request and ingest counters kept
//! here, the text helpers, and the collectors of the areas this floor can see (`wal`,
//! `engine`, `query`). Security, Raft and the process have theirs on their own floors
//! (`security::metrics`, `cluster::metrics`, `node::metrics`, which assembles them all).

pub mod engine;
pub mod query;
pub mod wal;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("static histogram bounds")
}

#[derive(Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_rejected: AtomicU64,
    /// Internal Raft API calls refused (wrong secret or identity).
    pub raft_rpc_refused: AtomicU64,
    /// Open client connections of the HTTP API.
    pub http_connections_open: AtomicU64,
    /// Connections closed at once because `http.max_connections` were open.
    pub http_connections_refused: AtomicU64,
    /// Requests per (route, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Request latency per route, microseconds.
    latency: Mutex<BTreeMap<&'static str, Histogram<u64>>>,
    /// Events per (app, outcome) received on this node; at most [`MAX_APP_SERIES`] apps, the
    /// rest counted under `app="_other"` (apps are created by admins, but a label set must
    /// stay bounded whatever happens).
    app_events: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
}

/// Most apps with their own series in per-app metrics.
pub const MAX_APP_SERIES: usize = 200;

impl Metrics {
    pub fn raft_rpc_refused(&self) {
        self.raft_rpc_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` events of `app` with `outcome` (accepted, duplicate, rejected).
    pub fn record_app_events(&self, app: &str, outcome: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let mut m = self.app_events.lock();
        // Looked up by `&str`: no allocation unless the app is new here.
        let counts = match m.get_mut(app) {
            Some(c) => c,
            None => {
                let key = if m.len() >= MAX_APP_SERIES {
                    "_other"
                } else {
                    app
                };
                m.entry(key.to_string()).or_default()
            }
        };
        *counts.entry(outcome).or_insert(0) += n;
    }

    pub fn record_request(&self, route: &'static str, status: u16, took: Duration) {
        *self.requests.lock().entry((route, status)).or_insert(0) += 1;
        self.latency
            .lock()
            .entry(route)
            .or_insert_with(hist)
            .saturating_record((took.as_micros() as u64).max(1));
    }
}

/// A label value escaped for the text format (`\\`, `"`, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub const QUANTILES: &[f64] = &[0.5, 0.9, 0.99, 0.999];

/// Writes a summary (quantiles in seconds, count) for a microsecond histogram.
pub fn write_summary(out: &mut String, name: &str, labels: &str, h: &Histogram<u64>, scale: f64) {
    let sep = if labels.is_empty() { "" } else { "," };
    for q in QUANTILES {
        let _ = writeln!(
            out,
            "{name}{{{labels}{sep}quantile=\"{q}\"}} {}",
            h.value_at_quantile(*q) as f64 * scale
        );
    }
    if labels.is_empty() {
        let _ = writeln!(out, "{name}_count {}", h.len());
    } else {
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.len());
    }
}

pub fn write_metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

impl Metrics {
    pub fn render_into(&self, out: &mut String) {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP unmogrowp_ingest_events_total Events received by outcome.\n# TYPE unmogrowp_ingest_events_total counter");
        let _ = writeln!(
            out,
            "unmogrowp_ingest_events_total{{outcome=\"accepted\"}} {}",
            c(&self.events_accepted)
        );
        let _ = writeln!(
            out,
            "unmogrowp_ingest_events_total{{outcome=\"duplicate\"}} {}",
            c(&self.events_duplicate)
        );
        let _ = writeln!(
            out,
            "unmogrowp_ingest_events_total{{outcome=\"rejected\"}} {}",
            c(&self.events_rejected)
        );
        write_metric(
            out,
            "unmogrowp_raft_rpc_refused_total",
            "counter",
            "Internal Raft API calls refused: wrong cluster secret, or meant for another node identity (a wiped or replaced data directory).",
            c(&self.raft_rpc_refused),
        );
        write_metric(
            out,
            "unmogrowp_http_connections_open",
            "gauge",
            "Open client connections of the HTTP API.",
            c(&self.http_connections_open),
        );
        write_metric(
            out,
            "unmogrowp_http_connections_refused_total",
            "counter",
            "Connections closed at once because http.max_connections were open.",
            c(&self.http_connections_refused),
        );
        let _ = writeln!(out, "# HELP unmogrowp_app_ingest_events_total Events received by app and outcome (on this node; sum over the cluster's nodes).\n# TYPE unmogrowp_app_ingest_events_total counter");
        for (app, counts) in self.app_events.lock().iter() {
            for (outcome, n) in counts {
                let _ = writeln!(
                    out,
                    "unmogrowp_app_ingest_events_total{{app=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(app)
                );
            }
        }
        let _ = writeln!(out, "# HELP unmogrowp_http_requests_total HTTP requests by route and status.\n# TYPE unmogrowp_http_requests_total counter");
        for ((route, status), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "unmogrowp_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP unmogrowp_http_request_duration_seconds Request latency by route.\n# TYPE unmogrowp_http_request_duration_seconds summary");
        for (route, h) in self.latency.lock().iter() {
            write_summary(
                out,
                "unmogrowp_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                h,
                1e-6,
            );
        }
    }
}
