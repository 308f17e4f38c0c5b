//! `query`: the SQL side of UnMoGrowP. Adapts the engine's read views to DataFusion
//! ([`events::EventsTable`]) and runs analyst SQL ([`QueryService`]) with statements that could
//! write, change the session or touch files refused at planning time.

mod clickhouse;
mod error;
pub mod events;
mod json;
mod service;

pub use error::{ErrorKind, QueryError, Result};
pub use service::{Column, QueryConfig, QueryRequest, QueryResult, QueryService, Scope};
