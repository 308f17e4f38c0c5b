//! What `engine.memory_budget_mb` counts ([`crate::EngineConfig::memory_budget_bytes`]): the
//! state the engine keeps in memory that grows with the data it holds — the rollups' user
//! sets and the user dictionaries numbering them, the dedupe keys and key filters, the funnel
//! step times. The memtable (bounded by
//! `flush_rows`/`flush_bytes`) and queries (`query.memory_limit_bytes`) have limits of their
//! own.
//!
//! The server tells each tick the process's resident memory outside running queries'
//! reservations, so the budget bounds the process: what it holds besides the counted parts
//! (`other_bytes`: memtable, footer cache, allocator slack) leaves the parts that much less
//! room.
//!
//! The housekeeping tick keeps the total within the budget by sending out of memory, in this
//! order, what can be read back from the segments' summaries: funnel step days older than
//! `hot_days` (least recently used first), then days of the rollups' hours older than
//! `hot_days` (the same), then key filters, then whole dedupe days older than yesterday. The
//! user dictionaries and the hot days are never sent out; if they alone exceed the budget,
//! [`MemoryUse::over`] says by how much.

/// This machine's physical memory (`MemTotal`), bytes; 4 GiB if it cannot be read. The
/// defaults of the engine's budget and of the queries' memory limits are shares of it.
pub fn physical_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(4 << 30, |kb| kb * 1024)
}

/// The engine's resident state, as last measured by the housekeeping tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// `engine.memory_budget_mb` in bytes.
    pub budget: u64,
    /// The rollups' user sets (serialized size of their bitmaps).
    pub rollup_bytes: u64,
    /// The user dictionaries numbering user_ids for those sets (estimated from their sizes).
    pub dictionary_bytes: u64,
    /// Event-id keys of the dedupe days held in memory.
    pub dedupe_key_bytes: u64,
    /// Key filters of segments held in memory.
    pub dedupe_filter_bytes: u64,
    /// Funnel step times held in memory.
    pub step_bytes: u64,
    /// What the process holds besides those parts and running queries' reservations
    /// (memtable, caches, allocator slack), when the caller told the engine its resident
    /// memory ([`crate::Engine::tick_within`]); the parts get that much less room.
    pub other_bytes: u64,
}

impl MemoryUse {
    pub fn held(&self) -> u64 {
        self.rollup_bytes
            + self.dictionary_bytes
            + self.dedupe_key_bytes
            + self.dedupe_filter_bytes
            + self.step_bytes
    }

    /// By how much what is left after sending out all that can leave memory exceeds the
    /// budget, `other_bytes` included (0 within it).
    pub fn over(&self) -> u64 {
        (self.held() + self.other_bytes).saturating_sub(self.budget)
    }
}
