//! The in-memory part of the table: Arrow column builders, frozen into record batches.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, MapBuilder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder, UInt64Builder,
};

use crate::error::Result;
use crate::event::EventRef;
use crate::schema::events_schema;

/// Rows are frozen into an immutable batch at this size (and whenever a reader asks).
const FREEZE_ROWS: usize = 8192;

struct Builders {
    timestamp: TimestampMillisecondBuilder,
    app_id: StringBuilder,
    event_type: StringBuilder,
    user_id: StringBuilder,
    session_id: StringBuilder,
    device_id: StringBuilder,
    platform: StringBuilder,
    app_version: StringBuilder,
    campaign: StringBuilder,
    source: StringBuilder,
    medium: StringBuilder,
    content: StringBuilder,
    term: StringBuilder,
    event_data: MapBuilder<StringBuilder, StringBuilder>,
    revenue: Float64Builder,
    currency: StringBuilder,
    ip: StringBuilder,
    user_agent: StringBuilder,
    received_at: TimestampMillisecondBuilder,
    event_id: StringBuilder,
    log_index: UInt64Builder,
    rows: usize,
}

impl Builders {
    /// Builders for `rows` rows, each string column sized like the same column of `like` (the
    /// batch frozen before), so a batch's buffers are allocated once rather than regrown by
    /// doubling from empty.
    fn new(rows: usize, like: Option<&RecordBatch>) -> Self {
        let bytes = |col: &str| {
            like.and_then(|b| b.column_by_name(col)?.as_string_opt::<i32>())
                .map_or(0, |a| a.value_data().len() + a.value_data().len() / 8)
        };
        let string = |col: &str| StringBuilder::with_capacity(rows, bytes(col));
        let (keys, values) = like
            .and_then(|b| b.column_by_name("event_data")?.as_map_opt())
            .map_or((0, 0), |m| {
                let (k, v) = (m.keys().as_string::<i32>(), m.values().as_string::<i32>());
                (Array::len(k), v.value_data().len() + k.value_data().len())
            });
        Self {
            timestamp: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            app_id: string("app_id"),
            event_type: string("event_type"),
            user_id: string("user_id"),
            session_id: string("session_id"),
            device_id: string("device_id"),
            platform: string("platform"),
            app_version: string("app_version"),
            campaign: string("attribution_campaign"),
            source: string("attribution_source"),
            medium: string("attribution_medium"),
            content: string("attribution_content"),
            term: string("attribution_term"),
            event_data: MapBuilder::with_capacity(
                None,
                StringBuilder::with_capacity(keys, values / 2),
                StringBuilder::with_capacity(keys, values / 2),
                rows,
            ),
            revenue: Float64Builder::with_capacity(rows),
            currency: string("currency"),
            ip: string("ip"),
            user_agent: string("user_agent"),
            received_at: TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            event_id: string("event_id"),
            log_index: UInt64Builder::with_capacity(rows),
            rows: 0,
        }
    }

    fn push(&mut self, e: &EventRef<'_>, log_index: u64) -> Result<()> {
        self.timestamp.append_value(e.timestamp_ms);
        self.app_id.append_value(e.app_id);
        self.event_type.append_value(e.event_type);
        self.user_id.append_option(e.user_id);
        self.session_id.append_option(e.session_id);
        self.device_id.append_value(e.device_id);
        self.platform.append_value(e.platform);
        self.app_version.append_option(e.app_version);
        self.campaign.append_option(e.attribution.campaign);
        self.source.append_option(e.attribution.source);
        self.medium.append_option(e.attribution.medium);
        self.content.append_option(e.attribution.content);
        self.term.append_option(e.attribution.term);
        for (k, v) in &e.event_data {
            self.event_data.keys().append_value(k);
            self.event_data.values().append_value(v);
        }
        self.event_data.append(true)?;
        self.revenue.append_option(e.revenue);
        self.currency.append_option(e.currency);
        self.ip.append_option(e.ip);
        self.user_agent.append_option(e.user_agent);
        self.received_at.append_value(e.received_at_ms);
        self.event_id.append_option(e.event_id);
        self.log_index.append_value(log_index);
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.app_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.device_id.finish()),
            Arc::new(self.platform.finish()),
            Arc::new(self.app_version.finish()),
            Arc::new(self.campaign.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.medium.finish()),
            Arc::new(self.content.finish()),
            Arc::new(self.term.finish()),
            Arc::new(self.event_data.finish()),
            Arc::new(self.revenue.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.ip.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.received_at.finish()),
            Arc::new(self.event_id.finish()),
            Arc::new(self.log_index.finish()),
        ];
        let batch = RecordBatch::try_new(events_schema(), cols)?;
        *self = Builders::new(FREEZE_ROWS, Some(&batch));
        Ok(batch)
    }
}

/// Rows applied since the last rotation.
pub(crate) struct Memtable {
    active: Builders,
    frozen: Vec<RecordBatch>,
    rows: usize,
    approx_bytes: usize,
    pub(crate) min_index: Option<u64>,
    pub(crate) max_index: Option<u64>,
}

impl Memtable {
    pub(crate) fn new() -> Self {
        Self {
            active: Builders::new(FREEZE_ROWS, None),
            frozen: Vec::new(),
            rows: 0,
            approx_bytes: 0,
            min_index: None,
            max_index: None,
        }
    }

    pub(crate) fn push(&mut self, e: &EventRef<'_>, log_index: u64) -> Result<()> {
        self.active.push(e, log_index)?;
        self.rows += 1;
        self.approx_bytes += approx_size(e);
        self.min_index.get_or_insert(log_index);
        self.max_index = Some(log_index);
        if self.active.rows >= FREEZE_ROWS {
            self.freeze()?;
        }
        Ok(())
    }

    fn freeze(&mut self) -> Result<()> {
        if self.active.rows > 0 {
            let b = self.active.finish()?;
            self.frozen.push(b);
        }
        Ok(())
    }

    /// All rows as record batches (freezing the open builders first).
    pub(crate) fn batches(&mut self) -> Result<Vec<RecordBatch>> {
        self.freeze()?;
        Ok(self.frozen.clone())
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }
}

fn approx_size(e: &EventRef<'_>) -> usize {
    let o = |s: &Option<&str>| s.map_or(0, str::len);
    96 + e.app_id.len()
        + e.event_type.len()
        + e.device_id.len()
        + e.platform.len()
        + o(&e.user_id)
        + o(&e.session_id)
        + o(&e.app_version)
        + o(&e.ip)
        + o(&e.user_agent)
        + o(&e.event_id)
        + e.event_data
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
}
