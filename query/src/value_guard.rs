//! Values built by functions stay within `query.max_value_bytes`, and what a function is about
//! to build counts against the query's memory pool while it is built.
//!
//! DataFusion's memory pool bounds what operators hold (sorts, aggregations, joins); it does not
//! see a string or list a scalar function allocates: `repeat('a', 2000000000)` is 2 GB, outside
//! any pool. The functions whose output can be much larger than their input (the amplifiers:
//! `repeat`, `lpad`, `rpad`, `replace`, `regexp_replace`, `array_repeat`, `array_resize`,
//! `range`, `generate_series`) and those that add their inputs up (`concat`, `concat_ws`,
//! `overlay`, `array_concat`, …, and the `||` operator) are wrapped so that, per batch and
//! before anything is allocated:
//!
//! * the largest value the call could build (from the lengths and counts of its arguments) is
//!   checked against `query.max_value_bytes`;
//! * the bytes the whole batch could take are checked against the call site's share of the
//!   query's memory (`query.memory_limit_bytes` divided by the number of wrapped call sites
//!   in the statement: values built by different call sites of one batch are alive at the
//!   same time, so 10,000 copies of `repeat('ab', 10000000)` in one `concat` cannot add up
//!   past the limit), and reserved from the query's memory pool for the duration of the call,
//!   so concurrent builders of one query share its memory limit;
//! * after the call, the largest value actually built is checked again (a defence for the
//!   estimates).
//!
//! Over either limit the query fails with `resources_exhausted` (422) naming the limit. The
//! function's own logic is unchanged: calls are delegated to DataFusion's implementation.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::kernels::length::length;
use arrow::datatypes::{DataType, Field, Int64Type, IntervalMonthDayNanoType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::expressions::{BinaryExpr as PhysicalBinary, Column};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;

/// What one query may build: the per-value cap and the query's own memory pool.
#[derive(Clone)]
pub(crate) struct ValueBudget {
    pub(crate) max_value_bytes: usize,
    pub(crate) memory_limit_bytes: usize,
    pub(crate) pool: Arc<dyn MemoryPool>,
    /// Wrapped call sites in the statement being run (counted by [`GuardStringConcat`]).
    pub(crate) sites: Arc<AtomicUsize>,
}

impl ValueBudget {
    /// Most bytes one call site may build in one batch.
    fn per_site_bytes(&self) -> u64 {
        (self.memory_limit_bytes / self.sites.load(Ordering::Relaxed).max(1)) as u64
    }
}

impl fmt::Debug for ValueBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueBudget")
            .field("max_value_bytes", &self.max_value_bytes)
            .finish()
    }
}

/// How a function's output size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Growth {
    /// `repeat(s, n)`: `len(s) × n`.
    Repeat,
    /// `lpad(s, n[, fill])`, `rpad`: `n` characters (of up to 4 bytes).
    Pad,
    /// `replace(s, from, to)`.
    Replace,
    /// `regexp_replace(s, pattern, replacement[, flags])`.
    RegexpReplace,
    /// `array_repeat(x, n)`: `n` copies of `x`.
    ArrayRepeat,
    /// `array_resize(a, n[, x])`: `n` elements.
    ArrayResize,
    /// `range(start, stop[, step])`, `generate_series`: one element per step.
    Series,
    /// Every other wrapped function: at most the sum of its arguments.
    Sum,
}

/// Functions wrapped, by DataFusion name.
const GUARDED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("array_repeat", Growth::ArrayRepeat),
    ("array_resize", Growth::ArrayResize),
    ("range", Growth::Series),
    ("generate_series", Growth::Series),
    ("concat", Growth::Sum),
    ("concat_ws", Growth::Sum),
    ("overlay", Growth::Sum),
    ("translate", Growth::Sum),
    ("make_array", Growth::Sum),
    ("array_concat", Growth::Sum),
    ("array_append", Growth::Sum),
    ("array_prepend", Growth::Sum),
    ("array_union", Growth::Sum),
    ("string_to_array", Growth::Sum),
    ("to_hex", Growth::Sum),
];

/// Replaces the functions of [`GUARDED`] in `ctx` by wrappers bound to `budget`, and adds the
/// analyzer rule that routes `||` through the same checks.
pub(crate) fn register(ctx: &SessionContext, budget: &ValueBudget) {
    for (name, growth) in GUARDED {
        if let Ok(inner) = ctx.udf(name) {
            // The amplifiers are not folded into constants while planning: a folded value
            // would be repeated on every row of a batch outside these checks.
            let mut signature = inner.signature().clone();
            if *growth != Growth::Sum {
                signature.volatility = Volatility::Volatile;
            }
            ctx.register_udf(ScalarUDF::new_from_impl(Guarded {
                inner,
                growth: *growth,
                signature,
                budget: budget.clone(),
            }));
        }
    }
    ctx.add_analyzer_rule(Arc::new(GuardStringConcat {
        budget: budget.clone(),
    }));
}

fn too_large(what: &str, bytes: u64, limit: usize) -> DataFusionError {
    DataFusionError::ResourcesExhausted(format!(
        "{what} would build a value of {bytes} bytes, more than query.max_value_bytes = {limit}"
    ))
}

/// Per-row byte lengths (strings, binaries) or element counts (lists) of an argument.
fn lengths(v: &ColumnarValue, rows: usize) -> Vec<u64> {
    let one = |a: &ArrayRef| -> Vec<u64> {
        match length(a.as_ref()) {
            Ok(l) => match l.data_type() {
                DataType::Int32 => l
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .iter()
                    .map(|x| x.unwrap_or(0).max(0) as u64)
                    .collect(),
                _ => l
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|x| x.unwrap_or(0).max(0) as u64)
                    .collect(),
            },
            // Fixed-width values: their width.
            Err(_) => {
                let w = a.get_array_memory_size() as u64 / a.len().max(1) as u64;
                vec![w; a.len()]
            }
        }
    };
    match v {
        ColumnarValue::Array(a) => one(a),
        ColumnarValue::Scalar(s) => match s.to_array_of_size(1) {
            Ok(a) => vec![one(&a).first().copied().unwrap_or(0); rows],
            Err(_) => vec![0; rows],
        },
    }
}

/// Per-row integer values of an argument (null or not an integer: 0).
fn integers(v: &ColumnarValue, rows: usize) -> Vec<i64> {
    let arr = match v.to_array(rows) {
        Ok(a) => a,
        Err(_) => return vec![0; rows],
    };
    match arrow::compute::cast(&arr, &DataType::Int64) {
        Ok(a) => a
            .as_primitive::<Int64Type>()
            .iter()
            .map(|x| x.unwrap_or(0))
            .collect(),
        Err(_) => vec![0; rows],
    }
}

/// Bytes one element of a list argument takes, on average (at least 8).
fn element_bytes(v: &ColumnarValue) -> u64 {
    let a = match v {
        ColumnarValue::Array(a) => a.clone(),
        ColumnarValue::Scalar(s) => match s.to_array_of_size(1) {
            Ok(a) => a,
            Err(_) => return 8,
        },
    };
    let inner = match a.data_type() {
        DataType::List(_) => a.as_list::<i32>().values().clone(),
        DataType::LargeList(_) => a.as_list::<i64>().values().clone(),
        _ => a,
    };
    (inner.get_array_memory_size() as u64 / inner.len().max(1) as u64).max(8)
}

/// Elements of `range(start, stop, step)` per row, for integers, dates and timestamps.
fn series_counts(args: &[ColumnarValue], rows: usize) -> Vec<u64> {
    const DAY_NS: i128 = 86_400_000_000_000;
    let (start, stop) = match args {
        [] => return vec![0; rows],
        [only] => (vec![0; rows], integers(only, rows)),
        [a, b, ..] => {
            let as_ns = |v: &ColumnarValue| -> Vec<i64> {
                let t = v.data_type();
                if matches!(
                    t,
                    DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
                ) {
                    let arr = v.to_array(rows).ok();
                    let cast = arr.and_then(|a| {
                        // Seconds: dates up to year 9999 fit (nanoseconds do not).
                        arrow::compute::cast(
                            &a,
                            &DataType::Timestamp(arrow::datatypes::TimeUnit::Second, None),
                        )
                        .ok()
                    });
                    match cast {
                        Some(c) => integers(&ColumnarValue::Array(c), rows)
                            .into_iter()
                            .map(|s| s.saturating_mul(1_000_000_000))
                            .collect(),
                        None => vec![0; rows],
                    }
                } else {
                    integers(v, rows)
                }
            };
            (as_ns(a), as_ns(b))
        }
    };
    let steps: Vec<i128> = match args.get(2) {
        None => vec![1; rows],
        Some(s) if matches!(s.data_type(), DataType::Interval(_)) => {
            let arr = s.to_array(rows).ok().and_then(|a| {
                arrow::compute::cast(
                    &a,
                    &DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
                )
                .ok()
            });
            match arr {
                Some(a) => a
                    .as_primitive::<IntervalMonthDayNanoType>()
                    .iter()
                    .map(|x| {
                        x.map_or(1, |i| {
                            i.months as i128 * 28 * DAY_NS
                                + i.days as i128 * DAY_NS
                                + i.nanoseconds as i128
                        })
                    })
                    .collect(),
                None => vec![1; rows],
            }
        }
        Some(s) => integers(s, rows).into_iter().map(i128::from).collect(),
    };
    (0..rows)
        .map(|i| {
            let span = (stop[i] as i128 - start[i] as i128).abs();
            let step = steps[i].abs().max(1);
            (span / step + 1).min(u64::MAX as i128) as u64
        })
        .collect()
}

/// Upper bound, per row, of the bytes a call builds.
fn estimate(growth: Growth, args: &[ColumnarValue], rows: usize) -> Vec<u64> {
    let len_of = |i: usize| args.get(i).map(|a| lengths(a, rows));
    let zeros = || vec![0u64; rows];
    match growth {
        Growth::Repeat => {
            let s = len_of(0).unwrap_or_else(zeros);
            let n = args
                .get(1)
                .map_or_else(|| vec![0; rows], |a| integers(a, rows));
            (0..rows)
                .map(|i| s[i].saturating_mul(n[i].max(0) as u64))
                .collect()
        }
        Growth::Pad => {
            let n = args
                .get(1)
                .map_or_else(|| vec![0; rows], |a| integers(a, rows));
            n.into_iter()
                .map(|n| (n.max(0) as u64).saturating_mul(4))
                .collect()
        }
        Growth::Replace => {
            let s = len_of(0).unwrap_or_else(zeros);
            let from = len_of(1).unwrap_or_else(zeros);
            let to = len_of(2).unwrap_or_else(zeros);
            (0..rows)
                .map(|i| {
                    let matches = if from[i] == 0 {
                        s[i] + 1
                    } else {
                        s[i] / from[i]
                    };
                    s[i].saturating_add(matches.saturating_mul(to[i]))
                })
                .collect()
        }
        Growth::RegexpReplace => {
            // Every position may match (patterns that match the empty string) and every
            // group reference in the replacement may copy the whole input.
            let s = len_of(0).unwrap_or_else(zeros);
            let repl = len_of(2).unwrap_or_else(zeros);
            let global = match args.get(3) {
                Some(ColumnarValue::Scalar(v)) => v.to_string().contains('g'),
                Some(_) => true,
                None => false,
            };
            let refs = match args.get(2) {
                Some(ColumnarValue::Scalar(v)) => {
                    let t = v.to_string();
                    (t.matches('\\').count() + t.matches('$').count()) as u64
                }
                _ => 8,
            };
            (0..rows)
                .map(|i| {
                    let per_match = repl[i].saturating_add(refs.saturating_mul(s[i]));
                    let matches = if global { s[i] + 1 } else { 1 };
                    s[i].saturating_add(matches.saturating_mul(per_match))
                })
                .collect()
        }
        Growth::ArrayRepeat => {
            let elem = args.first().map_or(0, |a| {
                let l = lengths(a, rows);
                l.iter().copied().max().unwrap_or(0).max(8)
            });
            let n = args
                .get(1)
                .map_or_else(|| vec![0; rows], |a| integers(a, rows));
            n.into_iter()
                .map(|n| elem.saturating_mul(n.max(0) as u64))
                .collect()
        }
        Growth::ArrayResize => {
            let elem = args.first().map_or(8, element_bytes);
            let n = args
                .get(1)
                .map_or_else(|| vec![0; rows], |a| integers(a, rows));
            n.into_iter()
                .map(|n| elem.saturating_mul(n.max(0) as u64))
                .collect()
        }
        Growth::Series => series_counts(args, rows)
            .into_iter()
            .map(|c| c.saturating_mul(8))
            .collect(),
        Growth::Sum => {
            let mut total = vec![0u64; rows];
            for a in args {
                let per = match a.data_type() {
                    DataType::List(_) | DataType::LargeList(_) => {
                        let e = element_bytes(a);
                        lengths(a, rows).into_iter().map(|n| n * e).collect()
                    }
                    _ => lengths(a, rows),
                };
                for (t, p) in total.iter_mut().zip(per) {
                    *t = t.saturating_add(p);
                }
            }
            total
        }
    }
}

/// Checks the estimate of a call against the cap, then runs it with the batch's estimated
/// bytes reserved from the query's pool, then checks what it built.
fn guarded_call(
    what: &str,
    budget: &ValueBudget,
    growth: Growth,
    args: &[ColumnarValue],
    rows: usize,
    call: impl FnOnce() -> Result<ColumnarValue>,
) -> Result<ColumnarValue> {
    // All-constant arguments build one value, which the batch then repeats on every row.
    let constant = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let per_row = estimate(growth, args, if constant { 1 } else { rows });
    let largest = per_row.iter().copied().max().unwrap_or(0);
    if largest > budget.max_value_bytes as u64 {
        return Err(too_large(what, largest, budget.max_value_bytes));
    }
    let total: u64 = if constant {
        largest.saturating_mul(rows.max(1) as u64)
    } else {
        per_row.iter().fold(0u64, |a, b| a.saturating_add(*b))
    };
    let share = budget.per_site_bytes();
    if total > share {
        return Err(DataFusionError::ResourcesExhausted(format!(
            "{what} would build {total} bytes in one batch, more than its share ({share} bytes) \
             of query.memory_limit_bytes = {} among the statement's {} value-building calls",
            budget.memory_limit_bytes,
            budget.sites.load(Ordering::Relaxed).max(1)
        )));
    }
    let mut reservation = MemoryConsumer::new(format!("{what} output")).register(&budget.pool);
    reservation
        .try_grow(usize::try_from(total).unwrap_or(usize::MAX))
        .map_err(|_| {
            DataFusionError::ResourcesExhausted(format!(
                "{what} would build {total} bytes in one batch, more than the query's memory \
                 (query.memory_limit_bytes) has left"
            ))
        })?;
    let out = call()?;
    let built = match &out {
        ColumnarValue::Array(a) => lengths(&ColumnarValue::Array(a.clone()), a.len()),
        ColumnarValue::Scalar(s) => lengths(&ColumnarValue::Scalar(s.clone()), 1),
    };
    let scale = match out.data_type() {
        DataType::List(_) | DataType::LargeList(_) => element_bytes(&out),
        _ => 1,
    };
    let largest_built = built.into_iter().max().unwrap_or(0).saturating_mul(scale);
    if largest_built > budget.max_value_bytes as u64 {
        return Err(too_large(what, largest_built, budget.max_value_bytes));
    }
    Ok(out)
}

/// Inputs DataFusion 48 mishandles (found by the SQL fuzzer, docs/reliability.md): a
/// `concat_ws` separator that is not `Utf8` fails internally or panics (apache/datafusion
/// #20360, fixed upstream after 48) and is cast to `Utf8` here; `overlay` with a position or
/// length below 1 panics slicing the string and is refused here.
fn upstream_workarounds(name: &str, args: &mut ScalarFunctionArgs) -> Result<()> {
    match name {
        "concat_ws" => {
            if let Some(sep) = args.args.first_mut() {
                if matches!(sep.data_type(), DataType::Utf8View | DataType::LargeUtf8) {
                    *sep = sep.cast_to(&DataType::Utf8, None)?;
                }
            }
            if let Some(f) = args.arg_fields.first_mut() {
                if matches!(f.data_type(), DataType::Utf8View | DataType::LargeUtf8) {
                    *f = Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8));
                }
            }
        }
        "overlay" => {
            for a in args.args.iter().skip(2) {
                if integers(a, args.number_rows).iter().any(|n| *n < 1) {
                    return Err(DataFusionError::Execution(
                        "overlay: positions and lengths start at 1".into(),
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A DataFusion function with the checks of [`guarded_call`] around each call.
#[derive(Debug)]
struct Guarded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    signature: Signature,
    budget: ValueBudget,
}

impl ScalarUDFImpl for Guarded {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[allow(deprecated)]
        self.inner.display_name(args)
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs<'_>,
    ) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        upstream_workarounds(self.name(), &mut args)?;
        let rows = args.number_rows;
        let values = args.args.clone();
        guarded_call(
            &format!("{}()", self.name()),
            &self.budget,
            self.growth,
            &values,
            rows,
            || self.inner.invoke_with_args(args),
        )
    }
    fn equals(&self, other: &dyn ScalarUDFImpl) -> bool {
        other
            .as_any()
            .downcast_ref::<Guarded>()
            .is_some_and(|o| o.inner == self.inner)
    }
    fn hash_value(&self) -> u64 {
        self.inner.inner().hash_value()
    }
    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }
}

/// The `||` operator on strings, with DataFusion's own semantics and result type, through
/// [`guarded_call`]. Named like the operator, so answers' column names do not change.
#[derive(Debug)]
struct GuardedConcatOp {
    signature: Signature,
    budget: ValueBudget,
}

impl ScalarUDFImpl for GuardedConcatOp {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        "||"
    }
    fn display_name(&self, args: &[Expr]) -> Result<String> {
        Ok(format!("{} || {}", args[0], args[1]))
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(format!(
            "{} || {}",
            args[0].schema_name(),
            args[1].schema_name()
        ))
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] => BinaryTypeCoercer::new(l, &Operator::StringConcat, r).get_result_type(),
            _ => Err(DataFusionError::Plan("|| takes two operands".into())),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values = args.args;
        guarded_call("||", &self.budget, Growth::Sum, &values, rows, || {
            let scalar = values.iter().all(|v| matches!(v, ColumnarValue::Scalar(_)));
            let n = if scalar { 1 } else { rows };
            let arrays = values
                .iter()
                .map(|v| v.to_array(n))
                .collect::<Result<Vec<_>>>()?;
            let schema = Arc::new(Schema::new(vec![
                Field::new("l", arrays[0].data_type().clone(), true),
                Field::new("r", arrays[1].data_type().clone(), true),
            ]));
            let batch = RecordBatch::try_new(schema, arrays)?;
            let expr = PhysicalBinary::new(
                Arc::new(Column::new("l", 0)),
                Operator::StringConcat,
                Arc::new(Column::new("r", 1)),
            );
            let out = expr.evaluate(&batch)?;
            if scalar {
                let a = out.to_array(1)?;
                return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&a, 0)?));
            }
            Ok(out)
        })
    }
}

/// Rewrites `a || b` on strings (after type coercion) into [`GuardedConcatOp`].
#[derive(Debug)]
struct GuardStringConcat {
    budget: ValueBudget,
}

impl AnalyzerRule for GuardStringConcat {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let udf = Arc::new(ScalarUDF::new_from_impl(GuardedConcatOp {
            signature: Signature::any(2, Volatility::Immutable),
            budget: self.budget.clone(),
        }));
        let plan = plan
            .transform_up_with_subqueries(|p| {
                p.map_expressions(|e| {
                    e.transform_up(|e| match e {
                        Expr::BinaryExpr(BinaryExpr {
                            left,
                            op: Operator::StringConcat,
                            right,
                        }) => Ok(Transformed::yes(Expr::ScalarFunction(
                            ScalarFunction::new_udf(udf.clone(), vec![*left, *right]),
                        ))),
                        other => Ok(Transformed::no(other)),
                    })
                })
            })?
            .data;
        let mut sites = 0usize;
        plan.apply_with_subqueries(|p| {
            p.apply_expressions(|e| {
                e.apply(|e| {
                    if let Expr::ScalarFunction(f) = e {
                        let any = f.func.inner().as_any();
                        if any.is::<Guarded>() || any.is::<GuardedConcatOp>() {
                            sites += 1;
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        self.budget.sites.store(sites, Ordering::Relaxed);
        Ok(plan)
    }

    fn name(&self) -> &str {
        "guard_string_concat"
    }
}
