//! Answer formats of `POST /api/analytics/query`: JSON (one document, capped), and the
//! streamed formats NDJSON, CSV, Arrow IPC stream and Parquet, encoded batch by batch so a
//! result of any size passes through in bounded memory.

mod encode;
mod json;
mod values;

pub use encode::BatchEncoder;
pub use json::JsonAnswer;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::error::{QueryError, Result};

/// The `"type"` of a column in the JSON answer. Strings are `Utf8` however they are held
/// in memory (views, large offsets): clients see one string type.
pub(crate) fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8.to_string(),
        t => t.to_string(),
    }
}

/// `schema` with top-level string views as plain `Utf8`.
pub(crate) fn plain_strings(schema: &Schema) -> SchemaRef {
    retype(schema, &DataType::Utf8View, &DataType::Utf8)
}

/// `schema` with every top-level field of type `from` changed to `to`.
pub(crate) fn retype(schema: &Schema, from: &DataType, to: &DataType) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            t if t == from => f.as_ref().clone().with_data_type(to.clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with its columns cast to `schema`'s types (same columns, same order).
pub(crate) fn cast_batch(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    cast_batch(batch, schema)
        .map_err(|e| QueryError::Execution(format!("encoding the answer: {e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    Json,
    Ndjson,
    Csv,
    Arrow,
    Parquet,
}

impl ResultFormat {
    pub const ALL: [ResultFormat; 5] = [
        ResultFormat::Json,
        ResultFormat::Ndjson,
        ResultFormat::Csv,
        ResultFormat::Arrow,
        ResultFormat::Parquet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ResultFormat::Json => "json",
            ResultFormat::Ndjson => "ndjson",
            ResultFormat::Csv => "csv",
            ResultFormat::Arrow => "arrow",
            ResultFormat::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Json => "application/json",
            ResultFormat::Ndjson => "application/x-ndjson",
            ResultFormat::Csv => "text/csv; charset=utf-8",
            ResultFormat::Arrow => "application/vnd.apache.arrow.stream",
            ResultFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The `"format"` field of a request.
    pub fn from_name(name: &str) -> Result<Self> {
        let n = name.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.name() == n || (n == "arrows" && *f == ResultFormat::Arrow))
            .ok_or_else(|| {
                QueryError::InvalidQuery(format!(
                    "unknown format {name:?}; one of json, ndjson, csv, arrow, parquet"
                ))
            })
    }

    /// The first media type of an `Accept` header that names a format (`None`: no preference,
    /// e.g. `*/*` or only unknown types).
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|part| {
            let mime = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match mime.as_str() {
                "application/json" => Some(ResultFormat::Json),
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                    Some(ResultFormat::Ndjson)
                }
                "text/csv" => Some(ResultFormat::Csv),
                "application/vnd.apache.arrow.stream" => Some(ResultFormat::Arrow),
                "application/vnd.apache.parquet" | "application/x-parquet" => {
                    Some(ResultFormat::Parquet)
                }
                _ => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_accept_headers() {
        for f in ResultFormat::ALL {
            assert_eq!(ResultFormat::from_name(f.name()).ok(), Some(f));
            let ct = f.content_type();
            assert_eq!(ResultFormat::from_accept(ct), Some(f), "{ct}");
        }
        assert!(ResultFormat::from_name("xml").is_err());
        assert_eq!(
            ResultFormat::from_accept("text/html, text/csv;q=0.9, */*;q=0.1"),
            Some(ResultFormat::Csv)
        );
        assert_eq!(ResultFormat::from_accept("*/*"), None);
    }
}

/// `batches` as JSON objects keyed by column name (small answers: dashboards, reports).
pub fn to_objects(
    batches: &[RecordBatch],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut out = Vec::new();
    for b in batches {
        let cols = b
            .columns()
            .iter()
            .map(|c| values::column_values(c.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        for r in 0..b.num_rows() {
            out.push(
                b.schema()
                    .fields()
                    .iter()
                    .zip(&cols)
                    .map(|(f, c)| (f.name().clone(), c[r].clone()))
                    .collect(),
            );
        }
    }
    Ok(out)
}
