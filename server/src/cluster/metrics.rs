//! Raft progress and snapshot transfers (`unmogrowp_raft_*`).

use crate::cluster::network::SnapshotSends;
use crate::metrics::write_metric;
use crate::raft::Raft;

pub fn collect(out: &mut String, raft: &Raft, sends: &SnapshotSends) {
    let m = raft.metrics().borrow().clone();
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
