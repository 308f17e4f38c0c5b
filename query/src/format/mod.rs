//! Answer formats of `POST /api/analytics/query`: JSON (one document, capped), and the
//! streamed formats NDJSON, CSV, Arrow IPC stream and Parquet, encoded batch by batch so a
//! result of any size passes through in bounded memory.

mod encode;
mod json;
mod values;

pub use encode::BatchEncoder;
pub use json::JsonAnswer;

use crate::error::{QueryError, Result};

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
