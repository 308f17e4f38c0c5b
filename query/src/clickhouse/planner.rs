//! ClickHouse date arithmetic: `today() - 30` is 30 days before today, `now() - 3600` an hour
//! ago. DataFusion has no `date ± integer`; this planner turns the integer into an interval
//! (days for dates, seconds for date-times), as ClickHouse does.

use arrow::datatypes::{DataType, IntervalMonthDayNano};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{lit, Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::BinaryOperator;

#[derive(Debug)]
pub(crate) struct DateArithmetic;

fn integer(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(s, _) => match s {
            ScalarValue::Int64(Some(v)) => Some(*v),
            ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
            _ => None,
        },
        Expr::Negative(inner) => integer(inner).map(|v| -v),
        _ => None,
    }
}

impl ExprPlanner for DateArithmetic {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let plus = match expr.op {
            BinaryOperator::Plus => true,
            BinaryOperator::Minus => false,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let Some(n) = integer(&expr.right) else {
            return Ok(PlannerResult::Original(expr));
        };
        let interval = match expr.left.get_type(schema)? {
            DataType::Date32 | DataType::Date64 => IntervalMonthDayNano::new(
                0,
                i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX }),
                0,
            ),
            DataType::Timestamp(..) => {
                IntervalMonthDayNano::new(0, 0, n.saturating_mul(1_000_000_000))
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let rhs = lit(ScalarValue::IntervalMonthDayNano(Some(interval)));
        Ok(PlannerResult::Planned(if plus {
            expr.left + rhs
        } else {
            expr.left - rhs
        }))
    }
}
