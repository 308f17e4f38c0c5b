//! The process's log on standard error: text for a terminal, or one JSON object a line
//! (`log.format = "json"`) for Loki, Elasticsearch or journald pipelines.
//!
//! A JSON line carries `time` (RFC 3339, UTC), `level`, `target`, `message`, `node_id`, the
//! fields of the spans it was logged in (a request's `request_id`, `method`, `route`) and the
//! event's own fields (a finished request's `status`, `latency_ms`, `user`, `app`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `[log]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// Levels per target, `tracing`'s filter syntax; `UNMOGROWP_LOG` overrides it.
    pub level: String,
    /// Which finished requests get a line: `errors` (4xx, 5xx and requests slower than
    /// `slow_request_ms`), `all`, or `none`.
    pub requests: RequestLog,
    pub slow_request_ms: u64,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info,openraft=warn".into(),
            requests: RequestLog::Errors,
            slow_request_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestLog {
    Errors,
    All,
    None,
}

impl LogSettings {
    /// Whether a finished request gets a log line.
    pub fn logs_request(&self, status: u16, latency_ms: u64) -> bool {
        match self.requests {
            RequestLog::All => true,
            RequestLog::None => false,
            RequestLog::Errors => status >= 400 || latency_ms >= self.slow_request_ms,
        }
    }
}

/// Installs the process-wide subscriber (once, from `main`). `UNMOGROWP_LOG`, when set,
/// replaces `log.level`.
pub fn init(cfg: &LogSettings, node_id: u64, env_level: Option<String>) {
    let filter = EnvFilter::new(env_level.unwrap_or_else(|| cfg.level.clone()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine { node_id })
            .try_init(),
    };
}

/// One JSON object per event.
pub struct JsonLine {
    pub node_id: u64,
}

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "time".into(),
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("node_id".into(), self.node_id.into());
        // Span fields, outermost first, so an inner span's field wins.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<JsonFields>>() {
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(fields) {
                        line.extend(m);
                    }
                }
            }
        }
        event.record(&mut Fields(&mut line));
        line.entry("message").or_insert_with(|| "".into());
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields into the line (`message` included).
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name().into(), v.into());
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.0.insert(f.name().into(), v.to_string().into());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.insert(f.name().into(), format!("{v:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_slow_requests_are_logged_by_default() {
        let s = LogSettings::default();
        assert!(!s.logs_request(200, 3));
        assert!(s.logs_request(404, 3));
        assert!(s.logs_request(503, 3));
        assert!(s.logs_request(200, 1_500));
        let all = LogSettings {
            requests: RequestLog::All,
            ..LogSettings::default()
        };
        assert!(all.logs_request(200, 1));
    }
}
