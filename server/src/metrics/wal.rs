//! The write-ahead log's metrics (`unmogrowp_wal_*`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{write_metric, write_summary};

/// `events_accepted`: events acknowledged since start, for events per fsync.
pub fn collect(out: &mut String, wal: &wal::Wal, events_accepted: u64) {
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let wm = wal.metrics();
    write_metric(
        out,
        "unmogrowp_wal_writer_up",
        "gauge",
        "1 while the log writer accepts records; 0 after a write or fsync failed (never retried: the node must be restarted, and stays unavailable for writes until then).",
        u8::from(wal.writer_failure().is_none()),
    );
    write_metric(
        out,
        "unmogrowp_wal_fsyncs_total",
        "counter",
        "Group commits (one fdatasync each).",
        c(&wm.fsyncs),
    );
    write_metric(
        out,
        "unmogrowp_wal_records_total",
        "counter",
        "Log records made durable.",
        c(&wm.records),
    );
    write_metric(
        out,
        "unmogrowp_wal_appends_total",
        "counter",
        "Append calls made durable.",
        c(&wm.appends),
    );
    write_metric(
        out,
        "unmogrowp_wal_segments_created_total",
        "counter",
        "Log segment files created.",
        c(&wm.segments_created),
    );
    write_metric(
        out,
        "unmogrowp_wal_disk_bytes",
        "gauge",
        "Bytes in log segment files.",
        wal.disk_bytes(),
    );
    let _ = writeln!(out, "# HELP unmogrowp_wal_fsync_duration_seconds Write+fdatasync time per group commit.\n# TYPE unmogrowp_wal_fsync_duration_seconds summary");
    write_summary(
        out,
        "unmogrowp_wal_fsync_duration_seconds",
        "",
        &wm.fsync_micros.lock(),
        1e-6,
    );
    let _ = writeln!(out, "# HELP unmogrowp_wal_appends_per_fsync Append calls sharing one fsync.\n# TYPE unmogrowp_wal_appends_per_fsync summary");
    write_summary(
        out,
        "unmogrowp_wal_appends_per_fsync",
        "",
        &wm.group_sizes.lock(),
        1.0,
    );
    let recs = c(&wm.records);
    let fs = c(&wm.fsyncs).max(1);
    let accepted = events_accepted;
    write_metric(
        out,
        "unmogrowp_wal_records_per_fsync",
        "gauge",
        "Average log records per fsync since start.",
        recs as f64 / fs as f64,
    );
    write_metric(
        out,
        "unmogrowp_events_per_fsync",
        "gauge",
        "Average accepted events per fsync since start.",
        accepted as f64 / fs as f64,
    );
    let rr = wal.recovery_report();
    write_metric(
        out,
        "unmogrowp_wal_torn_tail_bytes_truncated",
        "gauge",
        "Bytes of torn tail dropped at the last start.",
        rr.torn_tail_bytes_truncated,
    );
}
