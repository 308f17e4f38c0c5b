//! Raft progress and snapshot transfers (`unmogrowp_raft_*`).

use std::fmt::Write;

use crate::cluster::client::PeerClocks;
use crate::cluster::network::SnapshotSends;
use crate::metrics::write_metric;
use crate::raft::Raft;

pub fn collect(out: &mut String, raft: &Raft, sends: &SnapshotSends, clocks: &PeerClocks) {
    let m = raft.metrics().borrow().clone();
    // The leader's view of each follower: entries the follower has not matched yet.
    if let Some(replication) = &m.replication {
        let last = m.last_log_index.unwrap_or(0);
        per_peer(
            out,
            "unmogrowp_raft_replication_lag_entries",
            "On the leader: log entries a member has not yet matched (alert when it keeps growing).",
            replication
                .iter()
                .filter(|(peer, _)| **peer != m.id)
                .map(|(peer, matched)| (*peer, last.saturating_sub(matched.map_or(0, |l| l.index)) as f64)),
        );
    }
    let samples = clocks.samples();
    per_peer(
        out,
        "unmogrowp_clock_peer_offset_seconds",
        "A peer's wall clock minus this node's, measured on internal calls (NTP-style, error at most half the round trip). Independent of NTP: alert beyond ±1 s.",
        samples.iter().map(|(p, s)| (*p, s.offset_ms as f64 / 1000.0)),
    );
    per_peer(
        out,
        "unmogrowp_clock_peer_rtt_seconds",
        "Round trip of the call the peer's clock was measured on.",
        samples.iter().map(|(p, s)| (*p, s.rtt_ms as f64 / 1000.0)),
    );
    write_metric(
        out,
        "unmogrowp_raft_current_leader",
        "gauge",
        "Node id of the leader this node knows of (-1: none).",
        m.current_leader.map_or(-1i64, |l| l as i64),
    );
    let opt = |o: Option<u64>| o.map_or(-1i64, |v| v as i64);
    write_metric(
        out,
        "unmogrowp_raft_last_log_index",
        "gauge",
        "Last index in the local log.",
        opt(m.last_log_index),
    );
    write_metric(
        out,
        "unmogrowp_raft_applied_index",
        "gauge",
        "Last index applied to the state machine.",
        opt(m.last_applied.map(|l| l.index)),
    );
    write_metric(
        out,
        "unmogrowp_raft_snapshot_index",
        "gauge",
        "Last index covered by a snapshot.",
        opt(m.snapshot.map(|l| l.index)),
    );
    write_metric(
        out,
        "unmogrowp_raft_purged_index",
        "gauge",
        "Last purged log index.",
        opt(m.purged.map(|l| l.index)),
    );
    write_metric(
        out,
        "unmogrowp_raft_snapshot_sends",
        "gauge",
        "Snapshots being streamed to followers now (no new snapshot is taken meanwhile).",
        sends.in_flight(),
    );
    write_metric(
        out,
        "unmogrowp_raft_snapshots_sent_total",
        "counter",
        "Snapshots this node sent to a follower that installed them.",
        sends.installed(),
    );
    write_metric(
        out,
        "unmogrowp_raft_term",
        "gauge",
        "Current term.",
        m.current_term,
    );
    write_metric(
        out,
        "unmogrowp_raft_is_leader",
        "gauge",
        "1 if this node is the leader.",
        u8::from(m.current_leader == Some(m.id)),
    );
}

/// A gauge labelled by `peer`, written only when there is a peer to report.
fn per_peer(out: &mut String, name: &str, help: &str, rows: impl Iterator<Item = (u64, f64)>) {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (peer, v) in rows {
        let _ = writeln!(out, "{name}{{peer=\"{peer}\"}} {v}");
    }
}
