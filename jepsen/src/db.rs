//! The system under test: three real `ledger node` processes, each at its own address of
//! the [`Topology`] (its own network namespace as root, its own loopback address
//! otherwise). Peers reach node j through a harness proxy (delay, and the unprivileged
//! partition fallback, live there).
//!
//! Every node runs under libfaketime (when installed) reading its clock offset from a file,
//! so the clock nemesis can skew a running node's wall clock; the monotonic clock, which
//! Raft's timers use, is left alone.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::topology::{Mode, Topology};

pub const NODES: usize = 3;
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Ports inside a node's own namespace, where every port is free.
const NAMESPACE_API_PORT: u16 = 8080;
const NAMESPACE_RPC_PORT: u16 = 8180;

/// The nodes' log filter: `JEPSEN_NODE_LOG`, or warnings plus the ledger's own info lines
/// (elections won after a pre-vote, rejoins, catch-ups), which the availability analysis
/// reads. No per-request lines are logged at info.
pub const NODE_LOG_DEFAULT: &str = "info,openraft=warn";

fn node_log_filter() -> String {
    std::env::var("JEPSEN_NODE_LOG").unwrap_or_else(|_| NODE_LOG_DEFAULT.to_owned())
}

fn free_port(ip: Ipv4Addr) -> std::io::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

pub struct NodeProcess {
    pub api_port: u16,
    pub rpc_port: u16,
    /// Where peers connect to reach this node (the proxy's port on the topology's proxy address).
    pub proxy_port: u16,
    child: Option<Child>,
    pub paused: bool,
}

pub struct Db {
    pub topology: Arc<Topology>,
    pub dir: PathBuf,
    binary: PathBuf,
    pub nodes: Vec<NodeProcess>,
    peers: String,
    pub faketime: bool,
}

impl Db {
    pub fn new(binary: &Path, dir: &Path, topology: Arc<Topology>) -> std::io::Result<Db> {
        let mut nodes = Vec::new();
        for node in 0..NODES {
            let (api_port, rpc_port) = match topology.mode {
                Mode::Namespaces => (NAMESPACE_API_PORT, NAMESPACE_RPC_PORT),
                Mode::Loopback => (
                    free_port(topology.node_ips[node])?,
                    free_port(topology.node_ips[node])?,
                ),
            };
            nodes.push(NodeProcess {
                api_port,
                rpc_port,
                proxy_port: free_port(topology.proxy_ips[node])?,
                child: None,
                paused: false,
            });
        }
        let peers = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "{i}={}:{}/{}:{}",
                    topology.proxy_ips[i], n.proxy_port, topology.node_ips[i], n.api_port
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let faketime = Path::new(LIBFAKETIME).exists();
        Ok(Db {
            topology,
            dir: dir.to_owned(),
            binary: binary.to_owned(),
            nodes,
            peers,
            faketime,
        })
    }

    pub fn api_url(&self, node: usize) -> String {
        format!(
            "http://{}:{}",
            self.topology.node_ips[node], self.nodes[node].api_port
        )
    }

    pub fn clock_file(&self, node: usize) -> PathBuf {
        self.dir.join(format!("node-{node}.faketime"))
    }

    pub fn set_clock_offset(&self, node: usize, seconds: i64) -> std::io::Result<()> {
        std::fs::write(self.clock_file(node), format!("{seconds:+}\n"))
    }

    pub fn start(&mut self, node: usize) -> std::io::Result<()> {
        assert!(
            self.nodes[node].child.is_none(),
            "node {node} already running"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{node}.log")))?;
        let process = &self.nodes[node];
        let ip = self.topology.node_ips[node];
        let mut command = self.topology.command(node, &self.binary);
        command
            .arg("node")
            .env_remove("LEDGER_CONFIG")
            .env("LEDGER_NODE_ID", node.to_string())
            .env("LEDGER_DATA_DIR", self.dir.join(format!("node-{node}")))
            .env("LEDGER_API_LISTEN", format!("{ip}:{}", process.api_port))
            .env("LEDGER_RPC_LISTEN", format!("{ip}:{}", process.rpc_port))
            .env("LEDGER_RPC_SOURCE_IP", ip.to_string())
            .env("LEDGER_PEERS", &self.peers)
            // Peers name a node by its proxy's address, not by where it listens.
            .env("LEDGER_VERIFY_OWN_PEER_ENTRY", "false")
            .env("LEDGER_LOG", node_log_filter())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if self.faketime {
            if !self.clock_file(node).exists() {
                self.set_clock_offset(node, 0)?;
            }
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", self.clock_file(node))
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        self.nodes[node].child = Some(command.spawn()?);
        self.nodes[node].paused = false;
        Ok(())
    }

    pub fn is_running(&self, node: usize) -> bool {
        self.nodes[node].child.is_some()
    }

    fn pid(&self, node: usize) -> Option<Pid> {
        self.nodes[node]
            .child
            .as_ref()
            .map(|c| Pid::from_raw(c.id() as i32))
    }

    /// kill -9: no shutdown, no flush.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.nodes[node].paused = false;
    }

    pub fn pause(&mut self, node: usize) {
        if let Some(pid) = self.pid(node) {
            let _ = kill(pid, Signal::SIGSTOP);
            self.nodes[node].paused = true;
        }
    }

    pub fn resume(&mut self, node: usize) {
        if let Some(pid) = self.pid(node) {
            let _ = kill(pid, Signal::SIGCONT);
        }
        self.nodes[node].paused = false;
    }

    /// Every node running and not paused.
    pub fn heal(&mut self) -> std::io::Result<()> {
        for node in 0..NODES {
            if self.nodes[node].paused {
                self.resume(node);
            }
            if self.faketime {
                self.set_clock_offset(node, 0)?;
            }
            if !self.is_running(node) {
                self.start(node)?;
            }
        }
        Ok(())
    }

    pub fn stop_all(&mut self) {
        for node in 0..NODES {
            self.resume(node);
            self.kill(node);
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stop_all();
    }
}
