//! The three sinks behind one type. Each `write` is all-or-nothing from the runner's point of
//! view: only after it returns `Ok` does the mirror's cursor move (through the Raft log).

mod clickhouse;
mod kafka;
mod postgres;

use crate::error::MirrorError;
use crate::row::MirrorRow;
use crate::spec::{MirrorSpec, SinkKind};

/// Rows of the log entries `from..=to` that the mirror takes, in log order.
pub struct SinkBatch<'a> {
    pub mirror: &'a str,
    pub generation: u64,
    pub from: u64,
    pub to: u64,
    pub rows: &'a [MirrorRow],
    /// Part of this range may already be in the sink (a retry, the first batch of a new
    /// runner, or a replay): sinks that cannot deduplicate by themselves check first.
    pub maybe_sent: bool,
}

/// What an erasure (issue 29) removes from a sink: the rows of one user or device of an app
/// from the log entries before `before_index`.
pub struct SinkErasure<'a> {
    pub app_id: &'a str,
    /// A row with any of these user ids or device ids goes.
    pub user_ids: &'a [String],
    pub device_ids: &'a [String],
    pub before_index: u64,
    /// The erased events' ids (Kafka writes a tombstone for each; the tables delete by the
    /// identifiers).
    pub event_ids: &'a [String],
}

pub enum Sink {
    Postgres(postgres::PgSink),
    ClickHouse(clickhouse::ChSink),
    Kafka(kafka::KafkaSink),
}

impl Sink {
    /// Connects, and creates the table (or topic) if missing or checks that the existing one
    /// has the columns the mirror writes.
    pub async fn connect(spec: &MirrorSpec) -> Result<Self, MirrorError> {
        let scrub = |e: MirrorError| match e {
            MirrorError::Config(m) => MirrorError::Config(spec.url.scrub(&m)),
            MirrorError::Schema(m) => MirrorError::Schema(spec.url.scrub(&m)),
            MirrorError::Sink(m) => MirrorError::Sink(spec.url.scrub(&m)),
            MirrorError::Read(m) => MirrorError::Read(m),
        };
        Ok(match spec.kind {
            SinkKind::Postgres => {
                Sink::Postgres(postgres::PgSink::connect(spec).await.map_err(scrub)?)
            }
            SinkKind::ClickHouse => {
                Sink::ClickHouse(clickhouse::ChSink::connect(spec).await.map_err(scrub)?)
            }
            SinkKind::Kafka => Sink::Kafka(kafka::KafkaSink::connect(spec).await.map_err(scrub)?),
        })
    }

    pub async fn write(&mut self, batch: &SinkBatch<'_>) -> Result<(), MirrorError> {
        match self {
            Sink::Postgres(s) => s.write(batch).await,
            Sink::ClickHouse(s) => s.write(batch).await,
            Sink::Kafka(s) => s.write(batch).await,
        }
    }

    /// Removes an erasure's rows: Postgres `DELETE`, a ClickHouse mutation waited for until
    /// done, Kafka tombstones keyed by the erased events' ids. Doing it twice is harmless.
    pub async fn erase(&mut self, e: &SinkErasure<'_>) -> Result<(), MirrorError> {
        match self {
            Sink::Postgres(s) => s.erase(e).await,
            Sink::ClickHouse(s) => s.erase(e).await,
            Sink::Kafka(s) => s.erase(e).await,
        }
    }
}
