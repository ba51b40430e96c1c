//! `ledger-jepsen run` runs the cluster under faults and checks what clients saw;
//! `ledger-jepsen check DIR` re-checks a finished run from its files.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use jepsen::run::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "ledger-jepsen",
    about = "Jepsen-style fault testing for ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    Run {
        /// Seconds of load and faults (the final checks come after).
        #[arg(long, default_value_t = 60)]
        duration_secs: u64,
        #[arg(long, default_value_t = 6)]
        clients: usize,
        /// Comma-separated nemeses (default: all): kill, kill-leader, pause, partition-leader,
        /// partition-random, partition-ring, loss, delay, clock-skew, hostile-frames, or none.
        #[arg(long, default_value = "all")]
        nemesis: String,
        /// Seconds each fault is held, and seconds of calm between faults.
        #[arg(long, default_value_t = 5)]
        fault_secs: u64,
        #[arg(long, default_value_t = 2)]
        calm_secs: u64,
        #[arg(long, default_value_t = 5)]
        accounts: usize,
        /// Output directory (default: jepsen-runs/<unix time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The ledger binary (default: `ledger` beside this program).
        #[arg(long)]
        ledger_bin: Option<PathBuf>,
        /// Most operations per client.
        #[arg(long, default_value_t = 100_000)]
        ops_per_client: usize,
        /// Where nodes live: `auto` (network namespaces when root), `namespaces`, `loopback`.
        #[arg(long, default_value = "auto")]
        network: String,
    },
    /// Re-runs the checkers on a run directory's history.jsonl, setup.json and final.json.
    Check { dir: PathBuf },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let valid = match cli.command {
        Commands::Run {
            duration_secs,
            clients,
            nemesis,
            fault_secs,
            calm_secs,
            accounts,
            out,
            ledger_bin,
            ops_per_client,
            network,
        } => {
            let options = RunOptions {
                duration_secs,
                clients,
                nemeses: run::parse_nemeses(&nemesis)?,
                fault_secs,
                calm_secs,
                accounts,
                out: out.unwrap_or_else(run::default_out_dir),
                ledger_bin: ledger_bin.unwrap_or_else(run::default_ledger_bin),
                ops_per_client,
                network,
            };
            runtime.block_on(run::run(options))?
        }
        Commands::Check { dir } => run::recheck(&dir)?,
    };
    std::process::exit(if valid { 0 } else { 1 });
}
