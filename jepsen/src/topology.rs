//! Where the nodes live on the network.
//!
//! - **Namespaces** (as root, with `ip` and `iptables`): each node runs in a network
//!   namespace of its own, joined to a bridge by a veth pair, with its own address in a
//!   private /24 (10.231.S.0/24). Partitions and loss are iptables rules inside the nodes'
//!   namespaces; nothing outside them is touched. The harness reaches the nodes through the
//!   bridge, whose address also hosts the proxies peers connect through.
//! - **Loopback** (otherwise): each node has its own loopback address (127.0.0.10 + i) and
//!   its proxy another (127.0.0.20 + i); partitions are made by the proxy.
//!
//! Everything created here is removed by `teardown`, which `Drop` also runs.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::db::NODES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Namespaces,
    Loopback,
}

pub struct Topology {
    pub mode: Mode,
    pub node_ips: Vec<Ipv4Addr>,
    /// The address peers use to reach node i (its proxy listens there).
    pub proxy_ips: Vec<Ipv4Addr>,
    namespaces: Vec<String>,
    links: Vec<String>,
    torn_down: std::sync::atomic::AtomicBool,
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

pub fn namespaces_available() -> bool {
    nix::unistd::Uid::effective().is_root()
        && Command::new("ip")
            .args(["netns", "list"])
            .output()
            .is_ok_and(|o| o.status.success())
        && Command::new("iptables")
            .args(["-w", "-L", "-n"])
            .output()
            .is_ok_and(|o| o.status.success())
}

impl Topology {
    pub fn loopback() -> Topology {
        Topology {
            mode: Mode::Loopback,
            node_ips: (0..NODES)
                .map(|i| Ipv4Addr::new(127, 0, 0, 10 + i as u8))
                .collect(),
            proxy_ips: (0..NODES)
                .map(|i| Ipv4Addr::new(127, 0, 0, 20 + i as u8))
                .collect(),
            namespaces: Vec::new(),
            links: Vec::new(),
            torn_down: Default::default(),
        }
    }

    /// Creates the namespaces, veth pairs and bridge of this run.
    pub fn namespaces() -> anyhow::Result<Topology> {
        let pid = std::process::id();
        let tag = pid % 100_000;
        let subnet = (pid % 200 + 20) as u8;
        let bridge = format!("ljb{tag}");
        let gateway = Ipv4Addr::new(10, 231, subnet, 1);
        let mut topology = Topology {
            mode: Mode::Namespaces,
            node_ips: (0..NODES)
                .map(|i| Ipv4Addr::new(10, 231, subnet, 10 + i as u8))
                .collect(),
            proxy_ips: vec![gateway; NODES],
            namespaces: Vec::new(),
            links: Vec::new(),
            torn_down: Default::default(),
        };
        // On any failure, Drop removes what was made so far.
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        topology.links.push(bridge.clone());
        run(
            "ip",
            &["addr", "add", &format!("{gateway}/24"), "dev", &bridge],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for node in 0..NODES {
            let namespace = format!("lj{pid}-{node}");
            let (host_side, node_side) = (format!("lj{tag}h{node}"), format!("lj{tag}n{node}"));
            run("ip", &["netns", "add", &namespace])?;
            topology.namespaces.push(namespace.clone());
            run(
                "ip",
                &[
                    "link", "add", &host_side, "type", "veth", "peer", "name", &node_side,
                ],
            )?;
            topology.links.push(host_side.clone());
            run("ip", &["link", "set", &node_side, "netns", &namespace])?;
            run("ip", &["link", "set", &host_side, "master", &bridge])?;
            run("ip", &["link", "set", &host_side, "up"])?;
            let address = format!("{}/24", topology.node_ips[node]);
            run(
                "ip",
                &[
                    "netns", "exec", &namespace, "ip", "addr", "add", &address, "dev", &node_side,
                ],
            )?;
            run(
                "ip",
                &[
                    "netns", "exec", &namespace, "ip", "link", "set", &node_side, "up",
                ],
            )?;
            run(
                "ip",
                &["netns", "exec", &namespace, "ip", "link", "set", "lo", "up"],
            )?;
        }
        Ok(topology)
    }

    /// A command that runs `program` where node `node` lives.
    pub fn command(&self, node: usize, program: &Path) -> Command {
        match self.namespaces.get(node) {
            Some(namespace) => {
                // `ip netns exec` execs the program: the child's pid is the node's.
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Runs iptables inside node `node`'s namespace.
    pub fn iptables(&self, node: usize, args: &[&str]) -> anyhow::Result<()> {
        let namespace = self
            .namespaces
            .get(node)
            .context("iptables needs namespaces")?;
        let mut full = vec!["netns", "exec", namespace, "iptables", "-w"];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Deletes the namespaces and links of this run; call once no process of ours runs in
    /// them (a namespace outlives its name while a process is inside). Idempotent.
    pub fn teardown(&self) {
        if self
            .torn_down
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        for namespace in &self.namespaces {
            let _ = run("ip", &["netns", "del", namespace]);
        }
        for link in self.links.iter().rev() {
            let _ = run("ip", &["link", "del", link]);
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.teardown();
    }
}
