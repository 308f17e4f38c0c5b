//! `unmogrowp-bench`: ingest benchmark of the appliance against two ceilings measured by the
//! same open-loop generator in the same run. See docs/benchmarks.md.

mod body;
mod compare;
mod dataset;
mod durable;
mod generate;
mod loadgen;
mod servers;
mod stages;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::body::BodyTemplate;

/// Same allocator as the appliance, so the ceilings are measured on equal terms.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::loadgen::LoadSpec;

#[derive(Parser)]
#[command(name = "unmogrowp-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The generated dataset's size and shape (`dataset` and `generate`).
#[derive(clap::Args, Debug, Clone)]
struct Shape {
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    #[arg(long, default_value_t = 20)]
    apps: usize,
    #[arg(long, default_value_t = 100_000)]
    users_per_app: u64,
    #[arg(long, default_value_t = 30)]
    days: i64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the hello-world ceiling.
    ServeHello {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Serve the parse-only ceiling.
    ServeParse {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Serve the durable ceiling: parse-only plus a group-committed durable write of every
    /// valid body before its 202 (no Raft, no storage engine).
    ServeDurable {
        #[arg(long)]
        addr: SocketAddr,
        /// Directory of the file the bodies are appended to.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "direct")]
        commit: durable::Commit,
    },
    /// Drive load against a running server and print throughput and latency.
    Load {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Requests per second (open loop); omit to saturate.
        #[arg(long)]
        rate: Option<f64>,
        /// `X-Api-Key` to send (the appliance needs the key of the app `bench_app`).
        #[arg(long, env = "UNMOGROWP_API_KEY")]
        api_key: Option<String>,
    },
    /// Post a realistic attribution dataset to a running appliance (apps created first, with
    /// the first admin's password from UNMOGROWP_ADMIN_PASSWORD).
    Dataset {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        #[command(flatten)]
        shape: Shape,
        /// Events per generated batch (split by app into requests).
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, env = "UNMOGROWP_ADMIN_PASSWORD")]
        admin_password: String,
    },
    /// Write the `dataset` dataset straight into a new node's data directory (the engine's
    /// segment format; no API, no log), for benchmarks at hundreds of millions of events.
    Generate {
        /// The new node's data directory (must not exist or be empty).
        #[arg(long)]
        data_dir: PathBuf,
        /// The address the node will serve on (recorded in its membership).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_addr: SocketAddr,
        #[command(flatten)]
        shape: Shape,
    },
    /// CPU per event of each stage of the durable path (parse, encode, apply, flush) on one
    /// thread, without HTTP or the log: a steadier A/B of one stage than an end-to-end run.
    Stages {
        /// Events per request body.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Events per round.
        #[arg(long, default_value_t = 300_000)]
        events: usize,
        /// Request bodies per log entry.
        #[arg(long, default_value_t = 4)]
        per_entry: usize,
        #[arg(long, default_value_t = 7)]
        rounds: usize,
        /// Alternate rounds with every privacy transform on (issue 29) and all off.
        #[arg(long)]
        privacy: bool,
    },
    /// Run the ingest comparison and print a markdown table.
    Ingest {
        /// The appliance binary (release build).
        #[arg(long, default_value = "target/release/unmogrowp")]
        bin: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        batches: Vec<usize>,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Only these targets (hello, parse, durable, appliance, cluster3, cluster3-follower).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "hello,parse,durable,appliance"
        )]
        targets: Vec<String>,
        /// Max-rate measurements per target, taken in alternation (hello, parse, durable,
        /// appliance, hello, …) with a fresh process each, so that a drift of the machine's speed hits
        /// every target alike; the tables report the median round.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::ServeHello { addr } => rt.block_on(servers::hello(addr)),
        Cmd::ServeParse { addr } => rt.block_on(servers::parse_only(addr)),
        Cmd::ServeDurable { addr, dir, commit } => rt.block_on(durable::serve(addr, &dir, commit)),
        Cmd::Stages {
            batch,
            events,
            per_entry,
            rounds,
            privacy,
        } => stages::run(&stages::StagesSpec {
            batch,
            events,
            per_entry,
            rounds,
            privacy,
        }),
        Cmd::Load {
            addr,
            batch,
            connections,
            duration,
            rate,
            api_key,
        } => rt.block_on(async {
            let spec = LoadSpec {
                addr,
                path: "/v1/events".into(),
                connections,
                rate,
                duration: Duration::from_secs(duration),
                warmup: Duration::from_secs(1),
                api_key: api_key.clone(),
            };
            let r = loadgen::run(&spec, Arc::new(BodyTemplate::new("bench_app", batch, 7))).await?;
            println!(
                "events/s {:.0}  req/s {:.0}  p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms  errors {}",
                r.events_per_sec(),
                r.requests_per_sec(),
                r.ms(0.5),
                r.ms(0.99),
                r.ms(0.999),
                r.errors
            );
            Ok(())
        }),
        Cmd::Generate {
            data_dir,
            http_addr,
            shape:
                Shape {
                    events,
                    apps,
                    users_per_app,
                    days,
                    seed,
                },
        } => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as i64;
            let plan = generate::Plan {
                data_dir,
                http_addr,
                events,
                apps,
                users_per_app,
                days,
                seed,
                end_ms: now_ms - now_ms % 86_400_000,
            };
            rt.block_on(generate::run(plan))
        }
        Cmd::Dataset {
            addr,
            shape:
                Shape {
                    events,
                    apps,
                    users_per_app,
                    days,
                    seed,
                },
            batch,
            connections,
            admin_password,
        } => {
            let token = admin_login(addr, &admin_password)?;
            let keys = dataset::app_ids(apps)
                .iter()
                .map(|app| create_app(addr, &token, app))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as i64;
            let spec = dataset::Spec {
                addr,
                events,
                apps,
                users_per_app,
                days,
                end_ms: now_ms - now_ms % 3_600_000,
                batch,
                connections,
                seed,
            };
            let t0 = std::time::Instant::now();
            let n = dataset::run(spec, keys)?;
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "{n} events ingested in {secs:.1} s ({:.0} events/s)",
                n as f64 / secs
            );
            Ok(())
        }
        Cmd::Ingest {
            bin,
            batches,
            connections,
            duration,
            targets,
            rounds,
        } => rt.block_on(compare::ingest(compare::Spec {
            bin,
            batches,
            connections,
            duration: Duration::from_secs(duration),
            targets,
            rounds: rounds.max(1),
        })),
    }
}

struct Target {
    child: Child,
    addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
    api_key: Option<String>,
    /// A `local-cluster` directory to stop on drop (the cluster targets).
    cluster: Option<(PathBuf, PathBuf)>,
}

/// The per-key ingest limit of benchmarked appliances: far above what one machine ingests.
const BENCH_KEY_EVENTS_PER_SEC: &str = "100000000";
const BENCH_ADMIN_PASSWORD: &str = "bench-admin-password";

/// One HTTP/1.0 request with a JSON body; returns (status, body).
fn http_json(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    http_post(addr, path, &headers, body.to_string().as_bytes())
}

/// One HTTP/1.0 POST of a JSON body with extra headers; returns (status, JSON answer).
pub(crate) fn http_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, serde_json::Value)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nhost: bench\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    Ok((status, json))
}

/// Logs in as the first admin and creates the app `app`, returning its ingest key.
fn provision_key(addr: SocketAddr, app: &str) -> anyhow::Result<String> {
    create_app(addr, &admin_login(addr, BENCH_ADMIN_PASSWORD)?, app)
}

/// Logs in as the first admin (created shortly after the node is ready: retried a moment).
fn admin_login(addr: SocketAddr, password: &str) -> anyhow::Result<String> {
    let mut tries = 0;
    loop {
        let (st, login) = http_json(
            addr,
            "/api/auth/login",
            None,
            &serde_json::json!({"email": "admin@localhost", "password": password}),
        )?;
        tries += 1;
        if st == 200 {
            return Ok(login["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string());
        }
        anyhow::ensure!(st == 401 && tries < 25, "login failed: {st} {login}");
        std::thread::sleep(Duration::from_millis(400));
    }
}

/// Creates the app `app`, returning its ingest key.
fn create_app(addr: SocketAddr, token: &str, app: &str) -> anyhow::Result<String> {
    let (st, app) = http_json(
        addr,
        "/api/apps",
        Some(token),
        &serde_json::json!({"name": app, "id": app}),
    )?;
    anyhow::ensure!(st == 201, "creating the bench app failed: {st} {app}");
    Ok(app["api_key"].as_str().unwrap_or_default().to_string())
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((bin, dir)) = &self.cluster {
            let _ = Command::new(bin)
                .args(["local-cluster", "stop", "--dir"])
                .arg(dir)
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// Starts a 3-node cluster of separate processes (`unmogrowp local-cluster`) and returns the
/// HTTP address of node 1 (the leader after init) or node 2 (a follower that forwards).
fn start_cluster(name: &'static str, bin: &PathBuf) -> anyhow::Result<Target> {
    let dir = bench_tempdir()?;
    let base = loop {
        let b = 20_000 + (rand::random::<u16>() % 20_000);
        if (0..3).all(|i| {
            std::net::TcpListener::bind(("127.0.0.1", b + i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", b + 1000 + i)).is_ok()
        }) {
            break b;
        }
    };
    let child = Command::new(bin)
        .args(["local-cluster", "start", "--nodes", "3", "--dir"])
        .arg(dir.path())
        .args(["--http-port", &base.to_string()])
        .env("UNMOGROWP_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
        // Capacity is measured, not the per-key ingest limit (250k events/s by default).
        .env(
            "UNMOGROWP_AUTH__INGEST_EVENTS_PER_SEC_PER_KEY",
            BENCH_KEY_EVENTS_PER_SEC,
        )
        .stdout(Stdio::null())
        .spawn()?;
    let mut t = Target {
        child,
        addr: format!("127.0.0.1:{base}").parse()?,
        _dir: None,
        api_key: None,
        cluster: Some((bin.clone(), dir.path().to_path_buf())),
    };
    let status = t.child.wait()?;
    anyhow::ensure!(status.success(), "local-cluster start failed");
    t.api_key = Some(provision_key(t.addr, "bench_app")?);
    if name == "cluster3-follower" {
        t.addr = format!("127.0.0.1:{}", base + 1).parse()?;
    }
    t._dir = Some(dir);
    Ok(t)
}

/// A fresh directory under `BENCH_DATA_DIR` (default: the current directory).
fn bench_tempdir() -> anyhow::Result<tempfile::TempDir> {
    let parent = std::env::var("BENCH_DATA_DIR").unwrap_or_else(|_| ".".into());
    std::fs::create_dir_all(&parent)?;
    Ok(tempfile::tempdir_in(parent)?)
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

fn start(name: &'static str, bin: &PathBuf) -> anyhow::Result<Target> {
    if name.starts_with("cluster3") {
        return start_cluster(name, bin);
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", port()).parse()?;
    let me = std::env::current_exe()?;
    let (child, dir) = match name {
        "hello" => (
            Command::new(me)
                .args(["serve-hello", "--addr", &addr.to_string()])
                .spawn()?,
            None,
        ),
        "parse" => (
            Command::new(me)
                .args(["serve-parse", "--addr", &addr.to_string()])
                .spawn()?,
            None,
        ),
        "durable" => {
            let dir = bench_tempdir()?;
            let c = Command::new(me)
                .args([
                    "serve-durable",
                    "--addr",
                    &addr.to_string(),
                    "--commit",
                    "direct",
                ])
                .arg("--dir")
                .arg(dir.path())
                .spawn()?;
            (c, Some(dir))
        }
        _ => {
            let dir = bench_tempdir()?;
            let c = Command::new(bin)
                .args(["serve", "--data-dir"])
                .arg(dir.path())
                .args(["--http-addr", &addr.to_string()])
                .env("UNMOGROWP_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
                // Capacity is measured, not the per-key ingest limit (250k events/s by default).
                .env(
                    "UNMOGROWP_AUTH__INGEST_EVENTS_PER_SEC_PER_KEY",
                    BENCH_KEY_EVENTS_PER_SEC,
                )
                .stderr(Stdio::null())
                .spawn()?;
            (c, Some(dir))
        }
    };
    let mut t = Target {
        child,
        addr,
        _dir: dir,
        api_key: None,
        cluster: None,
    };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(60),
            "{name} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    if name == "appliance" {
        t.api_key = Some(provision_key(addr, "bench_app")?);
    }
    Ok(t)
}
