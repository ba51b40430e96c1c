//! `ledger-jepsen run` runs the cluster under faults and checks what clients saw;
//! `ledger-jepsen check DIR` re-checks a finished run from its files;
//! `ledger-jepsen failover` measures how long writes stop when the leader is killed.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use jepsen::failover::{self, FailoverOptions};
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
        /// Adds the `availability` check: every kill, kill-leader, pause and partition
        /// window keeps at least this share (0-1) of the calm ok throughput. Off unless given.
        #[arg(long)]
        availability_min: Option<f64>,
    },
    /// Kills the leader under write load, restarting it in between, and reports how long
    /// writes stopped each time (last line: failover_gap_ms_max=N).
    Failover {
        /// Concurrent clients writing transfers through all nodes.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Kills of the leader.
        #[arg(long, default_value_t = 5)]
        kills: usize,
        /// Seconds of load with every node ready before each kill (and after the last).
        #[arg(long, default_value_t = 5)]
        calm_secs: u64,
        /// Longest wait for throughput to come back after a kill.
        #[arg(long, default_value_t = 15)]
        recover_secs: u64,
        #[arg(long, default_value_t = 100)]
        accounts: usize,
        /// The clients stop at this many seconds whatever happens.
        #[arg(long, default_value_t = 300)]
        max_secs: u64,
        /// Output directory (default: jepsen-runs/failover-<unix time>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        ledger_bin: Option<PathBuf>,
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
            availability_min,
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
                availability_min,
            };
            runtime.block_on(run::run(options))?
        }
        Commands::Failover {
            clients,
            kills,
            calm_secs,
            recover_secs,
            accounts,
            max_secs,
            out,
            ledger_bin,
            network,
        } => {
            let options = FailoverOptions {
                clients,
                kills,
                calm_secs,
                recover_secs,
                accounts,
                max_secs,
                out: out.unwrap_or_else(|| {
                    let dir = run::default_out_dir();
                    let name = dir.file_name().unwrap_or_default().to_string_lossy();
                    dir.with_file_name(format!("failover-{name}"))
                }),
                ledger_bin: ledger_bin.unwrap_or_else(run::default_ledger_bin),
                network,
            };
            runtime.block_on(failover::failover(options))?
        }
        Commands::Check { dir } => run::recheck(&dir)?,
    };
    std::process::exit(if valid { 0 } else { 1 });
}
