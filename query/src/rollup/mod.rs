//! Aggregations the engine's hourly rollups already hold, answered from them instead of a
//! scan (like a ClickHouse projection): an optimizer rule replaces a matching `Aggregate`
//! over the `events` table with a scan of [`table::RollupAnswer`], which adds up the whole
//! hours of the time range from the rollups and reads only the partial hours at its edges
//! from the events table.
//!
//! Matched, and nothing else (any other filter, grouping or aggregate keeps the scan):
//! - apps: one (`app_id = '…'`), several, or every app the caller may read (no app filter);
//!   with `app_id` among the group keys each app's groups are its own rows, without it the
//!   apps' groups are added up, users counted by their `user_id` across apps (the same id in
//!   two apps is one user, as a scan counts it);
//! - filters: bounds on `timestamp` against constants
//!   (`now() - INTERVAL 30 DAY` is one once folded) or on `toStartOfHour(timestamp)`, and
//!   `attribution_campaign IS NOT NULL` when grouping by the campaign;
//! - grouping: none, `platform`, `event_type`, `attribution_campaign`, or
//!   `toStartOfHour(timestamp)` / `toStartOfDay(timestamp)` (UTC); and `app_id` besides;
//! - aggregates: `count()`, `uniqExact(user_id)` and its relatives, `count(DISTINCT user_id)`,
//!   and by grouping
//!   `sum(revenue)` and `countIf(event_type = '…')` (no grouping or by time), `countIf(event_type =
//!   'install' | 'purchase')` and `sumIf(revenue, event_type = 'purchase')` (campaigns).
//!
//! Revenue sums are exact to the micro-unit (the rollups add whole micro-units); a scan adds
//! `f64`s and can differ in the last digits. `query.rollup_answers = false` turns it off.

mod over;
mod table;

pub(crate) use over::{campaigns_over, hours_over, rollups_over};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DfResult, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::{AggregateFunction, Case};
use datafusion::logical_expr::utils::split_conjunction_owned;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, TableScan,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use engine::COL_TIMESTAMP;

use crate::events::EventsTable;
pub(crate) use table::RollupAnswer;

const COL_PLATFORM: &str = "platform";
const COL_EVENT_TYPE: &str = "event_type";
const COL_CAMPAIGN: &str = "attribution_campaign";
const COL_USER: &str = "user_id";
const COL_REVENUE: &str = "revenue";

/// What the answer is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    All,
    Platform,
    EventType,
    Campaign,
    /// `toStartOfHour(timestamp)` (1) or `toStartOfDay(timestamp)` (24): buckets of hours.
    Buckets(i64),
}

impl Dim {
    fn column(self) -> Option<&'static str> {
        match self {
            Dim::All | Dim::Buckets(_) => None,
            Dim::Platform => Some(COL_PLATFORM),
            Dim::EventType => Some(COL_EVENT_TYPE),
            Dim::Campaign => Some(COL_CAMPAIGN),
        }
    }
}

/// One aggregate of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Measure {
    /// `count()`
    Events,
    /// `uniqExact(user_id)`
    Users,
    /// `sum(revenue)`
    Revenue,
    /// `countIf(event_type = '…')`
    TypeEvents(String),
    /// `sumIf(revenue, event_type = 'purchase')`
    PurchaseRevenue,
}

/// A matched aggregation: one app, `timestamp` in `[lo, hi)` (`None`: unbounded).
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The apps answered, sorted (at least one).
    pub(crate) apps: Vec<String>,
    pub(crate) lo: Option<i64>,
    pub(crate) hi: Option<i64>,
    pub(crate) dim: Dim,
    /// Where `app_id` is among the group keys (it is then a constant column of the answer).
    pub(crate) app_key: Option<usize>,
    pub(crate) measures: Vec<Measure>,
}

/// Replaces aggregations the rollups can answer (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct RollupRule;

impl OptimizerRule for RollupRule {
    fn name(&self) -> &str {
        "rollup_answers"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let Some((events, spec, filters)) = matched(agg) else {
            return Ok(Transformed::no(plan));
        };
        let answer = RollupAnswer::new(events, spec, filters, agg.schema.as_arrow());
        let source = datafusion::datasource::provider_as_source(Arc::new(answer));
        let aliases: Vec<Expr> = agg
            .schema
            .iter()
            .enumerate()
            .map(|(i, (q, f))| {
                Expr::Column(Column::new(Some(table::TABLE), format!("c{i}")))
                    .alias_qualified(q.cloned(), f.name())
            })
            .collect();
        let new = LogicalPlanBuilder::scan(table::TABLE, source, None)?
            .project(aliases)?
            .build()?;
        Ok(Transformed::yes(new))
    }
}

/// The events table under `agg`, what the rollups must answer, and the filters the edge scan
/// applies — if `agg` is answerable.
fn matched(agg: &Aggregate) -> Option<(EventsTable, Spec, Vec<Expr>)> {
    // The chain of plans between the aggregation and the events scan, top down.
    let mut chain: Vec<&LogicalPlan> = Vec::new();
    let mut input = agg.input.as_ref();
    let scan: &TableScan = loop {
        match input {
            LogicalPlan::SubqueryAlias(a) => input = a.input.as_ref(),
            LogicalPlan::Projection(p) => {
                chain.push(input);
                input = p.input.as_ref();
            }
            LogicalPlan::Filter(f) => {
                chain.push(input);
                input = f.input.as_ref();
            }
            LogicalPlan::TableScan(s) if s.fetch.is_none() => break s,
            _ => return None,
        }
    };
    // Bottom up: each level's names as expressions over the table's columns (projections may
    // compute common subexpressions such as `date_trunc('hour', timestamp)` that filters and
    // group keys above name), and every filter read in terms of the table.
    let mut computed: HashMap<String, Expr> = HashMap::new();
    let mut conjuncts = Vec::new();
    for plan in chain.iter().rev() {
        match plan {
            LogicalPlan::Projection(p) => {
                let mut level = HashMap::new();
                for e in &p.expr {
                    match e {
                        Expr::Column(c) => {
                            if let Some(x) = computed.get(&c.name) {
                                level.insert(c.name.clone(), x.clone());
                            }
                        }
                        Expr::Alias(a) => {
                            level.insert(a.name.clone(), inline(a.expr.as_ref(), &computed));
                        }
                        _ => return None,
                    }
                }
                computed = level;
            }
            LogicalPlan::Filter(f) => conjuncts.extend(
                split_conjunction_owned(f.predicate.clone())
                    .iter()
                    .map(|c| inline(c, &computed)),
            ),
            _ => return None,
        }
    }
    let provider = source_as_provider(&scan.source).ok()?;
    let events = provider.as_any().downcast_ref::<EventsTable>()?.clone();
    for f in &scan.filters {
        conjuncts.extend(split_conjunction_owned(f.clone()));
    }

    let mut apps: Option<BTreeSet<String>> = None;
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    let mut campaign_not_null = false;
    for c in &conjuncts {
        if let Some(a) = crate::events::app_filter(c) {
            apps = Some(match apps {
                Some(prev) => &prev & &a,
                None => a,
            });
        } else if let Some((op, v)) = time_bound(c).or_else(|| hour_bound(c)) {
            match op {
                Operator::GtEq => lo = Some(lo.map_or(v, |x| x.max(v))),
                Operator::Gt => lo = Some(lo.map_or(v + 1, |x| x.max(v + 1))),
                Operator::Lt => hi = Some(hi.map_or(v, |x| x.min(v))),
                Operator::LtEq => hi = Some(hi.map_or(v + 1, |x| x.min(v + 1))),
                _ => return None,
            }
        } else if matches!(c, Expr::IsNotNull(e) if is_column(e, COL_CAMPAIGN)) {
            campaign_not_null = true;
        } else {
            return None;
        }
    }
    let group: Vec<Expr> = agg
        .group_expr
        .iter()
        .map(|e| inline(e, &computed))
        .collect();
    // `app_id` among the group keys: the answer carries each app's rows with its id (the
    // seed's `dashboard_stats` groups by app and hour; `GROUP BY app_id, event_type`).
    let app_key = group.iter().position(|e| is_column(e, engine::COL_APP_ID));
    let apps: Vec<String> = match apps {
        Some(a) if a.iter().all(|app| events.in_scope(app)) => a.into_iter().collect(),
        Some(_) => return None,
        None => {
            let mut all = events.engine().rollups().apps();
            all.retain(|app| events.in_scope(app));
            all.sort();
            all
        }
    };
    if apps.is_empty() {
        return None;
    }
    let group: Vec<Expr> = group
        .into_iter()
        .filter(|e| !is_column(e, engine::COL_APP_ID))
        .collect();
    let dim = match group.as_slice() {
        [] => Dim::All,
        [Expr::Column(c)] if c.name == COL_PLATFORM => Dim::Platform,
        [Expr::Column(c)] if c.name == COL_EVENT_TYPE => Dim::EventType,
        [Expr::Column(c)] if c.name == COL_CAMPAIGN => Dim::Campaign,
        [e] => Dim::Buckets(bucket_hours(e)?),
        _ => return None,
    };
    // The campaign rollups hold only events with a campaign, and only they.
    if campaign_not_null != (dim == Dim::Campaign) {
        return None;
    }
    let measures = agg
        .aggr_expr
        .iter()
        .map(|e| measure(&inline(e, &computed), dim))
        .collect::<Option<Vec<_>>>()?;
    let spec = Spec {
        apps,
        lo,
        hi,
        dim,
        app_key,
        measures,
    };
    Some((events, spec, conjuncts))
}

/// `e` without aliases and with the columns of `computed` replaced by what computes them.
fn inline(e: &Expr, computed: &HashMap<String, Expr>) -> Expr {
    e.clone()
        .transform_up(|x| {
            Ok(match x {
                Expr::Alias(a) => Transformed::yes(*a.expr),
                Expr::Column(c) if computed.contains_key(&c.name) => {
                    Transformed::yes(computed[&c.name].clone())
                }
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}

fn is_column(e: &Expr, name: &str) -> bool {
    matches!(e, Expr::Column(c) if c.name == name)
}

/// `timestamp <op> constant` (either side) as (op with the column on the left, milliseconds).
fn time_bound(e: &Expr) -> Option<(Operator, i64)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let ms = |e: &Expr| match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampMillisecond(Some(x), _) => Some(*x),
            ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1000),
            ScalarValue::TimestampMicrosecond(Some(x), _) => {
                Some(x.div_euclid(1000)).filter(|_| x.rem_euclid(1000) == 0)
            }
            ScalarValue::TimestampNanosecond(Some(x), _) => {
                Some(x.div_euclid(1_000_000)).filter(|_| x.rem_euclid(1_000_000) == 0)
            }
            _ => None,
        },
        _ => None,
    };
    if is_column(left, COL_TIMESTAMP) {
        Some((*op, ms(right)?))
    } else if is_column(right, COL_TIMESTAMP) {
        Some((op.swap()?, ms(left)?))
    } else {
        None
    }
}

/// `date_trunc('hour', timestamp) <op> constant` (a filter on `dashboard_stats.hour`) as the
/// same bound on `timestamp`: `>= v` and `< v` hold for `timestamp` against `v` rounded up to
/// the hour, `> v` and `<= v` against `v` rounded down plus an hour.
fn hour_bound(e: &Expr) -> Option<(Operator, i64)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (op, constant) = if bucket_hours(left) == Some(1) {
        (*op, right.as_ref())
    } else if bucket_hours(right) == Some(1) {
        (op.swap()?, left.as_ref())
    } else {
        return None;
    };
    let probe = Expr::BinaryExpr(BinaryExpr {
        left: Box::new(Expr::Column(Column::from_name(COL_TIMESTAMP))),
        op,
        right: Box::new(constant.clone()),
    });
    let (op, v) = time_bound(&probe)?;
    let floor = v.div_euclid(engine::HOUR_MS) * engine::HOUR_MS;
    let ceil = if floor == v {
        v
    } else {
        floor + engine::HOUR_MS
    };
    match op {
        Operator::GtEq => Some((Operator::GtEq, ceil)),
        Operator::Lt => Some((Operator::Lt, ceil)),
        Operator::Gt | Operator::LtEq => Some((
            if op == Operator::Gt {
                Operator::GtEq
            } else {
                Operator::Lt
            },
            floor + engine::HOUR_MS,
        )),
        _ => None,
    }
}

/// `date_trunc('hour' | 'day', timestamp)` (what `toStartOfHour` / `toStartOfDay` become):
/// the bucket's width in hours.
fn bucket_hours(e: &Expr) -> Option<i64> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if f.func.name() != "date_trunc" {
        return None;
    }
    match f.args.as_slice() {
        [Expr::Literal(ScalarValue::Utf8(Some(unit)) | ScalarValue::Utf8View(Some(unit)), _), t]
            if utc_timestamp(t) =>
        {
            match unit.to_ascii_lowercase().as_str() {
                "hour" => Some(1),
                "day" => Some(24),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The `timestamp` column, or a cast of it to another timestamp unit still in UTC (DataFusion
/// plans `date_trunc` over nanoseconds).
fn utc_timestamp(e: &Expr) -> bool {
    use arrow::datatypes::DataType;
    match e {
        Expr::Cast(c) => {
            matches!(&c.data_type, DataType::Timestamp(_, Some(tz)) if tz.as_ref() == "UTC")
                && is_column(&c.expr, COL_TIMESTAMP)
        }
        e => is_column(e, COL_TIMESTAMP),
    }
}

/// `event_type = 'T'` (either side): T.
fn type_is(e: &Expr) -> Option<String> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = e
    else {
        return None;
    };
    let text = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => {
            Some(s.clone())
        }
        _ => None,
    };
    if is_column(left, COL_EVENT_TYPE) {
        text(right)
    } else if is_column(right, COL_EVENT_TYPE) {
        text(left)
    } else {
        None
    }
}

/// `CASE WHEN event_type = 'T' THEN then END` (how countIf / sumIf are written): (T, then).
fn when_type(e: &Expr) -> Option<(String, &Expr)> {
    match e {
        Expr::Case(Case {
            expr: None,
            when_then_expr,
            else_expr: None,
        }) if when_then_expr.len() == 1 => {
            let (when, then) = &when_then_expr[0];
            Some((type_is(when)?, then.as_ref()))
        }
        _ => None,
    }
}

fn measure(e: &Expr, dim: Dim) -> Option<Measure> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
        return None;
    };
    if params.filter.is_some() || params.order_by.is_some() {
        return None;
    }
    if params.distinct {
        // count(DISTINCT user_id): the distinct non-null users, as uniqExact.
        return match (func.name(), params.args.as_slice()) {
            ("count", [a]) if is_column(a, COL_USER) => Some(Measure::Users),
            _ => None,
        };
    }
    let non_null_literal = |e: &Expr| matches!(e, Expr::Literal(v, _) if !v.is_null());
    let m = match (func.name(), params.args.as_slice()) {
        ("count", [a]) if non_null_literal(a) => Measure::Events,
        ("uniq_exact", [a]) if is_column(a, COL_USER) => Measure::Users,
        ("sum", [a]) if is_column(a, COL_REVENUE) => Measure::Revenue,
        ("count", [a]) => match when_type(a)? {
            (t, then) if non_null_literal(then) => Measure::TypeEvents(t),
            _ => return None,
        },
        ("sum", [a]) => match when_type(a)? {
            (t, then) if t == "purchase" && is_column(then, COL_REVENUE) => {
                Measure::PurchaseRevenue
            }
            _ => return None,
        },
        _ => return None,
    };
    let ok = match (&m, dim) {
        (Measure::Events | Measure::Users, _) => true,
        (Measure::Revenue | Measure::TypeEvents(_), Dim::All | Dim::Buckets(_)) => true,
        (Measure::TypeEvents(t), Dim::Campaign) => t == "install" || t == "purchase",
        (Measure::PurchaseRevenue, Dim::Campaign) => true,
        _ => false,
    };
    ok.then_some(m)
}
