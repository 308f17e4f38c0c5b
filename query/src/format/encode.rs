//! Streamed encoders: each call returns the bytes to send next, so the HTTP body is written
//! while later batches are still being computed.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use parking_lot::Mutex;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::values::column_values;
use super::ResultFormat;
use crate::error::{QueryError, Result};

/// A `Write` whose bytes are taken out after each encoder call.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock())
    }
}

enum Kind {
    Ndjson,
    Csv,
    Arrow(StreamWriter<Sink>),
    Parquet(Option<ArrowWriter<Sink>>),
}

pub struct BatchEncoder {
    kind: Kind,
    schema: SchemaRef,
    sink: Sink,
}

fn err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Execution(format!("encoding the answer: {e}"))
}

/// Parquet row groups of the answer are flushed at this size (bounds the encoder's memory).
const PARQUET_FLUSH_BYTES: usize = 32 << 20;

impl BatchEncoder {
    /// `format` must be a streamed one (not JSON).
    pub fn new(format: ResultFormat, schema: SchemaRef) -> Result<Self> {
        // Arrow and Parquet answers carry plain `Utf8` strings, which every Arrow reader
        // understands (string views need a recent one).
        let schema = super::plain_strings(&schema);
        let sink = Sink::default();
        let kind = match format {
            ResultFormat::Ndjson => Kind::Ndjson,
            ResultFormat::Csv => Kind::Csv,
            ResultFormat::Arrow => {
                Kind::Arrow(StreamWriter::try_new(sink.clone(), &schema).map_err(err)?)
            }
            ResultFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(err)?))
                    .build();
                Kind::Parquet(Some(
                    ArrowWriter::try_new(sink.clone(), schema.clone(), Some(props)).map_err(err)?,
                ))
            }
            ResultFormat::Json => {
                return Err(QueryError::Execution(
                    "JSON is not a streamed format".into(),
                ))
            }
        };
        let enc = Self { kind, schema, sink };
        if matches!(enc.kind, Kind::Csv) {
            let header: Vec<String> = enc
                .schema
                .fields()
                .iter()
                .map(|f| csv_field(f.name()))
                .collect();
            enc.sink
                .0
                .lock()
                .extend_from_slice((header.join(",") + "\r\n").as_bytes());
        }
        Ok(enc)
    }

    /// Bytes written so far and not yet taken (e.g. the CSV header, the Arrow schema).
    pub fn pending(&mut self) -> Vec<u8> {
        self.sink.take()
    }

    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        match &mut self.kind {
            Kind::Ndjson => {
                let cols = values(batch)?;
                let mut out = Vec::with_capacity(batch.num_rows() * 64);
                for r in 0..batch.num_rows() {
                    let mut obj = serde_json::Map::with_capacity(cols.len());
                    for (f, c) in self.schema.fields().iter().zip(&cols) {
                        obj.insert(f.name().clone(), c[r].clone());
                    }
                    serde_json::to_writer(&mut out, &obj).map_err(err)?;
                    out.push(b'\n');
                }
                return Ok(out);
            }
            Kind::Csv => {
                let cols = values(batch)?;
                let mut out = String::with_capacity(batch.num_rows() * 64);
                for r in 0..batch.num_rows() {
                    for (i, c) in cols.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&csv_value(&c[r]));
                    }
                    out.push_str("\r\n");
                }
                return Ok(out.into_bytes());
            }
            Kind::Arrow(w) => w
                .write(&super::cast_to(batch, &self.schema)?)
                .map_err(err)?,
            Kind::Parquet(w) => {
                let w = w.as_mut().ok_or_else(|| err("writer already closed"))?;
                w.write(&super::cast_to(batch, &self.schema)?)
                    .map_err(err)?;
                if w.in_progress_size() > PARQUET_FLUSH_BYTES {
                    w.flush().map_err(err)?;
                }
            }
        }
        Ok(self.sink.take())
    }

    /// The closing bytes (Arrow end-of-stream marker, Parquet footer).
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        match &mut self.kind {
            Kind::Ndjson | Kind::Csv => {}
            Kind::Arrow(w) => w.finish().map_err(err)?,
            Kind::Parquet(w) => {
                if let Some(w) = w.take() {
                    w.close().map_err(err)?;
                }
            }
        }
        Ok(self.sink.take())
    }
}

fn values(batch: &RecordBatch) -> Result<Vec<Vec<Value>>> {
    batch
        .columns()
        .iter()
        .map(|c| column_values(c.as_ref()))
        .collect()
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Text of one CSV cell: NULL is empty, maps and lists are their JSON text.
fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => csv_field(s),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(_) | Value::Object(_) => csv_field(&v.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
            ],
        )
        .unwrap()
    }

    fn encode_all(f: ResultFormat) -> Vec<u8> {
        let b = batch();
        let mut e = BatchEncoder::new(f, b.schema()).unwrap();
        let mut out = e.pending();
        out.extend(e.encode(&b).unwrap());
        out.extend(e.encode(&b).unwrap());
        out.extend(e.finish().unwrap());
        out
    }

    #[test]
    fn csv_and_ndjson_text() {
        let csv = String::from_utf8(encode_all(ResultFormat::Csv)).unwrap();
        assert_eq!(
            csv,
            "name,x\r\n\"a,\"\"b\"\"\",1.5\r\n,\r\n\"a,\"\"b\"\"\",1.5\r\n,\r\n"
        );
        let nd = String::from_utf8(encode_all(ResultFormat::Ndjson)).unwrap();
        assert_eq!(
            nd,
            "{\"name\":\"a,\\\"b\\\"\",\"x\":1.5}\n{\"name\":null,\"x\":null}\n".repeat(2)
        );
    }

    #[test]
    fn arrow_and_parquet_round_trip() {
        let arrow_bytes = encode_all(ResultFormat::Arrow);
        let reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow_bytes), None)
                .unwrap();
        let got: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(got, vec![batch(), batch()]);
        let pq = bytes::Bytes::from(encode_all(ResultFormat::Parquet));
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(pq, 1024).unwrap();
        let got: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(
            arrow::compute::concat_batches(&batch().schema(), &got)
                .unwrap()
                .num_rows(),
            4
        );
    }
}
