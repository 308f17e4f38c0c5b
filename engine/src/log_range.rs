//! Stored rows by log index, for readers that follow the log rather than time (the mirrors):
//! every row the engine stored from the entries `from..=to`, whether it is still in memory or
//! already in a segment — duplicates the engine dropped at apply are not there.
//!
//! Segments are chosen by their manifest range of log indexes, row groups by the statistics
//! of the `log_index` column, and rows by a filter on that column evaluated before the other
//! columns are decoded.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{and, filter_record_batch, kernels::cmp};
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use parquet::arrow::ProjectionMask;
use parquet::file::statistics::Statistics;

use crate::engine::ReadView;
use crate::error::{EngineError, Result};
use crate::manifest::SegmentMeta;
use crate::schema::{events_schema, COL_LOG_INDEX, COL_RECEIVED_AT};

/// The log entries `from..=to` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    pub from: u64,
    pub to: u64,
}

impl LogRange {
    fn overlaps(&self, lo: u64, hi: u64) -> bool {
        lo <= self.to && hi >= self.from
    }

    /// Segments of `view` that may hold rows of the range.
    pub fn segments<'a>(&'a self, view: &'a ReadView) -> impl Iterator<Item = &'a SegmentMeta> {
        view.segments
            .iter()
            .filter(|s| self.overlaps(s.min_log_index, s.max_log_index))
    }

    /// Rows of the range in `view`, in the events schema, ordered by log index.
    pub fn read(&self, view: &ReadView) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for b in &view.batches {
            let keep = self.mask(b)?;
            if keep.true_count() > 0 {
                out.push(filter_record_batch(b, &keep)?);
            }
        }
        for seg in self.segments(view) {
            out.extend(self.read_segment(view, seg, None)?);
        }
        sort_by_log_index(out)
    }

    /// How many stored rows the range holds (reads only the `log_index` column).
    pub fn count(&self, view: &ReadView) -> Result<u64> {
        let mut n = 0u64;
        for b in &view.batches {
            n += self.mask(b)?.true_count() as u64;
        }
        let only_index = [events_schema().index_of(COL_LOG_INDEX)?];
        for seg in self.segments(view) {
            for b in self.read_segment(view, seg, Some(&only_index))? {
                n += b.num_rows() as u64;
            }
        }
        Ok(n)
    }

    /// About how many rows the range holds, without reading a segment: exact for rows in
    /// memory, a segment's rows prorated by how much of its log range overlaps.
    pub fn estimate(&self, view: &ReadView) -> Result<u64> {
        let mut n = 0u64;
        for b in &view.batches {
            n += self.mask(b)?.true_count() as u64;
        }
        for s in self.segments(view) {
            let span = (s.max_log_index - s.min_log_index + 1) as f64;
            let lo = s.min_log_index.max(self.from);
            let hi = s.max_log_index.min(self.to);
            n += (s.rows as f64 * (hi - lo + 1) as f64 / span).ceil() as u64;
        }
        Ok(n)
    }

    fn mask(&self, b: &RecordBatch) -> Result<BooleanArray> {
        let idx = b.column_by_name(COL_LOG_INDEX).ok_or_else(|| {
            EngineError::Arrow(arrow::error::ArrowError::SchemaError(
                "batch without log_index".into(),
            ))
        })?;
        self.mask_of(idx.as_primitive::<UInt64Type>())
    }

    fn mask_of(&self, idx: &UInt64Array) -> Result<BooleanArray> {
        let lo = UInt64Array::new_scalar(self.from);
        let hi = UInt64Array::new_scalar(self.to);
        Ok(and(&cmp::gt_eq(idx, &lo)?, &cmp::lt_eq(idx, &hi)?)?)
    }

    fn read_segment(
        &self,
        view: &ReadView,
        seg: &SegmentMeta,
        columns: Option<&[usize]>,
    ) -> Result<Vec<RecordBatch>> {
        let (path, builder) = open(view, seg)?;
        let pq = |e| EngineError::Parquet {
            path: path.clone(),
            source: e,
        };
        let schema = builder.parquet_schema();
        let col = schema
            .columns()
            .iter()
            .position(|c| c.name() == COL_LOG_INDEX)
            .ok_or_else(|| EngineError::Corrupt {
                what: "segment",
                path: path.clone(),
                reason: "no log_index column".into(),
            })?;
        // Row groups whose statistics rule the range out are not read at all.
        let groups: Vec<usize> = builder
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, rg)| match rg.column(col).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(lo), Some(hi)) => self.overlaps(*lo as u64, *hi as u64),
                    _ => true,
                },
                _ => true,
            })
            .map(|(i, _)| i)
            .collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let projection = columns.map(|cols| ProjectionMask::roots(schema, cols.iter().copied()));
        let range = *self;
        let predicate = ArrowPredicateFn::new(
            ProjectionMask::leaves(schema, [col]),
            move |b: RecordBatch| {
                let idx = b.column(0).as_primitive::<UInt64Type>();
                range
                    .mask_of(idx)
                    .map_err(|e| arrow::error::ArrowError::ComputeError(e.to_string()))
            },
        );
        let mut builder = builder
            .with_row_groups(groups)
            .with_row_filter(RowFilter::new(vec![Box::new(predicate)]))
            .with_batch_size(64 * 1024);
        if let Some(p) = projection {
            builder = builder.with_projection(p);
        }
        let reader = builder.build().map_err(pq)?;
        Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

/// A segment's Parquet reader (not yet built) and its path, once the file checks out.
fn open(
    view: &ReadView,
    seg: &SegmentMeta,
) -> Result<(PathBuf, ParquetRecordBatchReaderBuilder<File>)> {
    view.check(std::slice::from_ref(seg))?;
    let path = view.segment_path(seg);
    let file = File::open(&path).map_err(|e| EngineError::io(&path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| EngineError::Parquet {
            path: path.clone(),
            source: e,
        })?;
    Ok((path, builder))
}

/// The first log index holding an event received at or after `since_ms` (a replay from a
/// point in time starts there), or `None` if no stored event was received that late.
pub fn first_index_received_since(view: &ReadView, since_ms: i64) -> Result<Option<u64>> {
    let schema = events_schema();
    let cols = [
        schema.index_of(COL_RECEIVED_AT)?,
        schema.index_of(COL_LOG_INDEX)?,
    ];
    let mut best: Option<u64> = None;
    let scan = |b: &RecordBatch, best: &mut Option<u64>| -> Result<()> {
        let (Some(r), Some(i)) = (
            b.column_by_name(COL_RECEIVED_AT),
            b.column_by_name(COL_LOG_INDEX),
        ) else {
            return Ok(());
        };
        let r = r.as_primitive::<TimestampMillisecondType>();
        let i = i.as_primitive::<UInt64Type>();
        for row in 0..b.num_rows() {
            if r.value(row) >= since_ms {
                let v = i.value(row);
                *best = Some(best.map_or(v, |b| b.min(v)));
            }
        }
        Ok(())
    };
    for b in &view.batches {
        scan(b, &mut best)?;
    }
    for seg in &view.segments {
        if seg.max_received_ms.is_some_and(|m| m < since_ms)
            || best.is_some_and(|b| seg.min_log_index >= b)
        {
            continue;
        }
        let (path, builder) = open(view, seg)?;
        let pq = |e| EngineError::Parquet {
            path: path.clone(),
            source: e,
        };
        let mask = ProjectionMask::roots(builder.parquet_schema(), cols);
        for b in builder.with_projection(mask).build().map_err(pq)? {
            scan(&b?, &mut best)?;
        }
    }
    Ok(best)
}

/// One batch ordered by log index (rows of one entry keep their relative order).
fn sort_by_log_index(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    if batches.is_empty() {
        return Ok(batches);
    }
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
    let idx = all
        .column_by_name(COL_LOG_INDEX)
        .map(Arc::clone)
        .ok_or_else(|| {
            EngineError::Arrow(arrow::error::ArrowError::SchemaError(
                "batch without log_index".into(),
            ))
        })?;
    let order = arrow::compute::sort_to_indices(&idx, None, None)?;
    let sorted = arrow::compute::take_record_batch(&all, &order)?;
    Ok(vec![sorted])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ApplyBatch, Engine, EngineConfig, Event};

    fn event(i: u64) -> Event {
        Event {
            app_id: if i % 2 == 0 { "a".into() } else { "b".into() },
            event_type: "open".into(),
            timestamp_ms: 1_700_000_000_000 + i as i64 * 86_400_000 / 3,
            device_id: format!("d{i}"),
            platform: "ios".into(),
            event_id: Some(format!("00000000-0000-4000-8000-{i:012}")),
            received_at_ms: 1_700_000_000_000,
            user_id: None,
            session_id: None,
            app_version: None,
            attribution: Default::default(),
            event_data: vec![("k".into(), "v".into())],
            revenue: None,
            currency: None,
            ip: None,
            user_agent: None,
        }
    }

    fn indexes(batches: &[RecordBatch]) -> Vec<u64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column_by_name(COL_LOG_INDEX)
                    .unwrap()
                    .as_primitive::<UInt64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn reads_a_range_across_segments_and_memory_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
        // Entries 1..=30, two events each; entry 7 repeats entry 6's events (duplicates).
        for i in 1..=30u64 {
            let mut evs = if i == 7 {
                vec![event(6 * 2), event(6 * 2 + 1)]
            } else {
                vec![event(i * 2), event(i * 2 + 1)]
            };
            for e in &mut evs {
                e.received_at_ms = 1_700_000_000_000 + i as i64;
            }
            let refs = evs.iter().map(Event::as_ref).collect();
            engine.apply(ApplyBatch::one_entry(i, refs)).unwrap();
            if i == 12 || i == 20 {
                engine.flush().unwrap();
            }
        }
        let view = engine.read_view().unwrap();
        assert_eq!(view.applied_index, Some(30));
        assert!(!view.segments.is_empty() && !view.batches.is_empty());
        let r = LogRange { from: 5, to: 25 };
        let got = indexes(&r.read(&view).unwrap());
        let mut want: Vec<u64> = (5..=25).filter(|&i| i != 7).flat_map(|i| [i, i]).collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(r.count(&view).unwrap(), want.len() as u64);
        // Every event of entry i was received at 1_700_000_000_000 + i (set below): the
        // first entry received at or after a time, from memory or from a segment.
        assert_eq!(
            first_index_received_since(&view, 1_700_000_000_005).unwrap(),
            Some(5)
        );
        assert_eq!(
            first_index_received_since(&view, 1_700_000_000_025).unwrap(),
            Some(25)
        );
        assert_eq!(
            first_index_received_since(&view, 1_800_000_000_000).unwrap(),
            None
        );
        let none = LogRange { from: 31, to: 40 };
        assert_eq!(none.count(&view).unwrap(), 0);
        assert!(none.read(&view).unwrap().is_empty());
    }
}
