//! `GET /metrics`: every area's collector in turn, and the process's own gauges (data disk,
//! clock, uptime).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::metrics::write_metric;
use crate::node::AppState;

/// The whole Prometheus text exposition of this node.
pub fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(8192);
    state.metrics.render_into(&mut out);
    let accepted = state.metrics.events_accepted.load(Ordering::Relaxed);
    crate::metrics::wal::collect(&mut out, state.log.wal(), accepted);
    crate::security::metrics::collect(&mut out, &state.security);
    crate::security::alerts::collect(
        &mut out,
        &state.security,
        &state.cfg.alerts,
        &state.alert_stats,
    );
    crate::cluster::metrics::collect(
        &mut out,
        &state.raft,
        &state.snapshot_sends,
        &state.peer_clocks,
    );
    crate::metrics::engine::collect(&mut out, &state.engine);
    crate::metrics::query::collect(&mut out, &state.query);
    let mirrors = state.mirrors.status(
        &state.book.mirrors(),
        state.engine.stored_rows(),
        crate::clock::now_ms(),
    );
    crate::mirror::status::collect(&mut out, &mirrors);
    process(&mut out, &state.cfg.data_dir, state.started);
    out
}

fn process(out: &mut String, data_dir: &Path, started: Instant) {
    match rustix::fs::statvfs(data_dir) {
        Ok(fs) => {
            write_metric(
                out,
                "unmogrowp_data_dir_available_bytes",
                "gauge",
                "Bytes free for the node on the data directory's file system (alert well before 0: a full disk stops the log writer and every write gets 503).",
                fs.f_bavail.saturating_mul(fs.f_frsize),
            );
            write_metric(
                out,
                "unmogrowp_data_dir_size_bytes",
                "gauge",
                "Size of the data directory's file system.",
                fs.f_blocks.saturating_mul(fs.f_frsize),
            );
        }
        Err(e) => tracing::debug!(error = %e, "statvfs of the data directory failed"),
    }
    if let Some(ntp) = crate::clock::ntp_state() {
        write_metric(
            out,
            "unmogrowp_clock_ntp_synchronized",
            "gauge",
            "1 if the kernel reports the wall clock NTP-synchronised (alert on 0: JWT time checks and lockout windows use it).",
            u8::from(ntp.synchronized),
        );
        write_metric(
            out,
            "unmogrowp_clock_ntp_offset_seconds",
            "gauge",
            "Clock offset from the NTP reference as the kernel last saw it (alert beyond ±1 s; tokens allow 60 s of leeway).",
            ntp.offset_secs,
        );
        write_metric(
            out,
            "unmogrowp_clock_ntp_max_error_seconds",
            "gauge",
            "The kernel's maximum clock error estimate.",
            ntp.max_error_secs,
        );
    }
    if let Some(rss) = resident_bytes() {
        write_metric(
            out,
            "unmogrowp_process_resident_bytes",
            "gauge",
            "Resident memory of the node's process.",
            rss,
        );
    }
    write_metric(
        out,
        "unmogrowp_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        started.elapsed().as_secs_f64(),
    );
}

/// Resident set size from `/proc/self/statm` (pages × page size).
pub(super) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}
