//! `count(DISTINCT x)` answered by [`uniq_exact`](super::uniq): the optimizer rule
//! [`DistinctCountRule`] runs before DataFusion's own rewrite of a single distinct aggregate
//! into a `GROUP BY x` under a second aggregation.
//!
//! That rewrite hashes and stores every distinct value (whole strings) in a hash table that
//! then feeds a second aggregation; a set of 128-bit hashes per group does the same in one
//! pass: measured on the benchmark's 10M events, `count(DISTINCT session_id)` (3.3M sessions)
//! took 0.99 s that way and 0.58 s as `uniqExact(session_id)`. The answer is the same: the
//! number of distinct non-NULL values, 0 for no rows, as `Int64` (collision odds in
//! [`super::uniq`]). Only for arguments whose values hash by their bytes or a canonical row
//! encoding (strings, binaries, integers, dates, timestamps, booleans); floats and nested
//! types keep DataFusion's plan.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, AggregateUDF, Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::uniq::UniqExact;

#[derive(Debug)]
pub(crate) struct DistinctCountRule {
    uniq: Arc<AggregateUDF>,
}

impl DistinctCountRule {
    pub(crate) fn new() -> Self {
        Self {
            uniq: Arc::new(AggregateUDF::from(UniqExact::new())),
        }
    }
}

fn hashable(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::Boolean
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(_, _)
        )
}

impl OptimizerRule for DistinctCountRule {
    fn name(&self) -> &str {
        "distinct_count_to_uniq_exact"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(Transformed::no(plan));
        };
        let schema = agg.input.schema().clone();
        let mut changed = false;
        let aggr_expr = agg
            .aggr_expr
            .iter()
            .map(|e| {
                let (inner, alias) = match e {
                    Expr::Alias(a) => (a.expr.as_ref(), Some(a)),
                    other => (other, None),
                };
                let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
                    return Ok(e.clone());
                };
                let plain = params.distinct
                    && func.name() == "count"
                    && params.args.len() == 1
                    && params.filter.is_none()
                    && params.order_by.is_none();
                if !plain || !hashable(&params.args[0].get_type(&schema)?) {
                    return Ok(e.clone());
                }
                changed = true;
                let uniq = Expr::AggregateFunction(AggregateFunction::new_udf(
                    self.uniq.clone(),
                    params.args.clone(),
                    false,
                    None,
                    None,
                    None,
                ));
                // The output keeps the name DataFusion gave `count(DISTINCT x)`.
                Ok(match alias {
                    Some(a) => uniq.alias_qualified(a.relation.clone(), a.name.clone()),
                    None => uniq.alias(e.schema_name().to_string()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !changed {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        Ok(Transformed::yes(LogicalPlan::Aggregate(
            Aggregate::try_new(agg.input.clone(), agg.group_expr.clone(), aggr_expr)?,
        )))
    }
}
