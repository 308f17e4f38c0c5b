//! `events` as analysts know it from the old ClickHouse schema: every stored column plus
//! `created_at` (when the appliance received the event) and `attribution`, a
//! `Map(String, String)` holding the attribution fields that are set (`campaign`, `source`,
//! `medium`, `content`, `term`), so `attribution['campaign']` works as it did, followed by
//! the other attribution keys an SDK sent (click and ad ids: `attribution['gclid']`), which
//! ingest keeps in `event_data` under `$attribution.`.

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

/// Prefix of the other attribution keys in `event_data` (see the ingest validator).
const EXTRA_PREFIX: &str = "$attribution.";

fn map_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        .finish()
        .data_type()
        .clone()
}

/// `attribution_map(campaign, source, medium, content, term, event_data)`: the set fields and
/// the `$attribution.*` entries of `event_data` as one map.
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
        let strings: Vec<_> = cols[..ATTRIBUTION.len()]
            .iter()
            .map(|c| c.as_string::<i32>())
            .collect();
        let data = cols.get(ATTRIBUTION.len()).map(|c| c.as_map());
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for row in 0..n {
            for (key, values) in ATTRIBUTION.iter().zip(&strings) {
                if values.is_valid(row) {
                    b.keys().append_value(key);
                    b.values().append_value(values.value(row));
                }
            }
            if let Some(m) = data.filter(|m| m.is_valid(row)) {
                let entries = m.value(row);
                let keys = entries.column(0).as_string::<i32>();
                let values = entries.column(1).as_string::<i32>();
                for i in 0..entries.len() {
                    if let Some(k) = keys.value(i).strip_prefix(EXTRA_PREFIX) {
                        if values.is_valid(i) {
                            b.keys().append_value(k);
                            b.values().append_value(values.value(i));
                        }
                    }
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
        signature: Signature::any(ATTRIBUTION.len() + 1, Volatility::Immutable),
    });
    let mut fields: Vec<Expr> = ATTRIBUTION
        .iter()
        .map(|k| col(format!("attribution_{k}")))
        .collect();
    fields.push(col("event_data"));
    exprs.push(udf.call(fields).alias("attribution"));
    let plan = LogicalPlanBuilder::scan("events", provider_as_source(base), None)?
        .project(exprs)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
