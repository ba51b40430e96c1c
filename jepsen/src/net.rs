//! The network between nodes: a harness proxy in front of every node's Raft port, and
//! iptables where we may use it.
//!
//! - Partitions and packet loss are iptables DROP rules: inside the nodes' own network
//!   namespaces (the [`Topology`]'s namespace mode), or, on loopback as root, in a chain of
//!   our own. Without root the proxy refuses and cuts connections between the partitioned
//!   nodes instead, and loss is not available.
//! - Delay is done by the proxy (this kernel has no netem).
//! Every rule is removed when faults heal and on exit, Ctrl-C included.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::db::{Db, NODES};
use crate::topology::{Mode, Topology};

/// Bytes a proxy moves per read.
const PROXY_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks read but not yet written (held for the delay) per direction of a connection.
const PROXY_CHUNKS_QUEUED_MAX: usize = 256;
/// Pause before binding a proxy's port again after a failed attempt.
const PROXY_REBIND_MS: u64 = 20;

#[derive(Default)]
pub struct NetState {
    delay_ms: AtomicU64,
    /// Directed links (from, to) the proxy refuses (used when iptables is not available).
    blocked: Mutex<HashSet<(usize, usize)>>,
}

pub struct Net {
    pub state: Arc<NetState>,
    topology: Arc<Topology>,
    /// Our chain in the root namespace (loopback mode as root).
    chain: Option<String>,
    /// Proxy port of each node, and each node's Raft port.
    proxy_ports: Vec<u16>,
    rpc_ports: Vec<u16>,
    /// Whether each node's process runs: a proxy listens only while it does, so that a
    /// peer connecting to a killed node is refused, as it would be without the proxy.
    up: Vec<tokio::sync::watch::Sender<bool>>,
    torn_down: std::sync::atomic::AtomicBool,
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
        let topology = db.topology.clone();
        let mut up = Vec::new();
        for node in 0..NODES {
            let listen = SocketAddr::new(
                IpAddr::V4(topology.proxy_ips[node]),
                db.nodes[node].proxy_port,
            );
            let target =
                SocketAddr::new(IpAddr::V4(topology.node_ips[node]), db.nodes[node].rpc_port);
            let listener = TcpListener::bind(listen).await?;
            let (running, watch) = tokio::sync::watch::channel(true);
            up.push(running);
            tokio::spawn(proxy(
                (listener, listen, watch),
                node,
                target,
                topology.clone(),
                state.clone(),
            ));
        }
        let proxy_ports = db.nodes.iter().map(|n| n.proxy_port).collect();
        let rpc_ports = db.nodes.iter().map(|n| n.rpc_port).collect();
        let chain = if topology.mode == Mode::Loopback && iptables_usable() {
            let chain = format!("LEDGERJ{}", std::process::id());
            iptables(&["-N", &chain])?;
            iptables(&["-I", "OUTPUT", "-j", &chain])?;
            Some(chain)
        } else {
            None
        };
        Ok(Net {
            state,
            topology,
            chain,
            proxy_ports,
            rpc_ports,
            up,
            torn_down: Default::default(),
        })
    }

    /// The node's process was killed: its proxy stops listening, so peers' connections
    /// are refused (a proxy that accepted them would turn a refusal into a closed
    /// connection, which a caller must treat as a possibly delivered request).
    pub fn node_down(&self, node: usize) {
        let _ = self.up[node].send(false);
    }

    /// The node is about to run again: its proxy listens again.
    pub fn node_up(&self, node: usize) {
        let _ = self.up[node].send(true);
    }

    pub fn mechanism(&self) -> &'static str {
        match (self.topology.mode, &self.chain) {
            (Mode::Namespaces, _) => "iptables in network namespaces",
            (Mode::Loopback, Some(_)) => "iptables on loopback",
            (Mode::Loopback, None) => "proxy",
        }
    }

    /// Cuts the links between the two groups, both directions.
    pub fn partition(&self, cuts: &[(usize, usize)]) -> anyhow::Result<()> {
        let mut blocked = self.state.blocked.lock().unwrap();
        for &(a, b) in cuts {
            blocked.insert((a, b));
            blocked.insert((b, a));
            if self.topology.mode == Mode::Namespaces {
                for (from, to) in [(a, b), (b, a)] {
                    let proxy = self.topology.proxy_ips[to].to_string();
                    let port = self.proxy_ports[to].to_string();
                    self.topology.iptables(
                        from,
                        &[
                            "-A", "OUTPUT", "-p", "tcp", "-d", &proxy, "--dport", &port, "-j",
                            "DROP",
                        ],
                    )?;
                    self.topology.iptables(
                        from,
                        &[
                            "-A",
                            "OUTPUT",
                            "-d",
                            &self.topology.node_ips[to].to_string(),
                            "-j",
                            "DROP",
                        ],
                    )?;
                }
            } else if let Some(chain) = &self.chain {
                for (from, to) in [(a, b), (b, a)] {
                    let source = self.topology.node_ips[from].to_string();
                    let proxy = self.topology.proxy_ips[to].to_string();
                    for destination in [self.topology.node_ips[to].to_string(), proxy.clone()] {
                        iptables(&["-A", chain, "-s", &source, "-d", &destination, "-j", "DROP"])?;
                    }
                    iptables(&["-A", chain, "-s", &proxy, "-d", &source, "-j", "DROP"])?;
                }
            }
        }
        Ok(())
    }

    /// Drops this fraction of packets between nodes (iptables only).
    pub fn lose(&self, probability: f64) -> anyhow::Result<bool> {
        let p = format!("{probability:.3}");
        if self.topology.mode == Mode::Namespaces {
            // Raft traffic only: the proxies' ports and the node's own Raft port, both ways.
            for node in 0..NODES {
                let ports: Vec<String> = self
                    .proxy_ports
                    .iter()
                    .chain([&self.rpc_ports[node]])
                    .map(|p| p.to_string())
                    .collect();
                let ports = ports.join(",");
                for chain in ["OUTPUT", "INPUT"] {
                    let rule = [
                        "-A",
                        chain,
                        "-p",
                        "tcp",
                        "-m",
                        "multiport",
                        "--ports",
                        &ports,
                        "-m",
                        "statistic",
                    ];
                    let action = ["--mode", "random", "--probability", &p, "-j", "DROP"];
                    self.topology
                        .iptables(node, &[rule.as_slice(), action.as_slice()].concat())?;
                }
            }
            return Ok(true);
        }
        let Some(chain) = &self.chain else {
            return Ok(false);
        };
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
        if self.topology.mode == Mode::Namespaces {
            for node in 0..NODES {
                self.topology.iptables(node, &["-F"])?;
            }
        }
        Ok(())
    }

    /// Deletes our chain. Safe to call twice.
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(chain) = &self.chain {
            let _ = iptables(&["-D", "OUTPUT", "-j", chain]);
            let _ = iptables(&["-F", chain]);
            let _ = iptables(&["-X", chain]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn node_of(topology: &Topology, ip: IpAddr) -> Option<usize> {
    (0..NODES).find(|n| IpAddr::V4(topology.node_ips[*n]) == ip)
}

/// Relays connections to node `to` while it runs; while it is down, nothing listens.
async fn proxy(
    (listener, listen, mut up): (TcpListener, SocketAddr, tokio::sync::watch::Receiver<bool>),
    to: usize,
    target: SocketAddr,
    topology: Arc<Topology>,
    state: Arc<NetState>,
) {
    let mut listener = Some(listener);
    loop {
        let current = match listener.take() {
            Some(current) => current,
            None => {
                if up.wait_for(|running| *running).await.is_err() {
                    return;
                }
                match TcpListener::bind(listen).await {
                    Ok(current) => current,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(PROXY_REBIND_MS)).await;
                        continue;
                    }
                }
            }
        };
        tokio::select! {
            () = serve(&current, to, target, &topology, &state) => return,
            down = up.wait_for(|running| !*running) => {
                if down.is_err() {
                    return;
                }
            }
        }
        // `current` is dropped here: connections are refused until the node runs again.
    }
}

async fn serve(
    listener: &TcpListener,
    to: usize,
    target: SocketAddr,
    topology: &Arc<Topology>,
    state: &Arc<NetState>,
) {
    let keep_source = topology.mode == Mode::Loopback;
    loop {
        let Ok((inbound, peer)) = listener.accept().await else {
            continue;
        };
        let Some(from) = node_of(&topology, peer.ip()) else {
            continue;
        };
        if state.blocked.lock().unwrap().contains(&(from, to)) {
            continue; // dropped: refused by closing at once
        }
        let state = state.clone();
        tokio::spawn(async move {
            // On loopback, connect from the caller's own address so iptables rules by node
            // still match; a namespaced node's address is not ours to bind.
            let Ok(socket) = TcpSocket::new_v4() else {
                return;
            };
            if keep_source && socket.bind(SocketAddr::new(peer.ip(), 0)).is_err() {
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

/// Moves bytes one way. With a delay, every chunk is held for the delay from the moment it
/// was read, while reading goes on: the link adds latency, as netem would, without
/// serialising the chunks behind each other's delays (which would cut throughput and add
/// more than the delay to every message queued behind another).
async fn pump(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    from: usize,
    to: usize,
    state: Arc<NetState>,
) {
    let (chunks, mut due) =
        tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(PROXY_CHUNKS_QUEUED_MAX);
    let read_state = state.clone();
    let read = async move {
        let mut buffer = vec![0u8; PROXY_CHUNK_BYTES];
        loop {
            let Ok(read) = reader.read(&mut buffer).await else {
                return;
            };
            if read == 0 || read_state.blocked.lock().unwrap().contains(&(from, to)) {
                return;
            }
            let delay = Duration::from_millis(read_state.delay_ms.load(Ordering::Relaxed));
            let at = tokio::time::Instant::now() + delay;
            if chunks.send((at, buffer[..read].to_vec())).await.is_err() {
                return;
            }
        }
        // Returning drops `chunks`: the writer finishes what is queued, then stops.
    };
    let write = async move {
        while let Some((at, chunk)) = due.recv().await {
            if at > tokio::time::Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            if state.blocked.lock().unwrap().contains(&(from, to)) {
                return;
            }
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::pin!(write);
    // The reader ending (end of stream, cut link) lets queued chunks out first; the writer
    // failing ends the pump at once.
    tokio::select! {
        () = read => (&mut write).await,
        () = &mut write => {}
    }
}
