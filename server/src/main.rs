//! The `unmogrowp` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use unmogrowp_server::{local_cluster, router, Node, ServerConfig};

/// Ingest and queries allocate many small, short-lived objects (JSON values, strings, Arrow
/// buffers); mimalloc handles that pattern far better than glibc malloc (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "unmogrowp",
    version,
    about = "On-prem attribution analytics appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node (single node with embedded defaults unless configured otherwise).
    Serve(ServeArgs),
    /// Print the effective configuration (defaults, file, environment and flags merged).
    Config(ServeArgs),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Cluster administration.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run a whole cluster as separate processes on this machine (for trying it out).
    #[command(subcommand)]
    LocalCluster(LocalClusterCommand),
    /// Take a consistent backup of a running node (admin credentials) into a tar file.
    Backup {
        /// The node's HTTP API, e.g. http://127.0.0.1:8080.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Where to write the archive (written as OUT.partial, renamed once verified).
        #[arg(long)]
        out: PathBuf,
        /// An admin's access token.
        #[arg(long, env = "UNMOGROWP_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// An admin's email (with the password in UNMOGROWP_PASSWORD).
        #[arg(long)]
        email: Option<String>,
        #[arg(long, env = "UNMOGROWP_PASSWORD", hide_env_values = true, hide = true)]
        password: Option<String>,
    },
    /// Restore a backup into a new data directory: the first node of a new cluster.
    Restore {
        /// The archive written by `unmogrowp backup`.
        #[arg(long)]
        from: PathBuf,
        /// The new node's configuration (same flags as `serve`); its data directory must be
        /// new or empty.
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Make the configured `cluster.members` a cluster (once, on any one member, after all
    /// members run). Exits 0 if the cluster is already initialised.
    Init {
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Subcommand)]
enum LocalClusterCommand {
    /// Start the nodes of DIR that are not running (creating and initialising the cluster
    /// the first time); returns once every node is ready.
    Start {
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        #[arg(long)]
        dir: PathBuf,
        /// HTTP port of node 1; node N listens on http_port + N - 1.
        #[arg(long, default_value_t = 8081)]
        http_port: u16,
        /// Raft port of node 1 (default http_port + 1000).
        #[arg(long)]
        raft_port: Option<u16>,
    },
    /// Stop every running node of DIR.
    Stop {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the audit log's hash chain (read-only; safe next to a running node). Prints a
    /// JSON report naming the first bad record; exits 1 if the chain is broken.
    Verify {
        #[command(flatten)]
        args: ServeArgs,
        /// A checkpoint taken earlier (`GET /api/admin/audit` → head): its sequence number…
        #[arg(long, requires = "checkpoint_hash")]
        checkpoint_seq: Option<u64>,
        /// …and its hash. Detects truncation of the log's tail.
        #[arg(long)]
        checkpoint_hash: Option<String>,
    },
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// TOML configuration file (see config/example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP listen address (default 127.0.0.1:8080).
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Raft node id (default 1).
    #[arg(long)]
    node_id: Option<u64>,
}

fn load(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut cfg = ServerConfig::load(args.config.as_deref(), std::env::vars())?;
    cfg.process = unmogrowp_server::config::ProcessSettings::from_vars(std::env::vars());
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(a) = args.http_addr {
        cfg.http_addr = a;
    }
    if let Some(n) = args.node_id {
        cfg.node_id = n;
    }
    cfg.data_dir = std::path::absolute(&cfg.data_dir)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Turns transparent huge pages off for this process. The allocator gives freed ranges back
/// to the kernel in small pieces; with huge pages each piece touched again faulted in and
/// zeroed a whole 2 MiB page. That zeroing was 12–14% of the CPU time of a loaded node, and
/// turning it off raised ingest by 10–20% (docs/benchmarks.md, run H).
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not turn transparent huge pages off"
        );
    }
}

fn main() -> anyhow::Result<()> {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let env_level = std::env::var("UNMOGROWP_LOG").ok();
    // `serve` logs as its config says; the other commands as text.
    if !matches!(cli.command, Command::Serve(_)) {
        let text = unmogrowp_server::logging::LogSettings::default();
        unmogrowp_server::logging::init(&text, 0, env_level.clone());
    }
    match cli.command {
        Command::Serve(args) => {
            let cfg = load(&args)?;
            unmogrowp_server::logging::init(&cfg.log, cfg.node_id, env_level);
            runtime()?.block_on(serve(cfg))
        }
        Command::Config(args) => {
            let cfg = load(&args)?;
            println!("{}", toml::to_string_pretty(&cfg.for_display())?);
            Ok(())
        }
        Command::Cluster(ClusterCommand::Init { args }) => {
            let cfg = load(&args)?;
            let (_, raft_addr) = cfg.advertised();
            let outcome = runtime()?.block_on(local_cluster::init(&cfg, &raft_addr))?;
            match outcome {
                local_cluster::InitOutcome::Initialized => println!(
                    "cluster initialised: nodes {:?}",
                    cfg.cluster.members.iter().map(|m| m.id).collect::<Vec<_>>()
                ),
                local_cluster::InitOutcome::AlreadyInitialized => {
                    println!("the cluster was already initialised; nothing changed")
                }
            }
            Ok(())
        }
        Command::LocalCluster(LocalClusterCommand::Start {
            nodes,
            dir,
            http_port,
            raft_port,
        }) => {
            if nodes == 0 || nodes > 9 {
                anyhow::bail!("--nodes must be between 1 and 9");
            }
            let lc = local_cluster::LocalCluster {
                dir,
                nodes,
                http_port,
                raft_port: raft_port.unwrap_or(http_port.saturating_add(1000)),
            };
            runtime()?.block_on(lc.start())
        }
        Command::LocalCluster(LocalClusterCommand::Stop { dir }) => {
            local_cluster::LocalCluster::stop(&dir)
        }
        Command::Backup {
            url,
            out,
            token,
            email,
            password,
        } => {
            let creds = unmogrowp_server::backup::download::Credentials {
                token,
                email,
                password,
            };
            let info = unmogrowp_server::backup::download::download(&url, &creds, &out)?;
            let summary = serde_json::json!({
                "file": out.display().to_string(),
                "node_id": info.node_id,
                "snapshot_id": info.snapshot_id,
                "last_log_index": info.last_log_index,
                "segments": info.segments,
                "rows": info.rows,
                "bytes": info.bytes,
                "files": info.files.len(),
            });
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Restore { from, args } => {
            let cfg = load(&args)?;
            let report =
                runtime()?.block_on(unmogrowp_server::backup::restore::restore(&cfg, &from))?;
            println!(
                "{}",
                serde_json::json!({
                    "data_dir": report.data_dir,
                    "node_id": report.node_id,
                    "log_index": report.log_index,
                    "segments": report.segments,
                    "rows": report.rows,
                    "users": report.users,
                    "apps": report.apps,
                    "backup": {"node_id": report.backup.node_id, "snapshot_id": report.backup.snapshot_id,
                        "created_at": report.backup.created_at, "last_log_index": report.backup.last_log_index},
                    "next": "start this node with `unmogrowp serve` and the same configuration; it forms a cluster of one. Add the other nodes with POST /api/admin/cluster/nodes and promote them (docs/operations.md, Restore)."
                })
            );
            Ok(())
        }
        Command::Audit(AuditCommand::Verify {
            args,
            checkpoint_seq,
            checkpoint_hash,
        }) => {
            let cfg = load(&args)?;
            let store = auth::AuthStore::open_read_only(&cfg.auth_dir())?;
            let report = store.verify_audit(checkpoint_seq.zip(checkpoint_hash))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.ok {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Pending connections the kernel queues before the server accepts them. std's default (128)
/// makes the kernel reset connections when hundreds of SDK clients connect at once.
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listen = || -> std::io::Result<tokio::net::TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    // A node restarted right after a kill -9 can find its port still held for a moment: the
    // killed process's threads release their sockets after its main thread is reported dead
    // (a supervisor or `local-cluster start` restarts it then). Busy ports are tried again.
    let deadline = std::time::Instant::now() + BIND_RETRY;
    loop {
        match listen() {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                tracing::warn!(%addr, "address in use; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            other => return other.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}")),
        }
    }
}

/// How long a busy listen address is tried again at start.
const BIND_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve(cfg: ServerConfig) -> anyhow::Result<()> {
    let addr = cfg.http_addr;
    // Bind first: a taken port fails fast, before any data is opened.
    let listener = bind(addr).await?;
    let raft_listener = match cfg.cluster.raft_addr {
        Some(a) => Some((a, bind(a).await?)),
        None => None,
    };
    let node = Node::start(cfg).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let raft_server = raft_listener.map(|(raft_addr, l)| {
        tracing::info!(%raft_addr, "internal Raft API listening");
        let app = unmogrowp_server::http::raft_rpc::router(node.state.clone());
        let mut rx = stop_rx.clone();
        let http = node.state.cfg.http.clone();
        let metrics = node.state.metrics.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = unmogrowp_server::http::serve(l, app, &http, metrics, stopped).await {
                tracing::error!(error = %e, "internal Raft API server failed");
            }
        })
    });
    tracing::info!(%addr, "unmogrowp is serving: API at http://{addr}/ (see GET /)");
    let app = router(node.state.clone());
    unmogrowp_server::http::serve(
        listener,
        app,
        &node.state.cfg.http,
        node.state.metrics.clone(),
        shutdown_signal(),
    )
    .await?;
    // The internal API keeps serving peers until Raft is shut down below.
    tracing::info!(
        "HTTP stopped; shutting down raft (every acknowledged write is already durable)"
    );
    node.shutdown().await;
    let _ = stop_tx.send(true);
    if let Some(h) = raft_server {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), h).await;
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
