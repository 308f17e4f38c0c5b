//! The columnar engine's and its rollups' metrics (`unmogrowp_engine_*`, `unmogrowp_rollup_*`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::write_metric;

pub fn collect(out: &mut String, engine: &engine::Engine) {
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let opt = |o: Option<u64>| o.map_or(-1i64, |v| v as i64);
    let manifest = engine.manifest();
    let st = engine.stats();
    write_metric(
        out,
        "unmogrowp_engine_flushed_index",
        "gauge",
        "Last log index flushed to Parquet.",
        opt(manifest.flushed_index),
    );
    write_metric(
        out,
        "unmogrowp_engine_segments",
        "gauge",
        "Parquet segments in the table.",
        manifest.segments.len(),
    );
    write_metric(
        out,
        "unmogrowp_engine_segment_bytes",
        "gauge",
        "Bytes in Parquet segments.",
        manifest.segments.iter().map(|s| s.bytes).sum::<u64>(),
    );
    write_metric(
        out,
        "unmogrowp_engine_memtable_rows",
        "gauge",
        "Rows not yet flushed to Parquet.",
        engine.memtable_rows(),
    );
    business(out, engine);
    write_metric(
        out,
        "unmogrowp_engine_memtable_flush_rows",
        "gauge",
        "engine.flush_rows: the memtable is flushed when it holds this many rows (several times more means flushing falls behind or fails).",
        engine.config().flush_rows,
    );
    write_metric(
        out,
        "unmogrowp_engine_flushes_total",
        "counter",
        "Memtable flushes.",
        c(&st.flushes),
    );
    write_metric(
        out,
        "unmogrowp_engine_rows_flushed_total",
        "counter",
        "Rows written to Parquet.",
        c(&st.rows_flushed),
    );
    write_metric(
        out,
        "unmogrowp_engine_flush_seconds_total",
        "counter",
        "Time spent flushing memtables to Parquet (partition, sort, encode, write, fsync).",
        c(&st.flush_micros_total) as f64 / 1e6,
    );
    write_metric(
        out,
        "unmogrowp_engine_flush_sort_seconds_total",
        "counter",
        "Part of the flush time spent splitting rows by (app, day) and sorting them.",
        c(&st.partition_micros_total) as f64 / 1e6,
    );
    write_metric(
        out,
        "unmogrowp_engine_compactions_total",
        "counter",
        "Merges of small segments into one.",
        c(&st.compactions),
    );
    write_metric(
        out,
        "unmogrowp_engine_segments_compacted_total",
        "counter",
        "Segments replaced by compaction.",
        c(&st.segments_compacted),
    );
    write_metric(
        out,
        "unmogrowp_engine_compaction_failures_total",
        "counter",
        "Merges that failed (their segments are left as they are; see the log).",
        c(&st.compaction_failures),
    );
    write_metric(
        out,
        "unmogrowp_engine_retention_segments_dropped_total",
        "counter",
        "Segments removed because their app's retention floor (privacy.retention_days) passed them.",
        c(&st.retention_segments_dropped),
    );
    write_metric(
        out,
        "unmogrowp_engine_retention_rows_dropped_total",
        "counter",
        "Rows of those segments.",
        c(&st.retention_rows_dropped),
    );
    write_metric(
        out,
        "unmogrowp_engine_erasure_segments_rewritten_total",
        "counter",
        "Segments rewritten (or removed, when nothing else was left) by erasures (issue 29).",
        c(&st.erasure_segments_rewritten),
    );
    write_metric(
        out,
        "unmogrowp_engine_erasure_rows_removed_total",
        "counter",
        "Rows removed from segments by erasures.",
        c(&st.erasure_rows_removed),
    );
    let erasures = engine.erasures();
    write_metric(
        out,
        "unmogrowp_engine_erasures_pending",
        "gauge",
        "Erasures with segments this node has still to rewrite (alert if it stays above 0).",
        erasures.iter().filter(|e| !e.done()).count() as u64,
    );
    write_metric(
        out,
        "unmogrowp_engine_summaries_rebuilt_total",
        "counter",
        "Segment summaries found missing or damaged when the table was opened (start, snapshot install) and rebuilt from the rows (see the log).",
        c(&st.summaries_rebuilt),
    );
    let scrub = engine.scrub_stats();
    for (name, kind, help, v) in [
        (
            "unmogrowp_engine_segments_damaged",
            "gauge",
            "Segments whose file does not match its manifest size and xxh3: reads of them fail and /ready says not ready (alert at > 0; restore the node from a replica).",
            scrub.damaged,
        ),
        (
            "unmogrowp_engine_segments_unchecked",
            "gauge",
            "Segments not checked against their checksum since the open (the scrub's backlog; a read checks a segment first).",
            scrub.unchecked,
        ),
        (
            "unmogrowp_engine_scrub_passes_total",
            "counter",
            "Background scrub passes completed over every segment (one after the open, then every engine.scrub_interval_hours).",
            scrub.passes,
        ),
        (
            "unmogrowp_engine_scrub_bytes_read_total",
            "counter",
            "Bytes read to check segments against their checksums (scrub and first reads).",
            scrub.bytes_read,
        ),
    ] {
        write_metric(out, name, kind, help, v);
    }
    let d = engine.dedupe_stats();
    for (name, kind, help, v) in [
        (
            "unmogrowp_engine_dedupe_keys",
            "gauge",
            "Event-id keys held in memory (the days of ingest.dedupe_window, and older days asked lately).",
            d.keys_in_memory,
        ),
        (
            "unmogrowp_engine_dedupe_days",
            "gauge",
            "UTC days whose event-id keys are held in memory.",
            d.days_in_memory,
        ),
        (
            "unmogrowp_engine_dedupe_key_bytes",
            "gauge",
            "Bytes of the event-id keys held in memory (days before yesterday packed, 16 bytes a key).",
            d.key_bytes,
        ),
        (
            "unmogrowp_engine_dedupe_filter_bytes",
            "gauge",
            "Bytes of the segments' event-id filters held in memory.",
            d.filter_bytes,
        ),
        (
            "unmogrowp_engine_dedupe_filters_in_summaries",
            "gauge",
            "Segment filters engine.memory_budget_mb left in the segments' summaries (read back when a lookup needs them).",
            d.filters_in_summaries,
        ),
        (
            "unmogrowp_engine_dedupe_filter_reads_total",
            "counter",
            "Segment filters read back from summaries for a lookup.",
            d.filter_reads,
        ),
        (
            "unmogrowp_engine_dedupe_budget_evictions_total",
            "counter",
            "Filters and days of dedupe state sent out of memory by engine.memory_budget_mb.",
            d.budget_evictions,
        ),
        (
            "unmogrowp_engine_dedupe_segment_reads_total",
            "counter",
            "Event ids settled by reading a segment's ids (its filter said maybe: a re-send after the window, or 1 in 65,536 by chance).",
            d.segment_reads,
        ),
    ] {
        write_metric(out, name, kind, help, v);
    }
    let rollups = engine.rollups().size();
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
            "Bytes of the per-user event times kept in memory for funnels.",
            rollups.funnel_bytes,
        ),
        (
            "unmogrowp_rollup_funnel_days_out",
            "(app, UTC day)s of funnel step times left in the segments' summaries (memory budget; read back on demand).",
            engine.rollups().step_days_out_count(),
        ),
        (
            "unmogrowp_rollup_days_out",
            "(app, UTC day)s of hourly rollups (with their campaign days) left in the segments' summaries: older than engine.hot_days at open, or sent out by the memory budget; read back when a reader needs them.",
            engine.rollups().hour_days_out_count(),
        ),
        (
            "unmogrowp_rollup_funnel_budget_bytes",
            "engine.memory_budget_mb, which the funnel step times share with the rollups' sets and the dedupe state (see unmogrowp_engine_memory_bytes).",
            engine.config().memory_budget_bytes(),
        ),
    ] {
        write_metric(out, name, "gauge", help, v);
    }
    memory(out, engine.memory_use());
}

/// The engine's resident state against `engine.memory_budget_mb`, by part.
fn memory(out: &mut String, m: engine::MemoryUse) {
    write_metric(
        out,
        "unmogrowp_engine_memory_budget_bytes",
        "gauge",
        "engine.memory_budget_mb in bytes: the most the node may hold in memory outside running queries; the rollups' sets and user dictionaries, the dedupe keys and filters and the funnel step times get what the rest of the process leaves.",
        m.budget,
    );
    let _ = writeln!(
        out,
        "# HELP unmogrowp_engine_memory_bytes The node's resident memory outside running queries by part, as last measured against engine.memory_budget_mb: the engine's state, and part=\"other\" for the rest of the process (memtable, caches, allocator slack).\n# TYPE unmogrowp_engine_memory_bytes gauge"
    );
    for (part, v) in [
        ("rollups", m.rollup_bytes),
        ("user_dictionary", m.dictionary_bytes),
        ("dedupe_keys", m.dedupe_key_bytes),
        ("dedupe_filters", m.dedupe_filter_bytes),
        ("funnel_steps", m.step_bytes),
        ("other", m.other_bytes),
    ] {
        let _ = writeln!(out, "unmogrowp_engine_memory_bytes{{part=\"{part}\"}} {v}");
    }
    write_metric(
        out,
        "unmogrowp_engine_memory_over_budget_bytes",
        "gauge",
        "By how much what cannot leave memory (the rollups' sets, the hot days' step times, today's and yesterday's dedupe keys, the rest of the process) exceeds engine.memory_budget_mb; 0 within it.",
        m.over(),
    );
}

/// Per-app figures of the last 24 hours (by event time, from the hourly rollups: the same
/// numbers the dashboard shows), for the business dashboard. At most
/// [`super::MAX_APP_SERIES`] apps, in name order.
fn business(out: &mut String, engine: &engine::Engine) {
    let now_hour = crate::clock::now_ms().div_euclid(3_600_000);
    let day = now_hour - 23..now_hour + 1;
    let per_app: Vec<(String, engine::Totals)> = {
        let r = engine.rollups();
        let hours: Vec<_> = r
            .apps()
            .into_iter()
            .take(super::MAX_APP_SERIES)
            .map(|a| {
                let h = r.hours(&a, day.clone());
                (a, h)
            })
            .collect();
        drop(r);
        hours.into_iter().map(|(a, h)| (a, h.totals())).collect()
    };
    type Figure = fn(&engine::Totals) -> f64;
    let figures: [(&str, &str, Figure); 4] = [
        (
            "unmogrowp_app_events_24h",
            "Events of the app in the last 24 hours (event time).",
            |t| t.events as f64,
        ),
        (
            "unmogrowp_app_active_users_24h",
            "Distinct users of the app in the last 24 hours.",
            |t| t.users as f64,
        ),
        (
            "unmogrowp_app_revenue_24h",
            "Revenue of the app in the last 24 hours (sum of `revenue`, all currencies).",
            |t| t.revenue,
        ),
        (
            "unmogrowp_app_installs_24h",
            "`install` events of the app in the last 24 hours.",
            |t| t.by_type.get("install").copied().unwrap_or(0) as f64,
        ),
    ];
    for (name, help, f) in figures {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (app, t) in &per_app {
            let _ = writeln!(out, "{name}{{app=\"{}\"}} {}", super::label(app), f(t));
        }
    }
}
