//! `/`, `/health`, `/ready`, `/metrics` and the fallback (dashboard routes, else the JSON 404).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::ApiError;
use crate::metrics::{write_metric, write_summary};
use crate::node::AppState;

/// `GET /`: what this server is and where its endpoints are.
/// `GET /`: the dashboard for browsers, the API's index for everything else.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    if super::ui::wants_html(&headers) {
        return super::ui::index(&headers);
    }
    Json(json!({
        "name": "unmogrowp",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "ingest": "POST /v1/events",
            "query": "POST /api/analytics/query",
            "login": "POST /api/auth/login",
            "apps": "GET|POST /api/apps",
            "openapi": "GET /api/openapi.json",
            "health": "GET /health",
            "ready": "GET /ready",
            "metrics": "GET /metrics",
            "dashboard": "GET / (Accept: text/html)"
        }
    }))
    .into_response()
}

pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (ok, detail) = state.readiness();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ok { "ready" } else { "not_ready" }, "detail": detail})),
    )
}

/// The router's fallback: dashboard routes and files for browsers, else 404 in the API's shape.
pub(crate) async fn not_found(
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    super::ui::fallback(&method, uri.path(), &headers)
        .unwrap_or_else(|| ApiError::not_found(uri.path()).into_response())
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(8192);
    state.metrics.render_into(&mut out);
    let wm = state.log.wal().metrics();
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    write_metric(
        &mut out,
        "unmogrowp_wal_fsyncs_total",
        "counter",
        "Group commits (one fdatasync each).",
        c(&wm.fsyncs),
    );
    write_metric(
        &mut out,
        "unmogrowp_wal_records_total",
        "counter",
        "Log records made durable.",
        c(&wm.records),
    );
    write_metric(
        &mut out,
        "unmogrowp_wal_appends_total",
        "counter",
        "Append calls made durable.",
        c(&wm.appends),
    );
    write_metric(
        &mut out,
        "unmogrowp_wal_segments_created_total",
        "counter",
        "Log segment files created.",
        c(&wm.segments_created),
    );
    write_metric(
        &mut out,
        "unmogrowp_wal_disk_bytes",
        "gauge",
        "Bytes in log segment files.",
        state.log.wal().disk_bytes(),
    );
    let _ = writeln!(out, "# HELP unmogrowp_wal_fsync_duration_seconds Write+fdatasync time per group commit.\n# TYPE unmogrowp_wal_fsync_duration_seconds summary");
    write_summary(
        &mut out,
        "unmogrowp_wal_fsync_duration_seconds",
        "",
        &wm.fsync_micros.lock(),
        1e-6,
    );
    let _ = writeln!(out, "# HELP unmogrowp_wal_appends_per_fsync Append calls sharing one fsync.\n# TYPE unmogrowp_wal_appends_per_fsync summary");
    write_summary(
        &mut out,
        "unmogrowp_wal_appends_per_fsync",
        "",
        &wm.group_sizes.lock(),
        1.0,
    );
    let recs = c(&wm.records);
    let fs = c(&wm.fsyncs).max(1);
    let accepted = c(&state.metrics.events_accepted);
    write_metric(
        &mut out,
        "unmogrowp_wal_records_per_fsync",
        "gauge",
        "Average log records per fsync since start.",
        recs as f64 / fs as f64,
    );
    write_metric(
        &mut out,
        "unmogrowp_events_per_fsync",
        "gauge",
        "Average accepted events per fsync since start.",
        accepted as f64 / fs as f64,
    );
    write_metric(
        &mut out,
        "unmogrowp_audit_records",
        "gauge",
        "Records in the audit log (sequence number of its head).",
        state.security.store.audit_head().0,
    );
    write_metric(
        &mut out,
        "unmogrowp_audit_suppressed_total",
        "counter",
        "Denied requests not audited because their source exceeded auth.audited_denials_per_ip_per_minute.",
        state.security.audit_suppressed.load(Ordering::Relaxed),
    );
    write_metric(
        &mut out,
        "unmogrowp_auth_sessions",
        "gauge",
        "Login sessions held (live, plus expired or revoked ones not yet purged).",
        state.security.store.sessions(),
    );
    write_metric(
        &mut out,
        "unmogrowp_login_rate_limited_total",
        "counter",
        "Login attempts refused by the per-IP limiter (alert on any increase: password spray).",
        state.security.login_rate_limited.load(Ordering::Relaxed),
    );
    write_metric(
        &mut out,
        "unmogrowp_login_failures_total",
        "counter",
        "Logins refused for a wrong password or an unknown user.",
        state.security.login_failures.load(Ordering::Relaxed),
    );

    let m = state.raft.metrics().borrow().clone();
    let opt = |o: Option<u64>| o.map_or(-1i64, |v| v as i64);
    write_metric(
        &mut out,
        "unmogrowp_raft_last_log_index",
        "gauge",
        "Last index in the local log.",
        opt(m.last_log_index),
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_applied_index",
        "gauge",
        "Last index applied to the state machine.",
        opt(m.last_applied.map(|l| l.index)),
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_snapshot_index",
        "gauge",
        "Last index covered by a snapshot.",
        opt(m.snapshot.map(|l| l.index)),
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_purged_index",
        "gauge",
        "Last purged log index.",
        opt(m.purged.map(|l| l.index)),
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_snapshot_sends",
        "gauge",
        "Snapshots being streamed to followers now (no new snapshot is taken meanwhile).",
        state.snapshot_sends.in_flight(),
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_snapshots_sent_total",
        "counter",
        "Snapshots this node sent to a follower that installed them.",
        state.snapshot_sends.installed(),
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_term",
        "gauge",
        "Current term.",
        m.current_term,
    );
    write_metric(
        &mut out,
        "unmogrowp_raft_is_leader",
        "gauge",
        "1 if this node is the leader.",
        u8::from(m.current_leader == Some(m.id)),
    );

    let manifest = state.engine.manifest();
    let st = state.engine.stats();
    write_metric(
        &mut out,
        "unmogrowp_engine_flushed_index",
        "gauge",
        "Last log index flushed to Parquet.",
        opt(manifest.flushed_index),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_segments",
        "gauge",
        "Parquet segments in the table.",
        manifest.segments.len(),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_segment_bytes",
        "gauge",
        "Bytes in Parquet segments.",
        manifest.segments.iter().map(|s| s.bytes).sum::<u64>(),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_memtable_rows",
        "gauge",
        "Rows not yet flushed to Parquet.",
        state.engine.memtable_rows(),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_flushes_total",
        "counter",
        "Memtable flushes.",
        c(&st.flushes),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_rows_flushed_total",
        "counter",
        "Rows written to Parquet.",
        c(&st.rows_flushed),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_flush_seconds_total",
        "counter",
        "Time spent flushing memtables to Parquet (partition, sort, encode, write, fsync).",
        c(&st.flush_micros_total) as f64 / 1e6,
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_flush_sort_seconds_total",
        "counter",
        "Part of the flush time spent splitting rows by (app, day) and sorting them.",
        c(&st.partition_micros_total) as f64 / 1e6,
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_compactions_total",
        "counter",
        "Merges of small segments into one.",
        c(&st.compactions),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_segments_compacted_total",
        "counter",
        "Segments replaced by compaction.",
        c(&st.segments_compacted),
    );
    write_metric(
        &mut out,
        "unmogrowp_engine_compaction_failures_total",
        "counter",
        "Merges that failed (their segments are left as they are; see the log).",
        c(&st.compaction_failures),
    );
    let rollups = state.engine.rollups().size();
    for (name, help, v) in [
        (
            "unmogrowp_rollup_hours",
            "(app, hour) rollups held in memory for the dashboard.",
            rollups.hours,
        ),
        (
            "unmogrowp_rollup_users",
            "Entries in the per-app user dictionaries of the rollups.",
            rollups.users,
        ),
        (
            "unmogrowp_rollup_bitmap_bytes",
            "Serialized size of the rollups' user bitmaps.",
            rollups.bitmap_bytes,
        ),
        (
            "unmogrowp_rollup_funnel_bytes",
            "Bytes of the per-user event times kept for funnels.",
            rollups.funnel_bytes,
        ),
    ] {
        write_metric(&mut out, name, "gauge", help, v);
    }
    let qs = state.query.stats();
    write_metric(
        &mut out,
        "unmogrowp_queries_running",
        "gauge",
        "SQL queries running on this node.",
        qs.running(),
    );
    for (name, help, v) in [
        (
            "unmogrowp_queries_started_total",
            "SQL queries admitted.",
            &qs.started,
        ),
        (
            "unmogrowp_queries_completed_total",
            "SQL queries whose whole answer was produced.",
            &qs.completed,
        ),
        (
            "unmogrowp_queries_failed_total",
            "SQL queries that failed (bad SQL, memory, execution).",
            &qs.failed,
        ),
        (
            "unmogrowp_queries_timed_out_total",
            "SQL queries stopped at their time limit.",
            &qs.timed_out,
        ),
        (
            "unmogrowp_queries_cancelled_total",
            "SQL queries stopped because the client went away.",
            &qs.cancelled,
        ),
        (
            "unmogrowp_queries_rejected_total",
            "SQL queries refused with 429 (too many running).",
            &qs.rejected_busy,
        ),
    ] {
        write_metric(&mut out, name, "counter", help, c(v));
    }
    write_metric(
        &mut out,
        "unmogrowp_query_spill_bytes",
        "gauge",
        "Bytes of query spill files on disk.",
        state.query.spill_bytes(),
    );
    let mc = state.query.metadata_cache();
    for (name, kind, help, value) in [
        (
            "unmogrowp_query_metadata_cache_files",
            "gauge",
            "Segment files whose Parquet footer is cached.",
            mc.files as u64,
        ),
        (
            "unmogrowp_query_metadata_cache_bytes",
            "gauge",
            "Memory held by cached Parquet footers.",
            mc.bytes as u64,
        ),
        (
            "unmogrowp_query_metadata_cache_hits_total",
            "counter",
            "Footer reads answered from the cache.",
            mc.hits,
        ),
        (
            "unmogrowp_query_metadata_cache_misses_total",
            "counter",
            "Footer reads that went to the file.",
            mc.misses,
        ),
    ] {
        write_metric(&mut out, name, kind, help, value);
    }
    let rr = state.log.wal().recovery_report();
    write_metric(
        &mut out,
        "unmogrowp_wal_torn_tail_bytes_truncated",
        "gauge",
        "Bytes of torn tail dropped at the last start.",
        rr.torn_tail_bytes_truncated,
    );
    match rustix::fs::statvfs(&state.cfg.data_dir) {
        Ok(fs) => {
            write_metric(
                &mut out,
                "unmogrowp_data_dir_available_bytes",
                "gauge",
                "Bytes free for the node on the data directory's file system (alert well before 0: a full disk stops the log writer and every write gets 503).",
                fs.f_bavail.saturating_mul(fs.f_frsize),
            );
            write_metric(
                &mut out,
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
            &mut out,
            "unmogrowp_clock_ntp_synchronized",
            "gauge",
            "1 if the kernel reports the wall clock NTP-synchronised (alert on 0: JWT time checks and lockout windows use it).",
            u8::from(ntp.synchronized),
        );
        write_metric(
            &mut out,
            "unmogrowp_clock_ntp_offset_seconds",
            "gauge",
            "Clock offset from the NTP reference as the kernel last saw it (alert beyond ±1 s; tokens allow 60 s of leeway).",
            ntp.offset_secs,
        );
        write_metric(
            &mut out,
            "unmogrowp_clock_ntp_max_error_seconds",
            "gauge",
            "The kernel's maximum clock error estimate.",
            ntp.max_error_secs,
        );
    }
    write_metric(
        &mut out,
        "unmogrowp_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        state.started.elapsed().as_secs_f64(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
