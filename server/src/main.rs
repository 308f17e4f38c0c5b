//! The `unmogrowp` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use unmogrowp_server::{router, Node, ServerConfig};

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
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(a) = args.http_addr {
        cfg.http_addr = a;
    }
    if let Some(n) = args.node_id {
        cfg.node_id = n;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::var("UNMOGROWP_LOG").unwrap_or_else(|_| "info,openraft=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let cfg = load(&args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(cfg))
        }
        Command::Config(args) => {
            let cfg = load(&args)?;
            println!("{}", toml::to_string_pretty(&cfg)?);
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

async fn serve(cfg: ServerConfig) -> anyhow::Result<()> {
    let addr = cfg.http_addr;
    // Bind first: a taken port fails fast, before any data is opened.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let node = Node::start(cfg).await?;
    tracing::info!(%addr, "unmogrowp is serving: API at http://{addr}/ (see GET /)");
    let app = router(node.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!(
        "HTTP stopped; shutting down raft (every acknowledged write is already durable)"
    );
    node.shutdown().await;
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
