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
    /// Each runnable mirror's part of erasure `id` (issue 29): `true` once its sink holds
    /// none of the erased rows.
    pub fn erasure_states(&self, book: &MirrorBook, id: &str) -> Vec<(String, bool)> {
        self.configured
            .iter()
            .filter_map(|c| match c {
                Configured::Valid(spec) => Some(spec.name.clone()),
                Configured::Invalid(_) => None,
            })
            .map(|name| {
                let done = book.get(&name).is_some_and(|p| p.erased.contains(id));
                (name, done)
            })
            .collect()
    }

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::raft::mirror_book::MirrorProgress;

    fn mirrors() -> Mirrors {
        let v: toml::Value = toml::from_str(
            r#"[[mirror]]
name = "pg"
kind = "postgres"
url = "postgres://u:topsecret@127.0.0.1:1/db"
[[mirror]]
name = "new"
kind = "kafka"
url = "127.0.0.1:1"
start = "now"
[[mirror]]
name = "bad"
kind = "mysql"
url = "x""#,
        )
        .unwrap();
        Mirrors::from_config(v["mirror"].as_array().unwrap(), 1_000)
    }

    #[test]
    fn state_lag_and_errors_from_the_book() {
        let m = mirrors();
        let mut book = MirrorBook::default();
        book.mirrors.insert(
            "pg".into(),
            MirrorProgress {
                cursor: 40,
                seen: 90,
                sent_events: 90,
                retrying: true,
                last_error: Some("connection refused".into()),
                last_error_at_ms: Some(5_000),
                acked_at_ms: Some(9_000),
                lag_ms: 2_000,
                ..Default::default()
            },
        );
        let all = m.status(&book, 100, 10_000);
        let pg = &all[0];
        assert_eq!((pg.state, pg.cursor, pg.lag_events), ("retrying", 40, 10));
        // The oldest unsent event was 2 s old at the last ack, 1 s ago.
        assert_eq!(pg.lag_seconds, 3.0);
        assert_eq!(
            pg.last_error_at.as_deref(),
            Some("1970-01-01T00:00:05.000Z")
        );
        // Not started yet, from now: nothing to send.
        assert_eq!((all[1].state, all[1].lag_events), ("running", 0));
        assert_eq!(all[2].state, "retrying");
        assert!(all[2]
            .last_error
            .as_deref()
            .unwrap()
            .contains("unknown kind"));
        book.mirrors.get_mut("pg").unwrap().paused = true;
        book.mirrors.get_mut("pg").unwrap().seen = 100;
        let pg = &m.status(&book, 100, 10_000)[0];
        assert_eq!(
            (pg.state, pg.lag_events, pg.lag_seconds),
            ("paused", 0, 0.0)
        );
        let mut text = String::new();
        collect(&mut text, &m.status(&book, 100, 10_000));
        assert!(text.contains("unmogrowp_mirror_state{mirror=\"pg\",state=\"paused\"} 1"));
        assert!(!text.contains("topsecret"));
    }
}
