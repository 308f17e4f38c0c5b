//! ClickHouse compatibility: analysts' ClickHouse SQL runs unchanged.
//!
//! * [`rewrite`]: functions that are compositions of DataFusion built-ins are expanded in the
//!   parsed SQL (`toStartOfHour`, `uniq`, `countIf`, `toFloat64OrZero`, `today()`, …), and
//!   parametric calls `quantile(0.9)(x)` become `quantile(x, 0.9)`.
//! * [`arg_best`] and [`aggregate`]: UDAFs DataFusion lacks (`argMax`, `argMin`; `quantile`,
//!   `quantile_exact`).
//! * [`uniq`]: `uniq_exact`, the distinct count `uniq`, `uniqExact` and relatives become;
//!   [`distinct`]: `count(DISTINCT x)` is planned as `uniq_exact(x)` too.
//! * [`planner`]: `date ± n` (days) and `datetime ± n` (seconds).
//! * [`view`]: `events` as analysts know it from the old ClickHouse schema: every stored
//!   column plus `created_at` (when the event was received) and `attribution` (a map of
//!   `campaign`, `source`, `medium`, `content`, `term`).
//!
//! The full list is in docs/sql.md.

mod aggregate;
mod arg_best;
mod distinct;
mod planner;
mod rewrite;
mod uniq;
mod view;

use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::AggregateUDF;

pub(crate) use distinct::DistinctCountRule;
pub(crate) use rewrite::rewrite;
pub(crate) use view::events_view;

/// Registers the UDAFs and the date-arithmetic planner in `ctx`.
pub(crate) fn register(ctx: &mut SessionContext) -> datafusion::error::Result<()> {
    for udaf in [
        AggregateUDF::from(arg_best::ArgBest::new(true)),
        AggregateUDF::from(arg_best::ArgBest::new(false)),
        AggregateUDF::from(aggregate::Quantile::new(true)),
        AggregateUDF::from(aggregate::Quantile::new(false)),
        AggregateUDF::from(uniq::UniqExact::new()),
    ] {
        ctx.register_udaf(Arc::new(udaf))?;
    }
    ctx.register_expr_planner(Arc::new(planner::DateArithmetic))
}

/// Whether row `row` passes a grouped aggregate's optional filter (`agg(x) FILTER (WHERE …)`).
fn passes(filter: Option<&arrow::array::BooleanArray>, row: usize) -> bool {
    use arrow::array::Array;
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}
