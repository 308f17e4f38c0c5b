//! A mirror as the operator configured it (`[[mirror]]`), checked: a bad entry becomes a
//! [`SpecError`] the mirror reports, never a node that does not start.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// Which system a mirror writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Postgres,
    ClickHouse,
    Kafka,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Postgres => "postgres",
            SinkKind::ClickHouse => "clickhouse",
            SinkKind::Kafka => "kafka",
        }
    }
}

/// ClickHouse table layout: the seed's (`DateTime64(3)`, `Map`) or one servers older than
/// 21.x accept (see compat/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChSchema {
    Modern,
    Legacy,
}

/// A sink address that never prints its password.
#[derive(Clone, PartialEq, Eq)]
pub struct SinkUrl {
    raw: String,
    password: Option<String>,
}

impl SinkUrl {
    pub fn new(raw: &str) -> Self {
        let password = url::Url::parse(raw)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
            .filter(|p| !p.is_empty());
        Self {
            raw: raw.to_string(),
            password,
        }
    }

    /// The address with its secret (for the client only).
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// `text` with the password replaced, for anything a person or a log may read.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => text.replace(p.as_str(), "***"),
            None => text.to_string(),
        }
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scrub(&self.raw))
    }
}

impl fmt::Debug for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A checked `[[mirror]]` entry.
#[derive(Debug, Clone)]
pub struct MirrorSpec {
    pub name: String,
    pub kind: SinkKind,
    pub url: SinkUrl,
    /// Postgres / ClickHouse table (created if missing).
    pub table: String,
    /// Kafka topic.
    pub topic: String,
    /// Only these apps' events (all when `None`).
    pub apps: Option<BTreeSet<String>>,
    /// A mirror the cluster has never run starts at the log's beginning or now.
    pub start_now: bool,
    pub schema: ChSchema,
    /// Most events per sink write.
    pub batch_events: usize,
    /// Longest the log is kept for this mirror. Mirrors read committed events from the table
    /// (memory and segments by log index), so they never hold the log back: 0 always holds.
    pub max_log_hold: Duration,
}

/// Why a `[[mirror]]` entry cannot run; the mirror reports it, the node runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The entry's name, or `mirror[N]` when it has no usable one.
    pub name: String,
    pub kind: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mirror {}: {}", self.name, self.message)
    }
}

const KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "table",
    "topic",
    "apps",
    "start",
    "schema",
    "batch_events",
    "max_log_hold",
];

fn valid_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_table(s: &str) -> bool {
    // `table` or `schema.table`, plain identifiers only (they are spliced into SQL).
    let ident = |p: &str| {
        (1..=63).contains(&p.len())
            && p.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| ident(p))
}

fn valid_topic(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// `"90s"`, `"15m"`, `"2h"`, `"1d"` or a number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

impl MirrorSpec {
    /// Checks the `position`-th `[[mirror]]` entry.
    pub fn parse(position: usize, v: &toml::Value) -> Result<Self, SpecError> {
        let t = v.as_table();
        let raw_name = t
            .and_then(|t| t.get("name"))
            .and_then(|n| n.as_str())
            .filter(|n| valid_name(n));
        let err_name = raw_name.map_or_else(|| format!("mirror[{position}]"), str::to_string);
        let raw_kind = t
            .and_then(|t| t.get("kind"))
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        let fail = |m: String| SpecError {
            name: err_name.clone(),
            kind: raw_kind.clone(),
            message: m,
        };
        let Some(t) = t else {
            return Err(fail("each [[mirror]] entry must be a table".into()));
        };
        if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(fail(format!(
                "unknown key {k:?} (known: {})",
                KEYS.join(", ")
            )));
        }
        let string = |key: &str| -> Result<Option<String>, SpecError> {
            match t.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(fail(format!("{key} must be a string"))),
            }
        };
        let name = match string("name")? {
            Some(n) if valid_name(&n) => n,
            Some(n) => return Err(fail(format!("name {n:?} must match [a-z0-9_-]{{1,32}}"))),
            None => return Err(fail("name is required".into())),
        };
        let kind = match string("kind")?.as_deref() {
            Some("postgres") => SinkKind::Postgres,
            Some("clickhouse") => SinkKind::ClickHouse,
            Some("kafka") => SinkKind::Kafka,
            Some(k) => {
                return Err(fail(format!(
                    "unknown kind {k:?} (postgres, clickhouse or kafka)"
                )))
            }
            None => return Err(fail("kind is required".into())),
        };
        let raw_url = string("url")?.ok_or_else(|| fail("url is required".into()))?;
        let url = SinkUrl::new(&raw_url);
        check_url(kind, &raw_url).map_err(|m| fail(url.scrub(&m)))?;
        let table = string("table")?.unwrap_or_else(|| "events".into());
        if !valid_table(&table) {
            return Err(fail(format!(
                "table {table:?} must be an identifier (letters, digits, _), optionally schema.table"
            )));
        }
        let topic = string("topic")?.unwrap_or_else(|| "events-raw".into());
        if !valid_topic(&topic) {
            return Err(fail(format!(
                "topic {topic:?} is not a valid Kafka topic name"
            )));
        }
        let apps = match t.get("apps") {
            None => None,
            Some(toml::Value::Array(a)) => {
                let mut set = BTreeSet::new();
                for v in a {
                    match v.as_str() {
                        Some(s) if !s.is_empty() => {
                            set.insert(s.to_string());
                        }
                        _ => return Err(fail("apps must be a list of app ids".into())),
                    }
                }
                if set.is_empty() {
                    return Err(fail(
                        "apps is empty: leave it out to mirror every app".into(),
                    ));
                }
                Some(set)
            }
            Some(_) => return Err(fail("apps must be a list of app ids".into())),
        };
        let start_now = match string("start")?.as_deref() {
            None | Some("beginning") => false,
            Some("now") => true,
            Some(s) => return Err(fail(format!("start {s:?} must be beginning or now"))),
        };
        let schema = match string("schema")?.as_deref() {
            None | Some("modern") => ChSchema::Modern,
            Some("legacy") if kind == SinkKind::ClickHouse => ChSchema::Legacy,
            Some(s) => {
                return Err(fail(format!(
                    "schema {s:?}: modern, or legacy for a clickhouse mirror"
                )))
            }
        };
        let batch_events = match t.get("batch_events") {
            None => 20_000,
            Some(toml::Value::Integer(n)) if (1..=1_000_000).contains(n) => *n as usize,
            Some(_) => return Err(fail("batch_events must be 1..=1000000".into())),
        };
        let max_log_hold = match string("max_log_hold")? {
            None => Duration::ZERO,
            Some(s) => parse_duration(&s).ok_or_else(|| {
                fail(format!(
                    "max_log_hold {s:?} must look like 90s, 15m, 2h or 1d"
                ))
            })?,
        };
        Ok(Self {
            name,
            kind,
            url,
            table,
            topic,
            apps,
            start_now,
            schema,
            batch_events,
            max_log_hold,
        })
    }

    /// Whether the mirror takes this app's events.
    pub fn takes(&self, app_id: &str) -> bool {
        self.apps.as_ref().is_none_or(|a| a.contains(app_id))
    }
}

fn check_url(kind: SinkKind, raw: &str) -> Result<(), String> {
    match kind {
        SinkKind::Postgres => raw
            .parse::<tokio_postgres::Config>()
            .map(|_| ())
            .map_err(|e| format!("url {raw:?} is not a Postgres URL: {e}")),
        SinkKind::ClickHouse => {
            let u = url::Url::parse(raw)
                .map_err(|e| format!("url {raw:?} is not a ClickHouse HTTP URL: {e}"))?;
            if u.scheme() != "http" || u.host_str().is_none() {
                return Err(format!(
                    "url {raw:?}: expected http://host:8123/?database=db"
                ));
            }
            Ok(())
        }
        SinkKind::Kafka => {
            let ok = !raw.is_empty()
                && raw.split(',').all(|hp| {
                    hp.rsplit_once(':').is_some_and(|(h, p)| {
                        !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                    })
                });
            if ok {
                Ok(())
            } else {
                Err(format!("url {raw:?}: expected host:port[,host:port]"))
            }
        }
    }
}

/// Checks every entry; duplicate names make the later entries fail.
pub fn parse_all(entries: &[toml::Value]) -> Vec<Result<MirrorSpec, SpecError>> {
    let mut seen = BTreeSet::new();
    entries
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = MirrorSpec::parse(i, v)?;
            if !seen.insert(s.name.clone()) {
                return Err(SpecError {
                    name: s.name.clone(),
                    kind: s.kind.as_str().into(),
                    message: "another [[mirror]] entry has this name".into(),
                });
            }
            Ok(s)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<MirrorSpec, SpecError> {
        let v: toml::Value = toml::from_str(s).unwrap();
        MirrorSpec::parse(0, &v)
    }

    #[test]
    fn a_full_entry_parses_and_never_shows_its_password() {
        let m = parse(
            r#"name = "pg"
kind = "postgres"
url = "postgres://app:s3cret@127.0.0.1:5432/analytics"
apps = ["shop"]
start = "now"
max_log_hold = "2h""#,
        )
        .unwrap();
        assert_eq!(m.kind, SinkKind::Postgres);
        assert!(m.start_now && m.takes("shop") && !m.takes("blog"));
        assert_eq!(m.max_log_hold, Duration::from_secs(7200));
        assert_eq!(m.table, "events");
        let shown = format!(
            "{} {:?} {}",
            m.url,
            m.url,
            m.url.scrub("auth failed for s3cret")
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(m.url.expose().contains("s3cret"));
    }

    #[test]
    fn bad_entries_say_what_is_wrong_without_secrets() {
        let e = parse(
            r#"name = "x"
kind = "mysql"
url = "a""#,
        )
        .unwrap_err();
        assert!(e.message.contains("unknown kind"), "{e}");
        let e = parse(
            r#"name = "x"
kind = "clickhouse"
url = "ftp://u:pw123@h/""#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("expected http") && !e.message.contains("pw123"),
            "{e}"
        );
        let e = parse(
            r#"name = "x"
kind = "kafka"
url = "localhost""#,
        )
        .unwrap_err();
        assert!(e.message.contains("host:port"), "{e}");
        let e = parse(
            r#"name = "Bad Name"
kind = "kafka"
url = "h:1""#,
        )
        .unwrap_err();
        assert_eq!(e.name, "mirror[0]");
        let e = parse(
            r#"name = "x"
kind = "postgres"
url = "postgres://h/db"
table = "events; drop table x""#,
        )
        .unwrap_err();
        assert!(e.message.contains("identifier"), "{e}");
        let e = parse(
            r#"name = "x"
kind = "kafka"
url = "h:1"
colour = "red""#,
        )
        .unwrap_err();
        assert!(e.message.contains("unknown key"), "{e}");
    }

    #[test]
    fn duplicate_names_fail_the_later_entry() {
        let v: toml::Value = toml::from_str(
            r#"[[mirror]]
name = "k"
kind = "kafka"
url = "h:1"
[[mirror]]
name = "k"
kind = "kafka"
url = "h:2""#,
        )
        .unwrap();
        let all = parse_all(v["mirror"].as_array().unwrap());
        assert!(all[0].is_ok() && all[1].is_err());
    }
}
