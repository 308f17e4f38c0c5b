//! The JSON answer `{"columns":[…],"rows":[[…]],"row_count":N,"elapsed_ms":…}`, written row
//! by row into one buffer that may not exceed `max_rows` rows or `max_bytes` bytes: a result
//! larger than that is refused (ask for a LIMIT or a streamed format) rather than held.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use serde::Serialize;

use super::values::column_values;
use crate::error::{QueryError, Result};

#[derive(Serialize)]
struct Column<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    data_type: String,
}

pub struct JsonAnswer {
    buf: Vec<u8>,
    rows: usize,
    max_rows: usize,
    max_bytes: usize,
}

fn too_large(what: String) -> QueryError {
    QueryError::ResourcesExhausted(format!(
        "{what}; add a LIMIT or ask for a streamed format (\"format\": \"ndjson\", \"csv\", \"arrow\" or \"parquet\")"
    ))
}

impl JsonAnswer {
    pub fn new(schema: &Schema, max_rows: usize, max_bytes: usize) -> Result<Self> {
        let columns: Vec<Column<'_>> = schema
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name(),
                data_type: super::type_name(f.data_type()),
            })
            .collect();
        let mut buf = b"{\"columns\":".to_vec();
        serde_json::to_writer(&mut buf, &columns)
            .map_err(|e| QueryError::Execution(e.to_string()))?;
        buf.extend_from_slice(b",\"rows\":[");
        Ok(Self {
            buf,
            rows: 0,
            max_rows,
            max_bytes,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.rows + batch.num_rows() > self.max_rows {
            return Err(too_large(format!(
                "the result has more than query.max_result_rows = {} rows",
                self.max_rows
            )));
        }
        let cols = batch
            .columns()
            .iter()
            .map(|c| column_values(c.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        for r in 0..batch.num_rows() {
            if self.rows > 0 {
                self.buf.push(b',');
            }
            let row: Vec<&serde_json::Value> = cols.iter().map(|c| &c[r]).collect();
            serde_json::to_writer(&mut self.buf, &row)
                .map_err(|e| QueryError::Execution(e.to_string()))?;
            self.rows += 1;
        }
        if self.buf.len() > self.max_bytes {
            return Err(too_large(format!(
                "the JSON answer is larger than query.max_result_bytes = {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Closes the document.
    pub fn finish(mut self, elapsed_ms: f64) -> Vec<u8> {
        let tail = format!(
            "],\"row_count\":{},\"elapsed_ms\":{}}}",
            self.rows,
            serde_json::Number::from_f64(elapsed_ms).map_or("0".into(), |n| n.to_string())
        );
        self.buf.extend_from_slice(tail.as_bytes());
        self.buf
    }
}
