//! `ledger cluster status|add|remove|step-down`: the membership API from the command line.
//! Any node will do: changes are forwarded to the leader, which answers with the new
//! membership.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

/// Membership changes wait for a learner to catch up: allow them that long.
const REQUEST_TIMEOUT_MS: u64 = 130_000;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Members, their roles, and how far each has replicated (leader's view).
    Status,
    /// Add a node: as a learner, then (unless --learner) a voter once it has caught up.
    Add {
        #[arg(long)]
        id: u64,
        /// Its Raft address, host:port.
        #[arg(long)]
        rpc: String,
        /// Its REST address, host:port.
        #[arg(long)]
        api: String,
        #[arg(long)]
        learner: bool,
    },
    /// Remove a node (voter or learner).
    Remove {
        #[arg(long)]
        id: u64,
    },
    /// Make the node at --node hand leadership over (before a planned stop).
    StepDown,
}

pub fn run(node: &str, command: ClusterCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(send(node, command))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

async fn send(node: &str, command: ClusterCommand) -> anyhow::Result<Value> {
    let base = node.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()?;
    let members = format!("{base}/api/v1/cluster/members");
    let request = match command {
        ClusterCommand::Status => client.get(&members),
        ClusterCommand::Add {
            id,
            rpc,
            api,
            learner,
        } => client
            .post(&members)
            .json(&json!({"nodeId": id, "rpcAddr": rpc, "apiAddr": api, "voter": !learner})),
        ClusterCommand::Remove { id } => client.delete(format!("{members}/{id}")),
        ClusterCommand::StepDown => client.post(format!("{base}/api/v1/cluster/step-down")),
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching {base}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}
