//! `compat`: mirrors of the appliance's committed events to the systems a site may keep from
//! the old stack — Postgres, ClickHouse and Kafka — as real clients of each (tokio-postgres,
//! ClickHouse's HTTP interface, librdkafka). The appliance is the source of truth; each sink
//! is made idempotent on `(app_id, event_id)` so at-least-once delivery is exactly once in
//! effect. Where a mirror is in the log and which node runs it is the server's business
//! (`server/src/mirror/`); this crate reads stored rows, encodes them and writes them.
//! See README.md.

mod error;
mod row;
pub mod sink;
mod spec;

pub use error::MirrorError;
pub use row::{derived_key, rfc3339_ms, rows_of, MirrorRow};
pub use sink::{Sink, SinkBatch, SinkErasure};
pub use spec::{parse_all, parse_duration, ChSchema, MirrorSpec, SinkKind, SinkUrl, SpecError};
