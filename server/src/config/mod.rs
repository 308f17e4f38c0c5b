//! Server configuration: defaults → TOML file (`--config`) → environment (`UNMOGROWP_…`) →
//! command-line flags. Every setting is documented in `config/example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod alerts;
mod auth;
mod ingest;

pub use alerts::{AlertSettings, WebhookSettings};
pub use auth::AuthSettings;
pub use ingest::IngestLimits;

/// Environment variables with this prefix override config keys: `UNMOGROWP_HTTP_ADDR` sets
/// `http_addr`; a double underscore enters a section: `UNMOGROWP_ENGINE__FLUSH_ROWS`.
pub const ENV_PREFIX: &str = "UNMOGROWP_";
/// Variables with the prefix that are not config keys.
const ENV_NOT_CONFIG: &[&str] = &[
    "UNMOGROWP_CRASH_POINTS",
    "UNMOGROWP_FAULT_FILE",
    "UNMOGROWP_DISK_FAULTS",
    "UNMOGROWP_LOG",
    "UNMOGROWP_ADMIN_PASSWORD",
];

/// Settings that come from the process environment, not the config file (`main` reads them;
/// nothing else in the server reads the environment).
#[derive(Debug, Clone, Default)]
pub struct ProcessSettings {
    /// `UNMOGROWP_ADMIN_PASSWORD`: the first admin's password on an empty data directory.
    pub admin_password: Option<String>,
    /// `UNMOGROWP_CRASH_POINTS` (tests only): engine steps at which the process aborts.
    pub crash_points: Vec<String>,
    /// `UNMOGROWP_FAULT_FILE` (tests only): a file of network faults to obey while it exists.
    pub fault_file: Option<PathBuf>,
    /// `UNMOGROWP_DISK_FAULTS` (tests only): the log and the table write through a fault-
    /// injecting file system that obeys the `disk::FaultScript` a test writes to this path
    /// (failed or stalled writes and fsyncs, power cuts).
    pub disk_faults: Option<PathBuf>,
}

impl ProcessSettings {
    /// From `(name, value)` pairs of an environment.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut out = Self::default();
        for (k, v) in vars {
            match k.as_str() {
                "UNMOGROWP_ADMIN_PASSWORD" => out.admin_password = Some(v),
                "UNMOGROWP_CRASH_POINTS" => {
                    out.crash_points = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                "UNMOGROWP_FAULT_FILE" => out.fault_file = Some(PathBuf::from(v)),
                "UNMOGROWP_DISK_FAULTS" => out.disk_faults = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Raft node id of this node.
    pub node_id: u64,
    /// What the process was started with besides the config (set by `main` from its
    /// environment; never in a config file).
    #[serde(skip)]
    pub process: ProcessSettings,
    /// Directory holding the log, the table and snapshots.
    pub data_dir: PathBuf,
    /// HTTP listen address (API, dashboard, metrics).
    pub http_addr: SocketAddr,
    pub ingest: IngestLimits,
    pub raft: RaftSettings,
    pub wal: wal::WalOptions,
    pub engine: engine::EngineConfig,
    pub query: query::QueryConfig,
    pub auth: AuthSettings,
    /// `[alerts]`: security rules over the audit stream and their webhooks.
    pub alerts: AlertSettings,
    pub cluster: ClusterSettings,
    pub fraud: FraudSettings,
    /// `[retention]`: how often the leader applies each app's `privacy.retention_days`.
    pub retention: RetentionSettings,
    /// `[audit]`: how long the audit log keeps its records.
    pub audit: AuditSettings,
    pub http: HttpSettings,
    /// `[log]`: text or JSON lines, levels, which requests are logged.
    pub log: crate::logging::LogSettings,
    /// `[[mirror]]` entries, checked by `compat::parse_all` when the node starts: a bad entry
    /// is reported by that mirror (API, metrics, log) and never stops the node.
    pub mirror: Vec<toml::Value>,
}

/// `[retention]` in the config file (issue 29; docs/privacy.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Seconds between the leader's checks of every app's retention floor; a floor that
    /// moved (a new UTC day, or a shorter `retention_days`) is applied through the log.
    pub check_interval_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            check_interval_secs: 600,
        }
    }
}

/// `[audit]` in the config file (issue 29): the security log's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// UTC days of audit records kept before today (the seed: one year); older ones are
    /// removed by the retention task through the log, leaving a signed base the chain is
    /// verified from.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_days: 365,
        }
    }
}

/// `[http]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A client must send a request's whole header within this many seconds.
    pub header_read_timeout_secs: u64,
    /// A request body must deliver data at least this often (seconds between chunks).
    pub body_read_timeout_secs: u64,
    /// Most headers one request may carry (more: 431).
    pub max_headers: usize,
    /// Most open client connections; a connection past it is closed at once.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_headers: 100,
            max_connections: 4096,
        }
    }
}

impl HttpSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.header_read_timeout_secs == 0
            || self.body_read_timeout_secs == 0
            || self.max_headers == 0
            || self.max_connections == 0
        {
            return Err("every [http] setting must be positive".into());
        }
        Ok(())
    }
}

/// Defaults of the fraud rules (`[fraud]`); requests may override the thresholds and add to
/// the deny list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudSettings {
    /// Addresses and CIDR ranges whose clicks and installs are flagged.
    pub deny_ips: Vec<String>,
    pub min_click_to_install_ms: i64,
    pub max_clicks_per_device_day: u64,
    pub max_clicks_per_ip_day: u64,
}

impl Default for FraudSettings {
    fn default() -> Self {
        let r = query::attribution::FraudRules::default();
        Self {
            deny_ips: Vec::new(),
            min_click_to_install_ms: r.min_click_to_install_ms,
            max_clicks_per_device_day: r.max_clicks_per_device_day,
            max_clicks_per_ip_day: r.max_clicks_per_ip_day,
        }
    }
}

impl FraudSettings {
    /// The rules these settings describe.
    pub fn rules(&self) -> Result<query::attribution::FraudRules, String> {
        let mut r = query::attribution::FraudRules::default();
        r.min_click_to_install_ms = self.min_click_to_install_ms;
        r.max_clicks_per_device_day = self.max_clicks_per_device_day;
        r.max_clicks_per_ip_day = self.max_clicks_per_ip_day;
        r.deny(&self.deny_ips)
            .and_then(|_| r.validate())
            .map_err(|e| format!("fraud: {e}"))?;
        Ok(r)
    }
}

/// One member of a multi-node cluster (`[[cluster.members]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub id: u64,
    /// Client API address other nodes and clients reach it at (`host:port`).
    pub http_addr: String,
    /// Internal Raft API address (`host:port`).
    pub raft_addr: String,
}

/// Clustering (`[cluster]`). With no `members`, the node is a single-node cluster that
/// initialises itself on first start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Listen address of the internal Raft API. Unset: it is served on `http_addr` under
    /// `/raft/…`. Set it on real hosts so only peers can reach it (firewall that port).
    pub raft_addr: Option<SocketAddr>,
    /// Shared secret every node presents to its peers (at least 32 characters; the same on
    /// all nodes). Required when `members` is set. Prefer `UNMOGROWP_CLUSTER__SECRET`.
    pub secret: String,
    /// The initial members, the same list on every node. `unmogrowp cluster init` makes
    /// them a cluster; later changes go through `/api/admin/cluster/…`.
    pub members: Vec<MemberConfig>,
    /// Largest Raft RPC body accepted or sent, in bytes (a larger append is split).
    pub max_rpc_bytes: usize,
    /// Size of the pieces a snapshot is streamed in.
    pub snapshot_chunk_bytes: usize,
    /// How long a write waits for a leader (election, forwarding) before answering 503.
    pub write_timeout_ms: u64,
    /// How long a query waits for this node to apply up to the leader's commit index
    /// (read-index) before answering 503.
    pub read_timeout_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            raft_addr: None,
            secret: String::new(),
            members: Vec::new(),
            max_rpc_bytes: 64 << 20,
            snapshot_chunk_bytes: 4 << 20,
            write_timeout_ms: 5_000,
            read_timeout_ms: 5_000,
        }
    }
}

impl ClusterSettings {
    fn validate(&self, node_id: u64) -> Result<(), String> {
        if self.members.is_empty() {
            return Ok(());
        }
        if self.secret.len() < 32 {
            return Err(
                "cluster.secret must have at least 32 characters when cluster.members is set"
                    .into(),
            );
        }
        if !self.members.iter().any(|m| m.id == node_id) {
            return Err(format!(
                "cluster.members does not list this node (node_id {node_id})"
            ));
        }
        let mut ids: Vec<u64> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.members.len() {
            return Err("cluster.members lists a node id twice".into());
        }
        if self.max_rpc_bytes < 1 << 20 || self.snapshot_chunk_bytes == 0 {
            return Err(
                "cluster.max_rpc_bytes must be at least 1 MiB and snapshot_chunk_bytes positive"
                    .into(),
            );
        }
        if self.snapshot_chunk_bytes > self.max_rpc_bytes {
            return Err("cluster.snapshot_chunk_bytes must not exceed max_rpc_bytes".into());
        }
        Ok(())
    }
}

/// Raft timing (`[raft]`), sized for a loaded 2-core machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Take a snapshot (flush + purge the log below it) once the log holds this many bytes.
    pub snapshot_log_bytes: u64,
    /// Entries kept in the log below a snapshot, for followers slightly behind. Entries can
    /// hold up to `max_events_per_entry` events, so keep this small: a follower further behind
    /// catches up from the snapshot instead.
    pub keep_after_snapshot: u64,
    /// While a snapshot is being sent to a follower no new one is taken (it would purge what
    /// the follower needs next), unless the log has grown past this many bytes.
    pub snapshot_defer_max_bytes: u64,
    /// Most ingest requests coalesced into one log entry.
    pub max_requests_per_entry: usize,
    /// Most events coalesced into one log entry.
    pub max_events_per_entry: usize,
    /// Log entries being replicated/applied at once by the ingest proposer; requests arriving
    /// meanwhile are coalesced into the next entry.
    pub max_inflight_entries: usize,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 150,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_log_bytes: 512 << 20,
            keep_after_snapshot: 100,
            snapshot_defer_max_bytes: 4 << 30,
            max_requests_per_entry: 256,
            max_events_per_entry: 20_000,
            max_inflight_entries: 1,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            process: ProcessSettings::default(),
            data_dir: PathBuf::from("./data"),
            http_addr: "127.0.0.1:8080"
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            ingest: IngestLimits::default(),
            raft: RaftSettings::default(),
            wal: wal::WalOptions::default(),
            engine: engine::EngineConfig::default(),
            query: query::QueryConfig::default(),
            fraud: FraudSettings::default(),
            retention: RetentionSettings::default(),
            audit: AuditSettings::default(),
            http: HttpSettings::default(),
            log: crate::logging::LogSettings::default(),
            auth: AuthSettings::default(),
            alerts: AlertSettings::default(),
            cluster: ClusterSettings::default(),
            mirror: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Builds the configuration from the optional file and the given environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut doc = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::Read(p.to_path_buf(), e))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        for (key, val) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if ENV_NOT_CONFIG.contains(&key.as_str()) || rest.is_empty() {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut doc, &path, parse_env_value(&val))
                .map_err(|e| ConfigError::Parse(format!("{key}: {e}")))?;
        }
        let cfg: ServerConfig = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        Ok(cfg)
    }

    /// The engine's settings, with those other sections decide (`ingest.dedupe_window`).
    pub fn engine_config(&self) -> engine::EngineConfig {
        let mut e = self.engine.clone();
        if let Ok(w) = self.ingest.dedupe_window_secs() {
            e.dedupe_window_secs = w;
        }
        e
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let inv = |s: String| Err(ConfigError::Invalid(s));
        self.auth.validate().map_err(ConfigError::Invalid)?;
        self.ingest.validate().map_err(ConfigError::Invalid)?;
        self.wal.validate().map_err(ConfigError::Invalid)?;
        self.engine.validate().map_err(ConfigError::Invalid)?;
        self.query.validate().map_err(ConfigError::Invalid)?;
        self.http.validate().map_err(ConfigError::Invalid)?;
        self.alerts.validate().map_err(ConfigError::Invalid)?;
        self.fraud.rules().map_err(ConfigError::Invalid)?;
        if self.retention.check_interval_secs == 0 {
            return inv("retention.check_interval_secs must be positive".into());
        }
        if self.audit.retention_days == 0 {
            return inv("audit.retention_days must be at least 1".into());
        }
        self.cluster
            .validate(self.node_id)
            .map_err(ConfigError::Invalid)?;
        let r = &self.raft;
        if r.election_timeout_min_ms <= r.heartbeat_interval_ms * 2
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            return inv(
                "raft: need heartbeat*2 < election_timeout_min < election_timeout_max".into(),
            );
        }
        if r.max_requests_per_entry == 0
            || r.max_events_per_entry == 0
            || r.max_inflight_entries == 0
        {
            return inv("raft.max_* settings must be positive".into());
        }
        if r.snapshot_defer_max_bytes < r.snapshot_log_bytes {
            return inv(
                "raft.snapshot_defer_max_bytes must be at least raft.snapshot_log_bytes".into(),
            );
        }
        Ok(())
    }

    /// The configuration as `unmogrowp config` prints it: the cluster secret and the
    /// passwords in mirror URLs replaced by `***`.
    pub fn for_display(&self) -> Self {
        let mut c = self.clone();
        if !c.cluster.secret.is_empty() {
            c.cluster.secret = "***".into();
        }
        for w in &mut c.alerts.webhook {
            w.url = w.display();
            if w.secret.is_some() {
                w.secret = Some("***".into());
            }
        }
        for m in &mut c.mirror {
            if let Some(toml::Value::String(url)) = m.get_mut("url") {
                *url = compat::SinkUrl::new(url).to_string();
            }
        }
        c
    }

    /// What this node tells its peers about itself.
    pub fn advertised(&self) -> (String, String) {
        if let Some(m) = self.cluster.members.iter().find(|m| m.id == self.node_id) {
            return (m.http_addr.clone(), m.raft_addr.clone());
        }
        let http = self.http_addr.to_string();
        let raft = self
            .cluster
            .raft_addr
            .map_or(http.clone(), |a| a.to_string());
        (http, raft)
    }

    pub fn auth_dir(&self) -> PathBuf {
        self.data_dir.join("auth")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }
    pub fn engine_dir(&self) -> PathBuf {
        self.data_dir.join("table")
    }
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn set_path(doc: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            doc.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = doc
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{first} is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_nested_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "data_dir = \"/x\"\n[engine]\nflush_rows = 5\n").unwrap();
        let env = vec![
            ("UNMOGROWP_ENGINE__FLUSH_ROWS".to_string(), "7".to_string()),
            (
                "UNMOGROWP_HTTP_ADDR".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            ("UNMOGROWP_CRASH_POINTS".to_string(), "x".to_string()),
            ("OTHER".to_string(), "1".to_string()),
        ];
        let c = ServerConfig::load(Some(&p), env).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/x"));
        assert_eq!(c.engine.flush_rows, 7);
        assert_eq!(c.http_addr.port(), 9999);
        c.validate().unwrap();
    }

    /// This crate's directory, read when the test runs: a test binary reused from a build in
    /// another checkout (shared target directory) must not look at that checkout's files.
    fn manifest_dir() -> PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
    }

    /// `config/example.toml` documents every setting with its default value.
    #[test]
    fn example_toml_matches_defaults() {
        let path = manifest_dir().join("../config/example.toml");
        let mut from_file = ServerConfig::load(Some(&path), Vec::new()).unwrap();
        let defaults = ServerConfig::default();
        // The machine-dependent defaults (number of cores).
        from_file.query.target_partitions = defaults.query.target_partitions;
        from_file.query.threads = defaults.query.threads;
        assert_eq!(
            toml::to_string(&from_file).unwrap(),
            toml::to_string(&defaults).unwrap(),
            "config/example.toml and the defaults in code disagree"
        );
        // And every key in code appears in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::to_string(&defaults).unwrap().parse().unwrap();
        for (k, v) in &table {
            match v {
                toml::Value::Table(t) => {
                    assert!(text.contains(&format!("[{k}]")), "section [{k}] missing");
                    for (key, val) in t {
                        assert!(
                            text.contains(&format!("\n{key} = "))
                                || val.is_table() && text.contains(&format!("[{k}.{key}]")),
                            "{k}.{key} missing from example.toml"
                        );
                    }
                }
                // Arrays of tables are documented as `[[key]]` entries.
                _ => assert!(
                    text.contains(&format!("\n{k} = ")) || text.contains(&format!("[[{k}]]")),
                    "{k} missing from example.toml"
                ),
            }
        }
    }

    /// The shipped 3-node configs (`deploy/`) load and validate.
    #[test]
    fn deploy_configs_are_valid() {
        for n in 1..=3u64 {
            let path = manifest_dir().join(format!("../deploy/node{n}.toml"));
            let env = vec![(
                "UNMOGROWP_CLUSTER__SECRET".to_string(),
                "0123456789abcdef0123456789abcdef".to_string(),
            )];
            let c = ServerConfig::load(Some(&path), env).unwrap();
            c.validate().unwrap();
            assert_eq!(c.node_id, n);
            assert_eq!(c.cluster.members.len(), 3);
            assert_eq!(c.advertised().1, format!("10.0.0.{n}:9080"));
        }
        // Without the secret a member list is refused.
        let path = manifest_dir().join("../deploy/node1.toml");
        let c = ServerConfig::load(Some(&path), Vec::new()).unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let env = vec![("UNMOGROWP_NOPE".to_string(), "1".to_string())];
        assert!(ServerConfig::load(None, env).is_err());
    }

    #[test]
    fn weak_auth_settings_are_refused() {
        let env = vec![(
            "UNMOGROWP_AUTH__ACCESS_TOKEN_TTL_SECS".to_string(),
            "5".to_string(),
        )];
        let c = ServerConfig::load(None, env).unwrap();
        assert!(c.validate().is_err());
    }
}
