//! ClickHouse's quantiles, which DataFusion has no equivalent for: `quantile` (interpolated,
//! what ClickHouse's `quantile` gives on the sizes it keeps exactly) and `quantile_exact`
//! (`quantileExact`: the element at `floor(level * n)`).
//! `quantile(level)(x)` is rewritten to `quantile(x, level)` (see `rewrite.rs`).

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

/// `quantile(x, level)` (interpolated) and `quantile_exact(x, level)` over numbers; NULLs are
/// skipped, no rows give NULL. Keeps every value (exact, O(n) memory per group).
#[derive(Debug)]
pub(crate) struct Quantile {
    name: &'static str,
    interpolate: bool,
    signature: Signature,
}

impl Quantile {
    pub(crate) fn new(interpolate: bool) -> Self {
        Self {
            name: if interpolate {
                "quantile"
            } else {
                "quantile_exact"
            },
            interpolate,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for Quantile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 2 || !args.iter().all(|t| t.is_numeric() || t.is_null()) {
            return plan_err!(
                "{}(x, level) takes a number and a level in [0, 1]; ClickHouse form: quantile(level)(x)",
                self.name
            );
        }
        Ok(vec![DataType::Float64, DataType::Float64])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, _args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new_list_field(DataType::Float64, true));
        Ok(vec![
            Arc::new(Field::new("values", DataType::List(item), true)),
            Arc::new(Field::new("level", DataType::Float64, true)),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(QuantileAcc {
            interpolate: self.interpolate,
            values: Vec::new(),
            level: None,
        }))
    }
}

#[derive(Debug)]
struct QuantileAcc {
    interpolate: bool,
    values: Vec<f64>,
    level: Option<f64>,
}

impl QuantileAcc {
    fn set_level(&mut self, levels: &Float64Array) -> Result<()> {
        if let Some(l) = levels.iter().flatten().next() {
            if !(0.0..=1.0).contains(&l) {
                return exec_err!("quantile level {l} is outside [0, 1]");
            }
            self.level.get_or_insert(l);
        }
        Ok(())
    }
}

impl Accumulator for QuantileAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.set_level(values[1].as_primitive::<Float64Type>())?;
        self.values
            .extend(values[0].as_primitive::<Float64Type>().iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.set_level(states[1].as_primitive::<Float64Type>())?;
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                let v = lists.value(i);
                self.values
                    .extend(v.as_primitive::<Float64Type>().iter().flatten());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // One list of every value kept, built as one array (not a scalar per value).
        let values = Float64Array::from(std::mem::take(&mut self.values));
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            OffsetBuffer::from_lengths([values.len()]),
            Arc::new(values),
            None,
        );
        Ok(vec![
            ScalarValue::List(Arc::new(list)),
            ScalarValue::Float64(self.level),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (Some(level), false) = (self.level, self.values.is_empty()) else {
            return Ok(ScalarValue::Float64(None));
        };
        // The one or two order statistics needed, found by selection (linear) rather than
        // by sorting every value.
        let n = self.values.len();
        let v = if self.interpolate {
            let pos = level * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let frac = pos - lo as f64;
            let (_, low, above) = self.values.select_nth_unstable_by(lo, f64::total_cmp);
            let low = *low;
            let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
            low + (high - low) * frac
        } else {
            let k = ((level * n as f64) as usize).min(n - 1);
            *self.values.select_nth_unstable_by(k, f64::total_cmp).1
        };
        Ok(ScalarValue::Float64(Some(v)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }
}
