//! ClickHouse over its HTTP interface, `INSERT … FORMAT JSONEachRow` in bulk.
//!
//! No duplicate is ever visible to a plain `count()`, by two rules:
//! - a batch that may already be (partly) in the table (`maybe_sent`: a retry, a new runner's
//!   first batch, a replay) first asks which of its `(app_id, event_id)`s the table holds for
//!   its log range and inserts only the others — exactly one node runs a mirror at a time;
//! - on the modern schema every insert also carries `insert_deduplication_token` (mirror,
//!   generation, range, month) into a MergeTree with `non_replicated_deduplication_window`,
//!   so the same insert arriving twice (a timeout whose first try landed) is dropped by
//!   ClickHouse itself. Each insert holds one month (one partition), as that requires.
//!
//! Legacy schema (servers before `DateTime64` and `Map`, e.g. Debian's 18.16): `DateTime` plus
//! the milliseconds in `timestamp_ms`, and the maps as `Nested(key, value)`; only the first
//! rule applies there.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use super::{SinkBatch, SinkErasure};
use crate::error::MirrorError;
use crate::row::{MirrorRow, Pairs};
use crate::spec::{ChSchema, MirrorSpec};

pub struct ChSink {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port/` with the URL's own parameters (database, …), without credentials.
    base: url::Url,
    auth: Option<String>,
    table: String,
    schema: ChSchema,
}

fn modern_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            timestamp DateTime64(3, 'UTC'),
            app_id String,
            event_type String,
            user_id String,
            session_id String,
            device_id String,
            platform String,
            attribution Map(String, String),
            event_data Map(String, String),
            ip String,
            user_agent String,
            created_at DateTime DEFAULT now(),
            event_id String,
            log_index UInt64
        ) ENGINE = MergeTree()
        PARTITION BY toYYYYMM(timestamp)
        ORDER BY (app_id, event_type, timestamp)
        SETTINGS non_replicated_deduplication_window = 10000"
    )
}

fn legacy_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            timestamp DateTime('UTC'),
            timestamp_ms Int64,
            app_id String,
            event_type String,
            user_id String,
            session_id String,
            device_id String,
            platform String,
            attribution Nested(key String, value String),
            event_data Nested(key String, value String),
            ip String,
            user_agent String,
            created_at DateTime DEFAULT now(),
            event_id String,
            log_index UInt64
        ) ENGINE = MergeTree()
        PARTITION BY toYYYYMM(timestamp)
        ORDER BY (app_id, event_type, timestamp)"
    )
}

/// Columns the mirror writes and the type each must have, per schema.
fn expected(schema: ChSchema) -> &'static [(&'static str, &'static str)] {
    match schema {
        ChSchema::Modern => &[
            ("timestamp", "DateTime64(3, 'UTC')"),
            ("app_id", "String"),
            ("event_type", "String"),
            ("user_id", "String"),
            ("session_id", "String"),
            ("device_id", "String"),
            ("platform", "String"),
            ("attribution", "Map(String, String)"),
            ("event_data", "Map(String, String)"),
            ("ip", "String"),
            ("user_agent", "String"),
            ("event_id", "String"),
            ("log_index", "UInt64"),
        ],
        ChSchema::Legacy => &[
            ("timestamp", "DateTime('UTC')"),
            ("timestamp_ms", "Int64"),
            ("app_id", "String"),
            ("event_type", "String"),
            ("user_id", "String"),
            ("session_id", "String"),
            ("device_id", "String"),
            ("platform", "String"),
            ("attribution.key", "Array(String)"),
            ("attribution.value", "Array(String)"),
            ("event_data.key", "Array(String)"),
            ("event_data.value", "Array(String)"),
            ("ip", "String"),
            ("user_agent", "String"),
            ("event_id", "String"),
            ("log_index", "UInt64"),
        ],
    }
}

/// `event_data` as ClickHouse receives it: the stored map plus `revenue`, `currency` and
/// `app_version` when the event had them and the map does not (the seed's views read
/// `event_data['revenue']`). Borrowed unless something is added.
fn event_data(r: &MirrorRow) -> Cow<'_, [(String, String)]> {
    let has = |k: &str| r.event_data.iter().any(|(x, _)| x == k);
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(v) = r.revenue.filter(|v| v.is_finite()) {
        if !has("revenue") {
            extra.push(("revenue".into(), v.to_string()));
        }
    }
    for (k, v) in [("currency", &r.currency), ("app_version", &r.app_version)] {
        if let Some(v) = v {
            if !has(k) {
                extra.push((k.into(), v.clone()));
            }
        }
    }
    if extra.is_empty() {
        Cow::Borrowed(&r.event_data)
    } else {
        let mut d = r.event_data.clone();
        d.extend(extra);
        Cow::Owned(d)
    }
}

/// A TabSeparated field as the value it escapes.
fn tsv_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// `YYYY-MM-DD hh:mm:ss[.mmm]` in UTC, which every ClickHouse version parses.
fn ch_time(ms: i64, millis: bool) -> String {
    let fmt = if millis {
        "%Y-%m-%d %H:%M:%S%.3f"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(fmt).to_string())
        .unwrap_or_default()
}

fn month(ms: i64) -> u32 {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y%m").to_string().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// A row of the modern schema, as JSONEachRow.
#[derive(Serialize)]
struct ModernRow<'a> {
    timestamp: String,
    app_id: &'a str,
    event_type: &'a str,
    user_id: &'a str,
    session_id: &'a str,
    device_id: &'a str,
    platform: &'a str,
    attribution: Pairs<'a>,
    event_data: Pairs<'a>,
    ip: &'a str,
    user_agent: &'a str,
    event_id: &'a str,
    log_index: u64,
}

/// A row of the legacy schema (`Nested` maps as parallel arrays).
#[derive(Serialize)]
struct LegacyRow<'a> {
    timestamp: String,
    timestamp_ms: i64,
    app_id: &'a str,
    event_type: &'a str,
    user_id: &'a str,
    session_id: &'a str,
    device_id: &'a str,
    platform: &'a str,
    #[serde(rename = "attribution.key")]
    attribution_key: Vec<&'a str>,
    #[serde(rename = "attribution.value")]
    attribution_value: Vec<&'a str>,
    #[serde(rename = "event_data.key")]
    event_data_key: Vec<&'a str>,
    #[serde(rename = "event_data.value")]
    event_data_value: Vec<&'a str>,
    ip: &'a str,
    user_agent: &'a str,
    event_id: &'a str,
    log_index: u64,
}

fn or_empty(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

fn unzip(p: &[(String, String)]) -> (Vec<&str>, Vec<&str>) {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).unzip()
}

fn encode(out: &mut Vec<u8>, r: &MirrorRow, schema: ChSchema) {
    let s = or_empty;
    let data = event_data(r);
    let res = match schema {
        ChSchema::Modern => serde_json::to_writer(
            &mut *out,
            &ModernRow {
                timestamp: ch_time(r.timestamp_ms, true),
                app_id: &r.app_id,
                event_type: &r.event_type,
                user_id: s(&r.user_id),
                session_id: s(&r.session_id),
                device_id: &r.device_id,
                platform: &r.platform,
                attribution: Pairs(&r.attribution),
                event_data: Pairs(&data),
                ip: s(&r.ip),
                user_agent: s(&r.user_agent),
                event_id: &r.event_id,
                log_index: r.log_index,
            },
        ),
        ChSchema::Legacy => {
            let (attribution_key, attribution_value) = unzip(&r.attribution);
            let (event_data_key, event_data_value) = unzip(&data);
            serde_json::to_writer(
                &mut *out,
                &LegacyRow {
                    timestamp: ch_time(r.timestamp_ms, false),
                    timestamp_ms: r.timestamp_ms,
                    app_id: &r.app_id,
                    event_type: &r.event_type,
                    user_id: s(&r.user_id),
                    session_id: s(&r.session_id),
                    device_id: &r.device_id,
                    platform: &r.platform,
                    attribution_key,
                    attribution_value,
                    event_data_key,
                    event_data_value,
                    ip: s(&r.ip),
                    user_agent: s(&r.user_agent),
                    event_id: &r.event_id,
                    log_index: r.log_index,
                },
            )
        }
    };
    // Serializing strings and numbers into a Vec cannot fail.
    debug_assert!(res.is_ok());
    out.push(b'\n');
}

impl ChSink {
    pub async fn connect(spec: &MirrorSpec) -> Result<Self, MirrorError> {
        let mut base = url::Url::parse(spec.url.expose())
            .map_err(|e| MirrorError::Config(format!("url: {e}")))?;
        let auth = if base.username().is_empty() {
            None
        } else {
            use base64::Engine;
            let pair = format!("{}:{}", base.username(), base.password().unwrap_or(""));
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        };
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let http = Client::builder(TokioExecutor::new()).build_http();
        let sink = Self {
            http,
            base,
            auth,
            table: spec.table.clone(),
            schema: spec.schema,
        };
        let ddl = match spec.schema {
            ChSchema::Modern => modern_ddl(&spec.table),
            ChSchema::Legacy => legacy_ddl(&spec.table),
        };
        sink.post(&[], Bytes::from(ddl))
            .await
            .map_err(|e| MirrorError::Sink(format!("creating table {}: {e}", spec.table)))?;
        sink.check_columns().await?;
        Ok(sink)
    }

    async fn post(&self, params: &[(&str, &str)], body: Bytes) -> Result<Bytes, MirrorError> {
        let mut u = self.base.clone();
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(u.as_str())
            .header(hyper::header::CONTENT_LENGTH, body.len());
        if let Some(a) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| MirrorError::Sink(e.to_string()))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(60), self.http.request(req))
            .await
            .map_err(|_| MirrorError::Sink("ClickHouse did not answer within 60 s".into()))?
            .map_err(|e| MirrorError::Sink(format!("ClickHouse unreachable: {e}")))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| MirrorError::Sink(format!("reading ClickHouse's answer: {e}")))?
            .to_bytes();
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(500)
                .collect::<String>();
            return Err(MirrorError::Sink(format!(
                "ClickHouse answered {status}: {first}"
            )));
        }
        Ok(body)
    }

    async fn check_columns(&self) -> Result<(), MirrorError> {
        let (db, name) = match self.table.split_once('.') {
            Some((d, t)) => (format!("'{d}'"), t.to_string()),
            None => ("currentDatabase()".to_string(), self.table.clone()),
        };
        let q = format!(
            "SELECT name, type FROM system.columns WHERE database = {db} AND table = '{name}' \
             FORMAT TabSeparated"
        );
        let body = self.post(&[], Bytes::from(q)).await?;
        let text = String::from_utf8_lossy(&body);
        let have: std::collections::HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(n, t)| (tsv_unescape(n), tsv_unescape(t)))
            .collect();
        let norm = |t: &str| t.replace(' ', "");
        let mut wrong = Vec::new();
        for (c, ty) in expected(self.schema) {
            match have.get(*c) {
                None => wrong.push(format!("{c} is missing")),
                Some(t) if norm(t) != norm(ty) => wrong.push(format!("{c} is {t}, expected {ty}")),
                Some(_) => {}
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(MirrorError::Schema(format!(
                "table {} does not match what the mirror writes: {}",
                self.table,
                wrong.join("; ")
            )))
        }
    }

    /// `(app_id, event_id)`s of the log range already in the table.
    async fn present(&self, b: &SinkBatch<'_>) -> Result<HashSet<(String, String)>, MirrorError> {
        let q = format!(
            "SELECT app_id, event_id FROM {} WHERE log_index >= {} AND log_index <= {} \
             FORMAT TabSeparated",
            self.table, b.from, b.to
        );
        let body = self.post(&[], Bytes::from(q)).await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(a, e)| (tsv_unescape(a), tsv_unescape(e)))
            .collect())
    }

    /// Deletes the erasure's rows with a mutation (`ALTER TABLE … DELETE`, which every
    /// ClickHouse since 18.x has) and waits until ClickHouse reports it done: only then are
    /// the rows gone from the table's parts.
    pub async fn erase(&mut self, e: &SinkErasure<'_>) -> Result<(), MirrorError> {
        let ident = |col: &str, v: &[String]| {
            if v.is_empty() {
                return "0".to_string();
            }
            let list: Vec<String> = v.iter().map(|x| ch_string(x)).collect();
            format!("{col} IN ({})", list.join(", "))
        };
        let q = format!(
            "ALTER TABLE {} DELETE WHERE app_id = {} AND log_index < {} AND ({} OR {})",
            self.table,
            ch_string(e.app_id),
            e.before_index,
            ident("user_id", e.user_ids),
            ident("device_id", e.device_ids),
        );
        self.post(&[], Bytes::from(q)).await?;
        let (db, name) = match self.table.split_once('.') {
            Some((d, t)) => (ch_string(d), t.to_string()),
            None => ("currentDatabase()".to_string(), self.table.clone()),
        };
        let q = format!(
            "SELECT count() FROM system.mutations WHERE database = {db} AND table = {} \
             AND is_done = 0 FORMAT TabSeparated",
            ch_string(&name)
        );
        let t0 = std::time::Instant::now();
        loop {
            let body = self.post(&[], Bytes::from(q.clone())).await?;
            if String::from_utf8_lossy(&body).trim() == "0" {
                return Ok(());
            }
            if t0.elapsed() > std::time::Duration::from_secs(300) {
                return Err(MirrorError::Sink(
                    "the erasure's mutation is not done after 300 s".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub async fn write(&mut self, b: &SinkBatch<'_>) -> Result<(), MirrorError> {
        let present = if b.maybe_sent {
            self.present(b).await?
        } else {
            HashSet::new()
        };
        // One insert per month: ClickHouse deduplicates an insert as a whole only within
        // one partition.
        let mut by_month: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for r in b.rows {
            if !present.is_empty() && present.contains(&(r.app_id.clone(), r.event_id.clone())) {
                continue;
            }
            encode(
                by_month.entry(month(r.timestamp_ms)).or_default(),
                r,
                self.schema,
            );
        }
        let insert = format!("INSERT INTO {} FORMAT JSONEachRow", self.table);
        for (m, body) in by_month {
            let token = format!("{}-{}-{}-{}-{m}", b.mirror, b.generation, b.from, b.to);
            let mut params = vec![("query", insert.as_str())];
            if self.schema == ChSchema::Modern {
                params.push(("insert_deduplication_token", token.as_str()));
            }
            self.post(&params, Bytes::from(body)).await?;
        }
        Ok(())
    }
}

/// `v` as a ClickHouse string literal.
fn ch_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
