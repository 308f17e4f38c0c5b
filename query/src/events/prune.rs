//! Segment pruning: the manifest's per-segment statistics offered to DataFusion's
//! [`PruningPredicate`], which proves for each segment whether the filters can match any row.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, StringArray, TimestampMillisecondArray, UInt64Array};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use engine::{SegmentMeta, COL_APP_ID, COL_LOG_INDEX, COL_RECEIVED_AT, COL_TIMESTAMP};

/// Statistics of a list of segments, one container per segment.
pub(crate) struct SegmentStats<'a>(pub(crate) &'a [SegmentMeta]);

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter(values).with_timezone("UTC"))
}

impl SegmentStats<'_> {
    fn bound(&self, column: &Column, max: bool) -> Option<ArrayRef> {
        let s = self.0;
        Some(match column.name.as_str() {
            COL_APP_ID => Arc::new(StringArray::from_iter_values(s.iter().map(|m| &m.app_id))),
            COL_TIMESTAMP => timestamps(
                s.iter()
                    .map(|m| Some(if max { m.max_ts_ms } else { m.min_ts_ms })),
            ),
            COL_RECEIVED_AT => timestamps(s.iter().map(|m| {
                if max {
                    m.max_received_ms
                } else {
                    m.min_received_ms
                }
            })),
            COL_LOG_INDEX => Arc::new(UInt64Array::from_iter_values(s.iter().map(|m| {
                if max {
                    m.max_log_index
                } else {
                    m.min_log_index
                }
            }))),
            _ => return None,
        })
    }
}

impl PruningStatistics for SegmentStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, false)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, true)
    }

    fn num_containers(&self) -> usize {
        self.0.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        // The columns with statistics are NOT NULL.
        self.bound(column, false)?;
        Some(Arc::new(UInt64Array::from(vec![0u64; self.0.len()])))
    }

    fn row_counts(&self, _column: &Column) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.0.iter().map(|m| m.rows),
        )))
    }

    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        if column.name != COL_APP_ID {
            return None;
        }
        Some(BooleanArray::from_iter(self.0.iter().map(|m| {
            let app = Some(m.app_id.clone());
            Some(
                values.contains(&ScalarValue::Utf8(app.clone()))
                    || values.contains(&ScalarValue::Utf8View(app.clone()))
                    || values.contains(&ScalarValue::LargeUtf8(app)),
            )
        })))
    }
}
