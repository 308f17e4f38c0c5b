//! Black-box test harness: starts real `unmogrowp serve` processes on free loopback ports,
//! talks to them over HTTP, and kills them for real (`kill -9`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod cluster;
pub mod peers;
pub mod sqlgen;

/// Path of the `unmogrowp` binary: `$TEST_SERVER_BIN`, else next to the test executable's
/// target directory (`target/<profile>/unmogrowp`).
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("TEST_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("unmogrowp");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bin unmogrowp` first or set TEST_SERVER_BIN",
        bin.display()
    );
    bin
}

/// A free loopback port below the kernel's ephemeral range (32768–60999 by default). Nodes
/// are killed and restarted on their ports; a port from the ephemeral range can meanwhile
/// become the source port of some other test's outgoing connection, and the restarted node
/// then fails to bind it.
///
/// Each port is also claimed for the whole test run ([`claim_port`]): while a node is killed
/// and not yet restarted its port is free, and another test must not take it meanwhile.
pub fn free_port() -> u16 {
    loop {
        let p = 10_000 + rand::random::<u16>() % 22_000;
        if claim_port(p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Claims `port` for this test run, across the run's test processes (nextest runs every test
/// in a process of its own): a file per port, created exclusively in a directory per run
/// (`NEXTEST_RUN_ID`, else per parent process). Claims are never released during the run;
/// directories of runs older than a day are removed.
pub fn claim_port(port: u16) -> bool {
    let root = std::env::temp_dir().join("unmogrowp-test-ports");
    let run = std::env::var("NEXTEST_RUN_ID")
        .unwrap_or_else(|_| format!("ppid-{}", std::os::unix::process::parent_id()));
    let dir = root.join(run);
    if !dir.exists() {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(86_400));
                if old {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let _ = std::fs::create_dir_all(&dir);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(port.to_string()))
        .is_ok()
}

/// One server process and its data directory.
/// The first admin's password in every test node (`UNMOGROWP_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const ADMIN_EMAIL: &str = "admin@localhost";

pub struct TestNode {
    pub data_dir: PathBuf,
    pub port: u16,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    /// Cached admin access token and per-app ingest keys (see [`TestNode::try_post`]).
    admin_token: Mutex<Option<String>>,
    keys: Mutex<HashMap<String, String>>,
}

/// An HTTP answer: status and parsed JSON body (Null if not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl TestNode {
    /// A node that is configured but not started.
    pub fn new(data_dir: impl Into<PathBuf>, env: &[(&str, &str)]) -> Self {
        let data_dir = data_dir.into();
        std::fs::create_dir_all(&data_dir).expect("mkdir");
        let log = data_dir.with_extension("log");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env.iter().any(|(k, _)| k == "UNMOGROWP_ADMIN_PASSWORD") {
            env.push(("UNMOGROWP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
        }
        Self {
            data_dir,
            port: free_port(),
            env,
            child: None,
            log,
            admin_token: Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Spawns the process (does not wait for readiness).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve");
        match self.data_dir.file_name() {
            // The quick start: run from the parent with the default `./data`.
            Some(n) if n == "data" => {
                cmd.current_dir(self.data_dir.parent().expect("parent"));
            }
            _ => {
                cmd.arg("--data-dir").arg(&self.data_dir);
            }
        }
        cmd.arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .env("RUST_BACKTRACE", "0");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn unmogrowp"));
    }

    /// Spawns and waits until `/ready` answers 200.
    pub fn start(&mut self) {
        self.spawn();
        self.wait_ready(Duration::from_secs(120));
    }

    /// Spawns and waits until the node is ready (`true`) or has exited by itself (`false`).
    pub fn start_or_exit(&mut self, limit: Duration) -> bool {
        self.spawn();
        let t0 = Instant::now();
        loop {
            if self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some()
            {
                self.child = None;
                return false;
            }
            if self.try_get("/ready").is_ok_and(|a| a.status == 200) {
                return true;
            }
            assert!(
                t0.elapsed() < limit,
                "node neither ready nor exited after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `/ready` answers 200.
    pub fn wait_ready(&mut self, limit: Duration) {
        self.wait_for("/ready", limit)
    }

    /// Waits until `/health` answers 200: the process has opened its data and serves, ready
    /// or not (a node that waits to be added, or to catch up, is healthy but not ready).
    pub fn wait_healthy(&mut self, limit: Duration) {
        self.wait_for("/health", limit)
    }

    fn wait_for(&mut self, path: &str, limit: Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "node exited during start with {status}; log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(a) = self.try_get(path) {
                if a.status == 200 {
                    return;
                }
            }
            assert!(
                t0.elapsed() < limit,
                "node: {path} not 200 after {limit:?}; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit by itself (e.g. at a crash point) and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(s) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Where this node reads its disk fault script (`UNMOGROWP_DISK_FAULTS`), if it has one.
    pub fn disk_fault_path(&self) -> Option<PathBuf> {
        self.env
            .iter()
            .find(|(k, _)| k == "UNMOGROWP_DISK_FAULTS")
            .map(|(_, v)| PathBuf::from(v))
    }

    /// Turns disk fault injection on for the next start (the log and the table then write
    /// through a fault-injecting file system that obeys [`TestNode::disk_script`]).
    pub fn enable_disk_faults(&mut self) {
        if self.disk_fault_path().is_none() {
            let p = self.data_dir.with_extension("disk-faults");
            self.env
                .push(("UNMOGROWP_DISK_FAULTS".into(), p.display().to_string()));
        }
    }

    /// Turns disk fault injection off for the next start.
    pub fn disable_disk_faults(&mut self) {
        self.env.retain(|(k, _)| k != "UNMOGROWP_DISK_FAULTS");
    }

    /// Hands the running node a disk fault script (see `disk::FaultScript`: `fail fsync eio`,
    /// `stall fsync 200ms sticky`, `power-cut`, …) and waits until it has read it (or died of
    /// it). Returns whether the node took it.
    pub fn disk_script(&mut self, script: &str) -> bool {
        let path = self
            .disk_fault_path()
            .expect("node started without enable_disk_faults");
        let tmp = path.with_extension("disk-faults.tmp");
        std::fs::write(&tmp, script).expect("write fault script");
        std::fs::rename(&tmp, &path).expect("place fault script");
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if !path.exists() {
                return true;
            }
            if !self.is_running() {
                let _ = std::fs::remove_file(&path);
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(&path);
        false
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let t0 = Instant::now();
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                return s;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                panic!("node did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the node wrote to standard error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            .build()
    }

    /// An HTTP answer from a ureq result (error statuses included; Err for transport errors).
    pub fn answer_of(r: Result<ureq::Response, ureq::Error>) -> Result<Answer, String> {
        Self::answer(r)
    }

    /// Gives this node's client the ingest key of app `app` (created through another node).
    pub fn preset_key(&self, app: &str, key: &str) {
        self.keys
            .lock()
            .expect("lock")
            .insert(app.to_string(), key.to_string());
    }

    fn answer(r: Result<ureq::Response, ureq::Error>) -> Result<Answer, String> {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(e.to_string()),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut resp.into_reader(), &mut text)
            .map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            headers,
        })
    }

    /// GET with no credentials added.
    pub fn try_get_raw(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer, String> {
        let mut req = Self::agent().get(&format!("{}{path}", self.base()));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Self::answer(req.call())
    }

    /// GET; `/api/…` paths get the admin's bearer token.
    pub fn try_get(&self, path: &str) -> Result<Answer, String> {
        let mut h: Vec<(&str, String)> = Vec::new();
        if path.starts_with("/api/") {
            h.push(("authorization", format!("Bearer {}", self.admin_token())));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.try_get_raw(path, &h)
    }

    /// Any method, raw body, no credentials added.
    pub fn request_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let mut req = Self::agent().request(method, &format!("{}{path}", self.base()));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Self::answer(match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        })
    }

    /// A JSON call with an optional bearer token; panics only on transport errors.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            h.push(("authorization", a.as_str()));
        }
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.request_raw(method, path, &h, bytes.as_deref())
            .expect("request")
    }

    /// Logs in; panics unless it succeeds. Returns the whole token answer.
    pub fn login(&self, email: &str, password: &str) -> Value {
        let a = self
            .try_post_raw(
                "/api/auth/login",
                &[("content-type", "application/json")],
                serde_json::json!({"email": email, "password": password})
                    .to_string()
                    .as_bytes(),
            )
            .expect("login");
        assert_eq!(a.status, 200, "login {email}: {}", a.body);
        a.body
    }

    /// The server process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A `/proc/<pid>/status` memory figure in KiB (`VmRSS`, `VmHWM`, …).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.pid().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("memory field")
    }

    /// Drops the cached admin token (after a signing-key rotation).
    pub fn forget_admin_token(&self) {
        *self.admin_token.lock().expect("lock") = None;
    }

    /// The first admin's access token (logged in once, cached).
    pub fn admin_token(&self) -> String {
        let mut t = self.admin_token.lock().expect("lock");
        if t.is_none() {
            let body = self.login(ADMIN_EMAIL, ADMIN_PASSWORD);
            *t = Some(
                body["access_token"]
                    .as_str()
                    .expect("access_token")
                    .to_string(),
            );
        }
        t.clone().unwrap_or_default()
    }

    /// An ingest key for app `app` (created with that id on first use, cached).
    pub fn app_key(&self, app: &str) -> String {
        if let Some(k) = self.keys.lock().expect("lock").get(app) {
            return k.clone();
        }
        let token = self.admin_token();
        let a = self
            .try_post_raw(
                "/api/apps",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {token}")),
                ],
                serde_json::json!({"name": app, "id": app})
                    .to_string()
                    .as_bytes(),
            )
            .expect("create app");
        assert_eq!(a.status, 201, "create app {app}: {}", a.body);
        let key = a.body["api_key"].as_str().expect("api_key").to_string();
        self.keys
            .lock()
            .expect("lock")
            .insert(app.to_string(), key.clone());
        key
    }

    /// POSTs with no credentials added.
    pub fn try_post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let mut req = Self::agent().post(&format!("{}{path}", self.base()));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Self::answer(req.send_bytes(body))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// POSTs raw bytes with the given headers, adding a credential when none is given: to
    /// `/v1/events`, the key of the app named by the body's first event (`app1` if the body
    /// cannot be read); to other `/api/…` paths, the admin's bearer token.
    pub fn try_post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        let mut h: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if path == "/v1/events" && !has("x-api-key") {
            let gz = headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v.contains("gzip"));
            h.push(("x-api-key", self.app_key(&first_app_id(body, gz))));
        } else if path.starts_with("/api/") && path != "/api/auth/login" && !has("authorization") {
            h.push(("authorization", format!("Bearer {}", self.admin_token())));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.try_post_raw(path, &h, body)
    }

    /// POST JSON as the admin; a cached token that expired meanwhile (long campaigns) is
    /// replaced by logging in again, once.
    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("json");
        let post = || {
            self.try_post(path, &[("content-type", "application/json")], &bytes)
                .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        };
        let a = post();
        if a.status == 401 && path.starts_with("/api/") {
            self.forget_admin_token();
            return post();
        }
        a
    }

    /// Runs SQL and returns the rows, panicking on any error — except `503 no_leader`, which
    /// asks the client to retry shortly (an election under way, e.g. after a kill in a fault
    /// test on a loaded machine): retried for up to 30 s, as a client would.
    pub fn sql(&self, sql: &str) -> Vec<Vec<Value>> {
        let body = serde_json::json!({ "sql": sql });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut a = self.post_json("/api/analytics/query", &body);
        while a.status == 503 && a.body["error"]["code"] == "no_leader" && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
            a = self.post_json("/api/analytics/query", &body);
        }
        assert_eq!(a.status, 200, "query {sql} failed: {}", a.body);
        a.body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r.as_array().expect("row").clone())
            .collect()
    }

    pub fn count(&self, sql: &str) -> u64 {
        self.sql(sql)[0][0].as_u64().expect("count")
    }

    /// Posts the events `seq..seq+n` of `client` (see [`event`]) to `app`: the answer, or the
    /// transport error as text.
    pub fn post_events(&self, app: &str, client: u64, seq: u64, n: u64) -> Result<Answer, String> {
        let events: Vec<Value> = (seq..seq + n)
            .map(|s| event(app, client, s, 1_765_000_000_000 + s as i64))
            .collect();
        let body = serde_json::to_vec(&events).expect("json");
        self.try_post("/v1/events", &[("content-type", "application/json")], &body)
    }

    /// Every stored `event_id`, asserting none is stored twice.
    pub fn stored_event_ids(&self) -> std::collections::BTreeSet<String> {
        let ids: Vec<String> = self
            .sql("SELECT event_id FROM events")
            .into_iter()
            .filter_map(|r| r[0].as_str().map(str::to_string))
            .collect();
        let set: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(set.len(), ids.len(), "events stored twice");
        set
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `app_id` of the first event in an ingest body (JSON, array, NDJSON, maybe gzip).
fn first_app_id(body: &[u8], gzip: bool) -> String {
    let mut raw = body.to_vec();
    if gzip {
        let mut out = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut out).is_ok() {
            raw = out;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let first = serde_json::from_str::<Value>(&text).ok().or_else(|| {
        text.lines()
            .next()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
    });
    let ev = match first {
        Some(Value::Array(a)) => a.into_iter().next(),
        other => other,
    };
    ev.and_then(|e| e.get("app_id").and_then(|v| v.as_str()).map(str::to_string))
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        })
        .unwrap_or_else(|| "app1".to_string())
}

/// A deterministic UUID for (client, seq): distinct per pair.
pub fn event_uuid(client: u64, seq: u64) -> String {
    uuid::Uuid::from_u128(((client as u128) << 64) | seq as u128 | (0x4000u128 << 64))
        .hyphenated()
        .to_string()
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// A realistic attribution event.
pub fn event(app: &str, client: u64, seq: u64, ts_ms: i64) -> Value {
    let kinds = [
        "app_open",
        "ad_click",
        "install",
        "purchase",
        "session_start",
    ];
    let kind = kinds[(seq % kinds.len() as u64) as usize];
    let platform = ["ios", "android", "web"][(seq % 3) as usize];
    let mut e = serde_json::json!({
        "event_type": kind,
        "app_id": app,
        "device_id": format!("dev-{client}-{}", seq % 97),
        "user_id": format!("user-{}", seq % 1013),
        "session_id": format!("s-{client}-{}", seq / 20),
        "platform": platform,
        "app_version": "3.2.1",
        "timestamp": ts_ms,
        "attribution": {"campaign": format!("camp-{}", seq % 7), "source": "google", "medium": "cpc"},
        "event_id": event_uuid(client, seq),
    });
    if kind == "purchase" {
        e["event_data"] = serde_json::json!({"revenue": (seq % 50) as f64 + 0.99, "currency": "USD", "sku": "gold"});
    }
    e
}

/// Edits audit record `seq` in a (stopped) node's RocksDB auth store the way an attacker with
/// disk access would: changes its target and leaves its hash alone (TESTPLAN AUD-03).
pub fn tamper_audit(auth_dir: &Path, seq: u64) {
    let db = rocksdb::DB::open_default(auth_dir).expect("open auth store");
    let key = format!("l/{seq:020}");
    let raw = db.get(key.as_bytes()).expect("get").expect("record exists");
    let mut rec: Value = serde_json::from_slice(&raw).expect("json");
    rec["target"] = Value::String("nothing to see here".into());
    db.put(key.as_bytes(), serde_json::to_vec(&rec).expect("json"))
        .expect("put");
}

/// The cluster's current JWT signing secret, read from a node's auth store (read-only, works
/// next to the running node). Lets tests mint correctly signed tokens with chosen claims.
pub fn jwt_secret(auth_dir: &Path) -> Vec<u8> {
    let db = rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), auth_dir, false)
        .expect("open auth store read-only");
    let raw = db.get(b"m/secret").expect("get").expect("bootstrapped");
    let hex: String = serde_json::from_slice(&raw).expect("json");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// An HS256 JWT over `claims` with header `{"alg":"HS256","typ":typ}`.
pub fn sign_hs256(secret: &[u8], typ: &str, claims: &Value) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header = serde_json::json!({"alg": "HS256", "typ": typ});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// The claims of a JWT (not verified).
pub fn decode_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

impl TestNode {
    /// A numeric metric from `/metrics` (first sample with that exact name).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = self.get("/metrics").body;
        let prefix = format!("{name} ");
        body.as_str()?
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Waits until every entry in the node's log is applied. After a restart, entries that
    /// were written but not known committed (never acknowledged) are committed and applied
    /// shortly after `/ready`; checks that compare two queries wait for that first.
    pub fn wait_applied_all(&self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            let last = self.metric("unmogrowp_raft_last_log_index");
            if last.is_some() && self.metric("unmogrowp_raft_applied_index") >= last {
                return;
            }
            assert!(
                t0.elapsed() < limit,
                "the log was not applied within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
