//! Where each mirror stands, as `GET /api/admin/mirrors` and `/metrics` show it. Answered on
//! any node from the replicated book plus this node's table, so it is the same everywhere up
//! to apply lag.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{Configured, Mirrors};
use crate::raft::mirror_book::MirrorBook;

#[derive(Debug, Clone, Serialize)]
pub struct MirrorStatus {
    pub name: String,
    pub kind: String,
    /// `running`, `retrying` or `paused`.
    pub state: &'static str,
    /// Every stored event of the log entries up to this index reached the sink.
    pub cursor: u64,
    /// Stored events after the cursor (of every app: a mirror limited to some apps passes
    /// over the others' events).
    pub lag_events: u64,
    /// Age of the oldest event not yet in the sink (0 when caught up).
    pub lag_seconds: f64,
    pub sent_events: u64,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub last_error_at: Option<String>,
    /// Failed attempts on this node since it started.
    #[serde(skip)]
    pub errors: u64,
}

impl Mirrors {
    /// Every configured mirror's status. `stored` is the number of events the table holds
    /// (every applied entry), `now_ms` the wall clock.
    pub fn status(&self, book: &MirrorBook, stored: u64, now_ms: i64) -> Vec<MirrorStatus> {
        self.configured
            .iter()
            .map(|c| {
                let errors = self.live(c.name()).errors.load(Ordering::Relaxed);
                match c {
                    Configured::Invalid(e) => MirrorStatus {
                        name: e.name.clone(),
                        kind: e.kind.clone(),
                        state: "retrying",
                        cursor: book.get(&e.name).map_or(0, |p| p.cursor),
                        lag_events: stored.saturating_sub(book.get(&e.name).map_or(0, |p| p.seen)),
                        lag_seconds: 0.0,
                        sent_events: book.get(&e.name).map_or(0, |p| p.sent_events),
                        last_error: Some(format!("invalid configuration: {}", e.message)),
                        last_error_at: Some(compat::rfc3339_ms(self.started_ms)),
                        errors,
                    },
                    Configured::Valid(spec) => {
                        let p = book.get(&spec.name).cloned().unwrap_or_default();
                        let known = book.get(&spec.name).is_some();
                        let lag_events = if known {
                            stored.saturating_sub(p.seen)
                        } else if spec.start_now {
                            0
                        } else {
                            stored
                        };
                        let since = p.acked_at_ms.unwrap_or(self.started_ms);
                        let lag_seconds = if lag_events == 0 {
                            0.0
                        } else {
                            (p.lag_ms + (now_ms - since).max(0)) as f64 / 1000.0
                        };
                        let state = if p.paused {
                            "paused"
                        } else if p.retrying {
                            "retrying"
                        } else {
                            "running"
                        };
                        MirrorStatus {
                            name: spec.name.clone(),
                            kind: spec.kind.as_str().into(),
                            state,
                            cursor: p.cursor,
                            lag_events,
                            lag_seconds,
                            sent_events: p.sent_events,
                            last_error: p.last_error.clone(),
                            last_error_at: p.last_error_at_ms.map(compat::rfc3339_ms),
                            errors,
                        }
                    }
                }
            })
            .collect()
    }
}

/// The per-mirror metric families (`unmogrowp_mirror_*`, label `mirror`).
pub fn collect(out: &mut String, all: &[MirrorStatus]) {
    if all.is_empty() {
        return;
    }
    type Field = fn(&MirrorStatus) -> f64;
    let families: [(&str, &str, &str, Field); 5] = [
        (
            "unmogrowp_mirror_lag_events",
            "gauge",
            "Stored events not yet acknowledged by the mirror's sink.",
            |s| s.lag_events as f64,
        ),
        (
            "unmogrowp_mirror_lag_seconds",
            "gauge",
            "Age of the oldest event not yet in the mirror's sink (0 when caught up).",
            |s| s.lag_seconds,
        ),
        (
            "unmogrowp_mirror_sent_events_total",
            "counter",
            "Events the sink acknowledged (replicated: the same on every node; replays count again).",
            |s| s.sent_events as f64,
        ),
        (
            "unmogrowp_mirror_errors_total",
            "counter",
            "Failed attempts to connect to, read for or write to the sink, on this node.",
            |s| s.errors as f64,
        ),
        (
            "unmogrowp_mirror_cursor",
            "gauge",
            "Log index up to which the mirror's sink has every stored event.",
            |s| s.cursor as f64,
        ),
    ];
    for (name, kind, help, f) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in all {
            let _ = writeln!(out, "{name}{{mirror=\"{}\"}} {}", s.name, f(s));
        }
    }
    let _ = writeln!(
        out,
        "# HELP unmogrowp_mirror_state 1 for the mirror's current state (running, retrying, paused).\n# TYPE unmogrowp_mirror_state gauge"
    );
    for s in all {
        for st in ["running", "retrying", "paused"] {
            let _ = writeln!(
                out,
                "unmogrowp_mirror_state{{mirror=\"{}\",state=\"{st}\"}} {}",
                s.name,
                u8::from(s.state == st)
            );
        }
    }
}
