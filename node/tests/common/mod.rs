//! Test harness: real `ledger node` processes on free loopback ports with private data
//! directories, driven over HTTP. Every wait is a bounded poll of a readiness condition.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The longest any condition in these tests is waited for.
pub const WAIT_MS_MAX: u64 = 60_000;
const POLL_MS: u64 = 50;

pub struct Node {
    pub id: u64,
    pub api_port: u16,
    pub rpc_port: u16,
    pub process: Option<Child>,
    /// A read replica: joins as a learner through the membership API.
    pub learner: bool,
}

pub struct Cluster {
    pub dir: TempDir,
    pub nodes: Vec<Node>,
    pub http: reqwest::Client,
    peers: String,
    extra_env: Vec<(String, String)>,
    /// Set: nodes start as a StatefulSet starts them (see `start_statefulset`).
    statefulset_hosts: Option<PathBuf>,
}

/// The StatefulSet's pod and headless-service names, as DNS would give them.
pub fn pod_host(id: u64) -> String {
    format!("ledger-{id}.ledger.test.svc.cluster.local")
}

fn free_port() -> u16 {
    // The OS picks a free port; the node binds it right after. Ports are not reused soon.
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// Starts three nodes and waits until all are ready.
    pub async fn start(extra_env: &[(&str, &str)]) -> Cluster {
        let mut cluster = Cluster::configure(extra_env);
        for index in 0..3 {
            cluster.spawn(index);
        }
        cluster.wait_all_ready().await;
        cluster
    }

    /// A three-node cluster configured on free ports, with no node started yet.
    pub fn configure(extra_env: &[(&str, &str)]) -> Cluster {
        let mut cluster = Cluster::start_unready(extra_env);
        cluster.peers = cluster
            .nodes
            .iter()
            .map(|n| format!("{}=127.0.0.1:{}/127.0.0.1:{}", n.id, n.rpc_port, n.api_port))
            .collect::<Vec<_>>()
            .join(",");
        cluster
    }

    /// The node's log so far.
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{index}.log")))
            .unwrap_or_default()
    }

    /// Starts three nodes exactly as the Helm chart's StatefulSet does: no node id (each
    /// takes it from its hostname `ledger-N`), peers named by stable DNS names. The names
    /// resolve to loopback through a private /etc/hosts bind-mounted in a mount namespace
    /// of each node's own (needs root and `unshare`).
    pub async fn start_statefulset() -> Cluster {
        // What Kubernetes injects for a Service named `ledger`: not config keys.
        let service_links = [
            ("LEDGER_PORT", "tcp://10.0.0.10:8080"),
            ("LEDGER_PORT_8080_TCP_ADDR", "10.0.0.10"),
            ("LEDGER_SERVICE_HOST", "10.0.0.10"),
            ("LEDGER_SERVICE_PORT", "8080"),
        ];
        let mut cluster = Cluster::start_unready(&service_links);
        let hosts = cluster.dir.path().join("hosts");
        let mut lines = String::from("127.0.0.1 localhost\n");
        for node in &cluster.nodes {
            lines.push_str(&format!("127.0.0.1 {}\n", pod_host(node.id)));
        }
        std::fs::write(&hosts, lines).unwrap();
        cluster.peers = cluster
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{}={host}:{}/{host}:{}",
                    n.id,
                    n.rpc_port,
                    n.api_port,
                    host = pod_host(n.id)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        cluster.statefulset_hosts = Some(hosts);
        for index in 0..3 {
            cluster.spawn(index);
        }
        cluster.wait_all_ready().await;
        cluster
    }

    fn start_unready(extra_env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (0..3)
            .map(|id| Node {
                id,
                api_port: free_port(),
                rpc_port: free_port(),
                process: None,
                learner: false,
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        Cluster {
            dir,
            nodes,
            http,
            peers: String::new(),
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            statefulset_hosts: None,
        }
    }

    /// SIGTERM, as Kubernetes stops a pod, and a bounded wait for the exit.
    pub async fn terminate(&mut self, index: usize) -> std::process::ExitStatus {
        let mut child = self.nodes[index].process.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "node {index} ignored SIGTERM");
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// Starts one more node (not yet a member) whose peer list is the cluster's plus
    /// itself, as an operator would configure a node about to be added. Returns its index.
    pub fn add_node(&mut self) -> usize {
        let id = self.nodes.len() as u64;
        let node = Node {
            id,
            api_port: free_port(),
            rpc_port: free_port(),
            process: None,
            learner: false,
        };
        self.peers = format!(
            "{},{}=127.0.0.1:{}/127.0.0.1:{}",
            self.peers, id, node.rpc_port, node.api_port
        );
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.spawn(index);
        index
    }

    /// Starts a read replica (`role = learner`, id from 100 up): it is not in the voters'
    /// peer list, and joins through the membership API by itself. Returns its index.
    pub fn add_learner(&mut self) -> usize {
        let node = Node {
            id: 100 + self.nodes.len() as u64,
            api_port: free_port(),
            rpc_port: free_port(),
            process: None,
            learner: true,
        };
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.spawn(index);
        index
    }

    pub fn rpc_addr(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[index].rpc_port)
    }

    pub fn api_addr(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[index].api_port)
    }

    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("node-{index}"))
    }

    pub fn spawn(&mut self, index: usize) {
        let node = &self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{index}.log")))
            .unwrap();
        let mut command = match &self.statefulset_hosts {
            None => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
                command.env("LEDGER_NODE_ID", node.id.to_string());
                command
            }
            Some(hosts) => {
                let mut command = Command::new("unshare");
                command
                    .args(["--mount", "--", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
                    .arg(hosts)
                    .arg(env!("CARGO_BIN_EXE_ledger"))
                    .env_remove("LEDGER_NODE_ID")
                    .env("HOSTNAME", format!("ledger-{}", node.id));
                command
            }
        };
        command
            .arg("node")
            .env_remove("LEDGER_CONFIG")
            .env("LEDGER_DATA_DIR", self.data_dir(index))
            .env("LEDGER_API_LISTEN", format!("127.0.0.1:{}", node.api_port))
            .env("LEDGER_RPC_LISTEN", format!("127.0.0.1:{}", node.rpc_port))
            .env("LEDGER_PEERS", &self.peers)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if node.learner {
            command.env("LEDGER_ROLE", "learner").env(
                "LEDGER_ADVERTISE",
                format!("127.0.0.1:{}/127.0.0.1:{}", node.rpc_port, node.api_port),
            );
        }
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        self.nodes[index].process = Some(command.spawn().expect("start ledger node"));
    }

    /// kill -9: no shutdown, no flush.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].process.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn url(&self, index: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.nodes[index].api_port, path)
    }

    pub async fn get(&self, index: usize, path: &str) -> Option<(u16, Value)> {
        let response = self.http.get(self.url(index, path)).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// POST returning (status, served-by, body); `None` when the node could not be reached.
    pub async fn post(
        &self,
        index: usize,
        path: &str,
        body: &Value,
    ) -> Option<(u16, Option<u64>, Value)> {
        let response = self
            .http
            .post(self.url(index, path))
            .json(body)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        let served_by = response
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Some((
            status,
            served_by,
            response.json().await.unwrap_or(Value::Null),
        ))
    }

    pub async fn cluster_info(&self, index: usize) -> Option<Value> {
        match self.get(index, "/api/v1/cluster").await {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    async fn wait_for<F, Fut>(&self, what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        while !condition().await {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; logs in {}",
                self.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    pub async fn wait_ready(&self, index: usize) {
        self.wait_for(&format!("node {index} ready"), || async move {
            matches!(self.get(index, "/health/ready").await, Some((200, _)))
        })
        .await;
    }

    pub async fn wait_all_ready(&self) {
        for index in 0..self.nodes.len() {
            if self.nodes[index].process.is_some() {
                self.wait_ready(index).await;
            }
        }
    }

    /// The leader as seen by the running nodes, once they agree on one that is running.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            let mut seen = Vec::new();
            for index in 0..self.nodes.len() {
                if self.nodes[index].process.is_some() {
                    let info = self.cluster_info(index).await;
                    seen.push(info.and_then(|info| info["leaderId"].as_u64()));
                }
            }
            let first = seen.first().copied().flatten();
            let agreed = first.is_some() && seen.iter().all(|l| *l == first);
            if let (true, Some(leader)) = (agreed, first) {
                if self.nodes[leader as usize].process.is_some() {
                    return leader as usize;
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {seen:?}");
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    pub fn follower_of(&self, leader: usize) -> usize {
        (0..self.nodes.len())
            .find(|i| *i != leader && self.nodes[*i].process.is_some())
            .unwrap()
    }

    pub async fn create_account(&self, index: usize, id: &str, balance: &str) {
        let body = json!({"accountId": id, "balance": balance});
        let (status, _, answer) = self
            .post(index, "/api/v1/accounts", &body)
            .await
            .expect("reachable");
        assert_eq!(status, 201, "create {id}: {answer}");
    }

    /// Reads every account at one applied index through `index` (linearizable).
    pub async fn balances(&self, index: usize, ids: &[String]) -> Vec<Decimal> {
        let (status, _, body) = self
            .post(index, "/api/v1/accounts/query", &json!({"accountIds": ids}))
            .await
            .expect("reachable");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["missing"], json!([]));
        body["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| decimal(&a["balance"]))
            .collect()
    }

    /// The node's audit; a full scan, rate-limited by the node (429 while another scan is
    /// recent), so this polls until one is granted.
    pub async fn audit(&self, index: usize) -> Value {
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            let (status, body) = self
                .get(index, "/api/v1/admin/audit")
                .await
                .expect("reachable");
            if status != 429 {
                assert_eq!(status, 200, "{body}");
                return body;
            }
            assert!(Instant::now() < deadline, "audit refused for too long");
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// Waits until every running node has applied the same index, then checks that their
    /// states are identical and conserve the total.
    pub async fn assert_replicas_identical(&self) {
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        let audits = loop {
            let mut audits = Vec::new();
            for index in 0..self.nodes.len() {
                if self.nodes[index].process.is_some() {
                    audits.push(self.audit(index).await);
                }
            }
            if audits
                .windows(2)
                .all(|w| w[0]["appliedIndex"] == w[1]["appliedIndex"])
            {
                break audits;
            }
            assert!(
                Instant::now() < deadline,
                "replicas never reached one index: {audits:?}"
            );
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        };
        for audit in &audits {
            assert_eq!(audit["conserved"], json!(true), "{audit}");
            assert_eq!(
                audit["digest"], audits[0]["digest"],
                "replicas differ: {audits:?}"
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}

pub fn decimal(value: &Value) -> Decimal {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("not a decimal: {other}"),
    };
    text.parse().unwrap()
}
