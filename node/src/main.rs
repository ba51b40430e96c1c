//! `ledger`: the one binary. `ledger node` runs one replica from configuration;
//! `ledger dev` runs a three-node cluster on this machine with embedded defaults.

mod app;
mod cluster_cli;
mod config;
mod dev;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ledger",
    version,
    about = "A Raft-replicated ledger of account balances"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run one node from a TOML file plus LEDGER_* environment variables.
    Node {
        #[arg(long, env = "LEDGER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run a three-node cluster on loopback; Ctrl-C stops it, the next run resumes it.
    Dev {
        #[arg(long, default_value = "ledger-dev-data")]
        data_dir: PathBuf,
        /// Node i serves REST on base_port + i and Raft gRPC on base_port + 100 + i.
        #[arg(long, default_value_t = 8080)]
        base_port: u16,
    },
    /// Show or change the cluster's membership through any node's REST API.
    Cluster {
        /// Any node's REST base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        node: String,
        #[command(subcommand)]
        command: cluster_cli::ClusterCommand,
    },
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A panic anywhere ends the process. Without this, a panicked task (openraft's state
/// machine, say) leaves a node that still answers probes but can serve nothing: better down
/// and restarted than a zombie. `panic = "abort"` would do it too, but the test harness
/// ignores it and it would build every dependency twice.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!(panic = %info, "panicked; aborting the process");
        std::process::abort();
    }));
}

fn main() -> anyhow::Result<()> {
    abort_on_panic();
    let cli = Cli::parse();
    match cli.command {
        Commands::Node { config } => {
            let config = config::NodeConfig::load(config.as_deref())?;
            init_tracing(config.log_format == "json");
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let application = app::Application::build(config).await?;
                application.run(app::signal()).await
            })
        }
        Commands::Dev {
            data_dir,
            base_port,
        } => {
            init_tracing(false);
            dev::run(&data_dir, base_port)
        }
        Commands::Cluster { node, command } => cluster_cli::run(&node, command),
    }
}
