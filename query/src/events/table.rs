//! `events` as a DataFusion table: the engine's Parquet segments (one file scan) unioned with
//! its in-memory batches, taken from one consistent [`engine::ReadView`] per scan.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::DFSchema;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningPredicate;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use engine::{Engine, SegmentMeta, COL_APP_ID, COL_EVENT_TYPE, COL_TIMESTAMP};

use super::exec::{EventsScanExec, PruneSummary};
use super::metadata::{CachingReaderFactory, MetadataCache};
use super::prune::SegmentStats;
use super::topk::SegmentSpan;

/// How segment scans read Parquet.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Evaluate selective filters while decoding (late materialisation): only the rows that
    /// pass are decoded for the other columns. Used only when [`selective`] says the filters
    /// are worth it.
    pub pushdown_filters: bool,
    /// Footers already read (`None`: every scan reads them again).
    pub metadata_cache: Option<Arc<MetadataCache>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            pushdown_filters: true,
            metadata_cache: None,
        }
    }
}

/// Whether `filters` are likely to drop most rows *inside* the segments the scan reads, so
/// that evaluating them while decoding (late materialisation) pays for its second pass: an
/// equality or IN-list on a column other than the partition and sort keys (`app_id`,
/// `event_type`, `timestamp`), e.g. `user_id = 'u777'`. Filters on those keys are answered
/// by segment pruning and the page index already, and measured on the benchmark, decoding
/// twice for them cost up to 1.7x (dashboard queries) while it made a one-user scan 1.7x
/// faster.
fn selective(filters: &[Expr]) -> bool {
    use datafusion::logical_expr::utils::split_conjunction;
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let keyed = |e: &Expr| match e {
        Expr::Column(c) => ![COL_APP_ID, COL_EVENT_TYPE, COL_TIMESTAMP].contains(&c.name.as_str()),
        _ => false,
    };
    let literal = |e: &Expr| matches!(e, Expr::Literal(..));
    filters.iter().any(|f| {
        split_conjunction(f).into_iter().any(|c| match c {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => (keyed(left) && literal(right)) || (literal(left) && keyed(right)),
            Expr::InList(l) => !l.negated && keyed(&l.expr) && l.list.iter().all(literal),
            _ => false,
        })
    })
}

/// The table's schema as queries see it: the stored schema. Strings stay `Utf8`: exposed as
/// `Utf8View` they made the benchmark ~10 % faster, but DataFusion 48 charges every sliced
/// view batch with the whole page buffer it points into, so `ORDER BY event_id LIMIT 50000`
/// asked its memory pool for 4.5 GB and failed (422). Revisit with a newer DataFusion.
pub(super) fn query_schema(stored: &Schema) -> SchemaRef {
    Arc::new(stored.clone())
}

#[derive(Clone)]
pub struct EventsTable {
    engine: Engine,
    schema: SchemaRef,
    /// Only rows of these apps exist for this table (`None`: all apps).
    apps: Option<Arc<BTreeSet<String>>>,
    options: ScanOptions,
}

impl std::fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventsTable")
    }
}

impl EventsTable {
    pub fn new(engine: Engine) -> Self {
        Self::scoped(engine, None, ScanOptions::default())
    }

    /// The table as seen by a caller limited to `apps`: other apps' segments are never
    /// opened and their in-memory rows are filtered out before any operator sees them.
    pub fn scoped(
        engine: Engine,
        apps: Option<Arc<BTreeSet<String>>>,
        options: ScanOptions,
    ) -> Self {
        Self {
            engine,
            schema: query_schema(&engine::events_schema()),
            apps,
            options,
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the caller this table was made for may read `app`.
    pub(crate) fn in_scope(&self, app: &str) -> bool {
        self.apps.as_ref().is_none_or(|a| a.contains(app))
    }

    /// The Parquet scan of `segments`, spread over the session's partitions.
    fn segment_scan(
        &self,
        state: &dyn Session,
        root: &std::path::Path,
        segments: &[SegmentMeta],
        projection: Option<&Vec<usize>>,
        predicate: Option<Arc<dyn datafusion::physical_plan::PhysicalExpr>>,
        row_filters: bool,
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Largest first, round-robin by size: partitions get similar amounts of work.
        let mut order: Vec<&SegmentMeta> = segments.iter().collect();
        order.sort_by_key(|s| std::cmp::Reverse(s.bytes));
        let n = state.config().target_partitions().max(1).min(order.len());
        let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); n];
        for seg in order {
            let loc = root
                .join(&seg.path)
                .to_string_lossy()
                .trim_start_matches('/')
                .to_string();
            let g = groups
                .iter_mut()
                .min_by_key(|g| g.0)
                .expect("at least one group");
            g.0 += seg.bytes;
            let span = SegmentSpan {
                min_ts_ms: seg.min_ts_ms,
                max_ts_ms: seg.max_ts_ms,
            };
            g.1.push(PartitionedFile::new(loc, seg.bytes).with_extensions(Arc::new(span)));
        }
        let mut parquet = TableParquetOptions::new();
        parquet.global = state.config_options().execution.parquet.clone();
        let row_filters = self.options.pushdown_filters && row_filters;
        let mut source = ParquetSource::new(parquet)
            .with_pushdown_filters(row_filters)
            .with_reorder_filters(true)
            .with_enable_page_index(true);
        if let Some(p) = predicate {
            source = source.with_predicate(p);
        }
        if let Some(cache) = &self.options.metadata_cache {
            let store = state
                .runtime_env()
                .object_store(ObjectStoreUrl::local_filesystem())?;
            source = source.with_parquet_file_reader_factory(Arc::new(CachingReaderFactory::new(
                store,
                cache.clone(),
                row_filters,
            )));
        }
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::local_filesystem(),
            self.schema(),
            Arc::new(source),
        )
        .with_file_groups(groups.into_iter().map(|g| FileGroup::new(g.1)).collect())
        .with_projection(projection.cloned())
        .with_limit(limit)
        .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter is offered to the scan, which uses it to skip segments, row groups and
    /// pages. A filter choosing apps (`app_id = '…'`, `app_id IN (…)`) is answered exactly by
    /// the scan (a segment holds one app; in-memory rows are filtered), so DataFusion neither
    /// evaluates it again nor reads `app_id` for it; every other filter DataFusion still
    /// applies to the rows that are read.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match app_filter(f) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut view = self
            .engine
            .read_view()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let schema = self.schema();
        let mut summary = PruneSummary {
            segments_total: view.segments.len(),
            ..PruneSummary::default()
        };
        if let Some(apps) = &self.apps {
            summary.pruned_by_scope = keep_apps(&mut view, apps)?;
        }
        // Filters choosing apps are answered here, exactly (see supports_filters_pushdown).
        let chosen = filters.iter().filter_map(app_filter).reduce(|a, b| &a & &b);
        if let Some(apps) = &chosen {
            summary.pruned_by_filters = keep_apps(&mut view, apps)?;
        }
        view.batches = view
            .batches
            .iter()
            .map(|b| Ok(crate::format::cast_batch(b, &schema)?))
            .collect::<DfResult<Vec<_>>>()?;
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                summary.predicate = Some(expr.to_string());
                let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        if let Some(p) = &predicate {
            let pruning = PruningPredicate::try_new(p.clone(), schema.clone())?;
            if !pruning.always_true() {
                let keep = pruning.prune(&SegmentStats(&view.segments))?;
                let before = view.segments.len();
                let mut it = keep.iter();
                view.segments.retain(|_| *it.next().unwrap_or(&true));
                summary.pruned_by_filters += before - view.segments.len();
            }
        }
        check_segments(&view).await?;
        summary.rows_kept = view.segments.iter().map(|s| s.rows).sum();
        summary.memtable_batches = view.batches.len();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !view.segments.is_empty() {
            inputs.push(self.segment_scan(
                state,
                &view.root,
                &view.segments,
                projection,
                predicate,
                selective(filters),
                limit,
            )?);
        }
        if !view.batches.is_empty() || inputs.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[view.batches],
                schema.clone(),
                projection.cloned(),
            )?);
        }
        let input = if inputs.len() == 1 {
            inputs.remove(0)
        } else {
            Arc::new(UnionExec::new(inputs))
        };
        Ok(Arc::new(EventsScanExec::new(input, summary, view.pins)))
    }
}

/// Fails naming a damaged one of the segments the scan will read. Those never checked since
/// the open (the background scrub has not reached them) are read whole first, on a blocking
/// thread: a scan never reads a file that does not match its manifest checksum.
async fn check_segments(view: &engine::ReadView) -> DfResult<()> {
    let unchecked = view.unchecked(&view.segments);
    if !unchecked.is_empty() {
        let checks = view.checks.clone();
        let root = view.root.clone();
        let check = move || checks.check_all(&root, &unchecked);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt
                .spawn_blocking(check)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            Err(_) => check(),
        }
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    }
    view.check(&view.segments)
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// The apps `filter` restricts `app_id` to, if it is an equality or a (non-negated) IN-list of
/// string literals on `app_id`, or an OR of those (DataFusion turns short IN-lists into ORs).
pub(crate) fn app_filter(filter: &Expr) -> Option<BTreeSet<String>> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let is_app = |e: &Expr| matches!(e, Expr::Column(c) if c.name == COL_APP_ID);
    let literal = |e: &Expr| match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            ..,
        ) => Some(s.clone()),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (is_app(left), is_app(right)) {
            (true, false) => literal(right).map(|s| BTreeSet::from([s])),
            (false, true) => literal(left).map(|s| BTreeSet::from([s])),
            _ => None,
        },
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => Some(&app_filter(left)? | &app_filter(right)?),
        Expr::InList(l) if !l.negated && is_app(&l.expr) => l.list.iter().map(literal).collect(),
        _ => None,
    }
}

/// Keeps only the segments and in-memory rows of `apps`; how many segments were dropped.
fn keep_apps(view: &mut engine::ReadView, apps: &BTreeSet<String>) -> DfResult<usize> {
    let before = view.segments.len();
    view.segments.retain(|s| apps.contains(&s.app_id));
    view.batches = view
        .batches
        .iter()
        .map(|b| filter_apps(b, apps))
        .collect::<DfResult<Vec<_>>>()?
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .collect();
    Ok(before - view.segments.len())
}

/// Keeps the rows of `batch` whose `app_id` is in `apps`.
fn filter_apps(batch: &RecordBatch, apps: &BTreeSet<String>) -> DfResult<RecordBatch> {
    let col = batch
        .column_by_name("app_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| DataFusionError::Internal("events batch without a Utf8 app_id".into()))?;
    let mask: BooleanArray = (0..col.len())
        .map(|i| Some(col.is_valid(i) && apps.contains(col.value(i))))
        .collect();
    Ok(arrow::compute::filter_record_batch(batch, &mask)?)
}
