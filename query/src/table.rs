//! `events` as a DataFusion table: the engine's Parquet segments (one file scan) unioned with
//! its in-memory batches, taken from one consistent [`engine::ReadView`] per scan.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use engine::Engine;

#[derive(Clone)]
pub struct EventsTable {
    engine: Engine,
    /// Only rows of these apps exist for this table (`None`: all apps).
    apps: Option<Arc<BTreeSet<String>>>,
}

impl std::fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventsTable")
    }
}

impl EventsTable {
    pub fn new(engine: Engine) -> Self {
        Self { engine, apps: None }
    }

    /// The table as seen by a caller limited to `apps`: other apps' segments are never
    /// opened and their in-memory rows are filtered out before any operator sees them.
    pub fn scoped(engine: Engine, apps: Option<Arc<BTreeSet<String>>>) -> Self {
        Self { engine, apps }
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        engine::events_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut view = self
            .engine
            .read_view()
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        if let Some(apps) = &self.apps {
            view.segments.retain(|s| apps.contains(&s.app_id));
            view.batches = view
                .batches
                .iter()
                .map(|b| filter_apps(b, apps))
                .collect::<DfResult<Vec<_>>>()?
                .into_iter()
                .filter(|b| b.num_rows() > 0)
                .collect();
        }
        let schema = self.schema();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !view.segments.is_empty() {
            let groups_n = state.config().target_partitions().max(1);
            let mut groups: Vec<Vec<PartitionedFile>> =
                vec![Vec::new(); groups_n.min(view.segments.len())];
            let n = groups.len();
            for (i, seg) in view.segments.iter().enumerate() {
                let abs = view.segment_path(seg);
                let loc = abs.to_string_lossy().trim_start_matches('/').to_string();
                groups[i % n].push(PartitionedFile::new(loc, seg.bytes));
            }
            let config = FileScanConfigBuilder::new(
                ObjectStoreUrl::local_filesystem(),
                schema.clone(),
                Arc::new(ParquetSource::default()),
            )
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection(projection.cloned())
            .with_limit(limit)
            .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        if !view.batches.is_empty() || inputs.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[view.batches],
                schema.clone(),
                projection.cloned(),
            )?);
        }
        if inputs.len() == 1 {
            return Ok(inputs.remove(0));
        }
        Ok(Arc::new(UnionExec::new(inputs)))
    }
}

/// Keeps the rows of `batch` whose `app_id` is in `apps`.
fn filter_apps(batch: &RecordBatch, apps: &BTreeSet<String>) -> DfResult<RecordBatch> {
    let col = batch
        .column_by_name("app_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(
                "events batch without a Utf8 app_id".into(),
            )
        })?;
    let mask: BooleanArray = (0..col.len())
        .map(|i| Some(col.is_valid(i) && apps.contains(col.value(i))))
        .collect();
    Ok(arrow::compute::filter_record_batch(batch, &mask)?)
}
