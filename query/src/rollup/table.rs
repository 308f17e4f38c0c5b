//! [`RollupAnswer`]: the table an answerable aggregation is replaced with, and its plan,
//! [`RollupAnswerExec`]: whole hours from the engine's rollups, partial hours at the edges of
//! the time range from the events table, added up into the aggregation's rows.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{Field, Float64Type, Schema, SchemaRef, TimestampMillisecondType};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use engine::{
    micros, Engine, GroupTotals, Hash128Hasher, RollupDim, COL_APP_ID, COL_TIMESTAMP, HOUR_MS,
};
use futures::StreamExt;
use roaring::RoaringBitmap;

use super::{
    campaigns_over, hours_over, Dim, Measure, Spec, COL_EVENT_TYPE, COL_REVENUE, COL_USER,
};
use crate::events::EventsTable;

/// The name the replaced aggregation's scan shows in plans.
pub(super) const TABLE: &str = "rollup_answer";

/// A group of the answer: a platform, event type or campaign (`""` when ungrouped), or the
/// start of a time bucket (ms).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Text(String),
    Time(i64),
}

/// A time range `[from, to)` in ms, `None`: unbounded.
type Span = (Option<i64>, Option<i64>);

/// The whole hours of `[lo, hi)` (hour numbers) and the partial hours at its edges that must
/// be read from the events.
fn split(lo: Option<i64>, hi: Option<i64>) -> (Range<i64>, Vec<Span>) {
    let first = lo.map_or(i64::MIN, |l| {
        l.div_euclid(HOUR_MS) + i64::from(l.rem_euclid(HOUR_MS) != 0)
    });
    let end = hi.map_or(i64::MAX, |h| h.div_euclid(HOUR_MS));
    if first >= end {
        return (first..first, vec![(lo, hi)]);
    }
    let mut edges = Vec::new();
    if let Some(l) = lo.filter(|l| l.rem_euclid(HOUR_MS) != 0) {
        edges.push((Some(l), Some(first * HOUR_MS)));
    }
    if let Some(h) = hi.filter(|h| h.rem_euclid(HOUR_MS) != 0) {
        edges.push((Some(end * HOUR_MS), Some(h)));
    }
    (first..end, edges)
}

fn ts_literal(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some("UTC".into()),
    ))
}

#[derive(Debug, Clone)]
pub(crate) struct RollupAnswer {
    events: EventsTable,
    spec: Spec,
    /// The filters of the replaced aggregation (for the edge scan).
    filters: Vec<Expr>,
    /// The aggregation's output, as columns `c0, c1, …`.
    schema: SchemaRef,
}

impl RollupAnswer {
    pub(crate) fn new(events: EventsTable, spec: Spec, filters: Vec<Expr>, out: &Schema) -> Self {
        let fields: Vec<Field> = out
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), f.is_nullable()))
            .collect();
        Self {
            events,
            spec,
            filters,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    /// The scan of the edge hours: the columns the measures need, filtered exactly.
    async fn edge_scan(
        &self,
        state: &dyn Session,
        edges: &[Span],
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let ranges: Vec<Expr> = edges
            .iter()
            .filter_map(|(a, b)| {
                let parts = a
                    .map(|a| col(COL_TIMESTAMP).gt_eq(ts_literal(a)))
                    .into_iter()
                    .chain(b.map(|b| col(COL_TIMESTAMP).lt(ts_literal(b))));
                conjunction(parts)
            })
            .collect();
        let Some(range) = ranges.into_iter().reduce(Expr::or) else {
            return Ok(None);
        };
        let mut filters: Vec<Expr> = self.filters.iter().cloned().map(unnormalize_col).collect();
        filters.push(range);
        let mut wanted = vec![
            COL_TIMESTAMP,
            COL_USER,
            COL_EVENT_TYPE,
            COL_REVENUE,
            COL_APP_ID,
        ];
        wanted.extend(self.spec.dim.column());
        let table = self.events.schema();
        let mut projection: Vec<usize> = wanted
            .iter()
            .map(|c| table.index_of(c))
            .collect::<Result<_, _>>()?;
        projection.sort_unstable();
        projection.dedup();
        let scan = self
            .events
            .scan(state, Some(&projection), &filters, None)
            .await?;
        // The scan answers app filters exactly and uses the others only to skip data.
        let rest: Vec<Expr> = filters
            .into_iter()
            .filter(|f| crate::events::app_filter(f).is_none())
            .collect();
        let Some(predicate) = conjunction(rest) else {
            return Ok(Some(scan));
        };
        let schema = DFSchema::try_from(scan.schema().as_ref().clone())?;
        let predicate = state.create_physical_expr(predicate, &schema)?;
        Ok(Some(Arc::new(FilterExec::try_new(predicate, scan)?)))
    }
}

#[async_trait]
impl TableProvider for RollupAnswer {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (hours, edges) = split(self.spec.lo, self.spec.hi);
        let edge = self.edge_scan(state, &edges).await?;
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        Ok(Arc::new(RollupAnswerExec {
            engine: self.events.engine().clone(),
            spec: self.spec.clone(),
            hours,
            edges,
            edge,
            full_schema: self.schema.clone(),
            projection: projection.cloned(),
            properties: PlanProperties::new(
                EquivalenceProperties::new(schema),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Final,
                Boundedness::Bounded,
            ),
        }))
    }
}

pub(crate) struct RollupAnswerExec {
    engine: Engine,
    spec: Spec,
    hours: Range<i64>,
    edges: Vec<Span>,
    edge: Option<Arc<dyn ExecutionPlan>>,
    full_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    properties: PlanProperties,
}

impl fmt::Debug for RollupAnswerExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_as(DisplayFormatType::Default, f)
    }
}

impl DisplayAs for RollupAnswerExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |h: i64, open: i64| {
            if h == open {
                "unbounded".to_string()
            } else {
                chrono::DateTime::from_timestamp_millis(h.saturating_mul(HOUR_MS))
                    .map_or_else(|| h.to_string(), |t| t.to_rfc3339())
            }
        };
        write!(
            f,
            "RollupAnswerExec: app={}, group={:?}, whole hours from {} to {}, edge ranges read from events={}",
            self.spec.apps.join(","),
            self.spec.dim,
            bound(self.hours.start, i64::MIN),
            bound(self.hours.end, i64::MAX),
            self.edges.len()
        )
    }
}

impl ExecutionPlan for RollupAnswerExec {
    fn name(&self) -> &str {
        "RollupAnswerExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &PlanProperties {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.edge.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            engine: self.engine.clone(),
            spec: self.spec.clone(),
            hours: self.hours.clone(),
            edges: self.edges.clone(),
            edge: children.pop(),
            full_schema: self.full_schema.clone(),
            projection: self.projection.clone(),
            properties: self.properties.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "RollupAnswerExec has one partition, asked for {partition}"
            )));
        }
        let engine = self.engine.clone();
        let spec = self.spec.clone();
        let hours = self.hours.clone();
        let edge = self.edge.clone();
        let full = self.full_schema.clone();
        let projection = self.projection.clone();
        let answer = async move {
            let mut edges: BTreeMap<(String, Key), GroupTotals> = BTreeMap::new();
            if let Some(edge) = edge {
                for p in 0..edge.output_partitioning().partition_count() {
                    let mut s = edge.execute(p, context.clone())?;
                    while let Some(b) = s.next().await {
                        add_rows(&engine, &spec, &b?, &mut edges)?;
                    }
                }
            }
            let mut groups = BTreeMap::new();
            for app in &spec.apps {
                let users = spec.measures.contains(&Measure::Users);
                for (k, g) in whole_hours(&engine, app, spec.dim, users, hours.clone()).await? {
                    groups.insert((app.clone(), k), g);
                }
            }
            for (k, e) in edges {
                merge(groups.entry(k).or_default(), e);
            }
            if spec.app_key.is_none() && spec.apps.len() > 1 {
                groups = across_apps(&engine, &spec, groups);
            }
            let batch = rows(&spec, &full, groups)?;
            Ok(match &projection {
                Some(p) => batch.project(p)?,
                None => batch,
            })
        };
        let schema = self.properties.eq_properties.schema().clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(answer),
        )))
    }
}

/// The rollups' groups over the whole hours (the lock is held only to take the hours).
async fn whole_hours(
    engine: &Engine,
    app: &str,
    dim: Dim,
    users: bool,
    hours: Range<i64>,
) -> DfResult<BTreeMap<Key, GroupTotals>> {
    let text = |m: BTreeMap<String, GroupTotals>| {
        m.into_iter()
            .map(|(k, g)| (Key::Text(k), g))
            .collect::<BTreeMap<_, _>>()
    };
    if dim == Dim::Campaign {
        return Ok(text(
            campaigns_over(engine, app, hours).await?.by_campaign(),
        ));
    }
    let taken = hours_over(engine, app, hours).await?;
    Ok(match dim {
        Dim::Buckets(width) => taken
            .bucket_groups(width, users)
            .into_iter()
            .map(|(k, g)| (Key::Time(k), g))
            .collect(),
        Dim::Platform => text(taken.groups(RollupDim::Platform, users)),
        Dim::EventType => text(taken.groups(RollupDim::EventType, users)),
        Dim::All | Dim::Campaign => text(taken.groups(RollupDim::All, users)),
    })
}

/// Several apps' groups added up into one per key (app `""`), users counted by their
/// `user_id`: each app's user numbers are mapped once, through a table, to numbers of the ids
/// of all the apps (an id seen in two apps is one user, as a scan counts it), then each key's
/// numbers are sorted and made one set.
fn across_apps(
    engine: &Engine,
    spec: &Spec,
    groups: BTreeMap<(String, Key), GroupTotals>,
) -> BTreeMap<(String, Key), GroupTotals> {
    let users = spec.measures.contains(&Measure::Users);
    let mut by_app: BTreeMap<String, Vec<(Key, GroupTotals)>> = BTreeMap::new();
    for ((app, key), g) in groups {
        by_app.entry(app).or_default().push((key, g));
    }
    let mut out: BTreeMap<(String, Key), GroupTotals> = BTreeMap::new();
    if spec.dim == Dim::All {
        // Ungrouped: one row even when no app has any.
        out.entry((String::new(), Key::Text(String::new())))
            .or_default();
    }
    let mut ids: HashMap<u128, u32, BuildHasherDefault<Hash128Hasher>> = HashMap::default();
    let mut members: BTreeMap<Key, Vec<u32>> = BTreeMap::new();
    for (app, gs) in by_app {
        let mut global: Vec<u32> = Vec::new();
        if users {
            let mut all = RoaringBitmap::new();
            for (_, g) in &gs {
                all |= &g.users;
            }
            global = vec![u32::MAX; all.max().map_or(0, |m| m as usize + 1)];
            engine.rollups().with_user_names(&app, &all, |n, name| {
                let next = ids.len() as u32;
                let h = xxhash_rust::xxh3::xxh3_128(name.as_bytes());
                global[n as usize] = *ids.entry(h).or_insert(next);
            });
        }
        for (key, mut g) in gs {
            let local = std::mem::take(&mut g.users);
            if users {
                members.entry(key.clone()).or_default().extend(
                    local
                        .iter()
                        .map(|n| global[n as usize])
                        .filter(|g| *g != u32::MAX),
                );
            }
            merge(out.entry((String::new(), key)).or_default(), g);
        }
    }
    for (key, mut v) in members {
        v.sort_unstable();
        v.dedup();
        if let Some(g) = out.get_mut(&(String::new(), key)) {
            g.users = RoaringBitmap::from_sorted_iter(v).unwrap_or_default();
        }
    }
    out
}

fn merge(into: &mut GroupTotals, from: GroupTotals) {
    into.events += from.events;
    into.users |= from.users;
    into.revenue_micros += from.revenue_micros;
    into.revenue_events += from.revenue_events;
    into.purchase_revenue_micros += from.purchase_revenue_micros;
    into.purchase_revenue_events += from.purchase_revenue_events;
    for (t, n) in from.by_type {
        *into.by_type.entry(t).or_default() += n;
    }
}

/// Adds the edge rows of `batch` to their groups, users by their numbers in the rollups.
fn add_rows(
    engine: &Engine,
    spec: &Spec,
    batch: &RecordBatch,
    groups: &mut BTreeMap<(String, Key), GroupTotals>,
) -> DfResult<()> {
    let string = |name: &str| -> DfResult<StringArray> {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| DataFusionError::Internal(format!("edge scan without {name}")))?;
        Ok(arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)?
            .as_string::<i32>()
            .clone())
    };
    let apps = string(COL_APP_ID)?;
    let users = string(COL_USER)?;
    let types = string(COL_EVENT_TYPE)?;
    let keys = spec.dim.column().map(string).transpose()?;
    let revenue = batch
        .column_by_name(COL_REVENUE)
        .map(|c| c.as_primitive::<Float64Type>().clone())
        .ok_or_else(|| DataFusionError::Internal("edge scan without revenue".into()))?;
    let times = batch
        .column_by_name(COL_TIMESTAMP)
        .map(|c| c.as_primitive::<TimestampMillisecondType>().clone())
        .ok_or_else(|| DataFusionError::Internal("edge scan without timestamp".into()))?;
    let rollups = engine.rollups();
    for row in 0..batch.num_rows() {
        let key = match (&keys, spec.dim) {
            (_, Dim::Buckets(width)) => {
                let w = width * HOUR_MS;
                Key::Time(times.value(row).div_euclid(w) * w)
            }
            (None, _) => Key::Text(String::new()),
            (Some(k), _) if k.is_valid(row) => Key::Text(k.value(row).to_string()),
            (Some(_), _) => {
                return Err(DataFusionError::Internal(
                    "a NULL group key in a rollup answer".into(),
                ))
            }
        };
        let app = apps.value(row);
        if spec.apps.binary_search_by(|a| a.as_str().cmp(app)).is_err() {
            // Not an app of the answer (the scan was limited to the caller's apps only).
            continue;
        }
        let g = groups.entry((app.to_string(), key)).or_default();
        g.events += 1;
        if users.is_valid(row) {
            let n = rollups.user_number(app, users.value(row)).ok_or_else(|| {
                DataFusionError::Execution(
                    "the rollups do not know a stored user yet (a snapshot is being \
                         installed); retry"
                        .into(),
                )
            })?;
            g.users.insert(n);
        }
        let kind = types.value(row);
        *g.by_type.entry(kind.to_string()).or_default() += 1;
        if revenue.is_valid(row) {
            let m = micros(revenue.value(row));
            g.revenue_micros += m;
            g.revenue_events += 1;
            if kind == "purchase" {
                g.purchase_revenue_micros += m;
                g.purchase_revenue_events += 1;
            }
        }
    }
    Ok(())
}

/// The aggregation's rows: the group column (unless ungrouped), then the measures.
fn rows(
    spec: &Spec,
    schema: &SchemaRef,
    groups: BTreeMap<(String, Key), GroupTotals>,
) -> DfResult<RecordBatch> {
    let groups: Vec<((String, Key), GroupTotals)> = groups
        .into_iter()
        // Ungrouped, an empty range is one row of zeros; grouped (by app too), no rows.
        .filter(|(_, g)| (spec.dim == Dim::All && spec.app_key.is_none()) || g.events > 0)
        .collect();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let app = |columns: &mut Vec<ArrayRef>| {
        columns.push(Arc::new(StringArray::from_iter_values(
            groups.iter().map(|((app, _), _)| app.as_str()),
        )));
    };
    if spec.app_key == Some(0) {
        app(&mut columns);
    }
    match spec.dim {
        Dim::All => {}
        Dim::Buckets(_) => columns.push(Arc::new(
            TimestampMillisecondArray::from_iter_values(groups.iter().map(|((_, k), _)| match k {
                Key::Time(t) => *t,
                Key::Text(_) => 0,
            }))
            .with_timezone("UTC"),
        )),
        _ => columns.push(Arc::new(StringArray::from_iter(groups.iter().map(
            |((_, k), _)| match k {
                Key::Text(t) => Some(t.as_str()),
                Key::Time(_) => None,
            },
        )))),
    }
    if spec.app_key.is_some_and(|k| k > 0) {
        app(&mut columns);
    }
    let int = |f: &dyn Fn(&GroupTotals) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            groups.iter().map(|(_, g)| f(g) as i64),
        ))
    };
    let money = |f: &dyn Fn(&GroupTotals) -> (i128, u64)| -> ArrayRef {
        Arc::new(Float64Array::from_iter(groups.iter().map(|(_, g)| {
            let (m, n) = f(g);
            (n > 0).then(|| m as f64 / 1e6)
        })))
    };
    for m in &spec.measures {
        columns.push(match m {
            Measure::Events => int(&|g| g.events),
            Measure::Users => int(&|g| g.users.len()),
            Measure::TypeEvents(t) => int(&|g| g.by_type.get(t).copied().unwrap_or(0)),
            Measure::Revenue => money(&|g| (g.revenue_micros, g.revenue_events)),
            Measure::PurchaseRevenue => {
                money(&|g| (g.purchase_revenue_micros, g.purchase_revenue_events))
            }
        });
    }
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| Ok(arrow::compute::cast(&c, f.data_type())?))
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
