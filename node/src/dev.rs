//! `ledger dev`: a real three-node cluster on loopback, each node its own `ledger node`
//! process with its data under one directory. The first run forms the cluster; later runs
//! find it on disk and resume it (membership lives in the Raft log, never re-initialised).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NODES: u16 = 3;
/// How long `ledger dev` waits for every node to report ready before saying so.
const READY_WAIT_MS: u64 = 30_000;
/// How often children are checked for an unexpected exit.
const CHILD_POLL_MS: u64 = 500;

struct DevNode {
    id: u16,
    api_port: u16,
    config: PathBuf,
    log: PathBuf,
}

fn plan(data_dir: &Path, base_port: u16) -> anyhow::Result<Vec<DevNode>> {
    if u32::from(base_port) + 100 + u32::from(NODES) > u32::from(u16::MAX) {
        bail!("--base-port {base_port} leaves no room for {NODES} nodes (needs base_port + 103 <= 65535)");
    }
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let peers: Vec<String> = (0..NODES)
        .map(|i| {
            format!(
                "{i}=127.0.0.1:{}/127.0.0.1:{}",
                base_port + 100 + i,
                base_port + i
            )
        })
        .collect();
    let mut nodes = Vec::new();
    for id in 0..NODES {
        let config = data_dir.join(format!("node-{id}.toml"));
        let text = format!(
            "node_id = {id}\ndata_dir = {:?}\napi_listen = \"127.0.0.1:{}\"\nrpc_listen = \"127.0.0.1:{}\"\npeers = {:?}\n",
            data_dir.join(format!("node-{id}")).display().to_string(),
            base_port + id,
            base_port + 100 + id,
            peers.join(","),
        );
        fs::write(&config, text)?;
        nodes.push(DevNode {
            id,
            api_port: base_port + id,
            config,
            log: data_dir.join(format!("node-{id}.log")),
        });
    }
    Ok(nodes)
}

fn spawn(node: &DevNode) -> anyhow::Result<Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log)?;
    Command::new(std::env::current_exe()?)
        .arg("node")
        .arg("--config")
        .arg(&node.config)
        .env_remove("LEDGER_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting node {}", node.id))
}

/// Asks one node's readiness probe over plain HTTP/1.0.
async fn ready(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b"200")
}

pub fn run(data_dir: &Path, base_port: u16) -> anyhow::Result<()> {
    let nodes = plan(data_dir, base_port)?;
    let resumed = nodes.iter().any(|n| {
        n.config
            .with_file_name(format!("node-{}", n.id))
            .join("rocksdb")
            .join("CURRENT")
            .exists()
    });
    let mut children = Vec::new();
    for node in &nodes {
        children.push(spawn(node)?);
    }
    println!(
        "ledger dev: {} three-node cluster in {}",
        if resumed {
            "resuming the"
        } else {
            "forming a new"
        },
        data_dir.display()
    );
    for (node, child) in nodes.iter().zip(&children) {
        println!(
            "  node {}  http://127.0.0.1:{}  pid {}  log {}",
            node.id,
            node.api_port,
            child.id(),
            node.log.display()
        );
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(supervise(&nodes, &mut children))
}

async fn supervise(nodes: &[DevNode], children: &mut [Child]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(READY_WAIT_MS);
    let mut announced = false;
    let mut exited = vec![false; nodes.len()];
    let signal = crate::app::signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tokio::time::sleep(Duration::from_millis(CHILD_POLL_MS)) => {}
        }
        let watched = nodes.iter().zip(children.iter_mut()).zip(exited.iter_mut());
        for ((node, child), reported) in watched {
            if *reported {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                *reported = true;
                eprintln!(
                    "ledger dev: node {} exited ({status}); see {}",
                    node.id,
                    node.log.display()
                );
            }
        }
        if !announced {
            let mut all_ready = true;
            for node in nodes {
                all_ready &= ready(node.api_port).await;
            }
            if all_ready {
                println!(
                    "ledger dev: ready. Try: curl -s http://127.0.0.1:{}/api/v1/cluster",
                    nodes[0].api_port
                );
                println!("ledger dev: Ctrl-C stops the cluster; run again to resume it.");
                announced = true;
            } else if Instant::now() > deadline {
                eprintln!("ledger dev: not ready after {READY_WAIT_MS} ms; see the node logs");
                announced = true;
            }
        }
    }
    println!("ledger dev: stopping");
    for child in children.iter() {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    }
    for child in children.iter_mut() {
        child.wait()?;
    }
    println!("ledger dev: stopped");
    Ok(())
}
