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

/// Attribution fields of an [`EventRef`], borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributionRef<'a> {
    #[serde(borrow)]
    pub campaign: Option<&'a str>,
    #[serde(borrow)]
    pub source: Option<&'a str>,
    #[serde(borrow)]
    pub medium: Option<&'a str>,
    #[serde(borrow)]
    pub content: Option<&'a str>,
    #[serde(borrow)]
    pub term: Option<&'a str>,
}

/// An [`Event`] whose strings are borrowed, e.g. straight out of an encoded [`EventBatch`]:
/// what apply reads, without allocating a string per field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRef<'a> {
    pub timestamp_ms: i64,
    pub app_id: &'a str,
    pub event_type: &'a str,
    #[serde(borrow)]
    pub user_id: Option<&'a str>,
    #[serde(borrow)]
    pub session_id: Option<&'a str>,
    pub device_id: &'a str,
    pub platform: &'a str,
    #[serde(borrow)]
    pub app_version: Option<&'a str>,
    #[serde(borrow)]
    pub attribution: AttributionRef<'a>,
    #[serde(borrow)]
    pub event_data: Vec<(&'a str, &'a str)>,
    pub revenue: Option<f64>,
    #[serde(borrow)]
    pub currency: Option<&'a str>,
    #[serde(borrow)]
    pub ip: Option<&'a str>,
    #[serde(borrow)]
    pub user_agent: Option<&'a str>,
    pub received_at_ms: i64,
    #[serde(borrow)]
    pub event_id: Option<&'a str>,
}

impl Event {
    /// This event with its strings borrowed.
    pub fn as_ref(&self) -> EventRef<'_> {
        let a = &self.attribution;
        EventRef {
            timestamp_ms: self.timestamp_ms,
            app_id: &self.app_id,
            event_type: &self.event_type,
            user_id: self.user_id.as_deref(),
            session_id: self.session_id.as_deref(),
            device_id: &self.device_id,
            platform: &self.platform,
            app_version: self.app_version.as_deref(),
            attribution: AttributionRef {
                campaign: a.campaign.as_deref(),
                source: a.source.as_deref(),
                medium: a.medium.as_deref(),
                content: a.content.as_deref(),
                term: a.term.as_deref(),
            },
            event_data: self
                .event_data
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            revenue: self.revenue,
            currency: self.currency.as_deref(),
            ip: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            received_at_ms: self.received_at_ms,
            event_id: self.event_id.as_deref(),
        }
    }
}

/// A batch of events encoded once, where they are accepted (bincode of `Vec<Event>`), carried
/// through the log and the network as one byte string and read in place at apply
/// ([`EventBatch::events`]), so no event is decoded into owned strings on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch(bytes::Bytes);

impl EventBatch {
    pub fn encode(events: &[Event]) -> crate::Result<Self> {
        bincode::serialize(events)
            .map(|b| Self(bytes::Bytes::from(b)))
            .map_err(|e| crate::EngineError::Decode(format!("encoding events: {e}")))
    }

    /// How many events the batch holds (bincode's length prefix), without decoding it.
    pub fn len(&self) -> usize {
        self.0
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from_le_bytes(b) as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events, borrowing their strings from the batch.
    pub fn events(&self) -> crate::Result<Vec<EventRef<'_>>> {
        bincode::deserialize(&self.0).map_err(|e| crate::EngineError::Decode(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(i: u32) -> Event {
        Event {
            timestamp_ms: 1_700_000_000_000 + i64::from(i),
            app_id: "app".into(),
            event_type: "purchase".into(),
            user_id: (i % 2 == 0).then(|| format!("u{i}")),
            session_id: None,
            device_id: format!("d{i}"),
            platform: "ios".into(),
            app_version: Some("1.0".into()),
            attribution: Attribution {
                campaign: Some("c".into()),
                source: None,
                medium: Some("cpc".into()),
                content: None,
                term: Some("t é".into()),
            },
            event_data: vec![
                ("revenue".into(), "9.99".into()),
                ("k".into(), String::new()),
            ],
            revenue: Some(9.99),
            currency: Some("USD".into()),
            ip: None,
            user_agent: Some("ua".into()),
            received_at_ms: 5,
            event_id: Some(format!("e{i}")),
        }
    }

    #[test]
    fn a_batch_reads_back_every_field_in_place() {
        let events: Vec<Event> = (0..3).map(event).collect();
        let batch = EventBatch::encode(&events).unwrap();
        assert_eq!(batch.len(), 3);
        let read = batch.events().unwrap();
        let expected: Vec<EventRef<'_>> = events.iter().map(Event::as_ref).collect();
        assert_eq!(read, expected);
        // Strings point into the batch, not into fresh allocations.
        let range = batch.0.as_ptr_range();
        assert!(range.contains(&read[1].device_id.as_ptr()));
        assert!(EventBatch::encode(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_batch_is_an_error_not_a_panic() {
        let batch = EventBatch::encode(&[event(1)]).unwrap();
        for cut in 0..batch.0.len() {
            let short = EventBatch(batch.0.slice(..cut));
            assert!(short.events().is_err(), "cut at {cut}");
        }
    }
}
