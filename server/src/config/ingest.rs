use serde::{Deserialize, Serialize};

/// Limits enforced on `POST /v1/events` (`[ingest]`). Every violation is reported, per event or
/// per request; nothing is dropped silently.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestLimits {
    /// Largest request body as sent (compressed or not), bytes.
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression, bytes.
    pub max_decompressed_bytes: usize,
    /// Most events in one request.
    pub max_batch_events: usize,
    /// Longest string value (ids, attribution fields, event_data values), bytes.
    pub max_string_bytes: usize,
    /// Longest `event_type`, bytes.
    pub max_event_type_bytes: usize,
    /// Longest `user_agent`, bytes.
    pub max_user_agent_bytes: usize,
    /// Most keys in `event_data`, after nested objects are flattened (`cart.total`) and
    /// unknown top-level fields are kept (`$sdk_version`).
    pub max_event_data_keys: usize,
    /// Deepest nesting of objects in `event_data` (1: flat).
    pub max_event_data_depth: usize,
    /// Longest `event_data` key, bytes.
    pub max_key_bytes: usize,
    /// Earliest accepted event time, ms since the epoch (default 2000-01-01).
    pub min_timestamp_ms: i64,
    /// How far in the future (relative to the receiving node's clock) an event may be, ms.
    pub max_future_ms: i64,
    /// Ingest answers 507 `insufficient_storage` while the data directory's file system has
    /// less than this many MiB free, and resumes by itself when space returns (0: off). Keeps
    /// ENOSPC away from the log writer, which stops for good on a failed write.
    pub min_free_disk_mb: u64,
    /// The idempotency window (`"7d"`, `"36h"`; whole UTC days, at least one): the event ids
    /// of the days within it are held in memory; an event re-sent later is still stored once,
    /// answered from the segments' key filters and ids instead (slower, not wrong).
    pub dedupe_window: String,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 32 << 20,
            max_batch_events: 10_000,
            max_string_bytes: 1024,
            max_event_type_bytes: 128,
            max_user_agent_bytes: 2048,
            max_event_data_keys: 100,
            max_event_data_depth: 5,
            max_key_bytes: 128,
            min_timestamp_ms: 946_684_800_000,
            max_future_ms: 86_400_000,
            min_free_disk_mb: 256,
            dedupe_window: "7d".into(),
        }
    }
}

impl IngestLimits {
    /// `dedupe_window` in seconds.
    pub fn dedupe_window_secs(&self) -> Result<u64, String> {
        let d = humantime::parse_duration(&self.dedupe_window).map_err(|e| {
            format!(
                "ingest.dedupe_window {:?}: {e} (e.g. \"7d\")",
                self.dedupe_window
            )
        })?;
        if d.as_secs() < 86_400 {
            return Err("ingest.dedupe_window must be at least one day (\"1d\")".into());
        }
        Ok(d.as_secs())
    }

    pub fn validate(&self) -> Result<(), String> {
        self.dedupe_window_secs()?;
        if self.max_body_bytes == 0 || self.max_batch_events == 0 {
            return Err(
                "ingest.max_body_bytes and ingest.max_batch_events must be positive".into(),
            );
        }
        if self.max_decompressed_bytes < self.max_body_bytes {
            return Err("ingest.max_decompressed_bytes must be >= ingest.max_body_bytes".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(s: &str) -> Result<u64, String> {
        IngestLimits {
            dedupe_window: s.into(),
            ..IngestLimits::default()
        }
        .dedupe_window_secs()
    }

    #[test]
    fn the_dedupe_window_is_a_duration_of_at_least_a_day() {
        assert_eq!(window("7d"), Ok(7 * 86_400));
        assert_eq!(window("36h"), Ok(36 * 3_600));
        assert_eq!(window("2weeks"), Ok(14 * 86_400));
        assert!(window("12h").unwrap_err().contains("at least one day"));
        assert!(window("seven days")
            .unwrap_err()
            .contains("ingest.dedupe_window"));
        assert!(IngestLimits {
            dedupe_window: "1h".into(),
            ..IngestLimits::default()
        }
        .validate()
        .is_err());
    }
}
