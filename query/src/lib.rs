//! `query`: the SQL side of UnMoGrowP. Adapts the engine's read views to DataFusion
//! ([`events::EventsTable`]) and runs analyst SQL ([`QueryService`]) on its own runtime within
//! limits, with statements that could write, change the session or touch files refused at
//! planning time. Answers are encoded by [`format`].

pub mod admin_table;
mod admission;
pub mod attribution;
pub mod audit_log;
mod clickhouse;
mod complexity;
mod config;
pub mod dashboard;
mod deadline;
mod error;
pub mod events;
pub mod format;
mod node_memory;
mod rollup;
mod runtime;
mod seed_views;
mod service;
mod value_guard;

pub use complexity::ComplexityLimits;
pub use error::{ErrorKind, QueryError, Result};
pub use service::{
    Column, IdleHook, QueryConfig, QueryMemory, QueryOptions, QueryRequest, QueryService,
    QueryStats, QueryStream, Scope,
};
