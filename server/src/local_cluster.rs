//! `unmogrowp cluster init` and `unmogrowp local-cluster start|stop`: initialising a real
//! cluster, and running a whole cluster as separate processes on one machine.
//!
//! ```text
//! DIR/cluster.secret          the shared secret (0600)
//! DIR/node<N>/config.toml     node N's configuration (0600: it holds the secret)
//! DIR/node<N>/data/           node N's data directory
//! DIR/node<N>/node.log        node N's stderr
//! DIR/node<N>/pid             node N's process id while it runs
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::cluster::client::{Me, PeerClient, PeerError};
use crate::config::{MemberConfig, ServerConfig};
use crate::http::raft_rpc::StatusView;

/// An operator's client: the secret, no node identity.
fn operator(secret: &str) -> PeerClient {
    PeerClient::new(
        secret,
        Me {
            id: 0,
            uuid: String::new(),
        },
        16 << 20,
    )
}

/// What `POST /raft/init` answered.
#[derive(Debug, PartialEq, Eq)]
pub enum InitOutcome {
    Initialized,
    AlreadyInitialized,
}

/// Initialises the cluster of `cfg.cluster.members` through the node at `raft_addr`.
pub async fn init(cfg: &ServerConfig, raft_addr: &str) -> anyhow::Result<InitOutcome> {
    let c = operator(&cfg.cluster.secret);
    match c
        .post(
            raft_addr,
            "/raft/init",
            None,
            bytes::Bytes::new(),
            Duration::from_secs(30),
        )
        .await
    {
        Ok(_) => Ok(InitOutcome::Initialized),
        Err(PeerError::Status {
            status: 409,
            message,
            ..
        }) if message.contains("already_initialized") => Ok(InitOutcome::AlreadyInitialized),
        Err(e) => Err(anyhow!("cluster init via {raft_addr}: {e}")),
    }
}

pub struct LocalCluster {
    pub dir: PathBuf,
    pub nodes: u64,
    pub http_port: u16,
    pub raft_port: u16,
}

impl LocalCluster {
    fn node_dir(&self, n: u64) -> PathBuf {
        self.dir.join(format!("node{n}"))
    }

    fn members(&self) -> Vec<MemberConfig> {
        (1..=self.nodes)
            .map(|n| MemberConfig {
                id: n,
                http_addr: format!("127.0.0.1:{}", self.http_port as u64 + n - 1),
                raft_addr: format!("127.0.0.1:{}", self.raft_port as u64 + n - 1),
            })
            .collect()
    }

    fn secret(&self) -> anyhow::Result<String> {
        let path = self.dir.join("cluster.secret");
        if let Ok(s) = std::fs::read_to_string(&path) {
            return Ok(s.trim().to_string());
        }
        let s = crate::node::new_jwt_secret();
        write_private(&path, &s)?;
        Ok(s)
    }

    fn config(&self, n: u64, secret: &str) -> anyhow::Result<ServerConfig> {
        let mut cfg = ServerConfig {
            node_id: n,
            data_dir: self.node_dir(n).join("data"),
            ..ServerConfig::default()
        };
        let members = self.members();
        let me = &members[(n - 1) as usize];
        cfg.http_addr = me.http_addr.parse()?;
        cfg.cluster.raft_addr = Some(me.raft_addr.parse()?);
        cfg.cluster.secret = secret.to_string();
        cfg.cluster.members = members;
        Ok(cfg)
    }

    /// Starts every node of DIR that is not running, initialises the cluster if it is new,
    /// and returns once every node is ready.
    pub async fn start(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| self.dir.display().to_string())?;
        let secret = self.secret()?;
        let exe = std::env::current_exe()?;
        // The nodes this command started, to notice one that exits instead of coming up.
        let mut started: BTreeMap<u64, Child> = BTreeMap::new();
        for n in 1..=self.nodes {
            let nd = self.node_dir(n);
            std::fs::create_dir_all(&nd)?;
            if let Some(pid) = running_pid(&nd.join("pid")) {
                println!("node {n}: already running (pid {pid})");
                continue;
            }
            let cfg = self.config(n, &secret)?;
            let cfg_path = nd.join("config.toml");
            write_private(&cfg_path, &toml::to_string_pretty(&cfg)?)?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(nd.join("node.log"))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("serve")
                .arg("--config")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log));
            // Its own process group: a Ctrl-C meant for this command does not stop the node.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.spawn().context("spawn unmogrowp serve")?;
            write_private(&nd.join("pid"), &child.id().to_string())?;
            println!(
                "node {n}: started (pid {}), http://{} , log {}",
                child.id(),
                cfg.http_addr,
                nd.join("node.log").display()
            );
            started.insert(n, child);
        }
        let members = self.members();
        let c = operator(&secret);
        // Every node answers its internal API before the cluster is initialised.
        let mut statuses = Vec::new();
        for m in &members {
            let log = self.node_dir(m.id).join("node.log");
            let child = started.get_mut(&m.id);
            let status = wait_status(&c, m, Duration::from_secs(120), child)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{e}\nlast lines of {}:\n{}",
                        log.display(),
                        log_tail(&log, 20)
                    )
                })?;
            statuses.push(status);
        }
        if statuses.iter().all(|s| s.members.is_empty()) {
            let cfg = self.config(1, &secret)?;
            init(&cfg, &members[0].raft_addr).await?;
            println!("cluster initialised with nodes 1..={}", self.nodes);
        }
        for m in &members {
            wait_ready(&c, m, Duration::from_secs(120)).await?;
        }
        let leader = wait_status(&c, &members[0], Duration::from_secs(5), None)
            .await?
            .leader
            .unwrap_or(1);
        println!(
            "cluster ready: {} nodes, leader node {leader}; API at http://{}/",
            self.nodes, members[0].http_addr
        );
        // Written at the first start only when no UNMOGROWP_ADMIN_PASSWORD was given.
        let pw = self
            .node_dir(leader)
            .join("data")
            .join("initial-admin-password");
        if pw.exists() {
            println!("first admin: admin@localhost, password in {}", pw.display());
        }
        Ok(())
    }

    /// Stops every running node of DIR (SIGTERM, then SIGKILL after 30 s).
    pub fn stop(dir: &Path) -> anyhow::Result<()> {
        let mut any = false;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| dir.display().to_string())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("node"))
                    && p.is_dir()
            })
            .collect();
        entries.sort();
        for nd in entries {
            let pid_file = nd.join("pid");
            let Some(pid) = running_pid(&pid_file) else {
                let _ = std::fs::remove_file(&pid_file);
                continue;
            };
            any = true;
            signal(pid, "TERM");
            let t0 = Instant::now();
            while alive(pid) && t0.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                signal(pid, "KILL");
            }
            let _ = std::fs::remove_file(&pid_file);
            println!("{}: stopped (pid {pid})", nd.display());
        }
        if !any {
            println!("no node of {} was running", dir.display());
        }
        Ok(())
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| path.display().to_string())?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pid in `pid_file` if that process is alive and is an `unmogrowp serve`.
pub fn running_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_ours = args.iter().any(|a| a == b"serve")
        && args
            .first()
            .is_some_and(|a| String::from_utf8_lossy(a).contains("unmogrowp"));
    (is_ours && alive(pid)).then_some(pid)
}

/// The last `n` lines of a node's log (empty if it cannot be read).
/// The last `n` lines of a node's log, without the frames of a backtrace (an error printed
/// with `RUST_BACKTRACE` set ends in dozens of them and would hide the error itself).
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let frame = |l: &str| {
        let t = l.trim_start();
        t.starts_with("at ")
            || t.split_once(": ")
                .is_some_and(|(k, _)| k.parse::<u32>().is_ok())
    };
    let lines: Vec<&str> = text.lines().filter(|l| !frame(l)).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until node `m` answers its internal API; fails at once if `child` (the process this
/// command started for it) exits meanwhile.
async fn wait_status(
    c: &PeerClient,
    m: &MemberConfig,
    limit: Duration,
    mut child: Option<&mut Child>,
) -> anyhow::Result<StatusView> {
    let t0 = Instant::now();
    loop {
        if let Some(exit) = child.as_mut().and_then(|ch| ch.try_wait().ok().flatten()) {
            bail!("node {} exited with {exit} instead of coming up", m.id);
        }
        match c
            .get(&m.raft_addr, "/raft/status", Duration::from_secs(2))
            .await
        {
            Ok(b) => return Ok(serde_json::from_slice(&b)?),
            Err(e) if t0.elapsed() > limit => {
                bail!("node {} did not come up within {limit:?}: {e}", m.id)
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn wait_ready(c: &PeerClient, m: &MemberConfig, limit: Duration) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        match c.get(&m.http_addr, "/ready", Duration::from_secs(2)).await {
            Ok(_) => return Ok(()),
            Err(e) if t0.elapsed() > limit => {
                bail!("node {} not ready within {limit:?}: {e}", m.id)
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
