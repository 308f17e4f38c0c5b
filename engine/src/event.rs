//! The event row as it travels through the replicated log into the engine.

use serde::{Deserialize, Serialize};

/// UTM-style attribution fields (`attribution.*` in the SDK payload).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub campaign: Option<String>,
    pub source: Option<String>,
    pub medium: Option<String>,
    pub content: Option<String>,
    pub term: Option<String>,
}

/// One validated event, ready to be stored. Field meanings follow PRODUCT.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    pub app_id: String,
    pub event_type: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub device_id: String,
    /// One of `ios`, `android`, `web`, `other`.
    pub platform: String,
    pub app_version: Option<String>,
    pub attribution: Attribution,
    /// Flat custom properties, scalar values rendered as strings, in the order received.
    pub event_data: Vec<(String, String)>,
    pub revenue: Option<f64>,
    pub currency: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When the appliance received the event, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// Client-supplied idempotency key (a UUID); events carrying one are stored once per app.
    pub event_id: Option<String>,
}

/// Outcome of applying one batch of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    pub accepted: u64,
    pub duplicates: u64,
}
