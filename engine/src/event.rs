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

/// A batch of events encoded once, where they are accepted, carried through the log and the
/// network as one byte string and read in place at apply ([`EventBatch::events`]), so no event
/// is decoded into owned strings on the way.
///
/// Encoding: [`VARINT_MARK`], the event count as a little-endian u32, then bincode of
/// `Vec<Event>` with variable-length integers (a string's length costs 1 byte instead of 8,
/// a quarter of a typical event's bytes). Batches written before that encoding existed are
/// bincode with fixed 8-byte integers; their first 8 bytes are the count, which is never
/// `u64::MAX`, so both read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch(bytes::Bytes);

const VARINT_MARK: [u8; 8] = [0xFF; 8];
const VARINT_HEADER: usize = VARINT_MARK.len() + 4;

fn varint() -> impl bincode::Options {
    bincode::DefaultOptions::new()
}

impl EventBatch {
    pub fn encode(events: &[Event]) -> crate::Result<Self> {
        use bincode::Options;
        let err = |e: bincode::Error| crate::EngineError::Decode(format!("encoding events: {e}"));
        let count = u32::try_from(events.len())
            .map_err(|_| crate::EngineError::Decode("too many events in one batch".into()))?;
        let size = varint().serialized_size(events).map_err(err)? as usize;
        let mut out = Vec::with_capacity(VARINT_HEADER + size);
        out.extend_from_slice(&VARINT_MARK);
        out.extend_from_slice(&count.to_le_bytes());
        varint().serialize_into(&mut out, events).map_err(err)?;
        Ok(Self(bytes::Bytes::from(out)))
    }

    /// How many events the batch holds (from its header), without decoding it.
    pub fn len(&self) -> usize {
        if self.is_varint() {
            self.0
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .map_or(0, |b| u32::from_le_bytes(b) as usize)
        } else {
            self.0
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, |b| u64::from_le_bytes(b) as usize)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_varint(&self) -> bool {
        self.0.starts_with(&VARINT_MARK)
    }

    /// The events, borrowing their strings from the batch.
    pub fn events(&self) -> crate::Result<Vec<EventRef<'_>>> {
        use bincode::Options;
        let decode = |e: bincode::Error| crate::EngineError::Decode(e.to_string());
        if !self.is_varint() {
            return bincode::deserialize(&self.0).map_err(decode);
        }
        let body = self.0.get(VARINT_HEADER..).unwrap_or_default();
        let events: Vec<EventRef<'_>> = varint().deserialize(body).map_err(decode)?;
        if events.len() != self.len() {
            return Err(crate::EngineError::Decode(format!(
                "event batch says {} events but holds {}",
                self.len(),
                events.len()
            )));
        }
        Ok(events)
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
    fn batches_of_the_fixed_width_encoding_still_read_back() {
        let events: Vec<Event> = (0..3).map(event).collect();
        let legacy = EventBatch(bytes::Bytes::from(bincode::serialize(&events).unwrap()));
        assert_eq!(legacy.len(), 3);
        let expected: Vec<EventRef<'_>> = events.iter().map(Event::as_ref).collect();
        assert_eq!(legacy.events().unwrap(), expected);
        // The variable-length encoding is the smaller one.
        let current = EventBatch::encode(&events).unwrap();
        assert!(
            current.0.len() * 10 < legacy.0.len() * 8,
            "{} vs {}",
            current.0.len(),
            legacy.0.len()
        );
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
