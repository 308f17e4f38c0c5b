//! `engine`: UnMoGrowP's columnar event store. Event batches are applied (in log order) to an
//! Arrow memtable, flushed in the background to zstd Parquet segments partitioned by app and
//! UTC day, and listed in an atomically replaced manifest that also records how far the log is
//! flushed. Readers get a [`ReadView`] of segments plus in-memory batches.
//!
//! The engine knows nothing of the log, of Raft or of HTTP. See README.md.

mod compaction;
mod config;
mod crash;
mod day_keys;
mod dedupe;
mod dictionary;
mod engine;
mod erasure;
mod error;
mod event;
mod funnel;
mod gather;
mod generation;
mod hash128;
mod hour_days;
mod io;
mod log_range;
mod manifest;
mod memory;
mod memtable;
mod pins;
mod rollup;
mod schema;
mod scrub;
mod segment;
mod step_days;
mod summary;
mod thread;

pub use config::EngineConfig;
pub use crash::CrashPoints;
pub use dictionary::DictionaryMeta;
pub use engine::{ApplyBatch, DedupeStats, Engine, EngineStats, ReadView};
pub use erasure::{without_erased, ErasePart, EraseRequest, Erasure};
pub use error::{EngineError, ErrorKind, Result};
pub use event::{ApplyOutcome, Attribution, AttributionRef, Event, EventBatch, EventRef};
pub use funnel::{FunnelStep, StepDays};
pub use generation::{table_files, TableFile};
pub use hash128::{Hash128Hasher, Hash128Set};
pub use log_range::{first_index_received_since, LogRange};
pub use manifest::{Manifest, SegmentMeta};
pub use memory::{physical_memory_bytes, MemoryUse};
pub use pins::SegmentPins;
pub use rollup::{
    micros, retention, Bucket, CampaignKey, CampaignSets, CampaignTotals, Cohort, GroupTotals,
    Hours, RollupDim, RollupRow, RollupSize, Rollups, Totals, HOUR_MS,
};
pub use schema::{
    events_schema, COL_APP_ID, COL_EVENT_ID, COL_EVENT_TYPE, COL_LOG_INDEX, COL_RECEIVED_AT,
    COL_TIMESTAMP, LOW_CARDINALITY,
};
pub use scrub::{ScrubStats, SegmentChecks};
pub use thread::lower_current_thread_priority;
