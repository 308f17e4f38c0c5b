//! The `events` table for DataFusion: the engine's Parquet segments plus its memtable, with
//! filters pushed down to skip whole segments (by app, event time, receive time and log index
//! statistics from the manifest) and, inside segments, row groups and pages (Parquet
//! statistics, page index); `ORDER BY … LIMIT n` prunes by the best `n` rows seen so far
//! ([`topk`]); `GROUP BY` on low-cardinality strings runs on their dictionary codes
//! ([`dictionary_group`]).

mod dictionary_group;
mod exec;
mod metadata;
mod prune;
mod table;
mod topk;

pub(crate) use dictionary_group::DictionaryGroupRule;
pub use metadata::{MetadataCache, MetadataCacheStats};
pub(crate) use table::app_filter;
pub use table::{EventsTable, ScanOptions};
pub(crate) use topk::{orders_as_i64, TopKBoundRule};
