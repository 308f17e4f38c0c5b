use serde::{Deserialize, Serialize};

use crate::crash::CrashPoints;

/// Engine settings (`[engine]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Rotate the memtable into a Parquet flush at this many rows.
    pub flush_rows: usize,
    /// ... or at this many (approximate) bytes.
    pub flush_bytes: usize,
    /// ... or when its oldest row is this old, so replay after a crash stays short.
    pub flush_interval_secs: u64,
    /// zstd level of new segments (1 = fastest).
    pub zstd_level: i32,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Check size and xxh3 of every segment before the open completes (reads the whole
    /// table first: ~30 s for 16 GB from a cold disk). Off by default: a segment is checked
    /// before its first read and by the background scrub ([`crate::SegmentChecks`]).
    pub verify_segments_on_open: bool,
    /// Check every segment in the background right after the open, and again every
    /// `scrub_interval_hours`.
    pub scrub_segments: bool,
    /// Hours between the background scrub's passes over every segment (0: only the pass
    /// after the open).
    pub scrub_interval_hours: u64,
    /// Nice value of the background flush thread (0–19; higher yields more CPU to ingest and
    /// queries). Flushing is throughput work; acknowledgement latency should not wait for it.
    pub flush_thread_nice: i32,
    /// Merge the small segments of one (app, day) once there are this many (0 turns
    /// compaction off). Small means fewer than `compaction_max_rows / 2` rows.
    pub compaction_min_segments: usize,
    /// Most rows in a merged segment (bounds the memory one merge takes: ~0.5 KB per row).
    pub compaction_max_rows: usize,
    /// How often an idle engine looks for segments to merge, seconds.
    pub compaction_interval_secs: u64,
    /// Most segments one flush may write. A flush whose rows span more (app, day) pairs, e.g.
    /// timestamps sprayed over decades, writes one segment per month, per year or per app.
    pub max_partitions_per_flush: usize,
    /// Fault-test hooks; never set in production.
    #[serde(skip)]
    pub crash_points: CrashPoints,
    /// The idempotency window: event ids of the UTC days within this many seconds of now are
    /// held in memory; older days' are answered from the segments' filters (and ids). Set
    /// from `ingest.dedupe_window` by the server.
    #[serde(skip)]
    pub dedupe_window_secs: u64,
    /// Memory for the state that grows with the data (the rollups' user sets, dedupe keys and
    /// filters, funnel step times), MiB; 0: a quarter of the machine's memory. Beyond it,
    /// what the segments' summaries can give back leaves memory ([`crate::memory`]).
    pub memory_budget_mb: u64,
    /// UTC days of funnel step times and of the rollups' hours always held in memory (today
    /// and the days before it; hours: at least today and yesterday).
    pub hot_days: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            flush_rows: 1_000_000,
            flush_bytes: 512 << 20,
            flush_interval_secs: 60,
            zstd_level: 1,
            row_group_rows: 128 * 1024,
            verify_segments_on_open: false,
            scrub_segments: true,
            scrub_interval_hours: 168,
            flush_thread_nice: 10,
            compaction_min_segments: 4,
            compaction_max_rows: 2_000_000,
            compaction_interval_secs: 10,
            max_partitions_per_flush: 2048,
            crash_points: CrashPoints::default(),
            dedupe_window_secs: 7 * 86_400,
            memory_budget_mb: 0,
            hot_days: 7,
        }
    }
}

impl EngineConfig {
    /// [`EngineConfig::memory_budget_mb`] in bytes (a quarter of `MemTotal` when 0).
    pub fn memory_budget_bytes(&self) -> u64 {
        if self.memory_budget_mb > 0 {
            return self.memory_budget_mb << 20;
        }
        crate::memory::physical_memory_bytes() / 4
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.flush_rows == 0 || self.flush_bytes == 0 {
            return Err("engine.flush_rows and engine.flush_bytes must be positive".into());
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err("engine.zstd_level must be within 1..=22".into());
        }
        if !(0..=19).contains(&self.flush_thread_nice) {
            return Err("engine.flush_thread_nice must be within 0..=19".into());
        }
        if self.row_group_rows < 1024 {
            return Err("engine.row_group_rows must be at least 1024".into());
        }
        if self.compaction_min_segments == 1 {
            return Err("engine.compaction_min_segments must be 0 (off) or at least 2".into());
        }
        if self.max_partitions_per_flush == 0 || self.compaction_interval_secs == 0 {
            return Err(
                "engine.max_partitions_per_flush and engine.compaction_interval_secs must be positive"
                    .into(),
            );
        }
        Ok(())
    }
}
