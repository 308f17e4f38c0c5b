//! A cluster of real `unmogrowp serve` processes on loopback, a ledger of what clients were
//! told, and the checks every cluster test ends with (TESTPLAN PQ-04).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{event, event_uuid, free_port, Answer, TestNode};

pub const SECRET: &str = "test-cluster-secret-0123456789abcdef";

pub struct TestCluster {
    pub nodes: Vec<TestNode>,
    pub raft_ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

fn members(http: &[u16], raft: &[u16]) -> String {
    let items: Vec<String> = (0..http.len())
        .map(|i| {
            format!(
                "{{id = {}, http_addr = \"127.0.0.1:{}\", raft_addr = \"127.0.0.1:{}\"}}",
                i + 1,
                http[i],
                raft[i]
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

impl TestCluster {
    /// `n` configured nodes (not started); `extra` env applies to every node.
    pub fn new(n: usize, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nodes: Vec<TestNode> = (0..n)
            .map(|i| TestNode::new(dir.path().join(format!("node{}", i + 1)), extra))
            .collect();
        let http: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let raft: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let m = members(&http, &raft);
        for (i, node) in nodes.iter_mut().enumerate() {
            node.env.extend([
                ("UNMOGROWP_NODE_ID".to_string(), (i + 1).to_string()),
                (
                    "UNMOGROWP_CLUSTER__RAFT_ADDR".to_string(),
                    format!("\"127.0.0.1:{}\"", raft[i]),
                ),
                ("UNMOGROWP_CLUSTER__SECRET".to_string(), SECRET.to_string()),
                ("UNMOGROWP_CLUSTER__MEMBERS".to_string(), m.clone()),
                (
                    "UNMOGROWP_FAULT_FILE".to_string(),
                    dir.path()
                        .join(format!("node{}.fault", i + 1))
                        .display()
                        .to_string(),
                ),
            ]);
        }
        Self {
            nodes,
            raft_ports: raft,
            _dir: dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Every node writes its log and table through a fault-injecting file system (from the
    /// next start): see [`TestNode::disk_script`].
    pub fn enable_disk_faults(&mut self) {
        self.nodes.iter_mut().for_each(TestNode::enable_disk_faults);
    }

    /// Starts every node, initialises the cluster with `unmogrowp cluster init` (the
    /// documented command) and waits until all are ready.
    pub fn start(&mut self) {
        for n in &mut self.nodes {
            n.spawn();
        }
        let first = &self.nodes[0];
        let t0 = Instant::now();
        loop {
            let mut cmd = std::process::Command::new(crate::binary());
            cmd.arg("cluster")
                .arg("init")
                .arg("--data-dir")
                .arg(&first.data_dir)
                .arg("--http-addr")
                .arg(format!("127.0.0.1:{}", first.port));
            for (k, v) in &first.env {
                cmd.env(k, v);
            }
            let out = cmd.output().expect("run cluster init");
            if out.status.success() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "cluster init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for n in &mut self.nodes {
            n.wait_ready(Duration::from_secs(120));
        }
    }

    /// Cuts node `i` off from its peers (fault injection: it neither sends nor accepts Raft
    /// traffic; clients can still reach its HTTP API).
    pub fn isolate(&self, i: usize) {
        std::fs::write(self.dir().join(format!("node{}.fault", i + 1)), "isolate")
            .expect("fault file");
    }

    pub fn heal(&self, i: usize) {
        let _ = std::fs::remove_file(self.dir().join(format!("node{}.fault", i + 1)));
    }

    /// GET `/raft/status` of node `i` (its own view), if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        let r = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build()
            .get(&format!(
                "http://127.0.0.1:{}/raft/status",
                self.raft_ports[i]
            ))
            .set("authorization", &format!("Bearer {SECRET}"))
            .call()
            .ok()?;
        r.into_json().ok()
    }

    /// Every node's own status and the end of its log, for a failure message (the logs live
    /// in the cluster's temporary directory, which is gone once the test has failed).
    pub fn diagnosis(&mut self) -> String {
        let mut out = String::new();
        for i in 0..self.nodes.len() {
            let running = self.nodes[i].is_running();
            out.push_str(&format!(
                "--- node {} (running: {running}) status: {}\n{}\n",
                i + 1,
                self.status(i)
                    .map_or_else(|| "no answer".to_string(), |s| s.to_string()),
                self.nodes[i].log_tail()
            ));
        }
        out
    }

    /// The index (0-based) of the leader as node `i` sees it.
    pub fn leader_seen_by(&self, i: usize) -> Option<usize> {
        let s = self.status(i)?;
        s["leader"].as_u64().map(|l| l as usize - 1)
    }

    /// Waits until a majority of running nodes agree on a leader, and returns it (0-based)
    /// and how long that took.
    pub fn wait_leader(&mut self, limit: Duration) -> (usize, Duration) {
        let t0 = Instant::now();
        loop {
            let mut votes: HashMap<usize, usize> = HashMap::new();
            for i in 0..self.nodes.len() {
                if !self.nodes[i].is_running() {
                    continue;
                }
                if let Some(s) = self.status(i) {
                    if let Some(l) = s["leader"].as_u64() {
                        let l = l as usize - 1;
                        // Only a leader that itself claims leadership counts.
                        if self.nodes[l].is_running()
                            && self.status(l).is_some_and(|ls| ls["state"] == "leader")
                        {
                            *votes.entry(l).or_default() += 1;
                        }
                    }
                }
            }
            if let Some((&l, _)) = votes.iter().find(|(_, &c)| c * 2 > self.nodes.len()) {
                return (l, t0.elapsed());
            }
            assert!(
                t0.elapsed() < limit,
                "no leader within {limit:?}; statuses: {:?}",
                (0..self.nodes.len())
                    .map(|i| self.status(i))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Creates app `app` through node 0 and gives its key to every node's client.
    pub fn create_app(&self, app: &str) -> String {
        let key = self.nodes[0].app_key(app);
        for n in &self.nodes[1..] {
            n.preset_key(app, &key);
        }
        key
    }

    /// Waits until every running node has applied the leader's whole log.
    pub fn wait_converged(&mut self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            let (l, _) = self.wait_leader(limit);
            let target = self.status(l).and_then(|s| s["last_log_index"].as_u64());
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].is_running())
                .collect();
            let all = running.into_iter().all(|i| {
                self.status(i)
                    .and_then(|s| s["applied_index"].as_u64())
                    .is_some_and(|a| Some(a) >= target)
            });
            if all {
                return;
            }
            assert!(
                t0.elapsed() < limit,
                "nodes did not converge within {limit:?} (leader node {}, target {target:?})\n{}",
                l + 1,
                self.diagnosis()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What clients were told about every event they sent.
#[derive(Default)]
pub struct Ledger {
    /// Events acknowledged with 202.
    pub acked: Mutex<BTreeSet<String>>,
    /// Events whose fate is unknown (5xx, timeout, connection lost): may or may not exist.
    pub unknown: Mutex<BTreeSet<String>>,
    /// Events refused with a 4xx: must not exist.
    pub failed: Mutex<BTreeSet<String>>,
    pub requests: AtomicU64,
}

impl Ledger {
    /// Adds everything `other` recorded.
    pub fn merge(&self, other: &Ledger) {
        for (mine, theirs) in [
            (&self.acked, &other.acked),
            (&self.unknown, &other.unknown),
            (&self.failed, &other.failed),
        ] {
            let t = theirs.lock().expect("ledger").clone();
            mine.lock().expect("ledger").extend(t);
        }
    }

    pub fn record(&self, ids: &[String], outcome: &Result<Answer, String>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let set = match outcome {
            Ok(a) if a.status == 202 => &self.acked,
            Ok(a) if (400..500).contains(&a.status) && a.status != 429 => &self.failed,
            _ => &self.unknown,
        };
        set.lock().expect("ledger").extend(ids.iter().cloned());
    }

    pub fn acked(&self) -> usize {
        self.acked.lock().expect("ledger").len()
    }
}

/// Client threads that post batches of events with unique `event_id`s to the nodes of the
/// cluster (each thread round-robin over the HTTP ports), until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub ledger: Arc<Ledger>,
}

impl Load {
    pub fn start(ports: &[u16], key: &str, app: &str, clients: u64, batch: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Arc::new(Ledger::default());
        let threads = (0..clients)
            .map(|c| {
                let stop = stop.clone();
                let ledger = ledger.clone();
                let ports = ports.to_vec();
                let key = key.to_string();
                let app = app.to_string();
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout_connect(Duration::from_secs(1))
                        .timeout(Duration::from_secs(10))
                        .build();
                    let mut seq = 0u64;
                    let mut turn = c as usize;
                    while !stop.load(Ordering::Relaxed) {
                        let port = ports[turn % ports.len()];
                        turn += 1;
                        let events: Vec<Value> = (0..batch)
                            .map(|i| {
                                event(
                                    &app,
                                    1000 + c,
                                    seq + i,
                                    1_760_000_000_000 + (seq + i) as i64,
                                )
                            })
                            .collect();
                        let ids: Vec<String> =
                            (0..batch).map(|i| event_uuid(1000 + c, seq + i)).collect();
                        seq += batch;
                        let body = serde_json::to_vec(&events).expect("json");
                        let r = agent
                            .post(&format!("http://127.0.0.1:{port}/v1/events"))
                            .set("content-type", "application/json")
                            .set("x-api-key", &key)
                            .send_bytes(&body);
                        let outcome = TestNode::answer_of(r);
                        if outcome.is_err() || outcome.as_ref().is_ok_and(|a| a.status != 202) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        ledger.record(&ids, &outcome);
                    }
                })
            })
            .collect();
        Self {
            stop,
            threads,
            ledger,
        }
    }

    pub fn stop(self) -> Arc<Ledger> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.ledger
    }
}

/// What one node holds, for the PQ-04 comparison.
#[derive(Debug, PartialEq, Eq)]
pub struct Replica {
    pub rows: u64,
    pub ids: BTreeSet<String>,
    pub per_app_hour: BTreeMap<String, u64>,
}

pub fn replica(node: &TestNode) -> Replica {
    let rows = node.count("SELECT count(*) FROM events");
    // Paged by key (a result is capped at query.max_result_rows; OFFSET would sort ever more
    // rows per page).
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let page = 50_000;
    let mut after = String::new();
    loop {
        let rows = node.sql(&format!(
            "SELECT event_id FROM events WHERE event_id IS NOT NULL AND event_id > '{after}' \
             ORDER BY event_id LIMIT {page}"
        ));
        let n = rows.len();
        ids.extend(
            rows.into_iter()
                .filter_map(|r| r[0].as_str().map(str::to_string)),
        );
        match ids.last() {
            Some(last) if n == page => after = last.clone(),
            _ => break,
        }
    }
    let per_app_hour = node
        .sql(
            "SELECT app_id, date_trunc('hour', timestamp) AS h, count(*) FROM events GROUP BY 1, 2",
        )
        .into_iter()
        .map(|r| (format!("{}/{}", r[0], r[1]), r[2].as_u64().unwrap_or(0)))
        .collect();
    Replica {
        rows,
        ids,
        per_app_hour,
    }
}

/// What the end-of-test comparison found, summed over the running nodes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Events acknowledged with 202.
    pub acked: u64,
    /// Acknowledged events missing on a node (per node, summed).
    pub lost: u64,
    /// Rows beyond one per distinct event id (summed).
    pub duplicates: u64,
    /// Stored events nobody sent, or that were refused with a 4xx (summed).
    pub phantoms: u64,
    /// Nodes whose rows, ids or per-app/hour counts differ from the first node's.
    pub mismatched_replicas: u64,
    /// Rows on the first node.
    pub rows: u64,
    /// A description of the first problem, if any.
    pub first_problem: Option<String>,
}

impl Audit {
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.phantoms == 0
            && self.mismatched_replicas == 0
    }
}

/// Compares every running node with the ledger and with each other (after they converged):
/// lost, duplicated and phantom events, and replicas that differ (TESTPLAN PQ-04).
pub fn audit(cluster: &mut TestCluster, ledger: &Ledger) -> Audit {
    cluster.wait_converged(Duration::from_secs(120));
    let acked = ledger.acked.lock().expect("ledger").clone();
    let unknown = ledger.unknown.lock().expect("ledger").clone();
    let failed = ledger.failed.lock().expect("ledger").clone();
    let mut out = Audit {
        acked: acked.len() as u64,
        ..Audit::default()
    };
    let note = |out: &mut Audit, msg: String| {
        if out.first_problem.is_none() {
            out.first_problem = Some(msg);
        }
    };
    let mut first: Option<Replica> = None;
    for (i, node) in cluster.nodes.iter_mut().enumerate() {
        if !node.is_running() {
            continue;
        }
        let r = replica(node);
        let lost: Vec<&String> = acked.difference(&r.ids).collect();
        if !lost.is_empty() {
            out.lost += lost.len() as u64;
            let m = format!(
                "node {}: {} acknowledged events lost (e.g. {:?})",
                i + 1,
                lost.len(),
                lost.iter().take(3).collect::<Vec<_>>()
            );
            note(&mut out, m);
        }
        if r.rows != r.ids.len() as u64 {
            out.duplicates += r.rows.saturating_sub(r.ids.len() as u64);
            let m = format!(
                "node {}: duplicate rows ({} rows, {} distinct ids)",
                i + 1,
                r.rows,
                r.ids.len()
            );
            note(&mut out, m);
        }
        let phantoms: Vec<&String> = r
            .ids
            .iter()
            .filter(|id| !acked.contains(*id) && !unknown.contains(*id))
            .collect();
        if !phantoms.is_empty() {
            out.phantoms += phantoms.len() as u64;
            let m = format!(
                "node {}: {} events nobody sent or that were refused (e.g. {:?}); refused ids present: {}",
                i + 1,
                phantoms.len(),
                phantoms.iter().take(3).collect::<Vec<_>>(),
                r.ids.intersection(&failed).count()
            );
            note(&mut out, m);
        }
        match &first {
            None => {
                out.rows = r.rows;
                first = Some(r);
            }
            Some(f) if *f != r => {
                out.mismatched_replicas += 1;
                let m = format!(
                    "node {} differs from the first node: rows {} vs {}, per app/hour {:?} vs {:?}",
                    i + 1,
                    r.rows,
                    f.rows,
                    r.per_app_hour,
                    f.per_app_hour
                );
                note(&mut out, m);
            }
            Some(_) => {}
        }
    }
    out
}

/// The end-of-test checks on every running node: lost = 0, duplicates = 0, phantoms = 0, and
/// the same rows, ids and per-app/hour counts everywhere (TESTPLAN PQ-04). Returns the rows.
pub fn check_ledger(cluster: &mut TestCluster, ledger: &Ledger) -> u64 {
    let a = audit(cluster, ledger);
    assert!(a.is_clean(), "{a:?}");
    a.rows
}
