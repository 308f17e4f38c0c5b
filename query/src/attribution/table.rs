//! `attribution(app_id, from, to [, model [, conversions [, click_window [, view_window
//! [, reattribution_window]]]]])` as a SQL table function: one row per channel plus one
//! `attributed = false` row for the conversions nobody gets credit for.
//!
//! `from` / `to` are times (timestamp expressions such as `now() - INTERVAL 30 DAY`, RFC 3339
//! strings, dates or epoch ms), `conversions` a comma-separated list of event types, windows
//! strings such as `'7d'` or `'24h'`.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::Expr;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;

use super::{parse_time_ms, parse_window_ms, AttributionParams, Model, Report};
use crate::error::QueryError;

/// The function as registered in one query's session; `now` is that query's `now()`.
#[derive(Debug)]
pub(crate) struct AttributionFunction {
    now: DateTime<Utc>,
}

impl AttributionFunction {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        Self { now }
    }
}

fn invalid(m: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(m.into())
}

fn from_query(e: QueryError) -> DataFusionError {
    match e {
        QueryError::InvalidQuery(m) => invalid(m),
        e => DataFusionError::External(Box::new(e)),
    }
}

/// The value of a constant argument, `now()` being the query's.
fn constant(e: &Expr, what: &str, now: DateTime<Utc>) -> DfResult<ScalarValue> {
    let mut props = ExecutionProps::new();
    props.query_execution_start_time = now;
    let ctx = SimplifyContext::new(&props).with_schema(Arc::new(DFSchema::empty()));
    match ExprSimplifier::new(ctx).simplify(e.clone())? {
        Expr::Literal(v, _) => Ok(v),
        other => Err(invalid(format!(
            "attribution(): {what} must be a constant, not {other}"
        ))),
    }
}

fn text(e: &Expr, what: &str, now: DateTime<Utc>) -> DfResult<String> {
    match constant(e, what, now)? {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Ok(s),
        v => Err(invalid(format!(
            "attribution(): {what} must be a string, not {v}"
        ))),
    }
}

fn time_ms(e: &Expr, what: &str, now: DateTime<Utc>) -> DfResult<i64> {
    let v = constant(e, what, now)?;
    let ms = match &v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            return parse_time_ms(s).map_err(from_query)
        }
        ScalarValue::Int64(Some(ms)) => Some(*ms),
        ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1000),
        ScalarValue::TimestampMillisecond(Some(ms), _) => Some(*ms),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(us.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns.div_euclid(1_000_000)),
        ScalarValue::Date32(Some(d)) => Some(*d as i64 * super::DAY_MS),
        _ => None,
    };
    ms.ok_or_else(|| invalid(format!("attribution(): {what} must be a time, not {v}")))
}

impl TableFunctionImpl for AttributionFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !(3..=8).contains(&args.len()) {
            return Err(invalid(
                "attribution(app_id, from, to [, model [, conversions [, click_window [, view_window [, reattribution_window]]]]])",
            ));
        }
        let mut p = AttributionParams::new(
            text(&args[0], "app_id", self.now)?,
            time_ms(&args[1], "from", self.now)?,
            time_ms(&args[2], "to", self.now)?,
        );
        if let Some(m) = args.get(3) {
            p.model = Model::parse(&text(m, "model", self.now)?, None).map_err(from_query)?;
        }
        if let Some(c) = args.get(4) {
            p.conversion_types = text(c, "conversions", self.now)?
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        let window = |i: usize, what: &str| -> DfResult<Option<i64>> {
            args.get(i)
                .map(|e| parse_window_ms(&text(e, what, self.now)?).map_err(from_query))
                .transpose()
        };
        if let Some(w) = window(5, "click_window")? {
            p.windows.click_ms = w;
        }
        if let Some(w) = window(6, "view_window")? {
            p.windows.view_ms = w;
        }
        if let Some(w) = window(7, "reattribution_window")? {
            p.windows.reattribution_ms = w;
        }
        p.validate().map_err(from_query)?;
        Ok(Arc::new(AttributionTable { params: p }))
    }
}

#[derive(Debug)]
struct AttributionTable {
    params: AttributionParams,
}

fn schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let f = |n: &str, nullable: bool| Field::new(n, DataType::Float64, nullable);
    Arc::new(Schema::new(vec![
        Field::new("attributed", DataType::Boolean, false),
        s("campaign"),
        s("source"),
        s("medium"),
        f("conversions", false),
        f("revenue", false),
        Field::new("clicks", DataType::UInt64, false),
        Field::new("impressions", DataType::UInt64, false),
        f("conversion_rate", true),
    ]))
}

/// The report as rows: channels, then the unattributed row.
fn batch(report: &Report) -> DfResult<RecordBatch> {
    let rows = &report.rows;
    let strings = |f: fn(&super::ChannelRow) -> Option<&str>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(f)
                .chain(std::iter::once(None))
                .collect::<StringArray>(),
        )
    };
    let floats = |f: fn(&super::ChannelRow) -> Option<f64>, last: Option<f64>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(f)
                .chain(std::iter::once(last))
                .collect::<Float64Array>(),
        )
    };
    let counts = |f: fn(&super::ChannelRow) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(f).chain(std::iter::once(0)),
        ))
    };
    let u = &report.unattributed;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(BooleanArray::from_iter(
            rows.iter()
                .map(|_| Some(true))
                .chain(std::iter::once(Some(false))),
        )),
        strings(|r| r.campaign.as_deref()),
        strings(|r| r.source.as_deref()),
        strings(|r| r.medium.as_deref()),
        floats(|r| Some(r.conversions), Some(u.conversions)),
        floats(|r| Some(r.revenue), Some(u.revenue)),
        counts(|r| r.clicks),
        counts(|r| r.impressions),
        floats(|r| r.conversion_rate, None),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

#[async_trait]
impl TableProvider for AttributionTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        schema()
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
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("attribution(): unknown session".into()))?;
        let ctx = SessionContext::new_with_state(state.clone());
        let report = super::scan::run(&ctx, self.params.clone())
            .await
            .map_err(from_query)?;
        MemorySourceConfig::try_new_exec(&[vec![batch(&report)?]], schema(), projection.cloned())
            .map(|e| e as Arc<dyn ExecutionPlan>)
    }
}
