//! Body → JSON values: one object, a JSON array, or NDJSON (several values separated by
//! whitespace/newlines), optionally gzip-compressed.

use crate::kind::Kind;
use std::io::Read;

use serde_json::Value;

use crate::config::IngestLimits;

/// A request-level problem: the whole body is refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("malformed gzip body: {0}")]
    BadGzip(String),
    #[error("unsupported Content-Encoding {0:?} (use gzip or none)")]
    UnsupportedEncoding(String),
    #[error("the body holds {got} events; at most {limit} are allowed per request")]
    TooManyEvents { got: usize, limit: usize },
    #[error("the body holds no events")]
    Empty,
    #[error("the body must be a JSON object, an array of objects, or NDJSON; got {0}")]
    WrongShape(&'static str),
}

impl BodyError {
    pub fn kind(&self) -> Kind {
        match self {
            BodyError::TooLarge { .. } => Kind::TooLarge,
            BodyError::UnsupportedEncoding(_) => Kind::UnsupportedEncoding,
            _ => Kind::InvalidInput,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge { .. } => "body_too_large",
            BodyError::MalformedJson(_) => "malformed_json",
            BodyError::BadGzip(_) => "malformed_gzip",
            BodyError::UnsupportedEncoding(_) => "unsupported_encoding",
            BodyError::TooManyEvents { .. } => "too_many_events",
            BodyError::Empty => "empty_body",
            BodyError::WrongShape(_) => "wrong_shape",
        }
    }
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| BodyError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes the body into one JSON value per event (elements are not yet validated).
pub fn decode_body(
    body: &[u8],
    _content_type: Option<&str>,
    content_encoding: Option<&str>,
    limits: &IngestLimits,
) -> Result<Vec<Value>, BodyError> {
    if body.len() > limits.max_body_bytes {
        return Err(BodyError::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let owned;
    let bytes: &[u8] = match content_encoding.map(|s| s.trim().to_ascii_lowercase()) {
        None => body,
        Some(e) if e.is_empty() || e == "identity" => body,
        Some(e) if e == "gzip" || e == "x-gzip" => {
            owned = gunzip(body, limits.max_decompressed_bytes)?;
            &owned
        }
        Some(e) => return Err(BodyError::UnsupportedEncoding(e)),
    };
    let mut values = Vec::new();
    for v in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        let v = v.map_err(|e| BodyError::MalformedJson(e.to_string()))?;
        values.push(v);
        if values.len() > limits.max_batch_events {
            return Err(BodyError::TooManyEvents {
                got: values.len(),
                limit: limits.max_batch_events,
            });
        }
    }
    let events = match values.len() {
        0 => return Err(BodyError::Empty),
        1 => match values.pop() {
            Some(Value::Array(items)) => items,
            Some(v @ Value::Object(_)) => vec![v],
            Some(other) => return Err(BodyError::WrongShape(kind(&other))),
            None => return Err(BodyError::Empty),
        },
        // NDJSON: every line is one event; a non-object line is rejected per event.
        _ => values,
    };
    if events.is_empty() {
        return Err(BodyError::Empty);
    }
    if events.len() > limits.max_batch_events {
        return Err(BodyError::TooManyEvents {
            got: events.len(),
            limit: limits.max_batch_events,
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> IngestLimits {
        IngestLimits {
            max_batch_events: 3,
            ..IngestLimits::default()
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(
            decode_body(br#"{"a":1}"#, None, None, &l()).unwrap().len(),
            1
        );
        assert_eq!(
            decode_body(br#"[{"a":1},{"a":2}]"#, None, None, &l())
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            decode_body(b"{\"a\":1}\n{\"a\":2}\n", None, None, &l())
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            decode_body(b"[]", None, None, &l()),
            Err(BodyError::Empty)
        ));
        assert!(matches!(
            decode_body(b"  ", None, None, &l()),
            Err(BodyError::Empty)
        ));
        assert!(matches!(
            decode_body(b"5", None, None, &l()),
            Err(BodyError::WrongShape(_))
        ));
        assert!(matches!(
            decode_body(b"{\"a\":", None, None, &l()),
            Err(BodyError::MalformedJson(_))
        ));
        assert!(matches!(
            decode_body(b"[{},{},{},{}]", None, None, &l()),
            Err(BodyError::TooManyEvents { .. })
        ));
    }

    #[test]
    fn gzip_and_bombs() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(br#"[{"a":1}]"#).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode_body(&gz, None, Some("gzip"), &l()).unwrap().len(), 1);
        assert!(matches!(
            decode_body(b"nope", None, Some("gzip"), &l()),
            Err(BodyError::BadGzip(_))
        ));
        assert!(matches!(
            decode_body(b"{}", None, Some("br"), &l()),
            Err(BodyError::UnsupportedEncoding(_))
        ));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 64 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(matches!(
            decode_body(&bomb, None, Some("gzip"), &l()),
            Err(BodyError::TooLarge { .. })
        ));
    }
}
