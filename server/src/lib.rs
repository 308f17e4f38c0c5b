//! `server`: UnMoGrowP's HTTP API, cluster wiring and the `unmogrowp` binary.
//!
//! Data flows one way: HTTP → authorization (`security`) → ingest validation → proposer → Raft
//! log (`wal`) → state machine → `engine` / `auth` store → `query` → HTTP.

pub mod backup;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod data_dir;
pub mod http;
pub mod ingest;
pub mod kind;
pub mod local_cluster;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod mirror;
pub mod node;
pub mod raft;
pub mod security;

pub use config::ServerConfig;
pub use http::router;
pub use node::{AppState, Node};
