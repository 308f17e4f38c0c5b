//! The query service's metrics (`unmogrowp_queries_*`, `unmogrowp_query_*`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::write_metric;

pub fn collect(out: &mut String, query: &query::QueryService) {
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let qs = query.stats();
    let mem = query.memory();
    write_metric(
        out,
        "unmogrowp_query_memory_reserved_bytes",
        "gauge",
        "Memory reserved by the SQL queries running now, all together.",
        mem.reserved_bytes,
    );
    write_metric(
        out,
        "unmogrowp_query_memory_largest_bytes",
        "gauge",
        "Memory reserved by the running query holding the most (near query.memory_limit_bytes: it spills, then fails).",
        mem.largest_bytes,
    );
    write_metric(
        out,
        "unmogrowp_query_memory_limit_bytes",
        "gauge",
        "query.memory_limit_bytes: what one query may reserve.",
        query.config().memory_limit_bytes,
    );
    write_metric(
        out,
        "unmogrowp_query_total_memory_bytes",
        "gauge",
        "query.total_memory_bytes: what all running queries together may reserve.",
        query.config().total_memory_bytes,
    );
    write_metric(
        out,
        "unmogrowp_query_max_concurrent",
        "gauge",
        "query.max_concurrent_queries: queries admitted at once on this node.",
        query.config().max_concurrent_queries,
    );
    write_metric(
        out,
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
        write_metric(out, name, "counter", help, c(v));
    }
    write_metric(
        out,
        "unmogrowp_query_spill_bytes",
        "gauge",
        "Bytes of query spill files on disk.",
        query.spill_bytes(),
    );
    let mc = query.metadata_cache();
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
        (
            "unmogrowp_query_metadata_cache_evictions_total",
            "counter",
            "Cached footers dropped to make room (query.parquet_metadata_cache_bytes is too small for the footers queries read).",
            mc.evictions,
        ),
    ] {
        write_metric(out, name, kind, help, value);
    }
}
