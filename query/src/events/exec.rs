//! [`EventsScanExec`]: the root of every `events` scan. It shows in `EXPLAIN` what pruning
//! decided (segments kept of those listed, and why) and holds the segment pins, so the files
//! it reads stay on disk until its streams are done even if compaction retires them.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use engine::SegmentPins;
use futures::StreamExt;

/// What segment pruning did for one scan.
#[derive(Debug, Clone, Default)]
pub(crate) struct PruneSummary {
    pub(crate) segments_total: usize,
    pub(crate) pruned_by_scope: usize,
    pub(crate) pruned_by_filters: usize,
    pub(crate) rows_kept: u64,
    pub(crate) memtable_batches: usize,
    pub(crate) predicate: Option<String>,
}

#[derive(Debug)]
pub(crate) struct EventsScanExec {
    input: Arc<dyn ExecutionPlan>,
    summary: PruneSummary,
    pins: SegmentPins,
}

impl EventsScanExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        summary: PruneSummary,
        pins: SegmentPins,
    ) -> Self {
        Self {
            input,
            summary,
            pins,
        }
    }
}

impl DisplayAs for EventsScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        let kept = s.segments_total - s.pruned_by_scope - s.pruned_by_filters;
        write!(
            f,
            "EventsScanExec: segments={kept} of {} (pruned {} by app access, {} by statistics), segment_rows={}, memtable_batches={}",
            s.segments_total, s.pruned_by_scope, s.pruned_by_filters, s.rows_kept, s.memtable_batches
        )?;
        if let Some(p) = &s.predicate {
            write!(f, ", predicate={p}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for EventsScanExec {
    fn name(&self) -> &str {
        "EventsScanExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &PlanProperties {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            summary: self.summary.clone(),
            pins: self.pins.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let inner = self.input.execute(partition, context)?;
        let schema = inner.schema();
        let pins = self.pins.clone();
        // The closure owns a clone of the pins: the files outlive the stream.
        let stream = inner.map(move |b| {
            let _held = &pins;
            b
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
