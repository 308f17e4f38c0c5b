//! `query`: the SQL side of UnMoGrowP. Adapts the engine's read views to DataFusion
//! ([`table::EventsTable`]) and runs analyst SQL ([`QueryService`]) with statements that could
//! write, change the session or touch files refused at planning time.

mod clickhouse;
mod error;
mod json;
mod service;
pub mod table;

pub use error::{ErrorKind, QueryError, Result};
pub use service::{Column, QueryConfig, QueryRequest, QueryResult, QueryService, Scope};
