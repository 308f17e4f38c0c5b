//! The Arrow schema of the `events` table, shared by memtable and Parquet segments.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

pub const COL_TIMESTAMP: &str = "timestamp";
pub const COL_APP_ID: &str = "app_id";
pub const COL_EVENT_TYPE: &str = "event_type";
pub const COL_EVENT_ID: &str = "event_id";
pub const COL_LOG_INDEX: &str = "log_index";
pub const COL_RECEIVED_AT: &str = "received_at";

/// String columns with few distinct values per segment (apps, types, platforms, attribution,
/// currency): segments store them dictionary-encoded, and queries grouping by them work on
/// the dictionary codes.
pub const LOW_CARDINALITY: &[&str] = &[
    COL_APP_ID,
    COL_EVENT_TYPE,
    "platform",
    "app_version",
    "attribution_source",
    "attribution_medium",
    "attribution_campaign",
    "attribution_content",
    "attribution_term",
    "currency",
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The Map type used for `event_data`; must match what `MapBuilder` produces.
pub(crate) fn string_map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Schema of `events` (column order is the `SELECT *` order).
pub fn events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let s = |n: &str, nullable: bool| Field::new(n, DataType::Utf8, nullable);
            Arc::new(Schema::new(vec![
                Field::new(COL_TIMESTAMP, ts(), false),
                s(COL_APP_ID, false),
                s(COL_EVENT_TYPE, false),
                s("user_id", true),
                s("session_id", true),
                s("device_id", false),
                s("platform", false),
                s("app_version", true),
                s("attribution_campaign", true),
                s("attribution_source", true),
                s("attribution_medium", true),
                s("attribution_content", true),
                s("attribution_term", true),
                Field::new("event_data", string_map_type(), false),
                Field::new("revenue", DataType::Float64, true),
                s("currency", true),
                s("ip", true),
                s("user_agent", true),
                Field::new(COL_RECEIVED_AT, ts(), false),
                s(COL_EVENT_ID, true),
                Field::new(COL_LOG_INDEX, DataType::UInt64, false),
            ]))
        })
        .clone()
}
