//! `events` as analysts know it from the old ClickHouse schema: every stored column plus
//! `created_at` (when the appliance received the event) and `attribution`, a
//! `Map(String, String)` holding the attribution fields that are set (`campaign`, `source`,
//! `medium`, `content`, `term`), so `attribution['campaign']` works as it did.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, MapBuilder, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::logical_expr::{
    col, ColumnarValue, Expr, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

/// The attribution fields, as map keys and as stored `attribution_<key>` columns.
const ATTRIBUTION: [&str; 5] = ["campaign", "source", "medium", "content", "term"];

fn map_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        .finish()
        .data_type()
        .clone()
}

/// `attribution_map(campaign, source, medium, content, term)`: the set fields as a map.
#[derive(Debug)]
struct AttributionMap {
    signature: Signature,
}

impl ScalarUDFImpl for AttributionMap {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "attribution_map"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(map_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let cols: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let strings: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for row in 0..n {
            for (key, values) in ATTRIBUTION.iter().zip(&strings) {
                if values.is_valid(row) {
                    b.keys().append_value(key);
                    b.values().append_value(values.value(row));
                }
            }
            b.append(true)?;
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

/// `events` over the stored table `base`.
pub(crate) fn events_view(base: Arc<dyn TableProvider>) -> Result<Arc<ViewTable>> {
    let schema = base.schema();
    let mut exprs: Vec<Expr> = schema.fields().iter().map(|f| col(f.name())).collect();
    exprs.push(col("received_at").alias("created_at"));
    let udf = ScalarUDF::from(AttributionMap {
        signature: Signature::exact(
            vec![DataType::Utf8; ATTRIBUTION.len()],
            Volatility::Immutable,
        ),
    });
    let fields: Vec<Expr> = ATTRIBUTION
        .iter()
        .map(|k| col(format!("attribution_{k}")))
        .collect();
    exprs.push(udf.call(fields).alias("attribution"));
    let plan = LogicalPlanBuilder::scan("events", provider_as_source(base), None)?
        .project(exprs)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
