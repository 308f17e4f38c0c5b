//! Reads the events attribution needs from a session's `events` table (so the caller's app
//! scope applies) and feeds them to a [`Collector`].

use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{col, lit, Expr};
use futures::StreamExt;

use super::collect::COLUMNS;
use super::{AttributionParams, Collector, FraudReport, Report};
use crate::error::Result;

fn at(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some("UTC".into()),
    ))
}

/// Attributes the conversions of `params` over `ctx`'s `events`.
pub(crate) async fn run(ctx: &SessionContext, params: AttributionParams) -> Result<Report> {
    Ok(collect(ctx, Collector::new(params)).await?.finish())
}

/// The fraud signals of `params`' range over `ctx`'s `events`.
pub(crate) async fn run_fraud(
    ctx: &SessionContext,
    params: AttributionParams,
) -> Result<FraudReport> {
    Ok(collect(ctx, Collector::for_fraud(params))
        .await?
        .fraud_report())
}

async fn collect(ctx: &SessionContext, mut collector: Collector) -> Result<Collector> {
    let params = collector.params().clone();
    params.validate()?;
    let types: Vec<Expr> = params.event_types().into_iter().map(lit).collect();
    let filter = col("app_id")
        .eq(lit(params.app_id.clone()))
        .and(col("timestamp").gt_eq(at(params.history_from_ms())))
        .and(col("timestamp").lt(at(params.to_ms)))
        .and(col("event_type").in_list(types, false));
    let df = ctx
        .table("events")
        .await?
        .filter(filter)?
        .select_columns(&COLUMNS)?;
    let mut stream = df.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        collector.push(&batch?)?;
    }
    Ok(collector)
}
