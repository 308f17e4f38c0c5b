//! `POST /v1/events`: body decoding, per-event validation, and the proposer that turns accepted
//! events into replicated log entries.

mod decode;
pub mod disk_space;
mod privacy;
pub mod proposer;
mod validate;

pub use crate::config::IngestLimits;
pub use decode::{decode_body, BodyError};
pub use validate::{validate_event, RequestContext};

use serde::Serialize;

/// One event that failed validation, by its position in the request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rejected {
    pub index: usize,
    pub error: String,
}

/// Answer of `POST /v1/events` (202, or 400 when nothing was valid).
#[derive(Debug, Clone, Serialize)]
pub struct IngestResponse {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
}

/// Decodes and validates a whole body: the valid events and the per-event rejections.
pub fn parse_events(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    limits: &IngestLimits,
    ctx: &RequestContext,
) -> Result<(Vec<engine::Event>, Vec<Rejected>), BodyError> {
    let values = decode_body(body, content_type, content_encoding, limits)?;
    let mut events = Vec::with_capacity(values.len());
    let mut rejected = Vec::new();
    for (index, v) in values.into_iter().enumerate() {
        match validate_event(v, limits, ctx) {
            Ok(e) => events.push(e),
            Err(error) => rejected.push(Rejected { index, error }),
        }
    }
    Ok((events, rejected))
}
