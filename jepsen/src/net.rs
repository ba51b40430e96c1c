//! The network between nodes: a harness proxy in front of every node's Raft port, and, when
//! running as root with iptables, a private iptables chain on loopback.
//!
//! - Partitions and packet loss are iptables DROP rules between the nodes' own loopback
//!   addresses (inside our chain only; removed on exit, Ctrl-C included). Without root the
//!   proxy refuses and cuts connections between the partitioned nodes instead.
//! - Delay is done by the proxy (this kernel has no netem).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::db::{node_ip, proxy_ip, Db, NODES};

/// Bytes a proxy moves per read.
const PROXY_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Default)]
pub struct NetState {
    delay_ms: AtomicU64,
    /// Directed links (from, to) the proxy refuses (used when iptables is not available).
    blocked: Mutex<HashSet<(usize, usize)>>,
}

pub struct Net {
    pub state: Arc<NetState>,
    chain: Option<String>,
}

fn iptables(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("iptables").arg("-w").args(args).status()?;
    anyhow::ensure!(status.success(), "iptables {} failed", args.join(" "));
    Ok(())
}

fn iptables_usable() -> bool {
    nix::unistd::Uid::effective().is_root()
        && Command::new("iptables")
            .args(["-w", "-L", "OUTPUT", "-n"])
            .output()
            .is_ok_and(|o| o.status.success())
}

impl Net {
    /// Starts the proxies and, when possible, creates our iptables chain.
    pub async fn start(db: &Db) -> anyhow::Result<Net> {
        let state = Arc::new(NetState::default());
        for node in 0..NODES {
            let listen = SocketAddr::new(IpAddr::V4(proxy_ip(node)), db.nodes[node].proxy_port);
            let target = SocketAddr::new(IpAddr::V4(node_ip(node)), db.nodes[node].rpc_port);
            let listener = TcpListener::bind(listen).await?;
            tokio::spawn(proxy(listener, node, target, state.clone()));
        }
        let chain = if iptables_usable() {
            let chain = format!("LEDGERJ{}", std::process::id());
            iptables(&["-N", &chain])?;
            iptables(&["-I", "OUTPUT", "-j", &chain])?;
            Some(chain)
        } else {
            None
        };
        Ok(Net { state, chain })
    }

    pub fn uses_iptables(&self) -> bool {
        self.chain.is_some()
    }

    /// Cuts the links between the two groups, both directions.
    pub fn partition(&self, cuts: &[(usize, usize)]) -> anyhow::Result<()> {
        let mut blocked = self.state.blocked.lock().unwrap();
        for &(a, b) in cuts {
            blocked.insert((a, b));
            blocked.insert((b, a));
            if let Some(chain) = &self.chain {
                for (from, to) in [(a, b), (b, a)] {
                    for destination in [node_ip(to), proxy_ip(to)] {
                        iptables(&[
                            "-A",
                            chain,
                            "-s",
                            &node_ip(from).to_string(),
                            "-d",
                            &destination.to_string(),
                            "-j",
                            "DROP",
                        ])?;
                    }
                    iptables(&[
                        "-A",
                        chain,
                        "-s",
                        &proxy_ip(to).to_string(),
                        "-d",
                        &node_ip(from).to_string(),
                        "-j",
                        "DROP",
                    ])?;
                }
            }
        }
        Ok(())
    }

    /// Drops this fraction of packets between nodes (iptables only).
    pub fn lose(&self, probability: f64) -> anyhow::Result<bool> {
        let Some(chain) = &self.chain else {
            return Ok(false);
        };
        let p = format!("{probability:.3}");
        // Nodes are 127.0.0.10-12 (in .8/29), proxies 127.0.0.20-22 (in .16/29).
        for (source, destination) in [
            ("127.0.0.8/29", "127.0.0.8/29"),
            ("127.0.0.8/29", "127.0.0.16/29"),
            ("127.0.0.16/29", "127.0.0.8/29"),
        ] {
            iptables(&[
                "-A",
                chain,
                "-s",
                source,
                "-d",
                destination,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ])?;
        }
        Ok(true)
    }

    pub fn delay(&self, milliseconds: u64) {
        self.state.delay_ms.store(milliseconds, Ordering::Relaxed);
    }

    /// Removes every network fault.
    pub fn heal(&self) -> anyhow::Result<()> {
        self.state.blocked.lock().unwrap().clear();
        self.state.delay_ms.store(0, Ordering::Relaxed);
        if let Some(chain) = &self.chain {
            iptables(&["-F", chain])?;
        }
        Ok(())
    }

    /// Deletes our chain. Safe to call twice.
    pub fn teardown(&mut self) {
        if let Some(chain) = self.chain.take() {
            let _ = iptables(&["-D", "OUTPUT", "-j", &chain]);
            let _ = iptables(&["-F", &chain]);
            let _ = iptables(&["-X", &chain]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn node_of(ip: IpAddr) -> Option<usize> {
    (0..NODES).find(|n| IpAddr::V4(node_ip(*n)) == ip)
}

async fn proxy(listener: TcpListener, to: usize, target: SocketAddr, state: Arc<NetState>) {
    loop {
        let Ok((inbound, peer)) = listener.accept().await else {
            continue;
        };
        let Some(from) = node_of(peer.ip()) else {
            continue;
        };
        if state.blocked.lock().unwrap().contains(&(from, to)) {
            continue; // dropped: refused by closing at once
        }
        let state = state.clone();
        tokio::spawn(async move {
            // Connect from the caller's own address, so iptables rules by node still match.
            let Ok(socket) = TcpSocket::new_v4() else {
                return;
            };
            if socket.bind(SocketAddr::new(peer.ip(), 0)).is_err() {
                return;
            }
            let Ok(outbound) = socket.connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            relay(inbound, outbound, from, to, state).await;
        });
    }
}

async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    from: usize,
    to: usize,
    state: Arc<NetState>,
) {
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let forward = pump(in_read, out_write, from, to, state.clone());
    let backward = pump(out_read, in_write, from, to, state);
    tokio::select! {
        _ = forward => {}
        _ = backward => {}
    }
}

async fn pump(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    from: usize,
    to: usize,
    state: Arc<NetState>,
) {
    let mut buffer = vec![0u8; PROXY_CHUNK_BYTES];
    loop {
        let Ok(read) = reader.read(&mut buffer).await else {
            return;
        };
        if read == 0 || state.blocked.lock().unwrap().contains(&(from, to)) {
            return;
        }
        let delay = state.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if writer.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
