//! Stored events as the sinks receive them: one [`MirrorRow`] per stored row, with the key
//! every sink deduplicates on.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt64Type};
use serde::Serialize;

use crate::error::MirrorError;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MirrorRow {
    /// The event's `event_id`, or for an event sent without one a stable id derived from its
    /// app, log index and content (see [`derived_key`]).
    pub event_id: String,
    pub app_id: String,
    pub event_type: String,
    /// RFC 3339, milliseconds, UTC.
    pub timestamp: String,
    #[serde(skip)]
    pub timestamp_ms: i64,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub device_id: String,
    pub platform: String,
    pub app_version: Option<String>,
    /// `campaign`, `source`, `medium`, `content`, `term` — those present.
    pub attribution: Vec<(String, String)>,
    pub event_data: Vec<(String, String)>,
    pub revenue: Option<f64>,
    pub currency: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub received_at: String,
    #[serde(skip)]
    pub received_at_ms: i64,
    pub log_index: u64,
}

/// The JSON object a Kafka record carries (maps as objects).
#[derive(Serialize)]
struct JsonEvent<'a> {
    event_id: &'a str,
    app_id: &'a str,
    event_type: &'a str,
    timestamp: &'a str,
    user_id: &'a Option<String>,
    session_id: &'a Option<String>,
    device_id: &'a str,
    platform: &'a str,
    app_version: &'a Option<String>,
    attribution: Pairs<'a>,
    event_data: Pairs<'a>,
    revenue: Option<f64>,
    currency: &'a Option<String>,
    ip: &'a Option<String>,
    user_agent: &'a Option<String>,
    received_at: &'a str,
    log_index: u64,
}

/// Key/value pairs written as a JSON object, in their stored order.
pub(crate) struct Pairs<'a>(pub &'a [(String, String)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl MirrorRow {
    /// The stored event as one JSON object.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    /// Appends the stored event as one JSON object to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let j = JsonEvent {
            event_id: &self.event_id,
            app_id: &self.app_id,
            event_type: &self.event_type,
            timestamp: &self.timestamp,
            user_id: &self.user_id,
            session_id: &self.session_id,
            device_id: &self.device_id,
            platform: &self.platform,
            app_version: &self.app_version,
            attribution: Pairs(&self.attribution),
            event_data: Pairs(&self.event_data),
            revenue: self.revenue,
            currency: &self.currency,
            ip: &self.ip,
            user_agent: &self.user_agent,
            received_at: &self.received_at,
            log_index: self.log_index,
        };
        // Writing plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(out, &j);
    }
}

/// RFC 3339 with milliseconds, UTC (`2026-12-06T16:46:55.123Z`). Written digit by digit: two
/// per stored row, so `strftime`'s pattern parsing showed in the mirrors' profile.
pub fn rfc3339_ms(ms: i64) -> String {
    use chrono::{Datelike, Timelike};
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return ms.to_string();
    };
    if !(0..=9999).contains(&t.year()) {
        return t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, t.year() as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 3, t.timestamp_subsec_millis().min(999));
    b.iter().map(|&c| c as char).collect()
}

/// The id of an event stored without an `event_id`: xxh3-128 of its app, log index, content
/// and how many identical events came before it in the same entry, written as a UUID. The same
/// on every node and every re-send (rows of one entry never change).
pub fn derived_key(app_id: &str, log_index: u64, content: &[u8], occurrence: u32) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"unmogrowp-mirror-key\0");
    h.update(app_id.as_bytes());
    h.update(&[0]);
    h.update(&log_index.to_le_bytes());
    h.update(content);
    h.update(&occurrence.to_le_bytes());
    let x = h.digest128().to_be_bytes();
    let hex = hex::encode(x);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, MirrorError> {
    b.column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| MirrorError::Read(format!("stored rows lack column {name}")))
}

fn strings<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray, MirrorError> {
    col(b, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| MirrorError::Read(format!("column {name} is not text")))
}

fn opt(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

/// Rows of a batch in the events schema, in batch order.
pub fn rows_of(b: &RecordBatch) -> Result<Vec<MirrorRow>, MirrorError> {
    let ts = col(b, "timestamp")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| MirrorError::Read("timestamp is not a timestamp".into()))?;
    let received = col(b, "received_at")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| MirrorError::Read("received_at is not a timestamp".into()))?;
    let index = col(b, "log_index")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| MirrorError::Read("log_index is not a number".into()))?;
    let revenue = col(b, "revenue")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| MirrorError::Read("revenue is not a number".into()))?;
    let data = col(b, "event_data")?
        .as_map_opt()
        .ok_or_else(|| MirrorError::Read("event_data is not a map".into()))?;
    let (keys, values) = (
        data.keys().as_string::<i32>(),
        data.values().as_string::<i32>(),
    );
    let app = strings(b, "app_id")?;
    let kind = strings(b, "event_type")?;
    let user = strings(b, "user_id")?;
    let session = strings(b, "session_id")?;
    let device = strings(b, "device_id")?;
    let platform = strings(b, "platform")?;
    let version = strings(b, "app_version")?;
    let attr = [
        ("campaign", strings(b, "attribution_campaign")?),
        ("source", strings(b, "attribution_source")?),
        ("medium", strings(b, "attribution_medium")?),
        ("content", strings(b, "attribution_content")?),
        ("term", strings(b, "attribution_term")?),
    ];
    let currency = strings(b, "currency")?;
    let ip = strings(b, "ip")?;
    let ua = strings(b, "user_agent")?;
    let event_id = strings(b, "event_id")?;
    let offsets = data.value_offsets();
    let mut out = Vec::with_capacity(b.num_rows());
    // Identical events without an id in one entry: numbered in order of appearance.
    let mut occurrences: HashMap<(u64, u128), u32> = HashMap::new();
    for i in 0..b.num_rows() {
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        let mut row = MirrorRow {
            event_id: String::new(),
            app_id: app.value(i).to_string(),
            event_type: kind.value(i).to_string(),
            timestamp: rfc3339_ms(ts.value(i)),
            timestamp_ms: ts.value(i),
            user_id: opt(user, i),
            session_id: opt(session, i),
            device_id: device.value(i).to_string(),
            platform: platform.value(i).to_string(),
            app_version: opt(version, i),
            attribution: attr
                .iter()
                .filter(|(_, a)| a.is_valid(i))
                .map(|(k, a)| (k.to_string(), a.value(i).to_string()))
                .collect(),
            event_data: (lo..hi)
                .map(|j| {
                    let v = if values.is_valid(j) {
                        values.value(j)
                    } else {
                        ""
                    };
                    (keys.value(j).to_string(), v.to_string())
                })
                .collect(),
            revenue: revenue.is_valid(i).then(|| revenue.value(i)),
            currency: opt(currency, i),
            ip: opt(ip, i),
            user_agent: opt(ua, i),
            received_at: rfc3339_ms(received.value(i)),
            received_at_ms: received.value(i),
            log_index: index.value(i),
        };
        row.event_id = match opt(event_id, i) {
            Some(id) => id,
            None => {
                let content = row.to_json();
                let h = xxhash_rust::xxh3::xxh3_128(&content);
                let n = occurrences.entry((row.log_index, h)).or_insert(0);
                let key = derived_key(&row.app_id, row.log_index, &content, *n);
                *n += 1;
                key
            }
        };
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::rfc3339_ms;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let reference = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        };
        let mut ms: i64 = -62_135_596_800_000; // 0001-01-01
        while ms < 253_402_300_799_999 {
            assert_eq!(Some(rfc3339_ms(ms)), reference(ms), "at {ms}");
            ms += 7_777_777_777_777 / 1000 + 123;
        }
        for ms in [
            0,
            999,
            1_000,
            951_782_400_000,
            1_767_225_599_999,
            253_402_300_799_999,
        ] {
            assert_eq!(Some(rfc3339_ms(ms)), reference(ms), "at {ms}");
        }
        assert_eq!(rfc3339_ms(1_765_039_615_123), "2025-12-06T16:46:55.123Z");
    }
}
