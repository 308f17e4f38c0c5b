//! Mirrors: every committed event copied to Postgres, ClickHouse or Kafka (`[[mirror]]`).
//!
//! The sinks and encodings are in the `compat` crate; here is who runs a mirror and where it
//! stands. Exactly one node — the Raft leader — runs each mirror ([`supervisor`]); its runner
//! reads stored events from the table by log index after the mirror's cursor, writes them to
//! the sink, and only then moves the cursor through the log ([`crate::raft::mirror_book`]), so
//! a new leader, a restarted node or a restored backup continues from the last position a sink
//! acknowledged. The runner never touches the ingest or query paths: a dead sink makes its
//! mirror fall behind and nothing else.

mod runner;
pub mod status;
mod supervisor;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub use status::MirrorStatus;
pub use supervisor::Supervisor;

/// A configured mirror: runnable, or the reason it is not.
pub enum Configured {
    Valid(compat::MirrorSpec),
    Invalid(compat::SpecError),
}

impl Configured {
    pub fn name(&self) -> &str {
        match self {
            Configured::Valid(s) => &s.name,
            Configured::Invalid(e) => &e.name,
        }
    }
}

/// What only the node running a mirror knows (not replicated).
#[derive(Default)]
pub struct Live {
    /// Failed attempts (connect, read or write) on this node.
    pub errors: AtomicU64,
}

/// The mirrors of this node's configuration and their node-local counters. Shared by the
/// supervisor, the admin API and `/metrics`.
pub struct Mirrors {
    pub configured: Vec<Configured>,
    pub live: BTreeMap<String, Arc<Live>>,
    /// When the node started (the time invalid entries report their error at).
    pub started_ms: i64,
}

impl Mirrors {
    /// Checks the `[[mirror]]` entries; bad ones are logged (without secrets) and kept, so the
    /// API and metrics show why they do not run.
    pub fn from_config(entries: &[toml::Value], now_ms: i64) -> Self {
        let mut configured = Vec::new();
        let mut live = BTreeMap::new();
        for r in compat::parse_all(entries) {
            let c = match r {
                Ok(spec) => {
                    tracing::info!(mirror = %spec.name, kind = spec.kind.as_str(), url = %spec.url, "mirror configured");
                    Configured::Valid(spec)
                }
                Err(e) => {
                    tracing::error!(mirror = %e.name, error = %e.message, "mirror cannot run: fix its [[mirror]] entry and restart the node");
                    Configured::Invalid(e)
                }
            };
            live.entry(c.name().to_string())
                .or_insert_with(|| Arc::new(Live::default()));
            configured.push(c);
        }
        Self {
            configured,
            live,
            started_ms: now_ms,
        }
    }

    pub fn find(&self, name: &str) -> Option<&Configured> {
        self.configured.iter().find(|c| c.name() == name)
    }

    pub fn live(&self, name: &str) -> Arc<Live> {
        self.live.get(name).cloned().unwrap_or_default()
    }
}
