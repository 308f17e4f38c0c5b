//! Arrow → JSON values, shared by the JSON, NDJSON and CSV answers.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, *};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

use crate::error::{QueryError, Result};

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

macro_rules! prim {
    ($arr:expr, $t:ty, $conv:expr) => {{
        let a = $arr.as_primitive::<$t>();
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    Value::Null
                } else {
                    $conv(a.value(i))
                }
            })
            .collect()
    }};
}

/// One JSON string (or null) per row of a text column.
fn text<'a>(arr: &'a dyn Array, value: impl Fn(usize) -> &'a str) -> Vec<Value> {
    (0..arr.len())
        .map(|i| {
            if arr.is_null(i) {
                Value::Null
            } else {
                Value::String(value(i).to_string())
            }
        })
        .collect()
}

pub(crate) fn column_values(arr: &dyn Array) -> Result<Vec<Value>> {
    let n = arr.len();
    Ok(match arr.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let a = arr.as_boolean();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Bool(a.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => prim!(arr, Int8Type, |v: i8| Value::from(v)),
        DataType::Int16 => prim!(arr, Int16Type, |v: i16| Value::from(v)),
        DataType::Int32 => prim!(arr, Int32Type, |v: i32| Value::from(v)),
        DataType::Int64 => prim!(arr, Int64Type, |v: i64| Value::from(v)),
        DataType::UInt8 => prim!(arr, UInt8Type, |v: u8| Value::from(v)),
        DataType::UInt16 => prim!(arr, UInt16Type, |v: u16| Value::from(v)),
        DataType::UInt32 => prim!(arr, UInt32Type, |v: u32| Value::from(v)),
        DataType::UInt64 => prim!(arr, UInt64Type, |v: u64| Value::from(v)),
        DataType::Float32 => prim!(arr, Float32Type, |v: f32| float(v as f64)),
        DataType::Float64 => prim!(arr, Float64Type, float),
        DataType::Utf8 => text(arr, |i| arr.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => text(arr, |i| arr.as_string::<i64>().value(i)),
        DataType::Utf8View => text(arr, |i| arr.as_string_view().value(i)),
        DataType::Map(_, _) => {
            let m = arr.as_map();
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                if m.is_null(i) {
                    out.push(Value::Null);
                    continue;
                }
                let entries = m.value(i);
                let keys = column_values(entries.column(0).as_ref())?;
                let vals = column_values(entries.column(1).as_ref())?;
                let mut obj = Map::new();
                for (k, v) in keys.into_iter().zip(vals) {
                    let key = match k {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    obj.insert(key, v);
                }
                out.push(Value::Object(obj));
            }
            out
        }
        _ => {
            // Timestamps, dates, decimals, lists, structs: their canonical text form.
            let opts = FormatOptions::default().with_null("");
            let f = ArrayFormatter::try_new(arr, &opts)
                .map_err(|e| QueryError::Execution(e.to_string()))?;
            (0..n)
                .map(|i| {
                    if arr.is_null(i) {
                        Value::Null
                    } else {
                        Value::String(f.value(i).to_string())
                    }
                })
                .collect()
        }
    })
}
